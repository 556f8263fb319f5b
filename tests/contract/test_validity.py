"""Store contract: validity — superseding, ending, forgetting and restoring a memory, the
past versions, the purge of forgotten memories, and one turn's history."""
from __future__ import annotations

from datetime import timedelta

import pytest

from memory.types import HistoryEvent, utcnow

A, B = "alice", "bob"


def test_invalidated_memory_leaves_every_current_view(store, mk, vec):
    keep, gone = mk(A, "Lives in Lyon", seed=1), mk(A, "Works at Acme", seed=2)
    store.insert_memories([keep, gone])
    at = utcnow()
    ok = store.invalidate_memory(A, gone.id, status="ended", at=at, reason="rule:ceased",
                                 history=HistoryEvent(gone.id, A, "END", gone.text, None,
                                                      "rule:ceased", at=at, turn_id="t1"))
    assert ok
    assert store.get_memory(A, gone.id) is None
    assert [r.id for r in store.list_memories(A)] == [keep.id]
    assert store.count_memories(A) == 1
    assert store.get_memories(A, [gone.id, keep.id])[0].id == keep.id
    assert gone.id not in [mid for mid, _ in store.vector_search(A, vec(2), 5)]
    assert store.text_search(A, "Acme", 5) == []
    past = store.get_any_memory(A, gone.id)
    assert (past.status, past.invalid_reason, past.text) == ("ended", "rule:ceased", "Works at Acme")
    assert abs((past.invalid_at - at).total_seconds()) < 1e-3
    assert [e.event for e in store.history(A, gone.id)] == ["END"]
    assert store.history(A, gone.id)[0].turn_id == "t1"


def test_invalidate_only_current_and_only_own(store, mk):
    rec = mk(A, "Plays chess")
    store.insert_memories([rec])
    assert not store.invalidate_memory(B, rec.id, status="ended", at=utcnow(), reason="llm")
    assert store.get_memory(A, rec.id) is not None
    assert store.invalidate_memory(A, rec.id, status="forgotten", at=utcnow(), reason="user")
    assert not store.invalidate_memory(A, rec.id, status="ended", at=utcnow(), reason="llm")
    with pytest.raises(ValueError):
        store.invalidate_memory(A, rec.id, status="current", at=utcnow(), reason="llm")
    with pytest.raises(ValueError):
        store.invalidate_memory(A, rec.id, status="vanished", at=utcnow(), reason="llm")


def test_restore_brings_a_memory_back_to_search(store, mk, vec):
    rec = mk(A, "Drinks green tea", seed=5)
    store.insert_memories([rec])
    store.invalidate_memory(A, rec.id, status="forgotten", at=utcnow(), reason="user")
    assert not store.restore_memory(B, rec.id)
    assert store.restore_memory(A, rec.id, history=HistoryEvent(rec.id, A, "RESTORE", None,
                                                                rec.text, "user"))
    got = store.get_memory(A, rec.id)
    assert got is not None and got.status == "current" and got.invalid_at is None
    assert rec.id in [mid for mid, _ in store.vector_search(A, vec(5), 3)]
    assert not store.restore_memory(A, rec.id)  # already current


def test_superseded_version_and_past_memories(store, mk):
    cur, old = mk(A, "Lives in Berlin", seed=7), mk(A, "Lives in Munich", seed=8)
    ended = mk(A, "Smokes", seed=9)
    store.insert_memories([cur, old, ended])
    t0 = utcnow()
    store.invalidate_memory(A, old.id, status="superseded", at=t0, reason="llm",
                            superseded_by=cur.id)
    store.invalidate_memory(A, ended.id, status="ended", at=t0 + timedelta(seconds=1),
                            reason="llm")
    past = store.past_memories(A, with_embedding=True)
    assert [r.id for r in past] == [ended.id, old.id]  # most recently invalidated first
    assert past[1].superseded_by == cur.id and past[1].embedding is not None
    assert store.past_memories(B) == []
    assert store.past_memories(A, statuses=("forgotten",)) == []
    # an explicit delete of the current memory erases its earlier versions too
    assert store.delete_memory(A, cur.id)
    assert store.get_any_memory(A, old.id) is None
    assert store.get_any_memory(A, ended.id) is not None


def test_insert_keeps_a_past_memory_past(store, mk):
    rec = mk(A, "Lived in Oslo", status="ended", invalid_at=utcnow(), invalid_reason="import")
    store.insert_memories([rec])
    assert store.get_memory(A, rec.id) is None
    assert store.past_memories(A)[0].invalid_reason == "import"
    with pytest.raises(ValueError):
        store.insert_memories([mk(A, "bad", status="ended")])  # no invalid_at


def test_purge_forgotten_after_retention_only(store, mk):
    old, fresh, ended = mk(A, "old secret"), mk(A, "fresh secret"), mk(A, "ended habit")
    other = mk(B, "bob's forgotten")
    store.insert_memories([old, fresh, ended, other])
    now = utcnow()
    store.invalidate_memory(A, old.id, status="forgotten", at=now - timedelta(hours=30), reason="user")
    store.invalidate_memory(A, fresh.id, status="forgotten", at=now - timedelta(hours=1), reason="user")
    store.invalidate_memory(A, ended.id, status="ended", at=now - timedelta(hours=30), reason="llm")
    store.invalidate_memory(B, other.id, status="forgotten", at=now - timedelta(hours=30), reason="user")
    assert store.purge_forgotten(A, now - timedelta(hours=24)) == 1
    assert store.get_any_memory(A, old.id) is None
    assert store.get_any_memory(A, fresh.id) is not None
    assert store.get_any_memory(A, ended.id) is not None  # the past is not purged
    assert store.get_any_memory(B, other.id) is not None  # another user's never


def test_turn_history_and_last_turn(store, mk):
    a, b = mk(A, "one"), mk(A, "two")
    store.insert_memories([a], [HistoryEvent(a.id, A, "ADD", None, "one", "llm", turn_id="t1")])
    store.insert_memories([b], [HistoryEvent(b.id, A, "ADD", None, "two", "llm", turn_id="t2")])
    store.add_history([HistoryEvent(b.id, B, "ADD", None, "x", "llm", turn_id="t9")])
    assert [e.memory_id for e in store.turn_history(A, "t2")] == [b.id]
    assert store.turn_history(B, "t2") == []
    assert store.last_turn(A) == "t2"
    store.add_history([HistoryEvent(b.id, A, "UNDO", "two", None, "user", turn_id="t2")])
    assert store.last_turn(A) == "t1"
    assert store.last_turn("nobody") is None
