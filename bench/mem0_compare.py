"""Side by side with Mem0 OSS (``mem0ai`` 2.x): the same LoCoMo recall and the same search
latency runs, in one script run, for ours and for Mem0 dense-only and Mem0 with its own
BM25 hybrid.

Mem0 runs in a separate virtualenv (``--system-site-packages``, so it sees the same
numpy/USE packages) because it pins packages the product does not need; this script
starts one subprocess per Mem0 mode (``--worker dense|hybrid``, ``bench/mem0_side.py``)
and reads back JSON. Setup, once::

    python -m venv --system-site-packages ~/.cache/memory-chat/mem0-venv
    ~/.cache/memory-chat/mem0-venv/bin/pip install mem0ai==2.2.1 fastembed==0.9.1 bm25s==0.3.16

What each row runs:

* **ours**: the product (``Memory.add(..., infer=False)``, ``Memory.search(q, user,
  limit=10)``, default config and weights), turns stored exactly as ``bench/locomo.py
  --format F`` stores them (``bench.locomo.ingest``).
* **Mem0 dense-only**: Mem0 2.2.1, default local vector store (Qdrant embedded local
  mode, temporary folder), ``infer=False`` (each turn one ``add``, stored verbatim; the
  LLM entry points at a dead 127.0.0.1 port and is never called), telemetry off, with
  fastembed hidden so Mem0 takes its own "fastembed not installed" path: cosine only,
  which is what a bare ``pip install mem0ai`` gives.
* **Mem0 hybrid**: the same plus Mem0's own BM25 side: fastembed ``Qdrant/bm25`` sparse
  vectors in the Qdrant collection, fused by Mem0's additive scoring; the BM25 model's
  files are written offline (``bench/mem0_side.py`` says how and what Mem0's fusion
  does). No spaCy model (``en_core_web_sm`` is not on PyPI): no lemmas, no entity boost.

Embedder of both Mem0 rows: Mem0's default is OpenAI ``text-embedding-3-small``, a
network API (unavailable here), and none of its packaged providers ships weights, so its
``embedding_model`` is replaced by a wrapper around *our* USE-multilingual embedder: all
rows embed the same texts with the same model. Mem0 stores the same text as ours
(``plain``: ``"Speaker: text"``; ``context-meta``: the dated turn + " " + the previous
turn, the string our embedder embeds). Searches use ``threshold=0`` (Mem0's default 0.1
gates the cosine before fusion and can only lower its recall@k).

Usage::

    python bench/mem0_compare.py           # everything: both formats and halves, latency at 1k/10k
    nice -n 19 python bench/mem0_compare.py --formats plain --half report --sizes '' --parallel
    python bench/mem0_compare.py --conversations 1 --questions 20 --sizes 500 --queries 10 --out ''

The second line is recall only (``--sizes ''``), with the Mem0 workers and ours running at
the same time (``--parallel``: fine for recall, wrong for timings). Local Qdrant filters
payloads in Python, so Mem0's searches are the slow part (hybrid: two queries each).
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
                          print_table, recall_at, summarize_ms, write_json)
from bench.mem0_side import HALVES, SEARCHES, pick  # noqa: E402
from bench.search_timing import timed  # noqa: E402
from bench.synthetic import insert_synthetic, synthetic_queries  # noqa: E402

DEFAULT_VENV = Path.home() / ".cache" / "memory-chat" / "mem0-venv"
KS = (1, 5, 10)
FORMATS = ("plain", "context-meta")
LABELS = {"ours": "ours (product default hybrid)",
          "dense": "Mem0 dense-only (our USE)",
          "hybrid": "Mem0 hybrid (its BM25 + our USE dense)"}


# ---- recall summaries ----------------------------------------------------------------
def recall_summary(rows: list[tuple]) -> dict[str, Any]:
    """rows of ``(conversation index, category, evidence, ranked)`` → mean recall@k
    overall and per category: ``{"all"|"1".."4": {"n", "r@1", "r@5", "r@10"}}``
    (None where a group is empty)."""
    out: dict[str, Any] = {}
    for key in ("all", "1", "2", "3", "4"):
        sel = [r for r in rows if key == "all" or str(r[1]) == key]
        out[key] = {"n": len(sel), **{f"r@{k}": round(sum(recall_at(r[3], r[2], k) for r in sel)
                                                     / len(sel), 4) if sel else None for k in KS}}
    return out


def recall_report(rows: list[tuple]) -> dict[str, Any]:
    """``{"all": summary, "tune": summary, "report": summary}`` of ``recall_summary``,
    the halves split by conversation index (:data:`HALVES`)."""
    return {"all": recall_summary(rows),
            **{h: recall_summary([r for r in rows if r[0] in idx]) for h, idx in HALVES.items()}}


# ---- our side -----------------------------------------------------------------------
def run_ours(data: Path, conversations: int | None, formats: list[str], sizes: list[int],
             queries: int, folder: Path, max_questions: int | None = None,
             half: str = "both") -> dict[str, Any]:
    """LoCoMo recall per format (``bench.locomo.ingest``/``evaluate``, default weights)
    and search latency of the product. ``locomo[fmt]["rows"]`` as in
    :func:`recall_summary`."""
    from bench.locomo import configs, evaluate, ingest
    from memory.search.hybrid import hybrid_search

    convs = pick(load_locomo(data), half, conversations)
    out: dict[str, Any] = {"locomo": {}}
    for fmt in formats:
        mem = make_memory(folder / f"ours-{fmt}")
        try:
            mem.embedder.embed_query("warm up")
            with Timer() as t_ingest:
                ids = {i: ingest(mem, conv, fmt) for i, conv in convs}
            with Timer() as t_search:
                rows = [(i, r["category"], r["evidence"], r["ranked"]) for i, conv in convs
                        for r in evaluate(mem, conv, configs()["default"], max_questions, ids=ids[i])]
            out["locomo"][fmt] = {
                "rows": rows,
                "ingest_per_s": round(sum(len(c.turns) for _, c in convs) / t_ingest.seconds, 1),
                "search_ms_mean": round(1000 * t_search.seconds / max(1, len(rows)), 2)}
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
            no_embed = timed(lambda i: hybrid_search(mem.store, uid, qs[i], qv[i], 10), list(range(len(qs))))
            e2e = timed(lambda i: mem.search(qs[i] + " ?", uid, limit=10), list(range(len(qs))))
            out["latency"].append({"memories": size, "search_no_embed": summarize_ms(no_embed),
                                   "search_end_to_end": summarize_ms(e2e)})
    finally:
        mem.close()
    return out


# ---- tables -------------------------------------------------------------------------
def recall_rows(systems: dict[str, dict[str, Any]], fmt: str) -> list[dict[str, Any]]:
    """One table row per system (``systems``: name → results with
    ``locomo[fmt]["recall"]`` from :func:`recall_report`): R@1/5/10 on all questions,
    R@5/R@10 on each half."""
    rows = []
    for name, res in systems.items():
        rec = res["locomo"][fmt]["recall"]
        a, t, r = rec["all"]["all"], rec["tune"]["all"], rec["report"]["all"]
        rows.append({"system": LABELS.get(name, name), "n": a["n"],
                     **{f"R@{k}": a[f"r@{k}"] for k in KS},
                     "tune R@5": t["r@5"], "tune R@10": t["r@10"],
                     "report R@5": r["r@5"], "report R@10": r["r@10"]})
    return rows


def category_rows(systems: dict[str, dict[str, Any]], fmt: str) -> list[dict[str, Any]]:
    """R@10 per LoCoMo category (all conversations), one column per system."""
    rows = []
    for key, label in (("1", "1 multi-hop"), ("2", "2 temporal"), ("3", "3 open-domain"),
                       ("4", "4 single-hop")):
        row: dict[str, Any] = {"category": label}
        for name, res in systems.items():
            s = res["locomo"][fmt]["recall"]["all"][key]
            row["n"] = s["n"]
            row[f"{LABELS.get(name, name)} R@10"] = s["r@10"]
        rows.append(row)
    return rows


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def latency_rows(systems: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Search p95 (ms) per size without and with the query embedding, one column per
    system, ratios against ``ours`` (system ÷ ours)."""
    ours = systems["ours"]
    rows = []
    for i, o in enumerate(ours["latency"]):
        row: dict[str, Any] = {"memories": o["memories"]}
        for part, tag in (("search_no_embed", "no embed"), ("search_end_to_end", "e2e")):
            for name, res in systems.items():
                v = res["latency"][i][part]["p95_ms"]
                row[f"{name} p95 {tag}"] = v
                if name != "ours":
                    row[f"{name}÷ours {tag}"] = _ratio(v, o[part]["p95_ms"])
        rows.append(row)
    return rows


def ingest_rows(systems: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """LoCoMo ingest per format (one add per turn for Mem0, ``infer=False``): ours in
    turns/s with the embedding; Mem0 in adds/s with the vectors precomputed in batches,
    and the seconds that batch embedding took."""
    rows = []
    for fmt in systems["ours"]["locomo"]:
        row: dict[str, Any] = {"format": fmt, "ours turns/s": systems["ours"]["locomo"][fmt]["ingest_per_s"]}
        for name, res in systems.items():
            if name != "ours":
                row[f"{name} adds/s"] = res["locomo"][fmt]["add_per_s"]
                row[f"{name} embed s"] = res["locomo"][fmt]["embed_seconds"]
        rows.append(row)
    return rows


# ---- driver -------------------------------------------------------------------------
def _summarise(res: dict[str, Any]) -> None:
    for part in res["locomo"].values():
        part["recall"] = recall_report([tuple(r) for r in part.pop("rows")])


def _wait(proc: tuple, seconds: dict[str, float]) -> bool:
    """Wait for one Mem0 worker ``(search, out_file, start, Popen)``; record its wall
    seconds under ``"mem0 <search>"`` (the first wait only: in ``--parallel`` runs the
    wait ends after ours, so the figure is an upper bound). False if it failed."""
    search, _, start, popen = proc
    if popen.wait() != 0:
        print(f"the Mem0 {search} worker failed", file=sys.stderr)
        return False
    seconds.setdefault(f"mem0 {search}", round(time.perf_counter() - start, 1))
    return True


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_LOCOMO, help="path of locomo10.json")
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="virtualenv with mem0ai")
    ap.add_argument("--mem0-search", default=",".join(SEARCHES),
                    help="Mem0 modes to run: dense, hybrid or both (comma-separated)")
    ap.add_argument("--formats", default=",".join(FORMATS), help="LoCoMo turn formats to run")
    ap.add_argument("--half", default="both", choices=["both", *HALVES],
                    help="LoCoMo conversations 0-4 (tune), 5-9 (report) or both")
    ap.add_argument("--conversations", type=int, default=None, help="first N conversations only")
    ap.add_argument("--questions", type=int, default=None, help="first N questions per conversation")
    ap.add_argument("--sizes", default="1000,10000", help="memories of one user for latency")
    ap.add_argument("--queries", type=int, default=100, help="timed searches per size")
    ap.add_argument("--parallel", action="store_true",
                    help="run the Mem0 workers and ours at the same time (recall only: "
                         "timings then share the CPU)")
    ap.add_argument("--out", default="mem0_compare", help="results file name ('' = none)")
    ap.add_argument("--worker", choices=SEARCHES, help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    searches = [s.strip() for s in args.mem0_search.split(",") if s.strip()]
    bad = [f for f in formats if f not in FORMATS] + [s for s in searches if s not in SEARCHES]
    if bad or not formats:
        print(f"unknown format or Mem0 mode: {', '.join(bad) or '(none given)'}", file=sys.stderr)
        return 2
    if not args.data.exists():
        print(f"LoCoMo data not found at {args.data} (use --data)", file=sys.stderr)
        return 2
    if args.worker:
        from bench import mem0_side
        with tempfile.TemporaryDirectory(prefix="mem0-bench-") as tmp:
            res = mem0_side.run(args.worker, args.data, args.conversations, formats, sizes,
                                args.queries, Path(tmp), args.questions, args.half)
        args.worker_out.write_text(json.dumps(res))
        return 0
    python = args.venv / "bin" / "python"
    if not python.exists():
        print(f"no mem0 virtualenv at {args.venv}; create it (see the module docstring)", file=sys.stderr)
        return 2
    systems: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mem0-compare-") as tmp, Timer() as total:
        procs = []
        for search in searches:
            out_file = Path(tmp) / f"mem0-{search}.json"
            env = {**os.environ, "MEM0_TELEMETRY": "False", "HF_HUB_OFFLINE": "1",
                   "MEM0_DIR": str(Path(tmp) / f"mem0-home-{search}")}
            cmd = [str(python), str(Path(__file__).resolve()), "--worker", search, "--worker-out",
                   str(out_file), "--data", str(args.data), "--sizes", args.sizes,
                   "--queries", str(args.queries), "--formats", ",".join(formats),
                   "--half", args.half]
            cmd += ["--conversations", str(args.conversations)] if args.conversations else []
            cmd += ["--questions", str(args.questions)] if args.questions else []
            procs.append((search, out_file, time.perf_counter(),
                          subprocess.Popen(cmd, cwd=REPO, env=env)))
            if not args.parallel and not _wait(procs[-1], seconds):
                return 1
        with Timer() as t_ours:
            ours = run_ours(args.data, args.conversations, formats, sizes, args.queries,
                            Path(tmp), args.questions, args.half)
        seconds["ours"] = round(t_ours.seconds, 1)
        for proc in procs:
            if not _wait(proc, seconds):
                for other in procs:
                    other[3].kill()
                    other[3].wait()
                return 1
            systems[proc[0]] = json.loads(proc[1].read_text())
    systems = {"ours": ours, **systems}
    for res in systems.values():
        _summarise(res)
    tables: dict[str, Any] = {}
    for fmt in formats:
        tables[f"recall {fmt}"] = recall_rows(systems, fmt)
        tables[f"categories {fmt}"] = category_rows(systems, fmt)
        print_table(tables[f"recall {fmt}"], f"LoCoMo recall@k, format {fmt} (same texts, same USE embedder)")
        print_table(tables[f"categories {fmt}"], f"LoCoMo R@10 per category, format {fmt}")
    tables["latency"] = latency_rows(systems)
    tables["ingest"] = ingest_rows(systems)
    if tables["latency"]:
        print_table(tables["latency"], "Search latency p95, ms (one user, synthetic memories)")
    print_table(tables["ingest"], "LoCoMo ingest (Mem0: vectors precomputed)")
    seconds["total"] = round(total.seconds, 1)
    res = {"rows": {name: LABELS[name] for name in systems}, "systems": systems, "tables": tables,
           "seconds": seconds,
           "settings": {"half": args.half, "conversations": args.conversations,
                        "questions": args.questions,
                        "formats": formats, "mem0_search": searches, "sizes": sizes,
                        "queries": args.queries, "venv": str(args.venv),
                        "parallel": args.parallel}}
    print("seconds:", seconds)
    if args.out:
        print("wrote", write_json(args.out, res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
