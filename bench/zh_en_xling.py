"""Cross-lingual zh/en benchmark with same-language distractors: top-1 of ``Memory.search`` per split (tune / report), same-language and cross-lingual.

``bench/data/zh_en_xling.json`` holds 60 cases; each is one user's store of 6 memories
(the target, a distractor in the *query's* language sharing surface words with the
cross-lingual query — "What is my cat called?" over ``我的猫叫小蓝`` and ``My neighbour's
dog is called Rex`` — a distractor sharing words with the same-language query, and 3
fillers), stored raw through ``Memory.add(text, user, infer=False)``. Each case has a
cross-lingual and a same-language query (120 in all); the target must come first.
Weights are chosen on the ``tune`` split only; ``report`` is the unseen half.

    python bench/zh_en_xling.py                      # writes bench/results/zh_en_xling.json
    python bench/zh_en_xling.py --configs default,vector --splits tune --out ''

Runs on the product default embedder unless ``--embedder`` says otherwise; ~10 s.
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

XLING_SET = REPO / "bench" / "data" / "zh_en_xling.json"
SPLITS = ("tune", "report")
KINDS = ("cross", "same")


def load_cases(path: Path = XLING_SET) -> list[dict[str, Any]]:
    """The cases of the set (see the module docstring). Raises FileNotFoundError or
    ValueError (bad JSON)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))["cases"]


def case_memories(case: dict[str, Any]) -> list[str]:
    """The 6 memory texts of one case's store; index 0 is the target."""
    return [case["target"], case["cross"]["distractor"], case["same"]["distractor"],
            *case["fillers"]]


def ingest(mem, cases: list[dict[str, Any]]) -> list[str]:
    """Store every case's memories for its own user ``xl-<i>``; returns the target
    memory id of each case."""
    targets = []
    for i, case in enumerate(cases):
        ids = [mem.add(t, f"xl-{i}", infer=False)[0].id for t in case_memories(case)]
        targets.append(ids[0])
    return targets


def evaluate(mem, cases: list[dict[str, Any]], targets: list[str], weights: SearchWeights,
             splits: tuple[str, ...] = SPLITS) -> dict[str, Any]:
    """Ask both queries of every case in ``splits``; returns ``{split: {kind: {"n",
    "top1"}}, "misses": [{"split", "kind", "query", "got"}]}``."""
    out: dict[str, Any] = {s: {k: {"n": 0, "top1": 0.0} for k in KINDS} for s in splits}
    misses = []
    for i, case in enumerate(cases):
        if case["split"] not in splits:
            continue
        for kind in KINDS:
            res = mem.search(case[kind]["query"], f"xl-{i}", limit=10, weights=weights)
            cell = out[case["split"]][kind]
            cell["n"] += 1
            if res.memories and res.memories[0].id == targets[i]:
                cell["top1"] += 1
            else:
                misses.append({"split": case["split"], "kind": kind,
                               "query": case[kind]["query"],
                               "got": res.memories[0].text if res.memories else None})
    for s in splits:
        for k in KINDS:
            c = out[s][k]
            c["top1"] = round(c["top1"] / c["n"], 3) if c["n"] else None
    out["misses"] = misses
    return out


def run(config_names: list[str], splits: tuple[str, ...] = SPLITS,
        embedder: str | None = None) -> dict[str, Any]:
    """Ingest the set and evaluate each configuration; returns the results dict."""
    cases = load_cases()
    all_cfgs = configs()
    with tempfile.TemporaryDirectory(prefix="xling-bench-") as folder:
        mem = make_memory(folder, **({"config_embedder": embedder} if embedder else {}))
        try:
            targets = ingest(mem, cases)
            res = {name: {"weights": asdict(all_cfgs[name]),
                          **evaluate(mem, cases, targets, all_cfgs[name], splits)}
                   for name in config_names}
            return {"embedder": mem.embedder.id, "cases": len(cases), "configs": res}
        finally:
            mem.close()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="default,vector,text,pool-max,before")
    ap.add_argument("--splits", default="tune,report")
    ap.add_argument("--embedder", default=None)
    ap.add_argument("--misses", action="store_true", help="print the default's misses")
    ap.add_argument("--out", default="zh_en_xling", help="results file in bench/results/ ('' = none)")
    args = ap.parse_args(argv)
    splits = tuple(s for s in SPLITS if s in args.splits.split(","))
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(names) - set(configs())
    if unknown or not splits:
        print(f"unknown config(s) {sorted(unknown)} or no split", file=sys.stderr)
        return 2
    with Timer() as t:
        res = run(names, splits, args.embedder)
    res["total_seconds"] = round(t.seconds, 1)
    rows = [{"config": n, "split": s, **{f"{k} top-1": r[s][k]["top1"] for k in KINDS},
             "n": r[s]["cross"]["n"] + r[s]["same"]["n"]}
            for n, r in res["configs"].items() for s in splits]
    print_table(rows, title=f"zh/en cross-lingual set — {res['embedder']}")
    if args.misses:
        for m in res["configs"][names[0]]["misses"]:
            if m["split"] in splits:
                print(f"  miss [{m['split']}/{m['kind']}] {m['query']!r} -> {m['got']!r}")
    if args.out:
        print("wrote", write_json(args.out, res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
