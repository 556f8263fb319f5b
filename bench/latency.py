"""Latency and scaling of the memory engine (SQLite store, USE-multilingual embedder).

Measures, on a fresh store in a temporary folder:

* ``ingest``: raw memories/s through ``Memory.add(texts, infer=False)`` (batched,
  embedding included) and the embedding share of it;
* ``scale``: one user grown to 1k, 10k and 100k memories. Rows go through the store's
  real insert path (``Store.insert_memories``: base row, sqlite-vec row, FTS5 row in one
  transaction) with synthetic texts and **random unit vectors** (embedding 100k texts
  with USE would take minutes and measures the embedder, not the store). At each size:
  ``hybrid_search`` with a precomputed query embedding (vector KNN + BM25 + fusion +
  re-score: the search cost without the embedding), its parts (``vector_search``,
  ``text_search``), the query embedding alone, and end-to-end ``Memory.search``;
* ``multi-user``: 100 users × 1k memories in one store, searches of random users;
* ``chat``: the memory work of a chat turn (``Memory.chat`` + reply iteration +
  ``turn.changes()``) with an in-process LLM stub that answers instantly, so the time is
  all non-LLM work (embedding, search, writes); LLM calls and estimated prompt tokens per
  turn on the walk-through conversation, split into reply vs memory work;
* ``profile``: a cProfile summary of ``hybrid_search`` at the largest size.

Usage::

    python bench/latency.py                      # full run (~5-10 min), bench/results/latency.json
    python bench/latency.py --sizes 1000 --users 5 --queries 20 --out ''   # quick check

The pieces live in :mod:`bench.synthetic` (texts, vectors, inserts),
:mod:`bench.search_timing` (search parts, cProfile) and :mod:`bench.latency_chat`
(instant LLM, walk-through); this module runs them and prints the tables.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DEFAULT_LOCOMO, Timer, make_memory, print_table, write_json  # noqa: E402
from bench.latency_chat import measure_chat  # noqa: E402
from bench.search_timing import measure_search, profile_search  # noqa: E402
from bench.synthetic import insert_synthetic, synthetic_queries, synthetic_texts  # noqa: E402


# ---- the run ------------------------------------------------------------------------
def run(sizes: list[int], users: int, per_user: int, queries: int, chat_repeats: int,
        ingest_n: int, folder: Path, log=print) -> dict[str, Any]:
    """Run every section; return the results dict (see the module docstring)."""
    out: dict[str, Any] = {"sizes": sizes, "users": users, "per_user": per_user,
                           "queries_per_point": queries}
    mem = make_memory(folder / "scale")
    mem.embedder.embed_query("warm up")  # load the model before timing
    dim = mem.embedder.dim
    try:
        # ingest throughput through the public API (embedding included)
        texts = synthetic_texts(ingest_n, seed=7)
        mem.add(texts[:50], "ingest-warmup", infer=False)
        with Timer() as t_add:
            mem.add(texts, "ingest", infer=False)
        with Timer() as t_emb:
            mem.embedder.embed_documents(texts)
        out["ingest"] = {"memories": ingest_n, "seconds": round(t_add.seconds, 2),
                         "per_s": round(ingest_n / t_add.seconds, 1),
                         "embedding_share": round(t_emb.seconds / t_add.seconds, 3)}
        log(f"ingest: {out['ingest']}")

        # one user grown to each size
        out["scale"] = []
        have, uid = 0, "scale-user"
        for size in sizes:
            spent = insert_synthetic(mem.store, uid, size - have, dim, seed=size)
            store_rate = (size - have) / spent
            have = size
            qs = synthetic_queries(queries, seed=size)
            qv = mem.embedder.embed_documents(qs)
            m = measure_search(mem, lambda i: uid, qs, qv)
            out["scale"].append({"memories": size, "store_insert_per_s": round(store_rate, 1),
                                 **m})
            log(f"{size:>7} memories: hybrid p95 {m['hybrid_no_embed']['p95_ms']} ms, "
                f"end-to-end p95 {m['search_end_to_end']['p95_ms']} ms")
        qs = synthetic_queries(queries, seed=99)
        out["profile"] = {"memories": have,
                          "top": profile_search(mem, uid, qs, mem.embedder.embed_documents(qs))}
    finally:
        mem.close()

    # many users in one store
    if users:
        mem = make_memory(folder / "multi")
        try:
            uids = [f"user-{i:03d}" for i in range(users)]
            spent = sum(insert_synthetic(mem.store, u, per_user, dim, seed=1000 + i)
                        for i, u in enumerate(uids))
            rng = random.Random(5)
            pick = [rng.choice(uids) for _ in range(queries)]
            qs = synthetic_queries(queries, seed=5)
            m = measure_search(mem, lambda i: pick[i], qs, mem.embedder.embed_documents(qs))
            out["multi_user"] = {"users": users, "per_user": per_user,
                                 "store_insert_per_s": round(users * per_user / spent, 1), **m}
            log(f"{users} users x {per_user}: hybrid p95 {m['hybrid_no_embed']['p95_ms']} ms")
        finally:
            mem.close()

    if chat_repeats:
        out["chat"] = measure_chat(folder, chat_repeats, prefill=1000)
        log(f"chat: {out['chat']['fresh_user']}")
    return out


def tables(res: dict[str, Any]) -> None:
    """Print the result tables."""
    rows = []
    for point in res.get("scale", []):
        rows.append({"memories": point["memories"], "users": 1, **_cols(point)})
    if "multi_user" in res:
        mu = res["multi_user"]
        rows.append({"memories": mu["per_user"], "users": mu["users"], **_cols(mu)})
    print_table(rows, "Search latency, ms (hybrid = vector + BM25 + fusion, precomputed query embedding)")
    if "ingest" in res:
        print(f"ingest (Memory.add, infer=False, batched): {res['ingest']['per_s']} memories/s, "
              f"embedding {100 * res['ingest']['embedding_share']:.0f}% of it")
    if "profile" in res:
        print_table(res["profile"]["top"][:8], f"cProfile of hybrid_search at {res['profile']['memories']:,} memories")
    if "chat" in res:
        c = res["chat"]
        print_table([{"case": k, **{x: v for x, v in c[k].items() if x != "max_ms"}}
                     for k in c if k == "fresh_user" or k.startswith("user_with")],
                    "Memory work per chat turn (instant LLM), ms")
        print_table(c["walkthrough"], "Walk-through: LLM calls per turn")
        print(f"extra (memory) LLM calls per turn: {c['extra_llm_calls_per_turn']}; "
              f"prompt tokens per turn: memory {c['memory_prompt_tokens_per_turn']}, "
              f"reply {c['reply_prompt_tokens_per_turn']}")


def _cols(m: dict[str, Any]) -> dict[str, Any]:
    return {"hybrid p50": m["hybrid_no_embed"]["p50_ms"], "hybrid p95": m["hybrid_no_embed"]["p95_ms"],
            "vector p95": m["vector_search"]["p95_ms"], "text p95": m["text_search"]["p95_ms"],
            "embed p95": m["embed_query"]["p95_ms"],
            "end-to-end p50": m["search_end_to_end"]["p50_ms"],
            "end-to-end p95": m["search_end_to_end"]["p95_ms"]}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="memories of one user (default: %(default)s)")
    ap.add_argument("--users", type=int, default=100, help="users in the multi-user run (0 = skip)")
    ap.add_argument("--per-user", type=int, default=1000, help="memories per user in the multi-user run")
    ap.add_argument("--queries", type=int, default=200, help="timed searches per point")
    ap.add_argument("--chat-repeats", type=int, default=10, help="walk-through repetitions (0 = skip)")
    ap.add_argument("--ingest", type=int, default=2000, help="memories for the ingest throughput run")
    ap.add_argument("--locomo-sizes", default="10000",
                    help="realistic corpus: LoCoMo turns of one user (bench/latency_locomo.py; '' = skip)")
    ap.add_argument("--out", default="latency", help="results file name in bench/results/ ('' = none)")
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    with tempfile.TemporaryDirectory(prefix="latency-bench-") as tmp, Timer() as total:
        res = run(sizes, args.users, args.per_user, args.queries, args.chat_repeats,
                  args.ingest, Path(tmp))
        locomo_sizes = [int(s) for s in args.locomo_sizes.split(",") if s.strip()]
        if locomo_sizes and DEFAULT_LOCOMO.exists():
            from bench.latency_locomo import run as run_locomo
            res["locomo"] = run_locomo(locomo_sizes, args.queries, folder=str(Path(tmp) / "locomo"))
    res["total_seconds"] = round(total.seconds, 1)
    tables(res)
    print(f"total {res['total_seconds']} s")
    if args.out:
        print("wrote", write_json(args.out, res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
