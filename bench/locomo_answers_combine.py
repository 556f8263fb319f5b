"""Combine result files of ``bench/locomo_answers.py`` (one per conversation, run at
different times) into one answer table over all their questions, with each file's
commit and ingestion cost — so "E on two whole conversations" has one reproducible table.

    python bench/locomo_answers_combine.py bench/results/locomo_answers_full.json \
        bench/results/locomo_answers_conv26.json --out bench/results/locomo_answers_both.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import git_describe, write_json_file  # noqa: E402
from bench.locomo_answers import answer_table, ingest_table, summarize  # noqa: E402


def combine(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge ``results`` (the JSON documents ``locomo_answers.py`` writes): their question
    rows, the summary recomputed over all of them, per-conversation ingestion stats and
    the commit each file ran. Raises ValueError when two files hold the same conversation
    or used different conditions."""
    rows, ingestion, sources = [], {}, []
    conditions = None
    for res in results:
        conds = tuple(res["conditions"])
        if conditions is not None and conds != conditions:
            raise ValueError(f"conditions differ: {conditions} vs {conds}")
        conditions = conds
        for conv, ing in res["ingestion"].items():
            if conv in ingestion:
                raise ValueError(f"conversation {conv} is in two result files")
            ingestion[conv] = ing
        rows.extend(res["questions"])
        sources.append({"convs": list(res["ingestion"]), "git_commit": res.get("git_commit"),
                        "git_describe": res.get("git_describe"),
                        "model": res.get("model"), "seconds": res.get("seconds"),
                        "questions": len(res["questions"])})
    return {"benchmark": "locomo_answers (combined)", "git_describe": git_describe(),
            "sources": sources,
            "conditions": list(conditions or ()), "ingestion": ingestion,
            "summary": summarize(rows, conditions or ()), "questions": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", help="locomo_answers.py result files")
    ap.add_argument("--out", default="", help="write the combined JSON here")
    args = ap.parse_args(argv)
    merged = combine([json.loads(Path(f).read_text(encoding="utf-8")) for f in args.files])
    for src in merged["sources"]:
        print(f"{', '.join(src['convs'])}: {src['questions']} questions, commit {src['git_commit']}, "
              f"model {src['model']}, {src['seconds']} s")
    print()
    print(answer_table(merged["summary"]))
    print()
    print(ingest_table(merged["ingestion"]))
    if args.out:
        write_json_file(Path(args.out), merged)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
