"""Store contract: memory rows — insert, read, list, update, delete, history, isolation."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from memory.types import HistoryEvent, MemoryRecord, new_id, utcnow

A, B = "alice", "bob"


def ids(records):
    return sorted(r.id for r in records)


# ---- insert / get ------------------------------------------------------------------
def test_insert_and_get_round_trip_every_field(store, mk):
    created = datetime(2023, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
    rec = mk(A, "Alice lives in Lyon 🇫🇷 — naïve café, שלום, 编程", type="profile",
             thread_id="t-1", importance=5, tags=["home", "城市"], source="import",
             metadata={"k": [1, 2], "nested": {"x": "ü"}}, created_at=created,
             updated_at=created + timedelta(hours=1),
             last_accessed_at=created + timedelta(days=1, microseconds=7),
             expires_at=utcnow() + timedelta(days=365), access_count=4)
    store.insert_memories([rec])
    got = store.get_memory(A, rec.id, with_embedding=True)
    assert got is not None
    for name in ("id", "user_id", "text", "type", "thread_id", "importance", "tags", "source",
                 "metadata", "created_at", "updated_at", "last_accessed_at", "expires_at",
                 "access_count"):
        assert getattr(got, name) == getattr(rec, name), name
    assert got.embedding == pytest.approx(rec.embedding, abs=1e-6)
    assert store.get_memory(A, rec.id).embedding is None  # not read unless asked


def test_datetimes_come_back_aware_utc(store, mk):
    naive = datetime(2024, 1, 2, 3, 4, 5, 678901)  # naive means UTC
    plus2 = datetime(2024, 1, 2, 5, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    r1 = mk(A, "naive", created_at=naive, updated_at=naive)
    r2 = mk(A, "offset", created_at=plus2, updated_at=plus2)
    store.insert_memories([r1, r2])
    for rec in store.get_memories(A, [r1.id, r2.id]):
        assert rec.created_at.tzinfo is not None
        assert rec.created_at.utcoffset() == timedelta(0)
        assert rec.created_at == datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)


def test_other_users_id_behaves_as_absent(store, mk, event):
    rec = mk(A, "Alice's secret")
    store.insert_memories([rec], [event(rec)])
    assert store.get_memory(B, rec.id) is None
    assert store.get_memories(B, [rec.id]) == []
    assert store.list_memories(B) == []
    assert store.count_memories(B) == 0
    assert store.history(B, rec.id) == []
    assert store.all_history(B) == []
    assert store.update_memory(B, rec.id, fields={"importance": 1}) is False
    assert store.delete_memory(B, rec.id) is False
    store.touch_memories(B, [rec.id], utcnow())
    assert list(store.iter_memories(B)) == []
    # nothing of Alice's changed
    got = store.get_memory(A, rec.id)
    assert got.importance == rec.importance and got.access_count == 0
    assert len(store.history(A, rec.id)) == 1


def test_get_memories_skips_unknown_and_foreign_ids(store, mk):
    a1, a2, b1 = mk(A, "a1"), mk(A, "a2"), mk(B, "b1")
    store.insert_memories([a1, a2, b1])
    assert ids(store.get_memories(A, [a1.id, b1.id, "nope", a2.id, a1.id])) == ids([a1, a2])
    assert store.get_memories(A, []) == []


def test_insert_requires_embedding_of_store_dimension(store, mk, vec):
    bad = mk(A, "short vector", embedding=[0.5, 0.5])
    with pytest.raises(ValueError):
        store.insert_memories([bad])
    none = MemoryRecord(id=new_id(), user_id=A, text="no vector")
    with pytest.raises(ValueError):
        store.insert_memories([none])
    assert store.count_memories(A) == 0


def test_failing_batch_writes_nothing(store, mk, event):
    good1, good2 = mk(A, "first good"), mk(A, "second good")
    bad = mk(A, "wrong dimension", embedding=[1.0] * 5)
    with pytest.raises(ValueError):
        store.insert_memories([good1, bad, good2], [event(good1), event(good2)])
    assert store.count_memories(A) == 0
    assert store.list_memories(A) == []
    assert store.all_history(A) == []
    assert store.text_search(A, "good", 10) == []
    assert store.vector_search(A, good1.embedding, 10) == []


def test_reinsert_same_id_same_user_replaces(store, mk, vec):
    rec = mk(A, "old text about tennis", seed=1)
    store.insert_memories([rec])
    newer = mk(A, "new text about chess", seed=2, id=rec.id, importance=5)
    store.insert_memories([newer])
    store.insert_memories([newer])  # idempotent
    assert store.count_memories(A) == 1
    got = store.get_memory(A, rec.id, with_embedding=True)
    assert got.text == "new text about chess" and got.importance == 5
    assert got.embedding == pytest.approx(newer.embedding, abs=1e-6)
    hits = store.vector_search(A, vec(2), 5)
    assert [m for m, _ in hits] == [rec.id]  # one vector row, the new one
    assert hits[0][1] == pytest.approx(0.0, abs=1e-5)


@pytest.mark.fulltext
def test_reinsert_same_id_replaces_the_text_row(store, mk):
    rec = mk(A, "old text about tennis", seed=1)
    store.insert_memories([rec])
    store.insert_memories([mk(A, "new text about chess", seed=2, id=rec.id)])
    assert store.text_search(A, "tennis", 5) == []
    assert [m for m, _ in store.text_search(A, "chess", 5)] == [rec.id]


def test_reinsert_id_of_other_user_raises_and_writes_nothing(store, mk):
    rec = mk(A, "Alice's memory")
    store.insert_memories([rec])
    hijack = mk(B, "Bob overwrites", id=rec.id)
    other = mk(B, "Bob's innocent memory")
    with pytest.raises(ValueError):
        store.insert_memories([other, hijack])
    assert store.get_memory(A, rec.id).text == "Alice's memory"
    assert store.count_memories(B) == 0


# ---- list / count ------------------------------------------------------------------
def test_list_orders_filters_and_pages(store, mk):
    t0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
    recs = [mk(A, f"memory {i}", type="fact" if i % 2 else "preference",
               created_at=t0 + timedelta(days=i)) for i in range(6)]
    store.insert_memories(recs)
    store.insert_memories([mk(B, "bob's", created_at=t0)])
    assert [r.text for r in store.list_memories(A)] == [f"memory {i}" for i in range(5, -1, -1)]
    assert [r.text for r in store.list_memories(A, order="created_asc")] == \
        [f"memory {i}" for i in range(6)]
    assert [r.text for r in store.list_memories(A, limit=2, offset=1)] == ["memory 4", "memory 3"]
    assert [r.text for r in store.list_memories(A, types=["fact"])] == \
        ["memory 5", "memory 3", "memory 1"]
    # since/until are inclusive bounds on created_at
    got = store.list_memories(A, since=t0 + timedelta(days=2), until=t0 + timedelta(days=4))
    assert [r.text for r in got] == ["memory 4", "memory 3", "memory 2"]
    assert store.count_memories(A) == 6
    assert store.count_memories(A, types=["preference"]) == 3
    assert store.count_memories(A, types=["task"]) == 0
    with pytest.raises(ValueError):
        store.list_memories(A, order="random")


def test_list_with_embedding(store, mk):
    rec = mk(A, "with vector")
    store.insert_memories([rec])
    (got,) = store.list_memories(A, with_embedding=True)
    assert got.embedding == pytest.approx(rec.embedding, abs=1e-6)


def test_touch_counts_and_accessed_order(store, mk):
    r1, r2, r3 = mk(A, "one"), mk(A, "two"), mk(A, "three")
    store.insert_memories([r1, r2, r3])
    t1 = datetime(2025, 1, 1, 12, tzinfo=timezone.utc)
    t2 = t1 + timedelta(hours=1)
    store.touch_memories(A, [r2.id, r3.id], t1)
    store.touch_memories(A, [r2.id], t2)
    store.touch_memories(A, [], t2)
    got = {r.id: r for r in store.get_memories(A, [r1.id, r2.id, r3.id])}
    assert got[r1.id].access_count == 0 and got[r1.id].last_accessed_at is None
    assert got[r2.id].access_count == 2 and got[r2.id].last_accessed_at == t2
    assert got[r3.id].access_count == 1 and got[r3.id].last_accessed_at == t1
    assert [r.id for r in store.list_memories(A, order="accessed_desc")] == [r2.id, r3.id, r1.id]


# ---- expiry ------------------------------------------------------------------------
def test_expired_memories_are_never_returned(store, mk, vec):
    past = utcnow() - timedelta(minutes=1)
    live = mk(A, "live memory about gardening", seed=10)
    dead = mk(A, "expired memory about gardening", seed=11, expires_at=past)
    store.insert_memories([live, dead])
    assert store.get_memory(A, dead.id) is None
    assert ids(store.get_memories(A, [live.id, dead.id])) == [live.id]
    assert ids(store.list_memories(A)) == [live.id]
    assert store.count_memories(A) == 1
    assert [m for m, _ in store.vector_search(A, vec(11), 5)] == [live.id]
    # migration still sees it
    assert sorted(r.id for b in store.iter_memories(A) for r in b) == sorted([live.id, dead.id])


@pytest.mark.fulltext
def test_expired_memories_never_match_text(store, mk):
    past = utcnow() - timedelta(minutes=1)
    live = mk(A, "live memory about gardening")
    dead = mk(A, "expired memory about gardening", expires_at=past)
    store.insert_memories([live, dead])
    assert [m for m, _ in store.text_search(A, "gardening", 5)] == [live.id]
    assert store.update_memory(A, live.id, fields={"expires_at": past})
    assert store.text_search(A, "gardening", 5) == []


def test_vector_search_returns_k_live_rows_despite_closer_expired_ones(store, mk, vec):
    q = vec(1)
    past = utcnow() - timedelta(seconds=5)
    expired = [mk(A, f"expired {i}", embedding=vec(100 + i, near=q, noise=0.01), expires_at=past)
               for i in range(6)]
    live = [mk(A, f"live {i}", embedding=vec(200 + i, near=q, noise=0.5)) for i in range(3)]
    store.insert_memories(expired + live)
    hits = store.vector_search(A, q, 3)
    assert sorted(m for m, _ in hits) == ids(live)


def test_update_expiry_hides_and_lifts(store, mk, vec):
    rec = mk(A, "temporary note about parking", seed=5)
    store.insert_memories([rec])
    assert store.update_memory(A, rec.id, fields={"expires_at": utcnow() - timedelta(seconds=1)})
    assert store.get_memory(A, rec.id) is None
    assert store.vector_search(A, vec(5), 5) == []
    assert store.text_search(A, "parking", 5) == []
    # an expired memory can still be changed: lifting the expiry brings it back
    assert store.update_memory(A, rec.id, fields={"expires_at": None})
    assert store.get_memory(A, rec.id) is not None
    assert [m for m, _ in store.vector_search(A, vec(5), 5)] == [rec.id]


# ---- update / delete / history -----------------------------------------------------
def test_update_text_embedding_fields_and_history(store, mk, vec, event):
    rec = mk(A, "likes tea", seed=1, type="preference")
    store.insert_memories([rec], [event(rec)])
    at = utcnow() + timedelta(seconds=1)
    ev = HistoryEvent(rec.id, A, "UPDATE", "likes tea", "likes coffee", "user", at=at)
    stamp = datetime(2030, 1, 1, tzinfo=timezone.utc)
    ok = store.update_memory(A, rec.id, text="likes coffee", embedding=vec(2),
                             fields={"type": "fact", "importance": 4, "tags": ["drink"],
                                     "metadata": {"why": "changed"}, "updated_at": stamp},
                             history=ev)
    assert ok is True
    got = store.get_memory(A, rec.id, with_embedding=True)
    assert (got.text, got.type, got.importance, got.tags, got.metadata, got.updated_at) == \
        ("likes coffee", "fact", 4, ["drink"], {"why": "changed"}, stamp)
    assert got.embedding == pytest.approx(vec(2), abs=1e-6)
    assert got.created_at == rec.created_at
    assert [m for m, _ in store.vector_search(A, vec(2), 1)] == [rec.id]
    assert [m for m, _ in store.vector_search(A, vec(2), 5, types=["fact"])] == [rec.id]
    assert store.vector_search(A, vec(2), 5, types=["preference"]) == []
    hist = store.history(A, rec.id)
    assert [(h.event, h.old_text, h.new_text, h.actor) for h in hist] == \
        [("ADD", None, "likes tea", "llm"), ("UPDATE", "likes tea", "likes coffee", "user")]


@pytest.mark.fulltext
def test_update_text_moves_the_text_row(store, mk, vec):
    rec = mk(A, "likes tea", seed=1, type="preference")
    store.insert_memories([rec])
    assert store.update_memory(A, rec.id, text="likes coffee", embedding=vec(2),
                               fields={"type": "fact"})
    assert [m for m, _ in store.text_search(A, "coffee", 5)] == [rec.id]
    assert store.text_search(A, "tea", 5) == []
    assert [m for m, _ in store.text_search(A, "coffee", 5, types=["fact"])] == [rec.id]
    assert store.text_search(A, "coffee", 5, types=["preference"]) == []


def test_update_rejects_text_without_embedding_and_unknown_fields(store, mk):
    rec = mk(A, "x")
    store.insert_memories([rec])
    with pytest.raises(ValueError):
        store.update_memory(A, rec.id, text="new text")
    with pytest.raises(ValueError):
        store.update_memory(A, rec.id, fields={"user_id": B})
    assert store.get_memory(A, rec.id).text == "x"


def test_update_missing_memory_returns_false_and_writes_no_history(store, mk):
    ev = HistoryEvent("nope", A, "UPDATE", "a", "b", "user")
    assert store.update_memory(A, "nope", fields={"importance": 2}, history=ev) is False
    assert store.history(A, "nope") == []


def test_delete_memory_removes_all_rows_and_records_history(store, mk, vec, event):
    rec, keep = mk(A, "delete me please", seed=3), mk(A, "keep me please", seed=4)
    store.insert_memories([rec, keep], [event(rec)])
    ev = HistoryEvent(rec.id, A, "DELETE", rec.text, None, "user",
                      at=utcnow() + timedelta(seconds=1))
    assert store.delete_memory(A, rec.id, history=ev) is True
    assert store.delete_memory(A, rec.id) is False
    assert store.get_memory(A, rec.id) is None
    assert [m for m, _ in store.vector_search(A, vec(3), 5)] == [keep.id]
    assert [m for m, _ in store.text_search(A, "delete", 5)] == []
    assert [h.event for h in store.history(A, rec.id)] == ["ADD", "DELETE"]


def test_history_is_oldest_first_and_idempotent(store, mk, event):
    rec = mk(A, "v3")
    t = datetime(2024, 6, 1, tzinfo=timezone.utc)
    e2 = event(rec, "UPDATE", old="v1", new="v2", at=t + timedelta(minutes=1))
    e1 = event(rec, "ADD", new="v1", at=t)
    e3 = event(rec, "UPDATE", old="v2", new="v3", at=t + timedelta(minutes=2))
    store.insert_memories([rec], [e2])
    store.add_history([e3, e1])
    store.add_history([e1])  # same event id again: ignored
    hist = store.history(A, rec.id)
    assert [h.id for h in hist] == [e1.id, e2.id, e3.id]
    assert [h.new_text for h in hist] == ["v1", "v2", "v3"]
    assert hist[0].at == t and hist[0].at.utcoffset() == timedelta(0)
    assert [h.id for h in store.all_history(A)] == [e1.id, e2.id, e3.id]
    assert store.history(A, "unknown") == []


def test_delete_user_memories_only_touches_that_user(store, mk, vec, event):
    a = [mk(A, f"alice fact {i}", seed=i) for i in range(3)]
    b = [mk(B, f"bob fact {i}", seed=i) for i in range(2)]
    store.insert_memories(a + b, [event(r) for r in a + b])
    now = utcnow()
    store.set_profile(A, "Alice profile", now)
    store.set_profile(B, "Bob profile", now)
    from memory.types import Thread
    store.upsert_thread(Thread(id=new_id(), user_id=A, title="Alice chat"))
    assert store.delete_user_memories(A) == 3
    assert store.count_memories(A) == 0 and store.all_history(A) == []
    assert store.get_profile(A) == ("", None)
    assert store.vector_search(A, vec(0), 5) == []
    assert len(store.list_threads(A)) == 1  # threads are chat history, kept
    # Bob untouched
    assert store.count_memories(B) == 2
    assert len(store.all_history(B)) == 2
    assert store.get_profile(B)[0] == "Bob profile"
    assert len(store.vector_search(B, vec(0), 5)) == 2
    assert store.delete_user_memories(A) == 0


@pytest.mark.fulltext
def test_delete_user_memories_removes_only_that_users_text_rows(store, mk):
    store.insert_memories([mk(A, f"alice fact {i}") for i in range(3)] +
                          [mk(B, f"bob fact {i}") for i in range(2)])
    assert len(store.text_search(A, "fact", 5)) == 3
    store.delete_user_memories(A)
    assert store.text_search(A, "fact", 5) == []
    assert len(store.text_search(B, "fact", 5)) == 2


def test_iter_memories_batches_by_id(store, mk):
    recs = [mk(A, f"m{i}") for i in range(7)]
    past = utcnow() - timedelta(days=1)
    recs.append(mk(A, "expired one", expires_at=past))
    store.insert_memories(recs + [mk(B, "bob")])
    batches = list(store.iter_memories(A, batch=3))
    assert [len(b) for b in batches] == [3, 3, 2]
    flat = [r.id for b in batches for r in b]
    assert flat == sorted(r.id for r in recs)
    assert all(r.embedding is not None and len(r.embedding) == 8 for b in batches for r in b)
    assert all(r.embedding is None for b in store.iter_memories(A, with_embedding=False)
               for r in b)
    assert list(store.iter_memories("nobody")) == []


def test_odd_unicode_text_round_trips(store, mk):
    texts = ["emoji 👩‍👩‍👧 ok", "e\u0301 combining", "مرحبا بالعالم", "tab\tnew\nline",
             "x" * 20000, "中文，标点。"]
    recs = [mk(A, t) for t in texts]
    store.insert_memories(recs)
    got = {r.id: r.text for r in store.get_memories(A, [r.id for r in recs])}
    assert got == {r.id: r.text for r in recs}
