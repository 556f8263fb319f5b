"""Side by side with Mem0 OSS (``mem0ai`` 2.x): the same LoCoMo recall and the same search
latency runs, in one script run, reported as ratios (Mem0 ÷ ours).

Mem0 runs in a separate virtualenv (``--system-site-packages``, so it sees the same
numpy/USE packages) because it pins packages the product does not need; this script
starts its half as a subprocess of the same run (``--worker mem0``) and reads back JSON.
Setup, once::

    python -m venv --system-site-packages ~/.cache/memory-chat/mem0-venv
    ~/.cache/memory-chat/mem0-venv/bin/pip install mem0ai==2.2.1

Mem0's configuration: its default local vector store (Qdrant, embedded local mode, in a
temporary folder), ``infer=False`` (messages stored verbatim, no LLM; the LLM entry points
to a dead 127.0.0.1 port and is never called), telemetry off (``MEM0_TELEMETRY=False``).
Embedder: mem0 has no "custom embedder" provider, so its ``embedding_model`` attribute is
replaced by a small wrapper around *our* USE-multilingual embedder (``embed(text,
action)``), i.e. both sides embed the same texts with the same model. Offline, Mem0's
BM25 keyword search (needs ``fastembed``, which downloads its model from a hub) and its
entity boosts (need spaCy models) are unavailable, so Mem0 searches semantically only:
that is what ``pip install mem0ai`` gives on a machine without network. Searches use
``threshold=0`` (Mem0's default 0.1 drops low-similarity hits, which can only lower its
recall@k).

Usage::

    python bench/mem0_compare.py                     # ~15-25 min; bench/results/mem0_compare.json
    python bench/mem0_compare.py --conversations 2 --sizes 1000 --queries 20 --out ''
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (DEFAULT_LOCOMO, REPO, Timer, load_locomo, make_memory,  # noqa: E402
                          print_table, recall_at, summarize_ms, turn_context, turn_text,
                          write_json)
from bench.latency import (insert_synthetic, random_unit_vectors, synthetic_queries,  # noqa: E402
                           synthetic_texts, timed)

DEFAULT_VENV = Path.home() / ".cache" / "memory-chat" / "mem0-venv"
KS = (1, 5, 10)


# ---- shared workload ----------------------------------------------------------------
def locomo_workload(data: Path, conversations: int | None):
    """``[(user_id, [(text, dia_id, date, context)], [(question, category, evidence)])]``
    in the benchmark's default format ``context-meta`` (``bench.common.turn_text`` /
    ``turn_context``): ours stores ``text`` with ``metadata["context"]`` (embedded as
    ``text + " " + context``, context full-text indexed at a lower weight); Mem0, which
    has no such field, stores ``text + " " + context`` — the same string our embedder
    sees, so the dense side is identical."""
    out = []
    for conv in load_locomo(data)[:conversations]:
        turns, prev = [], None
        for t in conv.turns:
            turns.append((turn_text(t, "context-meta", prev), t.dia_id, t.date,
                          turn_context(t, prev)))
            prev = t
        out.append((f"locomo-{conv.sample_id}", turns,
                    [(q.question, q.category, q.evidence) for q in conv.questions]))
    return out


def recall_summary(rows: list[tuple[int, list[str], list[str]]]) -> dict[str, Any]:
    """rows of (category, evidence, ranked) → mean recall@k overall and per category."""
    out: dict[str, Any] = {}
    for key in ("all", "1", "2", "3", "4"):
        sel = [r for r in rows if key == "all" or str(r[0]) == key]
        out[key] = {"n": len(sel), **{f"r@{k}": round(sum(recall_at(r[2], r[1], k) for r in sel)
                                                     / len(sel), 4) if sel else None for k in KS}}
    return out


# ---- our side -----------------------------------------------------------------------
def run_ours(data: Path, conversations: int | None, sizes: list[int], queries: int,
             folder: Path) -> dict[str, Any]:
    """LoCoMo recall + search latency of the product (``Memory`` API, default config)."""
    mem = make_memory(folder / "ours-locomo")
    try:
        mem.embedder.embed_query("warm up")
        rows, n_turns = [], 0
        with Timer() as t_ingest:
            for uid, turns, _ in locomo_workload(data, conversations):
                for text, dia, date, ctx in turns:
                    meta = {"dia_id": dia, **({"context": ctx} if ctx else {})}
                    mem.add(text, uid, infer=False, metadata=meta, created_at=date)
                n_turns += len(turns)
        with Timer() as t_search:
            for uid, _, qs in locomo_workload(data, conversations):
                for q, cat, ev in qs:
                    res = mem.search(q, uid, limit=max(KS))
                    rows.append((cat, ev, [m.metadata.get("dia_id") for m in res.memories]))
        out: dict[str, Any] = {"locomo": {"recall": recall_summary(rows),
                                          "ingest_per_s": round(n_turns / t_ingest.seconds, 1),
                                          "search_ms_mean": round(1000 * t_search.seconds / len(rows), 2)}}
    finally:
        mem.close()
    mem = make_memory(folder / "ours-scale")
    try:
        out["latency"] = []
        have, uid = 0, "scale-user"
        for size in sizes:
            insert_synthetic(mem.store, uid, size - have, mem.embedder.dim, seed=size)
            have = size
            qs = synthetic_queries(queries, seed=size)
            qv = mem.embedder.embed_documents(qs)
            from memory.retrieval import hybrid_search
            no_embed = timed(lambda i: hybrid_search(mem.store, uid, qs[i], qv[i], 10), list(range(len(qs))))
            e2e = timed(lambda i: mem.search(qs[i] + " ?", uid, limit=10), list(range(len(qs))))
            out["latency"].append({"memories": size, "search_no_embed": summarize_ms(no_embed),
                                   "search_end_to_end": summarize_ms(e2e)})
    finally:
        mem.close()
    return out


# ---- Mem0's side (runs inside the mem0 virtualenv) ------------------------------------
class _USEForMem0:
    """Mem0 embedding interface (``embed(text, memory_action)`` → list[float]) backed by
    our embedder; ``lookup`` maps query text → precomputed vector (to time search
    without the embedding)."""

    def __init__(self, embedder, config):
        self.e = embedder
        self.config = config
        self.lookup: dict[str, Any] = {}

    def embed(self, text, memory_action=None):
        """Return the embedding of ``text`` (a query vector for ``search``)."""
        if text in self.lookup:
            return self.lookup[text]
        if memory_action == "search":
            return self.e.embed_query(text).tolist()
        return self.e.embed_documents([text])[0].tolist()


def _mem0(folder: Path, name: str):
    from mem0 import Memory as Mem0Memory

    from memory.embedder import make_embedder

    cfg = {"vector_store": {"provider": "qdrant",
                            "config": {"path": str(folder / f"{name}-qdrant"),
                                       "embedding_model_dims": 512, "collection_name": name}},
           "llm": {"provider": "openai", "config": {"api_key": "unused",
                                                    "openai_base_url": "http://127.0.0.1:9/v1"}},
           "embedder": {"provider": "openai", "config": {"api_key": "unused", "embedding_dims": 512}},
           "history_db_path": str(folder / f"{name}-history.db")}
    m = Mem0Memory.from_config(cfg)
    m.embedding_model = _USEForMem0(make_embedder(None), m.embedding_model.config)
    return m


def run_mem0(data: Path, conversations: int | None, sizes: list[int], queries: int,
             folder: Path) -> dict[str, Any]:
    """The same LoCoMo recall and latency runs on Mem0 (``infer=False``, semantic search)."""
    import mem0

    m = _mem0(folder, "locomo")
    m.embedding_model.e.embed_query("warm up")
    rows, n_turns = [], 0
    with Timer() as t_ingest:
        for uid, turns, _ in locomo_workload(data, conversations):
            for text, dia, _date, ctx in turns:
                content = f"{text} {ctx}" if ctx else text
                m.add([{"role": "user", "content": content}], user_id=uid, infer=False,
                      metadata={"dia_id": dia})
            n_turns += len(turns)
    with Timer() as t_search:
        for uid, _, qs in locomo_workload(data, conversations):
            for q, cat, ev in qs:
                res = m.search(q, top_k=max(KS), filters={"user_id": uid}, threshold=0.0)
                rows.append((cat, ev, [(r.get("metadata") or {}).get("dia_id")
                                       for r in res["results"]]))
    out: dict[str, Any] = {"version": mem0.__version__ if hasattr(mem0, "__version__") else "",
                           "locomo": {"recall": recall_summary(rows),
                                      "ingest_per_s": round(n_turns / t_ingest.seconds, 1),
                                      "search_ms_mean": round(1000 * t_search.seconds / len(rows), 2)}}
    m.close()

    m = _mem0(folder, "scale")
    out["latency"] = []
    have, uid = 0, "scale-user"
    import hashlib
    import uuid
    from datetime import datetime, timezone
    for size in sizes:
        n = size - have
        texts = synthetic_texts(n, seed=size)
        vecs = random_unit_vectors(n, 512, seed=size)
        now = datetime.now(timezone.utc).isoformat()
        t0 = time.perf_counter()
        for start in range(0, n, 1000):
            chunk = range(start, min(n, start + 1000))
            m.vector_store.insert(
                vectors=[vecs[i].tolist() for i in chunk],
                payloads=[{"data": texts[i], "hash": hashlib.md5(texts[i].encode()).hexdigest(),
                           "created_at": now, "user_id": uid} for i in chunk],
                ids=[str(uuid.uuid4()) for _ in chunk])
        insert_s = time.perf_counter() - t0
        have = size
        qs = synthetic_queries(queries, seed=size)
        qv = m.embedding_model.e.embed_documents(qs)
        m.embedding_model.lookup = {q: v.tolist() for q, v in zip(qs, qv)}
        no_embed = timed(lambda i: m.search(qs[i], top_k=10, filters={"user_id": uid}, threshold=0.0),
                         list(range(len(qs))))
        m.embedding_model.lookup = {}
        e2e = timed(lambda i: m.search(qs[i] + " ?", top_k=10, filters={"user_id": uid}, threshold=0.0),
                    list(range(len(qs))))
        out["latency"].append({"memories": size, "store_insert_per_s": round(n / insert_s, 1),
                               "search_no_embed": summarize_ms(no_embed),
                               "search_end_to_end": summarize_ms(e2e)})
        print(f"mem0 {size}: search p95 {out['latency'][-1]['search_no_embed']['p95_ms']} ms",
              file=sys.stderr, flush=True)
    m.close()
    return out


# ---- driver -------------------------------------------------------------------------
def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """Recall rows and latency rows with ratio columns (Mem0 ÷ ours)."""
    rec = []
    for key, label in (("all", "all"), ("1", "1 multi-hop"), ("2", "2 temporal"),
                       ("3", "3 open-domain"), ("4", "4 single-hop")):
        o, t = ours["locomo"]["recall"][key], theirs["locomo"]["recall"][key]
        row: dict[str, Any] = {"category": label, "n": o["n"]}
        for k in KS:
            row[f"ours R@{k}"] = o[f"r@{k}"]
            row[f"mem0 R@{k}"] = t[f"r@{k}"]
        row["R@10 ratio"] = _ratio(t["r@10"], o["r@10"])
        rec.append(row)
    lat = []
    for o, t in zip(ours["latency"], theirs["latency"]):
        lat.append({"memories": o["memories"],
                    "ours p95 (no embed)": o["search_no_embed"]["p95_ms"],
                    "mem0 p95 (no embed)": t["search_no_embed"]["p95_ms"],
                    "ratio": _ratio(t["search_no_embed"]["p95_ms"], o["search_no_embed"]["p95_ms"]),
                    "ours p95 (end-to-end)": o["search_end_to_end"]["p95_ms"],
                    "mem0 p95 (end-to-end)": t["search_end_to_end"]["p95_ms"],
                    "ratio e2e": _ratio(t["search_end_to_end"]["p95_ms"], o["search_end_to_end"]["p95_ms"])})
    lat.append({"memories": "LoCoMo ingest/s", "ours p95 (no embed)": ours["locomo"]["ingest_per_s"],
                "mem0 p95 (no embed)": theirs["locomo"]["ingest_per_s"],
                "ratio": _ratio(theirs["locomo"]["ingest_per_s"], ours["locomo"]["ingest_per_s"]),
                "ours p95 (end-to-end)": None, "mem0 p95 (end-to-end)": None, "ratio e2e": None})
    return rec, lat


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_LOCOMO, help="path of locomo10.json")
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="virtualenv with mem0ai")
    ap.add_argument("--conversations", type=int, default=None, help="first N conversations only")
    ap.add_argument("--sizes", default="1000,10000", help="memories of one user for latency")
    ap.add_argument("--queries", type=int, default=100, help="timed searches per size")
    ap.add_argument("--out", default="mem0_compare", help="results file name ('' = none)")
    ap.add_argument("--worker", choices=["mem0"], help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    if not args.data.exists():
        print(f"LoCoMo data not found at {args.data} (use --data)", file=sys.stderr)
        return 2
    if args.worker:
        with tempfile.TemporaryDirectory(prefix="mem0-bench-") as tmp:
            res = run_mem0(args.data, args.conversations, sizes, args.queries, Path(tmp))
        args.worker_out.write_text(json.dumps(res))
        return 0
    python = args.venv / "bin" / "python"
    if not python.exists():
        print(f"no mem0 virtualenv at {args.venv}; create it (see the module docstring)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mem0-compare-") as tmp, Timer() as total:
        out_file = Path(tmp) / "mem0.json"
        env = {**os.environ, "MEM0_TELEMETRY": "False", "MEM0_DIR": str(Path(tmp) / "mem0-home"),
               "HF_HUB_OFFLINE": "1"}
        cmd = [str(python), str(Path(__file__).resolve()), "--worker", "mem0", "--worker-out",
               str(out_file), "--data", str(args.data), "--sizes", args.sizes,
               "--queries", str(args.queries)]
        if args.conversations:
            cmd += ["--conversations", str(args.conversations)]
        with Timer() as t_mem0:
            proc = subprocess.run(cmd, cwd=REPO, env=env)
        if proc.returncode != 0:
            print("the mem0 worker failed", file=sys.stderr)
            return 1
        theirs = json.loads(out_file.read_text())
        with Timer() as t_ours:
            ours = run_ours(args.data, args.conversations, sizes, args.queries, Path(tmp))
    rec, lat = compare(ours, theirs)
    print_table(rec, "LoCoMo recall@k: ours (hybrid, default) vs Mem0 (infer=False, same USE embedder)")
    print_table(lat, "Search latency p95, ms (one user), and LoCoMo ingest rate; ratio = Mem0 ÷ ours")
    res = {"ours": ours, "mem0": theirs, "recall_table": rec, "latency_table": lat,
           "seconds": {"ours": round(t_ours.seconds, 1), "mem0": round(t_mem0.seconds, 1),
                       "total": round(total.seconds, 1)},
           "settings": {"conversations": args.conversations, "sizes": sizes, "queries": args.queries}}
    print(f"total {res['seconds']['total']} s (mem0 {res['seconds']['mem0']} s, ours {res['seconds']['ours']} s)")
    if args.out:
        print("wrote", write_json(args.out, res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
