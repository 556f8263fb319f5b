"""LoCoMo retrieval benchmark: recall@k of the product's hybrid search on raw turns.

For each of the 10 LoCoMo conversations one user is created and every scorable question
of categories 1–4 (1,536) is asked through ``Memory.search(q, user, limit=10)``. recall@k
= share of the question's evidence turns among the top k (LoCoMo's ``recall_acc``),
overall and per category, reported for each half: conversations 0–4 (**tune**: every
weight and threshold of the product was chosen on these) and 5–9 (**report**: never
tuned on).

Stored turns (``--format``):

* ``plain`` (the headline: a chat imported the way a user would): each session is one
  ``Memory.add([{"role": "user", "content": "Speaker: text", "created_at": <session
  date>}, ...], user, thread_id=<one id per session>, infer=False)``: no date in the
  text, no image caption, no metadata; the date only as ``created_at`` and the session
  only as the thread the product records. ``--no-thread-ids``: the same adds without
  ``thread_id`` (a user's import that names no thread: the messages of one call are
  still one conversation, issue 26).
* ``context-meta`` / ``context`` / ``dated`` / ``raw``: one ``add`` per turn with the
  benchmark's own text (date prefix, image caption; see ``bench.common.turn_text``) and
  ``metadata={speaker, dia_id, session, session_date[, context]}``; ``context-meta``
  puts the previous turn (said by the other speaker) in ``metadata["context"]``.

Configurations (``SearchWeights``): ``default`` (the product's hybrid), ``vector`` (vector
only), ``text`` (full text only), ``no-rescore`` (without the importance/recency
re-score), ``no-context`` (without thread neighbours and thread share), ``no-dates``
(without query dates), ``no-when`` (without the time-question boost), ``no-speaker``
(without the speaker-label boost), ``rrf`` (equal-weight reciprocal rank fusion: the
engine's first default), ``pool-max`` (score fusion without query-term coverage or
cross-script terms), ``coverage2`` (coverage squared), ``before`` (the default before
issue 13).
Usage::

    python bench/locomo.py --configs default     # headline: plain format, both halves
    python bench/locomo.py --configs default --no-thread-ids   # the same, no thread ids
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
from memory.search.hybrid import SearchWeights  # noqa: E402

KS = (1, 5, 10)
FORMATS = ("plain", "context-meta", "context", "dated", "raw")
#: conversations (by index in locomo10.json) of each half: tune on one, report the other
HALVES = {"tune": range(0, 5), "report": range(5, 10)}


def configs() -> dict[str, SearchWeights]:
    """The measured configurations: name → SearchWeights (ablations start from the
    product default and switch one part off; ``before`` is the default this issue
    started from)."""
    base = SearchWeights()
    return {
        "default": base,
        "vector": replace(base, text=0.0, cross_script=0.0, cross_inherit=0.0),
        "text": replace(base, vector=0.0),
        "no-rescore": replace(base, rescore=False),
        "no-context": replace(base, context_prev=0.0, context_next=0.0, thread_share=0.0),
        "no-dates": replace(base, date_boost=0.0),
        "no-when": replace(base, when_boost=0.0),
        "no-speaker": replace(base, speaker_boost=0.0),
        "rrf": replace(base, fusion="rrf", vector=1.0, text=1.0),
        "pool-max": replace(base, coverage_power=0.0, cross_script=0.0, cross_inherit=0.0),
        "coverage2": replace(base, coverage_power=2.0),
        "before": SearchWeights(vector=0.2, coverage_power=2.0, cross_script=0.04,
                                cross_inherit=0.0, owner_penalty=0.0, context_prev=0.0,
                                context_next=0.0, thread_share=0.0, date_boost=0.0,
                                when_boost=0.0, speaker_boost=0.0),
    }


def user_of(conv: Conversation) -> str:
    """The user id one conversation is stored under."""
    return f"locomo-{conv.sample_id}"


def plain_text(turn) -> str:
    """A turn as a chat export holds it: ``"Caroline: text"`` (no date, no caption)."""
    return f"{turn.speaker}: {turn.text}".strip()


def ingest(mem, conv: Conversation, fmt: str = "plain", thread_ids: bool = True
           ) -> dict[str, str]:
    """Store every turn of ``conv`` as one raw memory of its user. ``plain``: one ``add``
    per session, each turn a message with the session date as its ``created_at``, with
    ``thread_id=<conversation>-s<session>`` unless ``thread_ids`` is False; other
    formats: one ``add`` per turn with the benchmark's metadata. Returns
    ``{memory_id: dia_id}``."""
    uid = user_of(conv)
    ids: dict[str, str] = {}
    if fmt == "plain":
        sessions: dict[int, list] = defaultdict(list)
        for t in conv.turns:
            sessions[t.session].append(t)
        for s, turns in sessions.items():
            msgs = [{"role": "user", "content": plain_text(t), "created_at": t.date}
                    for t in turns]
            thread = f"{conv.sample_id}-s{s}" if thread_ids else None
            changes = mem.add(msgs, uid, thread_id=thread, infer=False)
            ids.update({c.id: t.dia_id for c, t in zip(changes, turns)})
        return ids
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
             ks: tuple[int, ...] = KS, ids: dict[str, str] | None = None
             ) -> list[dict[str, Any]]:
    """Ask ``conv``'s questions through ``Memory.search`` with ``weights``; return one
    row per question: ``{category, evidence, ranked (dia ids), seconds, r@k…}``. The dia
    id of a hit comes from ``ids`` (``ingest``'s answer) or else the memory's metadata."""
    uid = user_of(conv)
    rows = []
    for q in conv.questions[:max_questions]:
        t0 = time.perf_counter()
        res = mem.search(q.question, uid, limit=max(ks), weights=weights)
        dt = time.perf_counter() - t0
        ranked = [(ids or {}).get(m.id) or m.metadata.get("dia_id") for m in res.memories]
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


def half_of(index: int) -> str:
    """``"tune"`` or ``"report"``: the half a conversation (by index) belongs to."""
    return next(h for h, r in HALVES.items() if index in r)


def run(data: Path, config_names: list[str], fmt: str = "plain",
        conversations: int | None = None, max_questions: int | None = None,
        embedder: str | None = None, data_dir: str | None = None, quiet: bool = False,
        halves: tuple[str, ...] = tuple(HALVES), thread_ids: bool = True) -> dict[str, Any]:
    """Ingest the conversations of ``halves`` (first ``conversations`` of them, if set;
    ``thread_ids``: see :func:`ingest`) and evaluate each configuration on each half.
    Returns the results dict written to ``bench/results/locomo.json``:
    ``configs[name][half]`` = ``{"recall": summary, "search_ms_mean"}`` plus settings
    and timings."""
    all_convs = load_locomo(data)
    convs = [(i, c) for i, c in enumerate(all_convs) if half_of(i) in halves]
    if conversations is not None:
        convs = convs[:conversations]
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
            ids = {i: ingest(mem, conv, fmt, thread_ids) for i, conv in convs}
        n_turns = sum(len(c.turns) for _, c in convs)
        results: dict[str, Any] = {}
        for name in config_names:
            w = all_cfgs[name]
            results[name] = {"weights": asdict(w)}
            for half in halves:
                part = [(i, c) for i, c in convs if half_of(i) == half]
                if not part:
                    continue
                with Timer() as t_eval:
                    rows = [r for i, conv in part
                            for r in evaluate(mem, conv, w, max_questions, ids=ids[i])]
                results[name][half] = {
                    "recall": summarize(rows), "search_seconds": round(t_eval.seconds, 2),
                    "search_ms_mean": round(1000 * t_eval.seconds / max(1, len(rows)), 2)}
                if not quiet:
                    a = results[name][half]["recall"]["all"]
                    print(f"{name} [{half}]: R@1 {a['r@1']:.3f} R@5 {a['r@5']:.3f} "
                          f"R@10 {a['r@10']:.3f} (n {a['n']}, {t_eval.seconds:.1f} s)",
                          flush=True)
        return {"data": str(data), "format": fmt, "thread_ids": thread_ids,
                "embedder": mem.embedder.id,
                "halves": {h: [c.sample_id for i, c in convs if half_of(i) == h] for h in halves},
                "turns": n_turns, "ingest_seconds": round(t_ingest.seconds, 2),
                "ingest_per_s": round(n_turns / t_ingest.seconds, 1), "configs": results}
    finally:
        mem.close()
        if tmp is not None:
            tmp.cleanup()


def table_rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten results into table rows: one per (config, half, category)."""
    rows = []
    for name, r in res["configs"].items():
        for half in HALVES:
            if half not in r:
                continue
            for key, label in [("all", "all"),
                               *[(str(c), f"{c} {n}") for c, n in CATEGORIES.items()]]:
                s = r[half]["recall"][key]
                if not s["n"]:
                    continue
                rows.append({"config": name, "half": half, "category": label, "n": s["n"],
                             **{f"R@{k}": s[f"r@{k}"] for k in KS}})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_LOCOMO,
                    help="path of locomo10.json (default: %(default)s)")
    ap.add_argument("--configs", default=",".join(configs()),
                    help="comma-separated configurations (default: %(default)s)")
    ap.add_argument("--format", default="plain", choices=FORMATS,
                    help="stored text of a turn (default: %(default)s)")
    ap.add_argument("--no-thread-ids", action="store_true",
                    help="plain format: add each session without a thread_id")
    ap.add_argument("--halves", default="tune,report",
                    help="which halves to run: tune (conversations 0-4), report (5-9)")
    ap.add_argument("--conversations", type=int, default=None,
                    help="first N conversations of the chosen halves only")
    ap.add_argument("--questions", type=int, default=None, help="first N questions per conversation")
    ap.add_argument("--embedder", default=None, help="EMBEDDER setting (default: product default)")
    ap.add_argument("--out", default="locomo", help="results file name in bench/results/ ('' = none)")
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"LoCoMo data not found at {args.data} (use --data)", file=sys.stderr)
        return 2
    halves = tuple(h for h in HALVES if h in args.halves.split(","))
    if not halves:
        print("--halves: choose tune and/or report", file=sys.stderr)
        return 2
    with Timer() as total:
        res = run(args.data, [c.strip() for c in args.configs.split(",") if c.strip()],
                  args.format, args.conversations, args.questions, args.embedder,
                  halves=halves, thread_ids=not args.no_thread_ids)
    res["total_seconds"] = round(total.seconds, 1)
    print_table(table_rows(res), title=f"LoCoMo recall@k — {res['embedder']}, {res['turns']} turns, "
                                      f"format {res['format']}"
                                      f"{'' if res['thread_ids'] else ', no thread ids'}")
    print(f"ingest {res['ingest_seconds']} s ({res['ingest_per_s']} turns/s); "
          f"total {res['total_seconds']} s")
    if args.out:
        print("wrote", write_json(args.out, res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
