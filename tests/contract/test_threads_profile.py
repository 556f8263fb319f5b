"""Store contract: profiles, threads and messages."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from memory.types import Message, Thread, new_id

A, B = "alice", "bob"
T0 = datetime(2024, 7, 1, 9, 0, 0, 250000, tzinfo=timezone.utc)


def msg(thread: Thread, content: str, role: str = "user", at: datetime | None = None,
        user_id: str | None = None, **kw) -> Message:
    return Message(id=kw.pop("id", new_id()), thread_id=thread.id,
                   user_id=user_id or thread.user_id, role=role, content=content,
                   created_at=at or T0, **kw)


def test_profile_round_trip_and_isolation(store):
    assert store.get_profile(A) == ("", None)
    store.set_profile(A, "Name: Alice\n喜欢: 茶", T0)
    assert store.get_profile(A) == ("Name: Alice\n喜欢: 茶", T0)
    later = T0 + timedelta(days=1)
    store.set_profile(A, "Name: Alice (updated)", later)
    text, at = store.get_profile(A)
    assert text == "Name: Alice (updated)" and at == later and at.utcoffset() == timedelta(0)
    assert store.get_profile(B) == ("", None)


def test_thread_round_trip_update_and_order(store):
    t1 = Thread(id=new_id(), user_id=A, title="First", created_at=T0, updated_at=T0)
    t2 = Thread(id=new_id(), user_id=A, title="Second", created_at=T0,
                updated_at=T0 + timedelta(hours=1))
    store.upsert_thread(t1)
    store.upsert_thread(t2)
    assert store.get_thread(A, t1.id) == t1
    assert [t.id for t in store.list_threads(A)] == [t2.id, t1.id]
    t1.title, t1.summary, t1.summarized_upto = "Renamed", "they talked", 4
    t1.updated_at = T0 + timedelta(hours=2)
    store.upsert_thread(t1)
    got = store.get_thread(A, t1.id)
    assert (got.title, got.summary, got.summarized_upto, got.updated_at) == \
        ("Renamed", "they talked", 4, T0 + timedelta(hours=2))
    assert got.created_at == T0
    assert [t.id for t in store.list_threads(A)] == [t1.id, t2.id]
    assert [t.id for t in store.list_threads(A, limit=1)] == [t1.id]


def test_threads_are_isolated(store):
    t = Thread(id=new_id(), user_id=A, title="Alice's chat", created_at=T0, updated_at=T0)
    store.upsert_thread(t)
    store.add_message(msg(t, "secret"))
    assert store.get_thread(B, t.id) is None
    assert store.list_threads(B) == []
    assert store.get_messages(B, t.id) == []
    assert store.delete_thread(B, t.id) is False
    hijack = Thread(id=t.id, user_id=B, title="Bob's now", created_at=T0, updated_at=T0)
    with pytest.raises(ValueError):
        store.upsert_thread(hijack)
    with pytest.raises(ValueError):
        store.add_message(msg(t, "bob writes into alice's thread", user_id=B))
    assert store.get_thread(A, t.id).title == "Alice's chat"
    assert [m.content for m in store.get_messages(A, t.id)] == ["secret"]


def test_messages_get_seq_in_order_and_bump_thread(store):
    t = Thread(id=new_id(), user_id=A, title="chat", created_at=T0, updated_at=T0)
    store.upsert_thread(t)
    stored = [store.add_message(msg(t, f"m{i}", role="user" if i % 2 == 0 else "assistant",
                                    at=T0 + timedelta(minutes=i), metadata={"i": i}))
              for i in range(5)]
    assert [m.seq for m in stored] == [0, 1, 2, 3, 4]
    got = store.get_messages(A, t.id)
    assert [(m.seq, m.content, m.role, m.metadata) for m in got] == \
        [(i, f"m{i}", "user" if i % 2 == 0 else "assistant", {"i": i}) for i in range(5)]
    assert got[3].created_at == T0 + timedelta(minutes=3)
    assert got[3].created_at.utcoffset() == timedelta(0)
    assert [m.content for m in store.get_messages(A, t.id, after_seq=2)] == ["m3", "m4"]
    assert [m.content for m in store.get_messages(A, t.id, limit=2)] == ["m3", "m4"]
    assert [m.content for m in store.get_messages(A, t.id, after_seq=0, limit=10)] == \
        ["m1", "m2", "m3", "m4"]
    assert store.get_thread(A, t.id).updated_at == T0 + timedelta(minutes=4)


def test_seq_is_per_thread(store):
    t1 = Thread(id=new_id(), user_id=A, title="one", created_at=T0, updated_at=T0)
    t2 = Thread(id=new_id(), user_id=A, title="two", created_at=T0, updated_at=T0)
    store.upsert_thread(t1)
    store.upsert_thread(t2)
    store.add_message(msg(t1, "a"))
    store.add_message(msg(t1, "b"))
    assert store.add_message(msg(t2, "c")).seq == 0


def test_delete_thread_scope(store, mk):
    keep = Thread(id=new_id(), user_id=A, title="keep", created_at=T0, updated_at=T0)
    drop = Thread(id=new_id(), user_id=A, title="drop", created_at=T0, updated_at=T0)
    bobs = Thread(id=new_id(), user_id=B, title="bob", created_at=T0, updated_at=T0)
    for t in (keep, drop, bobs):
        store.upsert_thread(t)
        store.add_message(msg(t, f"hello {t.title}"))
    rec = mk(A, "memory from the dropped thread", thread_id=drop.id)
    store.insert_memories([rec])
    assert store.delete_thread(A, drop.id) is True
    assert store.delete_thread(A, drop.id) is False
    assert store.get_thread(A, drop.id) is None
    assert store.get_messages(A, drop.id) == []
    assert [t.id for t in store.list_threads(A)] == [keep.id]
    assert [m.content for m in store.get_messages(A, keep.id)] == ["hello keep"]
    assert [m.content for m in store.get_messages(B, bobs.id)] == ["hello bob"]
    assert store.get_memory(A, rec.id) is not None  # memories outlive their thread
