"""Search latency on realistic text: LoCoMo turns as one user's raw chat memories, LoCoMo questions as queries.

The 5,882 LoCoMo turns (``Speaker: text``, as ``bench/locomo.py --format plain`` stores
them: one thread per session, the session date as ``created_at``) are repeated until
the user holds ``size`` memories (copy ``c`` is dated ``c`` × 400 days later, with its own
threads), embedded once with the product embedder (copies reuse the vectors) and written
through ``Store.insert_memories`` (2,000 per transaction, with ADD history). Queries are
the 1,536 LoCoMo questions, shuffled (seed 13). Timed per query, after 3 warm-ups:
``hybrid`` = ``hybrid_search`` with a precomputed query embedding; ``end-to-end`` =
``Memory.search(q, user, limit=10)`` with the query embedding (each query made unique, so
the embedder's query cache never answers). Also the mean CPU time of ``hybrid`` (process
time: less inflated than wall time when other jobs share the cores) and a cProfile of
``hybrid_search``.

    python bench/latency_locomo.py [--sizes 10000,100000] [--queries 200] [--out latency_locomo]
    python bench/latency.py --locomo-sizes 10000     # the same, from the latency script

Numbers measured while other jobs share the 2 cores are inflated: label them so.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (DEFAULT_LOCOMO, Timer, load_locomo, make_memory,  # noqa: E402
                          summarize_ms, write_json)
from bench.search_timing import profile_search, timed  # noqa: E402
from memory.search.hybrid import SearchWeights, hybrid_search  # noqa: E402
from memory.types import HistoryEvent, MemoryRecord, new_id  # noqa: E402

USER = "locomo-latency"


def corpus(data: Path) -> tuple[list[tuple[str, str, Any]], list[str]]:
    """``([(text, thread key, created_at)] for every turn, [question])`` of LoCoMo."""
    convs = load_locomo(data)
    turns = [(f"{t.speaker}: {t.text}".strip(), f"{c.sample_id}-s{t.session}", t.date)
             for c in convs for t in c.turns]
    questions = [q.question for c in convs for q in c.questions]
    return turns, questions


def grow(mem, turns, vecs: np.ndarray, have: int, size: int, batch: int = 2000) -> float:
    """Insert memories ``have .. size-1`` (turn ``i % len(turns)``, copy ``i //
    len(turns)``) for :data:`USER`; returns the seconds spent in the store."""
    spent, n = 0.0, len(turns)
    for start in range(have, size, batch):
        recs, events = [], []
        for i in range(start, min(size, start + batch)):
            text, thread, when = turns[i % n]
            copy = i // n
            when = when + timedelta(days=400 * copy)
            rec = MemoryRecord(id=new_id(), user_id=USER, text=text, type="fact",
                               thread_id=f"{thread}-c{copy}", importance=3, tags=[],
                               source="raw", metadata={}, created_at=when, updated_at=when,
                               embedding=vecs[i % n].tolist())
            recs.append(rec)
            events.append(HistoryEvent(rec.id, USER, "ADD", None, text, "user", at=when))
        with Timer() as t:
            mem.store.insert_memories(recs, events)
        spent += t.seconds
    return spent


def run(sizes: list[int], queries: int, data: Path = DEFAULT_LOCOMO,
        folder: str | None = None, log=print) -> dict[str, Any]:
    """Grow one user through ``sizes`` and time searches at each; returns
    ``{"points": [{"memories", "hybrid_no_embed", "search_end_to_end", ...}], "profile"}``
    (times in ms: p50/p95/mean from ``bench.common.summarize_ms``)."""
    turns, questions = corpus(data)
    random.Random(13).shuffle(questions)
    qs = questions[:queries]
    tmp = tempfile.TemporaryDirectory(prefix="latency-locomo-") if folder is None else None
    mem = make_memory(folder or tmp.name)
    out: dict[str, Any] = {"turns": len(turns), "queries": len(qs), "points": []}
    try:
        with Timer() as t_emb:
            vecs = mem.embedder.embed_documents([t for t, _, _ in turns])
        out["embed_turns_per_s"] = round(len(turns) / t_emb.seconds, 1)
        qv = mem.embedder.embed_documents(qs)
        w, have = SearchWeights(), 0
        for size in sizes:
            grow(mem, turns, vecs, have, size)
            have = size
            idx = list(range(len(qs)))
            unique = [f"{q} #{i}" for i, q in enumerate(qs)]  # bypass the query cache
            cpu0 = time.process_time()
            hybrid = timed(lambda i: hybrid_search(mem.store, USER, qs[i], qv[i], 10, weights=w),
                           idx)
            cpu = (time.process_time() - cpu0) / (len(idx) + 3)  # + the 3 warm-ups
            point = {"memories": size, "hybrid_no_embed": summarize_ms(hybrid),
                     "hybrid_cpu_ms_mean": round(1000 * cpu, 2),
                     "search_end_to_end": summarize_ms(timed(
                         lambda i: mem.search(unique[i], USER, limit=10), idx))}
            out["points"].append(point)
            log(f"{size:>7} LoCoMo memories: hybrid p50 {point['hybrid_no_embed']['p50_ms']} "
                f"p95 {point['hybrid_no_embed']['p95_ms']} ms (CPU mean "
                f"{point['hybrid_cpu_ms_mean']} ms); end-to-end p50 "
                f"{point['search_end_to_end']['p50_ms']} p95 "
                f"{point['search_end_to_end']['p95_ms']} ms")
        out["profile"] = {"memories": have, "top": profile_search(mem, USER, qs, qv)}
        return out
    finally:
        mem.close()
        if tmp is not None:
            tmp.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--data", type=Path, default=DEFAULT_LOCOMO)
    ap.add_argument("--profile", action="store_true", help="print the cProfile top")
    ap.add_argument("--out", default="latency_locomo")
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"LoCoMo data not found at {args.data}", file=sys.stderr)
        return 2
    res = run([int(s) for s in args.sizes.split(",") if s.strip()], args.queries, args.data)
    if args.profile:
        for row in res["profile"]["top"]:
            print(f"  {row['tottime_ms_per_search']:7.3f} ms own  "
                  f"{row['cumtime_ms_per_search']:7.3f} ms cum  {row['function']}")
    if args.out:
        print("wrote", write_json(args.out, res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
