"""How long a reply waits (issue 23 item 4): time to the first token and to the whole
reply, for a new user's first message and for a quick follow-up sent right after it,
while the first message's memory work runs — as the web app does it (the reply streamed,
then ``turn.changes()`` submitted to a background thread, the next message at once).

Each pair uses a fresh user and the product's settings (``.env``; by default the local
model). ``--memory-server off`` runs the same with ``LOCAL_LLM_MEMORY_SERVER=false`` (one
shared llama.cpp process: the follow-up waits for the extraction), the comparison the
two-server design is for.

  python bench/reply_latency.py --pairs 5 --out bench/results/reply_latency_on.json
  python bench/reply_latency.py --pairs 5 --memory-server off --out bench/results/reply_latency_off.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import git_describe  # noqa: E402

FIRST = ["Hi! I'm Nadia, I live in Porto and I work as a pharmacist. I'm vegetarian and I love surfing.",
         "你好，我叫王磊，住在杭州，是一名中学老师，平时喜欢打羽毛球。",
         "Hello, I'm Tom. I moved to Leeds last year, I work as a plumber and I have a dog named Rex.",
         "我叫李娜，在深圳做产品经理，对花生过敏，周末喜欢去爬山。",
         "Hi, I'm Ines. I teach maths in Lyon and I play the cello in an orchestra."]
FOLLOW = ["What could I cook tonight?", "周末有什么建议？", "Any idea for Saturday?",
          "今晚吃什么好？", "What should I read next?"]


def timed(turn) -> tuple[float, float]:
    """Stream ``turn``; return (seconds to the first token, seconds to the end)."""
    start, first = time.perf_counter(), None
    for _ in turn:
        first = first or time.perf_counter()
    end = time.perf_counter()
    return (first or end) - start, end - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--memory-server", choices=("on", "off"), default="on")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    from bench.memory_quality import build_memory

    overrides = {"local_llm_memory_server": args.memory_server == "on"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        mem = build_memory(tmp, **overrides)
        mem.llm.chat([{"role": "user", "content": "Say OK."}], max_tokens=2)  # both servers up
        for i in range(args.pairs):
            uid = f"lat-{uuid.uuid4().hex[:6]}"
            first = mem.chat(FIRST[i % len(FIRST)], uid)
            t1 = timed(first)
            work = threading.Thread(target=first.changes)   # as the app's background pool
            work.start()
            follow = mem.chat(FOLLOW[i % len(FOLLOW)], uid, first.thread.id)
            t2 = timed(follow)
            work.join()
            rows.append({"first_ttft": t1[0], "first_total": t1[1],
                         "follow_ttft": t2[0], "follow_total": t2[1],
                         "errors": [e for e in (first.error, follow.error, first.changes_error) if e]})
            print(f"pair {i + 1}: first {t1[0]:.1f}/{t1[1]:.1f}s, follow-up {t2[0]:.1f}/{t2[1]:.1f}s "
                  f"(first token / whole reply)", file=sys.stderr, flush=True)
        mem.close()
        if mem.llm.memory_config is not mem.config:   # started in this temporary data dir:
            from memory.llm import local_server as local_llm  # its pid file goes with the folder
            local_llm.stop_server(mem.llm.memory_config)
    stats = {k: {"p50": round(statistics.median(r[k] for r in rows), 2),
                 "max": round(max(r[k] for r in rows), 2)}
             for k in ("first_ttft", "first_total", "follow_ttft", "follow_total")}
    result = {"benchmark": "reply_latency", "git_describe": git_describe(),
              "memory_server": args.memory_server, "pairs": args.pairs, "stats": stats,
              "rows": rows}
    print(json.dumps({"memory_server": args.memory_server, **stats}))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
