"""LoCoMo retrieval benchmark: recall@k of the product's hybrid search on raw turns.

For each of the 10 LoCoMo conversations one user is created; every turn is stored as a
raw memory through the public API (``Memory.add(text, user, infer=False,
metadata={speaker, dia_id, session, session_date, context}, created_at=<session
date>)``, no LLM; ``context``: the previous turn when the other speaker said it, see
``bench.common.turn_context``), and every scorable question of categories 1–4 (1,536) is asked through
``Memory.search``. recall@k = share of the question's evidence turns among the top k
(LoCoMo's ``recall_acc``), overall and per category.

Configurations (``SearchWeights``): ``default`` (the product's hybrid), ``vector`` (vector
only), ``text`` (full text only), ``no-rescore`` (hybrid without the importance/recency
re-score), ``rrf`` (equal-weight reciprocal rank fusion: the engine's first default),
``pool-max`` (score fusion without query-term coverage or cross-script bonus: the
previous default), ``coverage1`` (coverage to the power 1 instead of 2).
Usage::

    python bench/locomo.py                       # all configs, writes bench/results/locomo.json
    python bench/locomo.py --configs default --conversations 1 --questions 20
    python bench/locomo.py --format context      # the question answered inlined in the text
    python bench/locomo.py --format dated        # turns without the question they answer
    python bench/locomo.py --format raw          # ... and without their date

Runs on the product default embedder (USE-multilingual) unless ``--embedder`` says
otherwise. The data file is read in place (``--data``), never copied.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (CATEGORIES, DEFAULT_LOCOMO, Conversation, Timer,  # noqa: E402
                          load_locomo, make_memory, print_table, recall_at, turn_context,
                          turn_text,
                          write_json)
from memory.retrieval import SearchWeights  # noqa: E402

KS = (1, 5, 10)


def configs() -> dict[str, SearchWeights]:
    """The measured configurations: name → SearchWeights (ablations start from the
    product default and switch one part off)."""
    base = SearchWeights()
    return {
        "default": base,
        "vector": replace(base, text=0.0, cross_script=0.0),
        "text": replace(base, vector=0.0),
        "no-rescore": replace(base, rescore=False),
        "rrf": replace(base, fusion="rrf", vector=1.0, text=1.0),
        "pool-max": replace(base, coverage_power=0.0, cross_script=0.0),
        "coverage1": replace(base, coverage_power=1.0),
    }


def user_of(conv: Conversation) -> str:
    """The user id one conversation is stored under."""
    return f"locomo-{conv.sample_id}"


def ingest(mem, conv: Conversation, fmt: str = "context-meta") -> dict[str, str]:
    """Store every turn of ``conv`` as one raw memory of its user (one ``add`` per turn,
    so each memory carries its own metadata and session date). Returns
    ``{memory_id: dia_id}``."""
    uid = user_of(conv)
    ids: dict[str, str] = {}
    prev = None
    for t in conv.turns:
        meta = {"speaker": t.speaker, "dia_id": t.dia_id, "session": t.session,
                "session_date": t.date.isoformat(), "conversation": conv.sample_id}
        if fmt == "context-meta":
            ctx = turn_context(t, prev)
            if ctx:
                meta["context"] = ctx
        changes = mem.add(turn_text(t, fmt, prev), uid, infer=False, metadata=meta,
                          created_at=t.date)
        ids[changes[0].id] = t.dia_id
        prev = t
    return ids


def evaluate(mem, conv: Conversation, weights: SearchWeights, max_questions: int | None = None,
             ks: tuple[int, ...] = KS) -> list[dict[str, Any]]:
    """Ask ``conv``'s questions through ``Memory.search`` with ``weights``; return one
    row per question: ``{category, evidence, ranked (dia ids), seconds, r@k…}``. The dia
    id of a hit is read from the memory's metadata."""
    uid = user_of(conv)
    rows = []
    for q in conv.questions[:max_questions]:
        t0 = time.perf_counter()
        res = mem.search(q.question, uid, limit=max(ks), weights=weights)
        dt = time.perf_counter() - t0
        ranked = [m.metadata.get("dia_id") for m in res.memories]
        row = {"category": q.category, "evidence": q.evidence, "ranked": ranked, "seconds": dt}
        for k in ks:
            row[f"r@{k}"] = recall_at(ranked, q.evidence, k)
        rows.append(row)
    return rows


def summarize(rows: list[dict[str, Any]], ks: tuple[int, ...] = KS) -> dict[str, Any]:
    """Mean recall@k overall and per category: ``{"all": {"n", "r@1", …}, "1": {...}}``."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups["all"].append(r)
        groups[str(r["category"])].append(r)
    out = {}
    for key in ["all", *[str(c) for c in CATEGORIES]]:
        g = groups.get(key) or []
        out[key] = {"n": len(g), **{f"r@{k}": round(sum(r[f"r@{k}"] for r in g) / len(g), 4)
                                    if g else None for k in ks}}
    return out


def run(data: Path, config_names: list[str], fmt: str = "context-meta", conversations: int | None = None,
        max_questions: int | None = None, embedder: str | None = None,
        data_dir: str | None = None, quiet: bool = False) -> dict[str, Any]:
    """Ingest the conversations and evaluate each configuration. Returns the results
    dict written to ``bench/results/locomo.json`` (summaries, timings, settings)."""
    convs = load_locomo(data)[:conversations]
    all_cfgs = configs()
    unknown = set(config_names) - set(all_cfgs)
    if unknown:
        raise SystemExit(f"unknown config(s): {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(all_cfgs)}")
    tmp = tempfile.TemporaryDirectory(prefix="locomo-bench-") if data_dir is None else None
    folder = data_dir or tmp.name
    extra = {"config_embedder": embedder} if embedder else {}
    mem = make_memory(folder, **extra)
    try:
        with Timer() as t_ingest:
            for conv in convs:
                ingest(mem, conv, fmt)
        n_turns = sum(len(c.turns) for c in convs)
        results: dict[str, Any] = {}
        for name in config_names:
            w = all_cfgs[name]
            with Timer() as t_eval:
                rows = [r for conv in convs for r in evaluate(mem, conv, w, max_questions)]
            results[name] = {"weights": asdict(w), "recall": summarize(rows),
                             "search_seconds": round(t_eval.seconds, 2),
                             "search_ms_mean": round(1000 * t_eval.seconds / max(1, len(rows)), 2)}
            if not quiet:
                print(f"{name}: R@5 {results[name]['recall']['all']['r@5']:.3f} "
                      f"R@10 {results[name]['recall']['all']['r@10']:.3f} "
                      f"({t_eval.seconds:.1f} s)", flush=True)
        return {"data": str(data), "format": fmt, "embedder": mem.embedder.id,
                "conversations": len(convs), "turns": n_turns,
                "questions": sum(r["n"] for r in [results[config_names[0]]["recall"]["all"]]),
                "ingest_seconds": round(t_ingest.seconds, 2),
                "ingest_per_s": round(n_turns / t_ingest.seconds, 1), "configs": results}
    finally:
        mem.close()
        if tmp is not None:
            tmp.cleanup()


def table_rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten results into table rows: one per (config, category)."""
    rows = []
    for name, r in res["configs"].items():
        for key, label in [("all", "all"), *[(str(c), f"{c} {n}") for c, n in CATEGORIES.items()]]:
            s = r["recall"][key]
            if not s["n"]:
                continue
            rows.append({"config": name, "category": label, "n": s["n"],
                         **{f"R@{k}": s[f"r@{k}"] for k in KS}})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_LOCOMO,
                    help="path of locomo10.json (default: %(default)s)")
    ap.add_argument("--configs", default=",".join(configs()),
                    help="comma-separated configurations (default: %(default)s)")
    ap.add_argument("--format", default="context-meta", choices=["raw", "dated", "context", "context-meta"],
                    help="stored text of a turn (default: %(default)s)")
    ap.add_argument("--conversations", type=int, default=None, help="first N conversations only")
    ap.add_argument("--questions", type=int, default=None, help="first N questions per conversation")
    ap.add_argument("--embedder", default=None, help="EMBEDDER setting (default: product default)")
    ap.add_argument("--out", default="locomo", help="results file name in bench/results/ ('' = none)")
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"LoCoMo data not found at {args.data} (use --data)", file=sys.stderr)
        return 2
    with Timer() as total:
        res = run(args.data, [c.strip() for c in args.configs.split(",") if c.strip()],
                  args.format, args.conversations, args.questions, args.embedder)
    res["total_seconds"] = round(total.seconds, 1)
    print_table(table_rows(res), title=f"LoCoMo recall@k — {res['embedder']}, {res['turns']} turns, "
                                      f"format {res['format']}")
    print(f"ingest {res['ingest_seconds']} s ({res['ingest_per_s']} turns/s); "
          f"total {res['total_seconds']} s")
    if args.out:
        print("wrote", write_json(args.out, res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
