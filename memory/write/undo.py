"""Undo: take back every change one turn made to the memory, as a whole.

A turn is one ``Memory.add`` call or chat turn; its history events share a ``turn_id``
(``memory.write.turn_scope``). Undoing it reverses each event, newest first:

* ADD → the memory is erased (an ``UNDO`` event stays in its history);
* UPDATE → the memory gets its earlier text and embedding back from the superseded copy
  ``memory.write.versions.replace_value`` kept (re-embedded when there is none), and the copy
  is erased;
* END / FORGET → the memory is current again (``RESTORE``).

The undo's own events carry the undone turn's id, so the turn counts as undone
(``Store.last_turn`` skips it) and cannot be undone twice. A turn whose memories a later
turn changed again is refused (undo the later one first): reversing it would overwrite
what the user said since. Everything is one store transaction under the user's lock.
"""
from __future__ import annotations

from datetime import datetime

from memory.write import turn_scope
from memory.write.profile import refresh_profile
from memory.types import Change, Changes, HistoryEvent, utcnow
from memory.write.versions import VERSION_OF_EVENT


class UndoError(ValueError):
    """The turn cannot be undone (already undone, unknown, or changed since); the
    message says why in one line for the user. Nothing was changed."""


def undo_turn(mem, uid: str, turn_id: str | None = None, now: datetime | None = None) -> Changes:
    """Undo turn ``turn_id`` of user ``uid`` (default: the latest turn that changed a
    memory and was not undone) on ``mem`` (a Memory: ``store``, ``embedder``,
    ``user_locks``). Returns one Change per reversed event — ``UNDO`` (an ADD or
    UPDATE taken back; ``text`` what the memory says now, None-like "" when erased) or
    ``RESTORE`` — with ``turn_id`` set; an empty Changes when there is nothing to undo.
    Raises UndoError when ``turn_id`` is not the user's, is already undone, or a later
    turn changed one of its memories."""
    store = mem.store
    now = now or utcnow()
    with mem.user_locks.for_user(uid):
        tid = turn_id or store.last_turn(uid)
        if tid is None:
            return Changes()
        events = store.turn_history(uid, tid)
        if not events:
            raise UndoError("there is no such turn to undo")
        if any(e.event in ("UNDO", "RESTORE") for e in events):
            raise UndoError("this turn was already undone")
        _check_not_changed_since(store, uid, tid, events)
        changes: list[Change] = []
        by_memory: dict[str, list[HistoryEvent]] = {}
        for ev in events:
            by_memory.setdefault(ev.memory_id, []).append(ev)
        with turn_scope.turn(tid), store.transaction():
            for mid, evs in reversed(list(by_memory.items())):
                changes += _reverse_memory(mem, uid, mid, evs, now)
            if changes:
                refresh_profile(store, uid, now)
    return Changes(changes, turn_id=tid)


def _check_not_changed_since(store, uid: str, tid: str, events: list[HistoryEvent]) -> None:
    """Raise UndoError when a turn other than ``tid`` (and not undone itself) changed
    one of the turn's memories after it."""
    for mid in dict.fromkeys(e.memory_id for e in events):
        later = store.history(uid, mid)
        last_own = max(i for i, e in enumerate(later) if e.turn_id == tid)
        undone = {e.turn_id for e in later if e.event in ("UNDO", "RESTORE")}
        if any(e.turn_id != tid and e.turn_id not in undone and e.event != "NONE"
               for e in later[last_own + 1:]):
            text = next((e.new_text or e.old_text for e in reversed(later) if e.new_text or e.old_text), "")
            raise UndoError(f"a later message changed “{text[:60]}” again; undo that one first")


def _reverse_memory(mem, uid: str, mid: str, evs: list[HistoryEvent],
                    now: datetime) -> list[Change]:
    """Reverse what one turn did to memory ``mid`` (its events ``evs``), whatever their
    order (a store may return events of one instant in any order): a memory the turn
    added is erased; otherwise an ended or forgotten one is restored and an updated one
    gets the text it had before the turn's first UPDATE."""
    store = mem.store
    rec = store.get_any_memory(uid, mid)
    if rec is None:
        return []
    kinds = {e.event for e in evs}
    if "ADD" in kinds:
        store.delete_memory(uid, rec.id, history=HistoryEvent(
            rec.id, uid, "UNDO", rec.text, None, "user", at=now))
        return [Change("UNDO", rec.id, "", rec.text, rec.type)]
    out: list[Change] = []
    if kinds & {"END", "FORGET", "DELETE"} and not rec.current:
        store.restore_memory(uid, rec.id, history=HistoryEvent(
            rec.id, uid, "RESTORE", None, rec.text, "user", at=now))
        out.append(Change("RESTORE", rec.id, rec.text, type=rec.type))
    updates = [e for e in evs if e.event == "UPDATE" and e.old_text is not None]
    if updates:
        first = min(updates, key=lambda e: e.at)
        out.append(_revert_update(mem, uid, rec, first, [e.id for e in updates], now))
    return out


def _revert_update(mem, uid: str, rec, first: HistoryEvent, event_ids: list[str],
                   now: datetime) -> Change:
    """Give ``rec`` back the text before UPDATE ``first`` (with the embedding of the
    superseded copy that update kept, else a new one) and erase the copies the turn's
    UPDATEs (``event_ids``) kept."""
    store = mem.store
    copies = [r for r in store.past_memories(uid, statuses=("superseded",), limit=1000)
              if r.superseded_by == rec.id and r.metadata.get(VERSION_OF_EVENT) in event_ids]
    copy = next((r for r in copies if r.metadata.get(VERSION_OF_EVENT) == first.id), None)
    if copy is not None:  # only this one's vector is read
        copy = store.get_any_memory(uid, copy.id, with_embedding=True)
    vec = copy.embedding if copy is not None and copy.embedding is not None \
        else mem.embedder.embed_documents([first.old_text])[0].tolist()
    store.update_memory(uid, rec.id, text=first.old_text, embedding=vec,
                        fields={"updated_at": now}, history=HistoryEvent(
                            rec.id, uid, "UNDO", rec.text, first.old_text, "user", at=now))
    for c in copies:
        store.delete_memory(uid, c.id)
    return Change("UNDO", rec.id, first.old_text, rec.text, rec.type)
