"""Search through the HTTP API vs the in-process call, at N memories (default 10k).

One user gets N synthetic memories through raw adds (``infer=False``: real embedding,
real SQLite insert path). Then, on the same store:

* ``in-process``: ``Engine.search`` (= ``Memory.search``) latency p50/p95 over Q queries,
  and requests/s with C concurrent threads;
* ``api``: ``POST /v1/memories/search`` to a real uvicorn server on 127.0.0.1 (in a
  thread of this process, request log to a temp file), same queries, with httpx: p50/p95
  from one client, and requests/s with C concurrent clients (threads, one httpx client
  each).

The queries are embedded per call in both paths (the same work the API does). No LLM is
used. Usage::

    python bench/api_latency.py                   # 10k memories, 200 queries, 8 clients
    python bench/api_latency.py --memories 1000 --queries 50 --out ''   # quick check
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import git_describe  # noqa: E402

WORDS = ("tea coffee football chess Shanghai Nantes piano garden cat dog running swimming "
         "doctor teacher python rust sister brother birthday vacation Tokyo Paris novel jazz "
         "sushi noodles bicycle marathon guitar painting camping hiking").split()


def _texts(n: int, rng: random.Random) -> list[str]:
    return [f"Memory {i}: likes {rng.choice(WORDS)} and {rng.choice(WORDS)} with "
            f"{rng.choice(WORDS)}" for i in range(n)]


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


def _timed(fn, queries: list[str]) -> list[float]:
    out = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _throughput(make_worker, queries: list[str], clients: int) -> float:
    """Requests/s with ``clients`` threads sharing ``queries`` round-robin."""
    per = [queries[i::clients] for i in range(clients)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda qs: make_worker()(qs), per))
    return round(len(queries) / (time.perf_counter() - t0), 1)


def run(n: int, n_queries: int, clients: int) -> dict:
    """Build the store, run both paths, return the result dict."""
    import httpx
    import uvicorn

    from memory import Memory, load_config
    from memory.api.app import create_app
    from memory.api.engine import Engine
    from memory.api.keys import open_keystore
    from memory.api.requestlog import RequestLog

    rng = random.Random(7)
    tmp = Path(tempfile.mkdtemp(prefix="api-bench-"))
    cfg = load_config(env_file=None, memory_data_dir=tmp, memory_store="sqlite",
                      openai_base_url="http://127.0.0.1:9/v1", openai_api_key="unused")
    engine = Engine(Memory(cfg))
    t0 = time.perf_counter()
    texts = _texts(n, rng)
    for start in range(0, n, 1000):
        engine.add("bench", texts[start:start + 1000], infer=False)
    ingest_s = time.perf_counter() - t0
    keys = open_keystore(tmp)
    keys.create_user("bench")
    key, _ = keys.create_key("bench")
    queries = [f"{rng.choice(WORDS)} {rng.choice(WORDS)}" for _ in range(n_queries)]
    engine.search("bench", "warm up", 10)

    inproc = _timed(lambda q: engine.search("bench", q, 10), queries)
    inproc_rps = _throughput(lambda: (lambda qs: [engine.search("bench", q, 10) for q in qs]),
                             queries, clients)

    app = create_app(engine, keys=keys, admin_key="", request_log=RequestLog(tmp / "requests.jsonl"))
    sock_cfg = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    server = uvicorn.Server(sock_cfg)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}

    def client_worker():
        def work(qs):
            with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
                for q in qs:
                    r = c.post("/v1/memories/search", json={"query": q, "limit": 10})
                    r.raise_for_status()
        return work

    with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
        c.post("/v1/memories/search", json={"query": "warm up"}).raise_for_status()
        api = _timed(lambda q: c.post("/v1/memories/search",
                                      json={"query": q, "limit": 10}).raise_for_status(), queries)
    api_rps = _throughput(client_worker, queries, clients)
    server.should_exit = True
    thread.join(timeout=30)
    engine.close()
    keys.close()
    return {
        "memories": n, "queries": n_queries, "clients": clients,
        "ingest_s": round(ingest_s, 1),
        "in_process": {"p50_ms": _pct(inproc, 0.5), "p95_ms": _pct(inproc, 0.95),
                       "mean_ms": round(statistics.mean(inproc), 2), "rps": inproc_rps},
        "api": {"p50_ms": _pct(api, 0.5), "p95_ms": _pct(api, 0.95),
                "mean_ms": round(statistics.mean(api), 2), "rps": api_rps},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--memories", type=int, default=10000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--out", default="bench/results/api_latency.json")
    args = p.parse_args(argv)
    res = run(args.memories, args.queries, args.clients)
    print(f"search at {res['memories']:,} memories ({res['queries']} queries, "
          f"{res['clients']} concurrent clients for req/s; ingest {res['ingest_s']} s)")
    print(f"{'path':<12}{'p50 ms':>9}{'p95 ms':>9}{'req/s':>9}")
    for name in ("in_process", "api"):
        r = res[name]
        print(f"{name:<12}{r['p50_ms']:>9}{r['p95_ms']:>9}{r['rps']:>9}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({**res, "git_describe": git_describe()},
                                             indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
