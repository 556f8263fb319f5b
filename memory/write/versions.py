"""Supersede instead of delete: how the write path changes a memory without losing what it said.

Facts are kept over time the way Graphiti keeps edges (``valid_at``/``invalid_at``,
``../shared/design/TEMPORAL.md``): a value is never overwritten or erased by the model
or a rule; it stops being current and stays, dated, as the user's past.

* :func:`replace_value` — an UPDATE: the memory keeps its id and takes the new text; its
  earlier value is kept as a ``superseded`` copy (``superseded_by`` = the memory, dated
  ``valid_from``…``invalid_at``, with its embedding, so past questions can find it).
* :func:`end` — the memory no longer holds ("I quit smoking", a move's old workplace):
  ``ended``, kept as past.
* :func:`tombstone` — the user asked to forget it: ``forgotten``; out of search, lists and
  prompts at once, purged after the retention (``memory.write.retention``), restorable by undo
  until then.

Each writes its history event (``UPDATE`` / ``END`` / ``FORGET``) in the same store
transaction; undo (``memory.write.undo``) reverses all three.
"""
from __future__ import annotations

from datetime import datetime

from memory.types import HistoryEvent, MemoryRecord, new_id

#: ``MemoryRecord.metadata`` key of a superseded copy: the history event that made it,
#: so undo finds the copy of exactly that UPDATE.
VERSION_OF_EVENT = "version_of_event"


def reason_of(actor: str, rule: str | None = None) -> str:
    """The ``invalid_reason`` for a change made by ``actor`` (``llm``, ``user``,
    ``resource:<file>``), or by the write-path rule ``rule`` (→ ``rule:<rule>``)."""
    return f"rule:{rule}" if rule else actor


def replace_value(store, uid: str, target: MemoryRecord, text: str, embedding: list[float],
                  fields: dict, actor: str, at: datetime, reason: str | None = None) -> bool:
    """Give memory ``target`` of ``uid`` the new ``text`` (its ``embedding``, other
    ``fields`` as ``Store.update_memory`` takes them), keeping its earlier value as a
    ``superseded`` row in the same transaction, with an UPDATE history event by
    ``actor`` at ``at``. Returns False (nothing written) when the memory is gone or no
    longer current."""
    with store.transaction():
        old = store.get_memory(uid, target.id, with_embedding=True)
        if old is None:
            return False
        event = HistoryEvent(old.id, uid, "UPDATE", old.text, text, actor, at=at)
        if old.text != text and old.embedding is not None:
            copy = MemoryRecord(
                id=new_id(), user_id=uid, text=old.text, type=old.type,
                thread_id=old.thread_id, importance=old.importance, tags=list(old.tags),
                source=old.source, metadata={**old.metadata, VERSION_OF_EVENT: event.id},
                created_at=old.created_at, updated_at=at, embedding=old.embedding,
                status="superseded", valid_from=old.valid_from or old.created_at,
                invalid_at=at, superseded_by=old.id, invalid_reason=reason or actor)
            store.insert_memories([copy])
        return store.update_memory(uid, old.id, text=text, embedding=embedding,
                                   fields=fields, history=event)


def end(store, uid: str, rec: MemoryRecord, actor: str, at: datetime,
        reason: str | None = None) -> bool:
    """Mark ``rec`` (a current memory of ``uid``) ``ended`` at ``at`` because of
    ``reason`` (default ``actor``), with an END history event. False when it is gone."""
    return store.invalidate_memory(
        uid, rec.id, status="ended", at=at, reason=reason or actor,
        history=HistoryEvent(rec.id, uid, "END", rec.text, None, actor, at=at))


def tombstone(store, uid: str, rec: MemoryRecord, actor: str, at: datetime) -> bool:
    """Mark ``rec`` ``forgotten`` at ``at`` (the user asked), with a FORGET history
    event. False when it is gone."""
    return store.invalidate_memory(
        uid, rec.id, status="forgotten", at=at, reason=actor,
        history=HistoryEvent(rec.id, uid, "FORGET", rec.text, None, actor, at=at))
