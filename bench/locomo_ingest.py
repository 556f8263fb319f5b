"""LoCoMo conversations fed to the memory pipeline for bench/locomo_answers.py.

Both speakers are people and the pipeline learns only from ``user`` messages, so a
conversation is ingested twice: user ``<conv>-<speaker A>`` gets every session as
``messages=[...]`` with A's turns as ``user`` and B's as ``assistant`` (and the other way
round for B), one ``Memory.add(infer=True)`` per session per speaker, a speaker's part
split into whole-turn chunks of at most :data:`CHUNK_CHARS` (the product cuts the
extractor's input at 4,000 characters). The raw condition stores every turn verbatim
(``infer=False``) for ``<conv>-raw``. A JSON state file next to the store lets a re-run
skip a conversation already ingested with the same model and sessions.
"""
from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable

from bench.common import Conversation, Turn, write_json_file

#: a speaker's part of one ``Memory.add`` stays below the extractor's 4,000-char cut
CHUNK_CHARS = 3500
STATE_FILE = "locomo_answers_state.json"

Log = Callable[[str], None]


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
    from memory.write.intents import is_forget_request

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


def _load_state(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


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
    write_json_file(state_path, state)
    return {**stats, "cached": False}

