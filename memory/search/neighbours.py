"""Conversational neighbours of imported chat messages: the message just before and just after a memory in its own conversation, found through the fields the product records (``source="raw"``, ``conversation_id``, ``created_at``), for search.

A verbatim chat message ("Yes, last Friday!") often means something only next to the
message it answers. ``Memory.add(messages, user, infer=False)`` stores each message as
one raw memory, in order, all under one ``conversation_id``: the ``thread_id`` when the
caller names one, else an id made for that call (when it has several messages) —
messages that arrive in one call are a conversation whether or not the caller names a
thread (issue 26: LoCoMo imported one ``add`` per session without thread ids scored
R@5/R@10 .590/.640 on the report half before, .674/.737 now, as with thread ids;
bench/README.md). :func:`thread_neighbours` asks the store for the messages around the
memories a search found (ids only, one query), so hybrid search can let a matching
message lift the one that answers it (and pull that answer into the candidates even when
it shares no word with the query). Memories extracted by the LLM (``source`` other than
``"raw"``) have no conversational neighbours.

Order inside a conversation: ``created_at``, then storage order (the SQLite store keeps
insertion order for equal timestamps, so a chat imported with one date per session keeps
its turn order; the TiDB store breaks such ties by id, i.e. arbitrarily).
"""
from __future__ import annotations

from memory.types import MemoryRecord

#: Messages of one conversation further apart than this are not neighbours (seconds).
WINDOW_S = 3600.0


def is_message(rec: MemoryRecord) -> bool:
    """True when ``rec`` is a verbatim message of a conversation (a raw import: its
    thread, or the ``Memory.add`` call that stored it)."""
    return rec.source == "raw" and bool(rec.conversation_id)


def thread_neighbours(store, user_id: str, records: list[MemoryRecord],
                      window_s: float = WINDOW_S
                      ) -> dict[str, tuple[str | None, str | None]]:
    """The ids of the previous and next message of each message among ``records``.

    Takes the store, the owner ``user_id`` and the records (any mix; only
    :func:`is_message` ones are looked up, by one ``store.message_neighbours`` call).
    Returns ``{record_id: (previous_id or None, next_id or None)}`` for the looked-up
    records; a neighbour more than ``window_s`` seconds away is None.
    """
    ids = [rec.id for rec in records if is_message(rec)]
    return store.message_neighbours(user_id, ids, window_s) if ids else {}


def with_neighbours(store, user_id: str, fused: dict[str, float],
                    records: dict[str, MemoryRecord], prev_share: float, next_share: float,
                    pool: int = 20) -> dict[str, float]:
    """Add to each chat message ``prev_share`` × the fused score of the message before
    it and ``next_share`` × that of the message after it (same conversation), for the
    ``pool`` best candidates and their neighbours; neighbours not yet among
    the candidates join them (their records, read by one ``store.get_memories`` call,
    are added to ``records``). Returns the new ``{id: score}``."""
    top = sorted(fused, key=lambda m: -fused[m])[:pool]
    found = thread_neighbours(store, user_id, [records[m] for m in top if m in records])
    pairs: set[tuple[str, str]] = set()  # (earlier message, the one right after it)
    for mid, (prev, nxt) in found.items():
        if prev is not None:
            pairs.add((prev, mid))
        if nxt is not None:
            pairs.add((mid, nxt))
    missing = {m for pair in pairs for m in pair if m not in records}
    if missing:
        records.update((r.id, r) for r in store.get_memories(user_id, sorted(missing)))
    out = dict(fused)
    for first, second in pairs:
        if first not in records or second not in records:
            continue  # gone between the two reads
        out[second] = out.get(second, 0.0) + prev_share * fused.get(first, 0.0)
        out[first] = out.get(first, 0.0) + next_share * fused.get(second, 0.0)
    return out


def with_thread_share(fused: dict[str, float], records: dict[str, MemoryRecord],
                      share: float) -> dict[str, float]:
    """Add to each chat message (:func:`memory.search.neighbours.is_message`) ``share`` × the best
    fused score of the *other* candidates of its conversation (thread or ``add`` call).
    Returns the new ``{id: score}``."""
    best: dict[str, list[float]] = {}  # conversation -> two best scores
    for mid, sc in fused.items():
        rec = records.get(mid)
        if rec is not None and is_message(rec):
            top = best.setdefault(rec.conversation_id, [0.0, 0.0])
            if sc > top[0]:
                top[:] = [sc, top[0]]
            elif sc > top[1]:
                top[1] = sc
    out = dict(fused)
    for mid, sc in fused.items():
        rec = records.get(mid)
        if rec is not None and is_message(rec):
            top = best[rec.conversation_id]
            out[mid] = sc + share * (top[1] if sc >= top[0] else top[0])
    return out
