"""Conversational neighbours of imported chat messages: the message just before and just after a memory in its own thread, found through the fields the product records (``source="raw"``, ``thread_id``, ``created_at``), for search.

A verbatim chat message ("Yes, last Friday!") often means something only next to the
message it answers. ``Memory.add(messages, user, thread_id=..., infer=False)`` stores each
message as one raw memory of that thread, in order; :func:`thread_neighbours` reads the
thread back around the memories a search found, so hybrid search can let a matching
message lift the one that answers it (and pull that answer into the candidates even when
it shares no word with the query). Memories extracted by the LLM (``source`` other than
``"raw"``) have no conversational neighbours.

Order inside a thread: ``created_at``, then storage order (the SQLite store keeps
insertion order for equal timestamps, so a chat imported with one date per session keeps
its turn order; the TiDB store breaks such ties by id, i.e. arbitrarily).
"""
from __future__ import annotations

from datetime import timedelta

from memory.types import MemoryRecord

#: Messages of one thread further apart than this are not neighbours (seconds).
WINDOW_S = 3600.0
#: At most this many memories are read per thread around the found ones.
MAX_ROWS = 400


def is_message(rec: MemoryRecord) -> bool:
    """True when ``rec`` is a verbatim message of a thread (a raw import with a thread)."""
    return rec.source == "raw" and bool(rec.thread_id)


def thread_neighbours(store, user_id: str, records: list[MemoryRecord],
                      window_s: float = WINDOW_S, max_rows: int = MAX_ROWS
                      ) -> dict[str, tuple[MemoryRecord | None, MemoryRecord | None]]:
    """The previous and next message of each message among ``records``.

    Takes the store, the owner ``user_id`` and the records (any mix; only
    :func:`is_message` ones are looked up). For each thread among them, one
    ``store.list_memories`` call reads the user's memories created between the earliest
    found message minus ``window_s`` seconds and the latest plus ``window_s`` (oldest
    first, at most ``max_rows``), keeps that thread's messages, and finds each record's
    neighbours there; a neighbour more than ``window_s`` away is dropped. Returns
    ``{record_id: (previous or None, next or None)}`` for the looked-up records.
    """
    by_thread: dict[str, list[MemoryRecord]] = {}
    for rec in records:
        if is_message(rec):
            by_thread.setdefault(rec.thread_id, []).append(rec)
    window = timedelta(seconds=window_s)
    out: dict[str, tuple[MemoryRecord | None, MemoryRecord | None]] = {}
    for thread_id, found in by_thread.items():
        since = min(r.created_at for r in found) - window
        until = max(r.created_at for r in found) + window
        rows = [r for r in store.list_memories(user_id, limit=max_rows, since=since,
                                               until=until, order="created_asc")
                if r.thread_id == thread_id and is_message(r)]
        pos = {r.id: i for i, r in enumerate(rows)}
        for rec in found:
            i = pos.get(rec.id)
            if i is None:
                continue
            prev = rows[i - 1] if i > 0 else None
            nxt = rows[i + 1] if i + 1 < len(rows) else None
            if prev is not None and rec.created_at - prev.created_at > window:
                prev = None
            if nxt is not None and nxt.created_at - rec.created_at > window:
                nxt = None
            out[rec.id] = (prev, nxt)
    return out


def with_neighbours(store, user_id: str, fused: dict[str, float],
                    records: dict[str, MemoryRecord], prev_share: float, next_share: float,
                    pool: int = 20) -> dict[str, float]:
    """Add to each chat message ``prev_share`` × the fused score of the message before
    it and ``next_share`` × that of the message after it (same thread), for the
    ``pool`` best candidates and their neighbours; neighbours not yet among
    the candidates join them (their records are added to ``records``). Returns the new
    ``{id: score}``."""
    top = sorted(fused, key=lambda m: -fused[m])[:pool]
    found = thread_neighbours(store, user_id, [records[m] for m in top if m in records])
    pairs: set[tuple[str, str]] = set()  # (earlier message, the one right after it)
    for mid, (prev, nxt) in found.items():
        for rec in (prev, nxt):
            if rec is not None:
                records.setdefault(rec.id, rec)
        if prev is not None:
            pairs.add((prev.id, mid))
        if nxt is not None:
            pairs.add((mid, nxt.id))
    out = dict(fused)
    for first, second in pairs:
        out[second] = out.get(second, 0.0) + prev_share * fused.get(first, 0.0)
        out[first] = out.get(first, 0.0) + next_share * fused.get(second, 0.0)
    return out


def with_thread_share(fused: dict[str, float], records: dict[str, MemoryRecord],
                      share: float) -> dict[str, float]:
    """Add to each chat message (:func:`memory.neighbours.is_message`) ``share`` × the best
    fused score of the *other* candidates of its thread. Returns the new ``{id: score}``."""
    best: dict[str, list[float]] = {}  # thread -> two best scores
    for mid, sc in fused.items():
        rec = records.get(mid)
        if rec is not None and is_message(rec):
            top = best.setdefault(rec.thread_id, [0.0, 0.0])
            if sc > top[0]:
                top[:] = [sc, top[0]]
            elif sc > top[1]:
                top[1] = sc
    out = dict(fused)
    for mid, sc in fused.items():
        rec = records.get(mid)
        if rec is not None and is_message(rec):
            top = best[rec.thread_id]
            out[mid] = sc + share * (top[1] if sc >= top[0] else top[0])
    return out
