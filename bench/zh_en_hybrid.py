"""zh/en hybrid search benchmark: top-1/top-3 of ``Memory.search`` on mixed-language memories.

The 30 memories of ``bench/data/zh_en_set.json`` (15 English, 15 Chinese) are stored raw
for one user through the public API (``Memory.add(text, user, infer=False)``, no LLM);
each of its 60 queries (one in the memory's language, one in the other language per
memory; ``answer`` = index of the correct memory) is asked through ``Memory.search``.
Reports top-1 and top-3 accuracy overall, same-language and cross-lingual, for the
product default and the ablations of ``bench/locomo.py`` (same ``SearchWeights``
configurations), plus the misses of the default.

    python bench/zh_en_hybrid.py                 # writes bench/results/zh_en_hybrid.json
    python bench/zh_en_hybrid.py --configs default,vector --out ''

Runs on the product default embedder (USE-multilingual) unless ``--embedder`` says
otherwise; about 5 s.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, Timer, make_memory, print_table, write_json  # noqa: E402
from bench.locomo import configs  # noqa: E402
from memory.search.hybrid import SearchWeights  # noqa: E402

ZH_EN_SET = REPO / "bench" / "data" / "zh_en_set.json"
USER = "zh-en-bench"
KINDS = ("all", "same", "cross")


def load_set(path: Path = ZH_EN_SET) -> dict[str, Any]:
    """Read the zh/en set: ``{"memories": [{"text", "lang"}], "queries": [{"text", "lang",
    "answer", "cross_lingual"}]}``. Raises FileNotFoundError / ValueError (bad JSON)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def ingest(mem, data: dict[str, Any]) -> dict[str, int]:
    """Store every memory raw for :data:`USER`; returns ``{memory_id: index in the set}``."""
    return {mem.add(m["text"], USER, infer=False)[0].id: i
            for i, m in enumerate(data["memories"])}


def evaluate(mem, data: dict[str, Any], ids: dict[str, int], weights: SearchWeights
             ) -> dict[str, Any]:
    """Ask every query with ``weights``; returns ``{"all"|"same"|"cross": {"n", "top1",
    "top3"}, "misses": [{"query", "expected", "got"}]}`` (accuracies in 0..1; ``got`` is
    the text of the wrong top-1 memory, or None when nothing was found)."""
    hits = {k: [0, 0, 0] for k in KINDS}  # top1, top3, n
    misses = []
    for q in data["queries"]:
        res = mem.search(q["text"], USER, limit=10, weights=weights)
        ranked = [ids.get(m.id) for m in res.memories]
        kind = "cross" if q["cross_lingual"] else "same"
        top1 = ranked[:1] == [q["answer"]]
        for k in ("all", kind):
            hits[k][0] += top1
            hits[k][1] += q["answer"] in ranked[:3]
            hits[k][2] += 1
        if not top1:
            got = data["memories"][ranked[0]]["text"] if ranked and ranked[0] is not None else None
            misses.append({"query": q["text"], "kind": kind,
                           "expected": data["memories"][q["answer"]]["text"], "got": got})
    out: dict[str, Any] = {k: {"n": n, "top1": round(a / n, 4) if n else None,
                               "top3": round(b / n, 4) if n else None}
                           for k, (a, b, n) in hits.items()}
    out["misses"] = misses
    return out


def run(config_names: list[str], embedder: str | None = None, data_path: Path = ZH_EN_SET
        ) -> dict[str, Any]:
    """Ingest the set into a fresh temporary store and evaluate each configuration.
    Returns the results dict written to ``bench/results/zh_en_hybrid.json``. Raises
    SystemExit for an unknown configuration name."""
    all_cfgs = configs()
    unknown = set(config_names) - set(all_cfgs)
    if unknown:
        raise SystemExit(f"unknown config(s): {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(all_cfgs)}")
    data = load_set(data_path)
    extra = {"embedder": embedder} if embedder else {}
    with tempfile.TemporaryDirectory(prefix="zh-en-bench-") as folder:
        mem = make_memory(folder, **extra)
        try:
            ids = ingest(mem, data)
            results = {}
            for name in config_names:
                with Timer() as t:
                    r = evaluate(mem, data, ids, all_cfgs[name])
                results[name] = {"weights": asdict(all_cfgs[name]), **r,
                                 "search_ms_mean": round(1000 * t.seconds / len(data["queries"]), 2)}
            return {"data": str(data_path), "embedder": mem.embedder.id,
                    "memories": len(data["memories"]), "queries": len(data["queries"]),
                    "configs": results}
        finally:
            mem.close()


def table_rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    """One table row per configuration: top-1/top-3 overall, same-language, cross."""
    rows = []
    for name, r in res["configs"].items():
        row: dict[str, Any] = {"config": name}
        for k in KINDS:
            row[f"{k} top1"] = r[k]["top1"]
            row[f"{k} top3"] = r[k]["top3"]
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default=",".join(configs()),
                    help="comma-separated configurations (default: %(default)s)")
    ap.add_argument("--embedder", default=None, help="EMBEDDER setting (default: product default)")
    ap.add_argument("--data", type=Path, default=ZH_EN_SET, help="zh/en set (default: %(default)s)")
    ap.add_argument("--out", default="zh_en_hybrid",
                    help="results file name in bench/results/ ('' = none)")
    ap.add_argument("--misses", action="store_true", help="print the default's misses")
    args = ap.parse_args(argv)
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    with Timer() as total:
        res = run(names, args.embedder, args.data)
    res["total_seconds"] = round(total.seconds, 1)
    print_table(table_rows(res), title=f"zh/en hybrid search — {res['embedder']}, "
                                      f"{res['memories']} memories, {res['queries']} queries")
    if args.misses:
        for name in names:
            for m in res["configs"][name]["misses"]:
                print(f"[{name}] {m['kind']}: {m['query']!r} → {m['got']!r} "
                      f"(expected {m['expected']!r})")
    print(f"total {res['total_seconds']} s")
    if args.out:
        print("wrote", write_json(args.out, res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
