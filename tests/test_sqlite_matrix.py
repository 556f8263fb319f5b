"""The in-process vector matrix of SQLiteStore for large users: the same ids and
distances as sqlite-vec's KNN (vec0) with types and expiry, patched in place by writes,
invalidated by other store objects and rolled-back transactions, bounded by an LRU budget;
and the vec_versions table that keys it, added to old files."""
from __future__ import annotations

import threading
from datetime import timedelta

import numpy as np
import pytest

from memory.store.sqlite import cache as cache_mod
from memory.store.sqlite import rows as rows_mod
from memory.store.sqlite.memories import types_clause
from memory.store.sqlite import MAX_K, SQLiteStore
from memory.types import MemoryRecord, new_id, utcnow
from tests.sqlite_helpers import DIM, EMB, raw_connection, rec, unit

TYPES = ["fact", "preference", "event"]
QUERIES = [(k, types) for k in (1, 5, 40, 1000)
           for types in (None, ["fact"], ["preference", "event"], ["no-such-type"])]


def vec0_search(store: SQLiteStore, user: str, q, k: int, types=None):
    """The reference: the vec0 KNN path, bypassing the matrix cache."""
    type_sql, type_args = types_clause(types, "type")
    blob = rows_mod.blob(q, DIM)
    with store._read() as conn:
        return store._vec0_search(conn, user, blob, min(k, MAX_K), store._now(), type_sql,
                                  type_args)


def assert_same_as_vec0(store: SQLiteStore, user: str, seed: int, n_queries: int = 4) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(n_queries):
        q = rng.normal(size=DIM).tolist()
        for k, types in QUERIES:
            got = store.vector_search(user, q, k, types=types)
            want = vec0_search(store, user, q, k, types)
            assert [m for m, _ in got] == [m for m, _ in want], (k, types)
            assert np.allclose([d for _, d in got], [d for _, d in want], atol=1e-5)


def many(user: str, n: int, seed: int, expired_every: int = 7) -> list[MemoryRecord]:
    rng = np.random.default_rng(seed)
    now = utcnow()
    out = []
    for i in range(n):
        r = MemoryRecord(id=new_id(), user_id=user, text=f"{user} memory {i}",
                         type=TYPES[i % 3], embedding=rng.normal(size=DIM).tolist())
        if i % expired_every == 0:
            r.expires_at = now - timedelta(days=1)
        elif i % expired_every == 1:
            r.expires_at = now + timedelta(days=30)
        out.append(r)
    return out


@pytest.fixture
def big(store, monkeypatch):
    """A store where users with >= 20 memories are searched from the matrix; user "big"
    has 80 memories (every 7th expired), user "small" 30 (also over the threshold) and
    user "tiny" 5 (vec0 path)."""
    monkeypatch.setattr(cache_mod, "MATRIX_MIN_ROWS", 20)
    store.insert_memories(many("big", 80, seed=1))
    store.insert_memories(many("small", 30, seed=2))
    store.insert_memories(many("tiny", 5, seed=3))
    return store


def test_matrix_search_equals_vec0_with_types_and_expiry(big):
    assert_same_as_vec0(big, "big", seed=10)
    assert big.matrix_rebuilds == 1  # built once, then served from the cache
    live = big.count_memories("big")
    assert live < 80
    got = big.vector_search("big", unit(5), 1000)
    assert len(got) == live  # every live row, no expired one
    assert len(big.vector_search("big", unit(5), 3, types=["fact"])) == 3
    assert_same_as_vec0(big, "tiny", seed=11)
    assert big.matrix_rebuilds == 1  # "tiny" is below MATRIX_MIN_ROWS: vec0


def test_matrix_users_are_isolated(big):
    big_ids = {r.id for page in big.iter_memories("big", with_embedding=False) for r in page}
    small_ids = {r.id for page in big.iter_memories("small", with_embedding=False) for r in page}
    for seed in range(5):
        assert {m for m, _ in big.vector_search("small", unit(seed), 1000)} <= small_ids
        assert {m for m, _ in big.vector_search("big", unit(seed), 1000)} <= big_ids
    assert big.matrix_rebuilds == 2
    assert_same_as_vec0(big, "small", seed=12, n_queries=2)


def test_writes_in_this_process_patch_the_cached_matrix(big):
    big.vector_search("big", unit(0), 5)
    assert big.matrix_rebuilds == 1
    recs = [r for page in big.iter_memories("big", with_embedding=False) for r in page]
    live = [r for r in recs if r.expires_at is None]
    expired = [r for r in recs if r.expires_at is not None and r.expires_at < utcnow()]
    rng = np.random.default_rng(99)

    big.insert_memories(many("big", 6, seed=4))  # new rows (one expired)
    assert_same_as_vec0(big, "big", seed=20, n_queries=2)
    replaced = live[0]
    replaced.embedding = rng.normal(size=DIM).tolist()
    big.insert_memories([replaced])  # same id re-inserted: replaces the old row
    assert_same_as_vec0(big, "big", seed=21, n_queries=2)
    big.update_memory("big", live[1].id, embedding=rng.normal(size=DIM).tolist())
    big.update_memory("big", live[2].id, fields={"type": "new-type"})
    big.update_memory("big", live[3].id, fields={"expires_at": utcnow() - timedelta(hours=1)})
    big.update_memory("big", expired[0].id, fields={"expires_at": None})  # lift an expiry
    big.update_memory("big", live[4].id, fields={"importance": 5})  # no vector change
    got = big.vector_search("big", unit(1), 10, types=["new-type"])
    assert [m for m, _ in got] == [live[2].id]
    assert got[0][1] == pytest.approx(vec0_search(big, "big", unit(1), 1, ["new-type"])[0][1],
                                      abs=1e-5)
    found = {m for m, _ in big.vector_search("big", unit(1), 1000)}
    assert expired[0].id in found and live[3].id not in found
    assert_same_as_vec0(big, "big", seed=22, n_queries=2)
    assert big.delete_memory("big", live[5].id)
    big.set_embeddings("big", [(live[6].id, rng.normal(size=DIM).tolist()),
                               (expired[1].id, rng.normal(size=DIM).tolist())])
    assert_same_as_vec0(big, "big", seed=23, n_queries=2)
    assert live[5].id not in {m for m, _ in big.vector_search("big", unit(2), 1000)}
    assert big.matrix_rebuilds == 1  # every write patched the cache in place


def test_superseding_and_restoring_patch_the_cached_matrix(big):
    big.vector_search("big", unit(0), 5)
    live = [r for page in big.iter_memories("big", with_embedding=False) for r in page
            if r.expires_at is None][:3]
    for r, status in zip(live, ("superseded", "ended", "forgotten")):
        assert big.invalidate_memory("big", r.id, status=status, at=utcnow(), reason="llm")
    found = {m for m, _ in big.vector_search("big", unit(1), 1000)}
    assert not found & {r.id for r in live}
    assert_same_as_vec0(big, "big", seed=30, n_queries=2)
    assert big.restore_memory("big", live[1].id)
    assert live[1].id in {m for m, _ in big.vector_search("big", unit(1), 1000)}
    assert_same_as_vec0(big, "big", seed=31, n_queries=2)
    assert big.matrix_rebuilds == 1  # patched in place
    # a fresh store object builds its matrix without the non-current rows
    other = SQLiteStore(big.path)
    other.open(EMB, DIM)
    try:
        again = {m for m, _ in other.vector_search("big", unit(1), 1000)}
        assert live[0].id not in again and live[1].id in again and live[2].id not in again
    finally:
        other.close()


def test_many_appends_grow_and_compact_the_matrix(big):
    big.vector_search("big", unit(0), 5)
    for i in range(30):  # more rows than the slack left at build time
        big.insert_memories(many("big", 20, seed=100 + i))
        ids = [m for m, _ in big.vector_search("big", unit(i), 1000)]
        assert big.delete_memory("big", ids[0])
    assert_same_as_vec0(big, "big", seed=24, n_queries=2)
    assert big.matrix_rebuilds == 1


def test_write_by_another_store_object_is_detected(big, db_path):
    big.vector_search("big", unit(0), 5)
    other = SQLiteStore(db_path)
    try:
        other.open(EMB, DIM)
        victim = big.vector_search("big", unit(0), 1)[0][0]
        other.insert_memories(many("big", 4, seed=5))
        other.delete_memory("big", victim)
        assert_same_as_vec0(big, "big", seed=30, n_queries=2)
        assert big.matrix_rebuilds == 2  # stale version -> rebuilt once
        assert victim not in {m for m, _ in big.vector_search("big", unit(0), 1000)}
    finally:
        other.close()


def test_delete_user_memories_and_reset_vector_index_invalidate(big):
    big.vector_search("big", unit(0), 5)
    big.vector_search("small", unit(0), 5)
    assert big.delete_user_memories("small") == 30
    assert big.vector_search("small", unit(0), 1000) == []
    assert_same_as_vec0(big, "big", seed=40, n_queries=1)

    big.reset_vector_index(EMB, DIM)
    assert big.vector_search("big", unit(0), 1000) == []
    recs = [r for page in big.iter_memories("big", with_embedding=False) for r in page]
    rng = np.random.default_rng(7)
    big.set_embeddings("big", [(r.id, rng.normal(size=DIM).tolist()) for r in recs])
    assert_same_as_vec0(big, "big", seed=41, n_queries=2)
    assert len(big.vector_search("big", unit(0), 1000)) == big.count_memories("big")


def test_reset_by_another_store_object_is_detected(big, db_path):
    before = big.vector_search("big", unit(0), 5)
    assert before
    other = SQLiteStore(db_path)
    try:
        other.reset_vector_index(EMB, DIM)
    finally:
        other.close()
    assert big.vector_search("big", unit(0), 5) == []


def test_matrix_over_budget_falls_back_to_vec0(big, monkeypatch):
    monkeypatch.setattr(cache_mod, "MATRIX_BUDGET_BYTES", 1024)
    assert_same_as_vec0(big, "big", seed=50, n_queries=1)
    assert big.matrix_rebuilds == 0


def test_lru_evicts_least_recently_used_user(big, monkeypatch):
    big.vector_search("big", unit(0), 5)
    one = big._matrices.entries["big"].nbytes
    monkeypatch.setattr(cache_mod, "MATRIX_BUDGET_BYTES", one + 1)
    big.vector_search("small", unit(0), 5)
    assert list(big._matrices.entries) == ["small"]
    assert_same_as_vec0(big, "big", seed=51, n_queries=1)


def test_concurrent_searches_and_writes_stay_exact(big):
    big.vector_search("big", unit(0), 5)
    errors: list[BaseException] = []
    stop = threading.Event()

    def search() -> None:
        try:
            while not stop.is_set():
                got = big.vector_search("big", unit(3), 40)
                assert len(got) == 40 and len({m for m, _ in got}) == 40
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    readers = [threading.Thread(target=search) for _ in range(3)]
    for r in readers:
        r.start()
    try:
        for i in range(20):
            big.insert_memories(many("big", 5, seed=200 + i))
    finally:
        stop.set()
        for r in readers:
            r.join(timeout=60)
    assert errors == []
    assert_same_as_vec0(big, "big", seed=60, n_queries=2)
    assert big.matrix_rebuilds == 1


def test_old_schema_gets_vec_versions(db_path):
    s = SQLiteStore(db_path)
    s.open(EMB, DIM)
    s.close()
    conn = raw_connection(db_path)
    try:
        conn.execute("DROP TABLE vec_versions")
        conn.execute("DROP TABLE schema_migrations")  # a file from before named migrations
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', '1')")
    finally:
        conn.close()
    s = SQLiteStore(db_path)
    try:
        s.open(EMB, DIM)
        assert all(m.applied_at is not None for m in s.migration_status())
        s.insert_memories([rec("old", "still works", seed=1)])
        assert len(s.vector_search("old", unit(1), 3)) == 1
    finally:
        s.close()


def test_cached_matrix_follows_committed_and_rolled_back_transactions(big):
    big.vector_search("big", unit(0), 5)  # build the matrix
    assert big.matrix_rebuilds == 1
    with pytest.raises(ZeroDivisionError):
        with big.transaction():
            big.insert_memories(many("big", 5, seed=300))
            victim = big.list_memories("big", limit=1)[0]
            big.delete_memory("big", victim.id)
            assert_same_as_vec0(big, "big", seed=61, n_queries=1)  # sees its own rows
            1 / 0
    assert_same_as_vec0(big, "big", seed=62, n_queries=1)
    with big.transaction():
        big.insert_memories(many("big", 5, seed=301))
        with big.transaction():
            big.delete_memory("big", big.list_memories("big", limit=1)[0].id)
    assert_same_as_vec0(big, "big", seed=63, n_queries=1)
    assert big.count_memories("big") > 0
