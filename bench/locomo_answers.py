"""LoCoMo answer quality through the memory pipeline (issue 12, part E).

LoCoMo conversations are ingested the way the product learns (``Memory.add(...,
infer=True)`` on the configured LLM, by default the offline local
Qwen2.5-Coder-1.5B), then their category 1-4 questions are answered by the same model
from the top-k retrieved memories and scored with LoCoMo's own token F1. Three
conditions answer the same questions with the same prompt and model:

* ``memory`` — each speaker's memories as the product learns them
  (:mod:`bench.locomo_ingest`: one ``Memory.add(infer=True)`` per session per speaker,
  that speaker's turns as ``user``, ``created_at`` = the session's date). A question
  searches both speakers' users (``Memory.search(q, uid, limit=k)``), merges the hits by
  score and keeps the top k; each is shown as ``[date] Speaker: memory``.
* ``raw`` — every turn stored verbatim (``infer=False``, like bench/locomo.py, plain
  format ``Speaker: text [shares a photo: caption]``, ``created_at`` = session date) for
  user ``<conv>-raw``; the top k hits of the hybrid search are shown the same way.
* ``none`` — no memories (what the model guesses from the question alone).

Answering: ``mem.llm.chat(messages, temperature=0, max_tokens=32)`` with a short prompt
("Answer in a few words from the memories; if unknown say 'unknown'").

Scoring: LoCoMo's own token F1 (:mod:`bench.locomo_f1`); category 5 (adversarial) is
skipped. The product writes the dates it resolves as ISO (``2023-05-07``) and the model
copies them, which LoCoMo's F1 scores 0 against "7 May 2023"; so a second score,
``f1_dates``, rewrites ISO dates in the prediction first. ``f1`` is LoCoMo's.

Usage::

    python bench/locomo_answers.py --data-dir /tmp/la-full  # convs 1,0 whole: every cat 1-4 question
    python bench/locomo_answers.py --convs 0 --questions 3 --sessions 2 --out /tmp/la.json
    python bench/locomo_answers.py --data-dir /tmp/la-store  # keep the store; re-runs skip ingestion

``--sessions N`` ingests only the first N sessions and keeps only the questions whose
evidence lies in them. Progress goes to stderr, markdown tables to stdout, JSON (git
commit, model, settings, per-question records with the retrieved texts) to ``--out``
(default ``bench/results/locomo_answers.json``), rewritten after each conversation.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # allow `python bench/locomo_answers.py` from anywhere
    sys.path.insert(0, str(REPO))

from bench.common import (CATEGORIES, DEFAULT_LOCOMO, Conversation, Question,  # noqa: E402
                          load_locomo, markdown_table)
from bench.locomo_f1 import rewrite_iso_dates, score_answer  # noqa: E402
from bench.common import git_describe, write_json_file  # noqa: E402
from bench.locomo_ingest import (CHUNK_CHARS, STATE_FILE, Log, _calls,  # noqa: E402
                                 ensure_ingested, memory_user, raw_user)

RESULTS = REPO / "bench" / "results"
CONDITIONS = ("memory", "raw", "none")

ANSWER_SYSTEM = ("You answer questions about a long conversation between {a} and {b}. "
                 "Each memory starts with the date it was said. Answer in a few words from "
                 "the memories; if unknown say 'unknown'.")
ANSWER_USER = "Memories:\n{memories}\n\nQuestion: {question}\nShort answer:"


def select_questions(conv: Conversation, max_questions: int | None = None,
                     max_sessions: int | None = None) -> list[Question]:
    """The conversation's scorable (category 1-4) questions in file order; with
    ``max_sessions`` only those whose evidence lies in the first ``max_sessions``
    sessions; at most ``max_questions``."""
    qs = conv.questions
    if max_sessions:
        qs = [q for q in qs if all(int(e[1:].split(":")[0]) <= max_sessions for e in q.evidence)]
    return qs[:max_questions] if max_questions is not None else list(qs)



# ---- answering ------------------------------------------------------------------------
def _date(value: Any) -> str:
    if isinstance(value, datetime):
        return f"{value.day} {value:%B %Y}"
    return str(value or "")


def retrieve(mem, conv: Conversation, condition: str, question: str,
             k: int = 10) -> list[dict[str, Any]]:
    """The top-``k`` context of ``question`` in ``condition``: ``[{text, speaker, date,
    score, session, dia_id}]``. ``memory``: both speakers' users searched, merged by
    score; ``raw``: the raw-turn user; ``none``: ``[]``."""
    if condition == "none":
        return []
    if condition == "memory":
        pools = [(s, memory_user(conv, s)) for s in conv.speakers]
    elif condition == "raw":
        pools = [(None, raw_user(conv))]
    else:
        raise ValueError(f"unknown condition {condition!r} ({', '.join(CONDITIONS)})")
    hits = []
    for speaker, uid in pools:
        for m in mem.search(question, uid, limit=k).memories:
            hits.append({"text": m.text, "speaker": speaker or m.metadata.get("speaker"),
                         "date": _date(m.created_at), "score": round(float(m.score), 4),
                         "session": m.metadata.get("session"),
                         "dia_id": m.metadata.get("dia_id")})
    hits.sort(key=lambda h: -h["score"])
    return hits[:k]


def context_line(hit: dict[str, Any], condition: str) -> str:
    """One memory as the answerer sees it: ``[8 May 2023] Caroline: …`` (raw texts
    already start with the speaker)."""
    body = hit["text"] if condition == "raw" or not hit.get("speaker") \
        else f"{hit['speaker']}: {hit['text']}"
    return f"[{hit['date']}] {body}" if hit.get("date") else body


def answer_messages(conv: Conversation, question: str, hits: list[dict[str, Any]],
                    condition: str) -> list[dict[str, str]]:
    """The answering prompt (the same for all conditions; ``(none)`` without memories)."""
    lines = "\n".join(context_line(h, condition) for h in hits) or "(none)"
    a, b = conv.speakers
    return [{"role": "system", "content": ANSWER_SYSTEM.format(a=a, b=b)},
            {"role": "user", "content": ANSWER_USER.format(memories=lines, question=question)}]


def answer_question(mem, conv: Conversation, q: Question, condition: str,
                    k: int = 10) -> dict[str, Any]:
    """Retrieve, answer with ``mem.llm.chat(..., temperature=0, max_tokens=32)`` and
    score one question in one condition. Returns ``{prediction, f1, search_s, answer_s,
    seconds, retrieved, error}`` (an LLM failure: empty prediction, F1 0, ``error``)."""
    t0 = time.perf_counter()
    hits = retrieve(mem, conv, condition, q.question, k)
    t1 = time.perf_counter()
    error = None
    try:
        pred = mem.llm.chat(answer_messages(conv, q.question, hits, condition),
                            temperature=0, max_tokens=32)
    except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
        pred, error = "", f"{type(exc).__name__}: {exc}"
    t2 = time.perf_counter()
    pred = " ".join((pred or "").split())
    return {"prediction": pred, "f1": round(score_answer(pred, q.answer, q.category), 4),
            "f1_dates": round(score_answer(rewrite_iso_dates(pred), q.answer, q.category), 4),
            "search_s": round(t1 - t0, 3), "answer_s": round(t2 - t1, 3),
            "seconds": round(t2 - t0, 3),
            "retrieved": [context_line(h, condition) for h in hits], "error": error}


def answer_all(mem, conv: Conversation, questions: list[Question],
               conditions: tuple[str, ...] = CONDITIONS, k: int = 10,
               log: Log | None = None) -> list[dict[str, Any]]:
    """Answer every question in every condition; one record per question:
    ``{conversation, index, category, question, gold, evidence, <condition>: {...}}``."""
    rows = []
    for i, q in enumerate(questions):
        row: dict[str, Any] = {"conversation": conv.sample_id, "index": i,
                               "category": q.category, "question": q.question,
                               "gold": q.answer, "evidence": q.evidence}
        for cond in conditions:
            row[cond] = answer_question(mem, conv, q, cond, k)
        rows.append(row)
        if log:
            parts = "  ".join(f"{c} {row[c]['f1']:.2f} ({row[c]['seconds']:.1f}s) "
                              f"{row[c]['prediction'][:40]!r}" for c in conditions)
            log(f"  {conv.sample_id} q{i + 1}/{len(questions)} cat{q.category} "
                f"gold {q.answer[:40]!r}: {parts}")
    return rows


# ---- summaries ------------------------------------------------------------------------
def summarize(rows: list[dict[str, Any]],
              conditions: tuple[str, ...] = CONDITIONS) -> dict[str, Any]:
    """Mean F1 overall and per category, n, mean seconds per question (retrieval +
    answer), answer errors, per condition."""
    out: dict[str, Any] = {}
    for cond in conditions:
        recs = [(r["category"], r[cond]) for r in rows if cond in r]
        per = {}
        for cat in CATEGORIES:
            vals = [x["f1"] for c, x in recs if c == cat]
            per[str(cat)] = {"n": len(vals), "f1": round(sum(vals) / len(vals), 4) if vals else None}
        vals = [x["f1"] for _, x in recs]
        secs = [x["seconds"] for _, x in recs]
        dated = [x["f1_dates"] for _, x in recs]
        out[cond] = {"n": len(vals), "f1": round(sum(vals) / len(vals), 4) if vals else None,
                     "f1_dates": round(sum(dated) / len(dated), 4) if dated else None,
                     "categories": per,
                     "s_per_question": round(sum(secs) / len(secs), 2) if secs else None,
                     "answer_s_mean": round(sum(x["answer_s"] for _, x in recs) / len(recs), 2)
                     if recs else None,
                     "errors": sum(1 for _, x in recs if x["error"])}
    return out


def answer_table(summary: dict[str, Any]) -> str:
    """Markdown: condition × F1 (all, per category), F1 with ISO dates rewritten, n,
    s/question (retrieval + answer), answer errors."""
    rows = []
    for cond, s in summary.items():
        row: dict[str, Any] = {"condition": cond,
                               "F1 all": s["f1"] if s["f1"] is not None else "-"}
        for cat, name in CATEGORIES.items():
            c = s["categories"][str(cat)]
            row[f"F1 {cat} {name} (n)"] = f"{c['f1']:.3f} ({c['n']})" if c["n"] else "- (0)"
        row.update({"F1 all, ISO dates rewritten": s["f1_dates"] if s["f1_dates"] is not None
                    else "-", "n": s["n"], "s/question": s["s_per_question"],
                    "errors": s["errors"]})
        rows.append(row)
    return markdown_table(rows)


def ingest_table(ingestion: dict[str, Any]) -> str:
    """Markdown: per conversation, ingestion time, add calls, LLM calls, memories."""
    rows = []
    for conv_id, ing in ingestion.items():
        m, r = ing.get("memory") or {}, ing.get("raw") or {}
        adds = m.get("add_calls") or 0
        rows.append({"conversation": conv_id, "sessions": ing.get("sessions"),
                     "memory s": m.get("seconds"), "add calls": adds,
                     "s/add call": round(m["seconds"] / adds, 1) if adds else None,
                     "LLM calls": m.get("llm_calls"),
                     "memories": " / ".join(f"{v}" for v in (m.get("memories") or {}).values()),
                     "add errors": m.get("errors"), "forget-path adds": m.get("forget_path"),
                     "cached": "yes" if ing.get("cached") else "no",
                     "raw s": r.get("seconds"), "raw turns": r.get("turns")})
    return markdown_table(rows)


# ---- the run --------------------------------------------------------------------------
def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def build_memory(data_dir: str | os.PathLike, **overrides: Any):
    """A Memory with the product's settings and real configured LLM on a SQLite store in
    ``data_dir`` (``bench.memory_quality.build_memory``: starts the local llama.cpp
    server when it is the configured LLM)."""
    try:
        from bench.memory_quality import build_memory as quality_build
    except ImportError:  # pragma: no cover - same logic, kept in case that file moves
        from memory import Memory, load_config

        env = str(REPO / ".env")
        product = load_config(env_file=env, **overrides)
        if product.uses_local_llm:
            from memory.llm import local_server as local_llm
            local_llm.ensure_server(product)
        return Memory(load_config(env_file=env, **{**overrides, "memory_data_dir": str(data_dir)}))
    return quality_build(data_dir, **overrides)



def run(mem, convs: list[Conversation], *, max_questions: int | None = None,
        max_sessions: int | None = None, k: int = 10, state_path: Path,
        conditions: tuple[str, ...] = CONDITIONS, log: Log | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Ingest and answer ``convs`` on ``mem``; returns ``{"ingestion": {conv: stats},
    "questions": [rows], "summary", "llm_calls": {"ingest", "answer"}}``;
    ``on_progress(result_so_far)`` after each conversation."""
    res: dict[str, Any] = {"ingestion": {}, "questions": [], "summary": {},
                           "llm_calls": {"ingest": 0, "answer": 0}}
    for conv in convs:
        ing = ensure_ingested(mem, conv, state_path, max_sessions, log)
        res["ingestion"][conv.sample_id] = ing
        if not ing.get("cached"):
            res["llm_calls"]["ingest"] += ing["memory"]["llm_calls"] + ing["raw"]["llm_calls"]
        qs = select_questions(conv, max_questions, max_sessions)
        if log:
            log(f"{conv.sample_id}: answering {len(qs)} questions × {len(conditions)} conditions")
        before = _calls(mem)
        res["questions"] += answer_all(mem, conv, qs, conditions, k, log)
        res["llm_calls"]["answer"] += _calls(mem) - before
        res["summary"] = summarize(res["questions"], conditions)
        if on_progress:
            on_progress(res)
    return res


def report(meta: dict[str, Any], res: dict[str, Any]) -> str:
    """The markdown printed to stdout: header, the answer table, the ingestion table and
    the LLM call counts and mean seconds per ingestion add call and per answer call."""
    adds = [c for v in res["ingestion"].values() if not v.get("cached")
            for c in v["memory"]["calls"]]
    answer_s = [r[c]["answer_s"] for r in res["questions"] for c in meta["conditions"]]
    calls = (f"LLM calls: ingestion {res['llm_calls']['ingest']}"
             f"{' (cached conversations not counted)' if any(v.get('cached') for v in res['ingestion'].values()) else ''}"
             f", answering {res['llm_calls']['answer']}")
    if adds:
        calls += f"; mean s per ingestion add call {sum(c['seconds'] for c in adds) / len(adds):.1f}"
    if answer_s:
        calls += f"; mean s per answer call {sum(answer_s) / len(answer_s):.1f}"
    return "\n".join([
        f"## LoCoMo answers — model {meta['model']}, commit {meta['git_commit']}"
        f"{' (memory/ modified)' if meta.get('memory_dirty') else ''}",
        "",
        f"conversations {', '.join(res['ingestion'])}; sessions {meta['sessions'] or 'all'}; "
        f"{'≤ ' + str(meta['max_questions']) if meta['max_questions'] else 'all'} questions each (categories 1-4); top k = {meta['k']}; "
        f"embedder {meta['embedder']}. Ingestion: one `Memory.add(infer=True)` (= one "
        f"extraction call, plus reconciliation calls) per session per speaker, a speaker's "
        f"part split into whole-turn chunks of ≤ {CHUNK_CHARS} chars when longer.",
        "",
        answer_table(res["summary"]),
        "",
        ingest_table(res["ingestion"]),
        "",
        calls,
    ])


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (see the module docstring). Returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_LOCOMO, help="locomo10.json")
    ap.add_argument("--convs", default="1,0", help="conversation indices 0-9 (default: %(default)s)")
    ap.add_argument("--questions", type=int, default=None,
                    help="first N scorable questions per conversation (default: all)")
    ap.add_argument("--sessions", type=int, default=None,
                    help="ingest only the first N sessions (and ask only their questions)")
    ap.add_argument("--k", type=int, default=10, help="memories given to the answerer")
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument("--data-dir", default=None,
                    help="keep the SQLite store here; a re-run skips ingestion")
    ap.add_argument("--out", default=str(RESULTS / "locomo_answers.json"),
                    help="JSON results ('' for none; default: %(default)s)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="override LLM_TIMEOUT (s): the local server may be shared and busy")
    args = ap.parse_args(argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if not args.data.exists():
        log(f"LoCoMo data not found at {args.data} (use --data)")
        return 2
    conditions = tuple(c.strip() for c in args.conditions.split(",") if c.strip())
    if not conditions or set(conditions) - set(CONDITIONS):
        log(f"--conditions: choose from {', '.join(CONDITIONS)}")
        return 2
    every = load_locomo(args.data)
    try:
        convs = [every[int(i)] for i in args.convs.split(",") if i.strip()]
    except (ValueError, IndexError):
        log(f"--convs: comma-separated indices 0-{len(every) - 1}")
        return 2
    overrides = {} if args.timeout is None else {"llm_timeout": args.timeout}
    tmp = None
    if args.data_dir:
        data_dir = Path(args.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="locomo-answers-")
        data_dir = Path(tmp.name)
    out = Path(args.out) if args.out else None
    started = time.time()
    mem = build_memory(data_dir, **overrides)
    try:
        meta = {"benchmark": "locomo_answers", "git_commit": _git("rev-parse", "--short", "HEAD"),
                "git_describe": git_describe(),
                "memory_dirty": bool(_git("status", "--porcelain", "--", "memory")),
                "model": mem.llm.model, "llm_base_url": getattr(mem.llm, "base_url", None),
                "local_llm": mem.config.uses_local_llm, "embedder": mem.embedder.id,
                "data_file": str(args.data.resolve()),
                "convs": [c.sample_id for c in convs], "max_questions": args.questions,
                "sessions": args.sessions, "k": args.k, "conditions": list(conditions),
                "chunk_chars": CHUNK_CHARS, "answer_temperature": 0, "answer_max_tokens": 32,
                "answer_prompt": {"system": ANSWER_SYSTEM, "user": ANSWER_USER},
                "scoring": "LoCoMo token F1 (task_eval/evaluation.py): normalise, Porter stem "
                           "(snowballstemmer porter), Counter overlap; cat 1 split on ','; "
                           "cat 3 gold before ';'", "data_dir": str(data_dir)}
        log(f"locomo answers: {', '.join(meta['convs'])}, model {meta['model']} at "
            f"{meta['llm_base_url']}, data dir {data_dir}")

        def payload(res: dict[str, Any]) -> dict[str, Any]:
            return {**meta, "seconds": round(time.time() - started, 1), **res}

        def save(res: dict[str, Any]) -> None:
            if out is not None:
                write_json_file(out, payload(res))

        res = run(mem, convs, max_questions=args.questions, max_sessions=args.sessions,
                  k=args.k, state_path=data_dir / STATE_FILE, conditions=conditions,
                  log=log, on_progress=save)
    finally:
        mem.close()
        if tmp is not None:
            tmp.cleanup()
    final = payload(res)
    if out is not None:
        from bench.common import machine_info
        final["machine"] = machine_info()
        write_json_file(out, final)
    print(report(meta, res))
    print(f"\ntotal {final['seconds']:.0f} s")
    if out is not None:
        print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
