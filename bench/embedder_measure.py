"""What bench/embedder_table.py measures of one candidate, inside its worker process.

Speed (docs/s, query ms, wall and CPU), resident memory and install size, LoCoMo recall per
config and half with ``SearchWeights.vector`` re-chosen on the tune half, and the zh/en
cross-lingual set; :func:`worker` runs them all for one candidate.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import load_locomo, make_memory, percentile
from bench.embedder_candidates import CANDIDATES, build
from memory.embed.embedder import Embedder, EmbedderError

#: the ``bench.locomo.configs()`` measured on both halves: hybrid and dense only
CONFIGS = ("default", "vector")
#: ``SearchWeights.vector`` values tried on the LoCoMo tune half (the default is 0.15)
VECTOR_WEIGHTS = (0.15, 0.3, 0.5, 0.8)


# ---- measurements (worker side) -------------------------------------------------------
def vm_rss_mb() -> float:
    """Resident memory of this process now (VmRSS, MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def install_mb(dists: list[str], venv: str | None) -> dict[str, Any]:
    """Size of the files of ``dists`` (MB) and, for a venv, of all it installed itself."""
    from importlib import metadata
    size = sum((f.size or 0) for d in dists for f in (metadata.distribution(d).files or []))
    out: dict[str, Any] = {"dists_mb": round(size / 2**20, 1)}
    if venv:
        site = next(Path(venv, "lib").glob("python3*/site-packages"), None)
        if site:
            total = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
            out["venv_site_packages_mb"] = round(total / 2**20, 1)
    return out


def query_latency(emb: Embedder, questions: list[str]) -> dict[str, float]:
    """One uncached ``embed_query`` each (distinct texts): wall ms and CPU ms (process
    CPU time, which the other jobs of a shared machine do not inflate), p50/p95."""
    emb.embed_query("warm up the query path")
    ms, cpu = [], []
    for q in questions:
        t0, c0 = time.perf_counter(), time.process_time()
        emb.embed_query(q)
        ms.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 2),
            "p95_ms": round(percentile(ms, 95), 2),
            "cpu_p50_ms": round(percentile(cpu, 50), 2), "cpu_p95_ms": round(percentile(cpu, 95), 2)}


def doc_speed(emb: Embedder, data: dict, n: int, repeats: int) -> dict[str, Any]:
    """``embed_documents`` on ``n`` sentences (the zh/en memories and queries repeated, as
    ``bench/embedders.py``), warm: best of ``repeats`` in sentences per wall second and
    per CPU second of the process."""
    base = [m["text"] for m in data["memories"]] + [q["text"] for q in data["queries"]]
    texts = (base * (n // len(base) + 1))[:n]
    emb.embed_documents(base[:8])
    wall, cpu = [], []
    for _ in range(max(1, repeats)):
        t0, c0 = time.perf_counter(), time.process_time()
        emb.embed_documents(texts)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"sentences": n, "runs_s": [round(w, 3) for w in wall],
            "sentences_per_s": n / min(wall), "sentences_per_cpu_s": n / min(cpu)}


def run_xling(emb: Embedder, tuned_vector: float | None = None) -> dict[str, Any]:
    """zh/en set through Memory with ``emb``: ``{split: {kind: top-1}}`` with the default
    weights, and under ``"tuned"`` the same with ``vector=tuned_vector`` (if given)."""
    from bench import zh_en_xling as zx
    from bench.locomo import configs
    cases = zx.load_cases()
    base = configs()["default"]
    with tempfile.TemporaryDirectory(prefix="embtab-xl-") as folder:
        mem = make_memory(folder, embedder=emb)
        try:
            targets = zx.ingest(mem, cases)
            res = zx.evaluate(mem, cases, targets, base)
            res2 = (zx.evaluate(mem, cases, targets, replace(base, vector=tuned_vector))
                    if tuned_vector is not None else None)
        finally:
            mem.close()

    def flat(r: dict[str, Any]) -> dict[str, Any]:
        return {s: {k: r[s][k]["top1"] for k in zx.KINDS} | {"n": r[s]["cross"]["n"]}
                for s in zx.SPLITS}
    out = flat(res)
    if res2 is not None:
        out["tuned"] = {"vector": tuned_vector, **flat(res2)}
    return out


def _recall(mem, convs: list, ids: dict, half: str, weights, questions: int | None
            ) -> tuple[dict[str, Any] | None, list[float]]:
    """``({"n", "r@5", "r@10"}, seconds per question)`` of ``half`` with ``weights``."""
    from bench import locomo as lb
    rows = [r for i, c in convs if lb.half_of(i) == half
            for r in lb.evaluate(mem, c, weights, questions, ids=ids[i])]
    if not rows:
        return None, []
    a = lb.summarize(rows)["all"]
    return {"n": a["n"], "r@5": a["r@5"], "r@10": a["r@10"]}, [r["seconds"] for r in rows]


def run_locomo(emb: Embedder, data: Path, conversations: int | None,
               questions: int | None) -> dict[str, Any]:
    """LoCoMo plain format through Memory with ``emb``: recall per config and half, ingest
    turns/s and search ms p50/p95 of the default config (query embedding included)."""
    from bench import locomo as lb
    convs = list(enumerate(load_locomo(data)))
    if conversations:
        convs = [c for h in lb.HALVES for c in
                 [x for x in convs if lb.half_of(x[0]) == h][:conversations]]
    all_cfgs = lb.configs()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="embtab-locomo-") as folder:
        mem = make_memory(folder, embedder=emb)
        try:
            t0 = time.perf_counter()
            ids = {i: lb.ingest(mem, c, "plain") for i, c in convs}
            ingest_s = time.perf_counter() - t0
            n_turns = sum(len(c.turns) for _, c in convs)
            out["ingest_turns_per_s"] = round(n_turns / ingest_s, 1)
            for name in CONFIGS:
                out[name], secs = {}, []
                for half in lb.HALVES:
                    rec, sec = _recall(mem, convs, ids, half, all_cfgs[name], questions)
                    if rec:
                        out[name][half], secs = rec, secs + sec
                if name == "default":
                    ms = [s * 1000 for s in secs]
                    out["search_ms"] = {"p50": round(percentile(ms, 50), 2),
                                        "p95": round(percentile(ms, 95), 2)}
                print(f"  {emb.id} {name}: {out[name]}", file=sys.stderr, flush=True)
            out["tuned"] = tune_vector_weight(mem, convs, ids, out, questions)
            print(f"  {emb.id} tuned: {out['tuned']}", file=sys.stderr, flush=True)
        finally:
            mem.close()
    return out


def tune_vector_weight(mem, convs: list, ids: dict, out: dict[str, Any],
                       questions: int | None) -> dict[str, Any]:
    """Pick ``SearchWeights.vector`` from ``VECTOR_WEIGHTS`` by R@5 + R@10 on the tune half
    only (the default 0.15 was chosen for USE; a stronger dense side may want more), then
    measure the pick on the report half. Returns ``{"vector", "grid", "tune", "report"}``."""
    from bench import locomo as lb
    base = lb.configs()["default"]
    grid = {str(base.vector): out["default"].get("tune")}
    if grid[str(base.vector)] is None:
        return {}
    for w in VECTOR_WEIGHTS:
        if w != base.vector:
            grid[str(w)] = _recall(mem, convs, ids, "tune", replace(base, vector=w), questions)[0]
    best = max(grid, key=lambda w: (grid[w]["r@5"] + grid[w]["r@10"], -float(w)))
    report = (out["default"].get("report") if float(best) == base.vector else
              _recall(mem, convs, ids, "report", replace(base, vector=float(best)), questions)[0])
    return {"vector": float(best), "grid": grid, "tune": grid[best], "report": report}


def worker(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Measure candidate ``name`` in this process; returns its result dict."""
    from bench.embedders import ZH_EN_SET
    spec = CANDIDATES[name]
    base_rss = vm_rss_mb()
    emb = build(name)
    health = emb.health()
    if not health["ok"]:
        raise EmbedderError(health["detail"])
    data = json.loads(ZH_EN_SET.read_text(encoding="utf-8"))
    res: dict[str, Any] = {"id": emb.id, "dim": emb.dim, "what": spec["what"],
                           "python": sys.executable, "loadavg_start": os.getloadavg()}
    res["speed"] = doc_speed(emb, data, args.speed_sentences, args.speed_repeats)
    res["rss_mb"] = round(vm_rss_mb() - base_rss, 1)
    convs = load_locomo(args.data)
    qs = list(dict.fromkeys(q.question for c in convs[5:] for q in c.questions))[:args.query_n]
    res["query"] = query_latency(emb, qs)
    res["install"] = install_mb(spec["dists"], spec["venv"])
    if not args.speed_only:
        res["locomo"] = run_locomo(emb, args.data, args.conversations, args.questions)
        tuned = (res["locomo"].get("tuned") or {}).get("vector")
        res["zh_en"] = run_xling(emb, tuned)
    res["settings"] = {"conversations": args.conversations, "questions": args.questions}
    res["loadavg_end"] = os.getloadavg()  # the machine is shared: speeds depend on it
    return res
