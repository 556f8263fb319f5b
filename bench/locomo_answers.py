"""LoCoMo answer quality through the memory pipeline (issue 12, part E).

LoCoMo conversations are ingested the way the product learns (``Memory.add(...,
infer=True)`` on the configured LLM, by default the offline local
Qwen2.5-Coder-1.5B), then their category 1-4 questions are answered by the same model
from the top-k retrieved memories and scored with LoCoMo's own token F1. Three
conditions answer the same questions with the same prompt and model:

* ``memory`` — both speakers are people, and the pipeline only learns from ``user``
  messages, so each conversation is ingested twice: user ``<conv>-<speaker A>`` gets
  every session as ``messages=[...]`` with A's turns as role ``user`` and B's as
  ``assistant``, and the other way round for B. One ``Memory.add`` per session per
  speaker (= one extraction call, plus 0-1 reconciliation call per ambiguous
  candidate), ``created_at`` = the session's date. The product cuts the extractor's
  input at 4,000 characters, so a speaker's part of a session longer than
  ``CHUNK_CHARS`` (3,500) is split into chunks of whole turns, one add each. A question
  searches both speakers' users (``Memory.search(q, uid, limit=k)``), merges the hits
  by score and keeps the top k; each is shown as ``[date] Speaker: memory``.
* ``raw`` — every turn stored verbatim (``infer=False``, like bench/locomo.py, plain
  format ``Speaker: text [shares a photo: caption]``, ``created_at`` = session date) for
  user ``<conv>-raw``; the top k hits of the hybrid search are shown the same way.
* ``none`` — no memories (what the model guesses from the question alone).

Answering: ``mem.llm.chat(messages, temperature=0, max_tokens=32)`` with a short prompt
("Answer in a few words from the memories; if unknown say 'unknown'").

Scoring (LoCoMo ``task_eval/evaluation.py``): the answer is normalised (commas dropped,
lower case, punctuation removed, the words a/an/the/and removed, whitespace collapsed),
tokens are Porter-stemmed (``snowballstemmer`` "porter": the original Porter algorithm;
LoCoMo uses NLTK's PorterStemmer, whose default mode differs on a few rare words) and
F1 of the token multiset overlap is taken. Category 1 (multi-hop): prediction and gold
are split on ``,`` and the best F1 of any prediction part is averaged over the gold
parts. Category 3: only the gold answer's part before the first ``;`` counts.
Category 5 (adversarial) is skipped. The product writes the dates it resolves as ISO
(``2023-05-07``) and the model copies them, which LoCoMo's F1 scores 0 against
"7 May 2023"; so a second score, ``f1_dates``, rewrites ISO dates in the prediction as
"7 May 2023" / "May 2023" first (:func:`rewrite_iso_dates`). ``f1`` is LoCoMo's.

Usage::

    python bench/locomo_answers.py                          # convs 0,1; 40 questions each
    python bench/locomo_answers.py --convs 0 --questions 3 --sessions 2 --out /tmp/la.json
    python bench/locomo_answers.py --data-dir /tmp/la-store  # keep the store; re-runs skip ingestion

``--sessions N`` ingests only the first N sessions and keeps only the questions whose
evidence lies in them. Progress goes to stderr, markdown tables to stdout, JSON (git
commit, model, settings, per-question records with the retrieved texts) to ``--out``
(default ``bench/results/locomo_answers.json``), rewritten after each conversation.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import string
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # allow `python bench/locomo_answers.py` from anywhere
    sys.path.insert(0, str(REPO))

from bench.common import (CATEGORIES, DEFAULT_LOCOMO, Conversation, Question,  # noqa: E402
                          Turn, load_locomo, markdown_table)

RESULTS = REPO / "bench" / "results"
CONDITIONS = ("memory", "raw", "none")
#: a speaker's part of one ``Memory.add`` stays below the extractor's 4,000-char cut
CHUNK_CHARS = 3500
STATE_FILE = "locomo_answers_state.json"

ANSWER_SYSTEM = ("You answer questions about a long conversation between {a} and {b}. "
                 "Each memory starts with the date it was said. Answer in a few words from "
                 "the memories; if unknown say 'unknown'.")
ANSWER_USER = "Memories:\n{memories}\n\nQuestion: {question}\nShort answer:"

Log = Callable[[str], None]


# ---- LoCoMo's token F1 ----------------------------------------------------------------
_PUNCT = frozenset(string.punctuation)
_DROP_WORDS = re.compile(r"\b(a|an|the|and)\b")
_STEMMER = None


def normalize_answer(text: Any) -> str:
    """LoCoMo's answer normalisation: drop commas, lower-case, remove punctuation, remove
    the words a/an/the/and, collapse whitespace."""
    s = str(text).replace(",", "").lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _DROP_WORDS.sub(" ", s)
    return " ".join(s.split())


def _stems(text: Any) -> list[str]:
    global _STEMMER
    if _STEMMER is None:
        import snowballstemmer
        _STEMMER = snowballstemmer.stemmer("porter")
    return _STEMMER.stemWords(normalize_answer(text).split())


def token_f1(prediction: Any, gold: Any) -> float:
    """F1 of the Porter-stemmed, normalised token multisets (0.0 when nothing overlaps,
    also for an empty side)."""
    pred, ref = _stems(prediction), _stems(gold)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def multi_hop_f1(prediction: Any, gold: Any) -> float:
    """LoCoMo's category-1 score: split both on ``,``; for each gold part take the best
    :func:`token_f1` of any prediction part; average over the gold parts."""
    preds = [p.strip() for p in str(prediction).split(",")]
    golds = [g.strip() for g in str(gold).split(",")]
    return sum(max(token_f1(p, g) for p in preds) for g in golds) / len(golds)


_ISO_DAY = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_ISO_MONTH = re.compile(r"\b(\d{4})-(\d{1,2})\b")
_MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August",
                "September", "October", "November", "December"]


def rewrite_iso_dates(text: str) -> str:
    """Rewrite ISO dates as LoCoMo writes them: ``2023-05-07`` → ``7 May 2023``,
    ``2023-06`` → ``June 2023`` (other text unchanged)."""
    def day(m: re.Match) -> str:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        return f"{d} {_MONTH_NAMES[mo - 1]} {y}" if 1 <= mo <= 12 and 1 <= d <= 31 else m.group(0)

    def month(m: re.Match) -> str:
        y, mo = int(m.group(1)), int(m.group(2))
        return f"{_MONTH_NAMES[mo - 1]} {y}" if 1 <= mo <= 12 else m.group(0)

    return _ISO_MONTH.sub(month, _ISO_DAY.sub(day, str(text)))


def score_answer(prediction: Any, gold: Any, category: int) -> float:
    """LoCoMo's F1 for one answer of ``category`` (1: :func:`multi_hop_f1`; 3: gold cut at
    the first ``;``; 2/4: :func:`token_f1`). Raises ValueError for another category."""
    if category == 1:
        return multi_hop_f1(prediction, gold)
    if category == 3:
        return token_f1(prediction, str(gold).split(";")[0].strip())
    if category in (2, 4):
        return token_f1(prediction, gold)
    raise ValueError(f"category {category} is not scored with F1")


# ---- conversations → sessions, chunks and messages --------------------------------------
def turn_content(turn: Turn) -> str:
    """A turn's message text: its text, plus ``[shares a photo: caption]`` when it shares
    an image (the same words the raw condition stores)."""
    text = turn.text.strip()
    if turn.caption:
        text = f"{text} [shares a photo: {turn.caption}]".strip()
    return text


def sessions_of(conv: Conversation, max_sessions: int | None = None) -> list[list[Turn]]:
    """The conversation's sessions in order (each a list of turns with one date), only
    the first ``max_sessions`` when given."""
    by: dict[int, list[Turn]] = defaultdict(list)
    for t in conv.turns:
        by[t.session].append(t)
    out = [by[s] for s in sorted(by)]
    return out[:max_sessions] if max_sessions else out


def chunk_session(turns: list[Turn], speaker: str, limit: int = CHUNK_CHARS) -> list[list[Turn]]:
    """Split one session into consecutive chunks of whole turns so that each chunk's
    ``speaker`` part (their turns' :func:`turn_content` joined by newlines, what the
    product's extractor reads) is at most ``limit`` characters. The other speaker's turns
    that precede a speaker turn move with it into its chunk (a short answer keeps the
    question it answers). A single turn longer than ``limit`` is a chunk of its own.
    The chunks, concatenated, are ``turns``; a chunk without any ``speaker`` turn is
    only possible when the whole session has none."""
    chunks: list[list[Turn]] = []
    cur: list[Turn] = []
    used = 0
    for t in turns:
        if t.speaker != speaker:
            cur.append(t)
            continue
        n = len(turn_content(t))
        if used and used + 1 + n > limit:
            k = len(cur)
            while k > 0 and cur[k - 1].speaker != speaker:
                k -= 1
            chunks.append(cur[:k])
            cur, used = cur[k:], 0
        cur.append(t)
        used += n + (1 if used else 0)
    if cur:
        chunks.append(cur)
    return chunks


def user_part(turns: list[Turn], speaker: str) -> str:
    """What the extractor reads from a chunk: ``speaker``'s turns joined by newlines."""
    return "\n".join(turn_content(t) for t in turns if t.speaker == speaker)


def speaker_messages(turns: list[Turn], speaker: str) -> list[dict[str, str]]:
    """Chat messages of ``turns`` seen from ``speaker``: their turns ``user``, the other
    speaker's ``assistant`` (empty turns left out)."""
    return [{"role": "user" if t.speaker == speaker else "assistant", "content": turn_content(t)}
            for t in turns if turn_content(t)]


def memory_user(conv: Conversation, speaker: str) -> str:
    """User id of one speaker's memories (the ``memory`` condition)."""
    return f"{conv.sample_id}-{speaker}"


def raw_user(conv: Conversation) -> str:
    """User id of the conversation's raw turns (the ``raw`` condition)."""
    return f"{conv.sample_id}-raw"


def select_questions(conv: Conversation, max_questions: int | None = None,
                     max_sessions: int | None = None) -> list[Question]:
    """The conversation's scorable (category 1-4) questions in file order; with
    ``max_sessions`` only those whose evidence lies in the first ``max_sessions``
    sessions; at most ``max_questions``."""
    qs = conv.questions
    if max_sessions:
        qs = [q for q in qs if all(int(e[1:].split(":")[0]) <= max_sessions for e in q.evidence)]
    return qs[:max_questions] if max_questions is not None else list(qs)


# ---- ingestion ------------------------------------------------------------------------
def _llm_stats(mem) -> dict[str, int]:
    stats = getattr(mem.llm, "stats", None)
    if callable(stats):
        return dict(stats())
    return {"calls": int(getattr(mem.llm, "calls", 0) or 0)}


def _calls(mem) -> int:
    return int(_llm_stats(mem).get("calls", 0))


def ingest_speaker(mem, conv: Conversation, speaker: str, max_sessions: int | None = None,
                   log: Log | None = None) -> list[dict[str, Any]]:
    """Feed every session (chunk) of ``conv`` to ``mem`` as ``speaker``'s chat:
    ``Memory.add(messages, memory_user(conv, speaker), infer=True, created_at=<session
    date>, metadata={conversation, speaker, session})``. Returns one record per add call:
    ``{session, chunk, user_chars, seconds, llm_calls, changes: {ADD: n, …}, memories
    (texts added/updated), forget_path, error}``. ``forget_path``: the product's forget
    detector fired on the batch (then the add deletes instead of learning)."""
    from memory.intents import is_forget_request

    uid = memory_user(conv, speaker)
    records: list[dict[str, Any]] = []
    for turns in sessions_of(conv, max_sessions):
        chunks = [c for c in chunk_session(turns, speaker) if any(t.speaker == speaker for t in c)]
        for i, chunk in enumerate(chunks):
            session, when = chunk[0].session, chunk[0].date
            text = user_part(chunk, speaker)
            before = _calls(mem)
            start = time.perf_counter()
            error = None
            try:
                changes = mem.add(speaker_messages(chunk, speaker), uid, infer=True,
                                  created_at=when,
                                  metadata={"conversation": conv.sample_id, "speaker": speaker,
                                            "session": session})
                error = getattr(changes, "error", None)  # Memory.add's per-call reason
            except Exception as exc:  # noqa: BLE001 - a benchmark records and goes on
                changes, error = [], f"{type(exc).__name__}: {exc}"
            seconds = time.perf_counter() - start
            counts = Counter(c.event for c in changes)
            rec = {"speaker": speaker, "session": session, "chunk": i, "chunks": len(chunks),
                   "user_chars": len(text), "seconds": round(seconds, 3),
                   "llm_calls": _calls(mem) - before, "changes": dict(counts),
                   "memories": [c.text for c in changes if c.event in ("ADD", "UPDATE")],
                   "forget_path": bool(is_forget_request(text)), "error": error}
            records.append(rec)
            if log:
                part = f" chunk {i + 1}/{len(chunks)}" if len(chunks) > 1 else ""
                ch = " ".join(f"{k}{v}" for k, v in sorted(counts.items())) or "no change"
                flag = " FORGET-PATH" if rec["forget_path"] else ""
                err = f" ERROR {error}" if error else ""
                log(f"  {conv.sample_id} {speaker} session {session}{part}: {len(text)} chars "
                    f"{seconds:6.1f}s {rec['llm_calls']} LLM calls, {ch}{flag}{err}")
    return records


def ingest_memory(mem, conv: Conversation, max_sessions: int | None = None,
                  log: Log | None = None) -> dict[str, Any]:
    """Ingest ``conv`` for both speakers (:func:`ingest_speaker`); returns ``{"seconds",
    "add_calls", "llm_calls", "memories": {uid: count}, "errors", "forget_path",
    "calls": [records]}``."""
    start = time.perf_counter()
    calls: list[dict[str, Any]] = []
    for speaker in conv.speakers:
        calls += ingest_speaker(mem, conv, speaker, max_sessions, log)
    return {"seconds": round(time.perf_counter() - start, 2), "add_calls": len(calls),
            "llm_calls": sum(c["llm_calls"] for c in calls),
            "memories": {memory_user(conv, s): mem.count(memory_user(conv, s))
                         for s in conv.speakers},
            "errors": sum(1 for c in calls if c["error"]),
            "forget_path": sum(1 for c in calls if c["forget_path"]), "calls": calls}


def ingest_raw(mem, conv: Conversation, max_sessions: int | None = None) -> dict[str, Any]:
    """Store every turn of the first ``max_sessions`` sessions verbatim (``infer=False``,
    ``Speaker: text``, ``created_at`` = session date, metadata with the dia id) for
    :func:`raw_user`, in one add call. Returns ``{"seconds", "turns", "llm_calls"}``."""
    turns = [t for s in sessions_of(conv, max_sessions) for t in s]
    msgs = [{"role": "user", "content": f"{t.speaker}: {turn_content(t)}",
             "created_at": t.date,
             "metadata": {"conversation": conv.sample_id, "speaker": t.speaker,
                          "dia_id": t.dia_id, "session": t.session}}
            for t in turns if turn_content(t)]
    before = _calls(mem)
    start = time.perf_counter()
    mem.add(msgs, raw_user(conv), infer=False)
    return {"seconds": round(time.perf_counter() - start, 2), "turns": len(msgs),
            "llm_calls": _calls(mem) - before}


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
            from memory import local_llm
            local_llm.ensure_server(product)
        return Memory(load_config(env_file=env, **{**overrides, "memory_data_dir": str(data_dir)}))
    return quality_build(data_dir, **overrides)


def _load_state(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, ensure_ascii=False, default=str) + "\n",
                   encoding="utf-8")
    tmp.replace(path)


def ensure_ingested(mem, conv: Conversation, state_path: Path, max_sessions: int | None,
                    log: Log | None = None) -> dict[str, Any]:
    """Ingest ``conv`` in both stored conditions unless ``state_path`` (a JSON file next
    to the store) says this store already holds it for the same sessions and model: then
    the recorded ingestion stats are returned with ``cached: True``. A user with
    memories but no matching record (an interrupted run) is emptied and re-ingested."""
    state = _load_state(state_path)
    key = {"sessions": max_sessions or "all", "model": getattr(mem.llm, "model", None)}
    done = state.get(conv.sample_id)
    users = [memory_user(conv, s) for s in conv.speakers] + [raw_user(conv)]
    if done and done.get("key") == key and any(mem.count(u) for u in users):
        if log:
            log(f"{conv.sample_id}: ingestion cached in {state_path.parent} (skipped)")
        return {**done["stats"], "cached": True}
    for u in users:
        if mem.count(u):
            mem.delete_all(u)
    if log:
        n = len(sessions_of(conv, max_sessions))
        log(f"{conv.sample_id}: ingesting {n} sessions × 2 speakers (infer=True, one "
            f"extraction call per session per speaker) + raw turns")
    stats = {"sessions": len(sessions_of(conv, max_sessions)),
             "memory": ingest_memory(mem, conv, max_sessions, log),
             "raw": ingest_raw(mem, conv, max_sessions)}
    state = _load_state(state_path)
    state[conv.sample_id] = {"key": key, "stats": stats}
    _write_json(state_path, state)
    return {**stats, "cached": False}


def run(mem, convs: list[Conversation], *, max_questions: int | None = 40,
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
        f"≤ {meta['max_questions']} questions each (categories 1-4); top k = {meta['k']}; "
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
    ap.add_argument("--convs", default="0,1", help="conversation indices 0-9 (default: %(default)s)")
    ap.add_argument("--questions", type=int, default=40,
                    help="first N scorable questions per conversation (default: %(default)s)")
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
                _write_json(out, payload(res))

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
        _write_json(out, final)
    print(report(meta, res))
    print(f"\ntotal {final['seconds']:.0f} s")
    if out is not None:
        print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
