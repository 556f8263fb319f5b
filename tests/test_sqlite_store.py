"""SQLite-specific behaviour of SQLiteStore: WAL, persistence, locking, concurrency.

The interface itself is covered by tests/contract/ (run for SQLite and TiDB).
"""
from __future__ import annotations

import multiprocessing
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from memory.store import EmbedderMismatchError, StoreError, open_store
from memory.store import sqlite as sqlite_mod
from memory.store.sqlite import cache as cache_mod
from memory.store.sqlite import driver as driver_mod
from memory.store.sqlite import rows as rows_mod
from memory.store.sqlite.memories import types_clause
from memory.store.sqlite import SQLiteStore, load_sqlite_module
from memory.textsearch import FTS5_TOKENIZE
from memory.types import MemoryRecord, Message, Thread, new_id

DIM = 8
EMB = "test-embedder"


def unit(seed: int) -> list[float]:
    x = np.random.default_rng(seed).normal(size=DIM)
    return (x / np.linalg.norm(x)).tolist()


def rec(user: str, text: str, seed: int = 0) -> MemoryRecord:
    return MemoryRecord(id=new_id(), user_id=user, text=text, embedding=unit(seed))


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "memory.db"


@pytest.fixture
def store(db_path):
    s = SQLiteStore(db_path)
    s.open(EMB, DIM)
    yield s
    s.close()


def raw_connection(path: Path):
    """A plain connection from another 'process' (same loader, no store code)."""
    return load_sqlite_module().connect(str(path), isolation_level=None, timeout=0.05)


def test_wal_mode_and_pragmas(store, db_path):
    conn = raw_connection(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    c = store._conn()
    assert c.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert c.execute("PRAGMA busy_timeout").fetchone()[0] == store.busy_timeout_ms


def test_data_survives_reopen(db_path):
    s = SQLiteStore(db_path)
    s.open(EMB, DIM)
    r = rec("u", "我最喜欢的编程语言是 Python", seed=3)
    s.insert_memories([r])
    t = Thread(id=new_id(), user_id="u", title="chat")
    s.upsert_thread(t)
    s.add_message(Message(id=new_id(), thread_id=t.id, user_id="u", role="user", content="hi"))
    s.close()
    s.close()  # twice is fine
    with pytest.raises(StoreError):
        s.get_memory("u", r.id)

    s2 = SQLiteStore(db_path)
    s2.open(EMB, DIM)
    try:
        assert s2.get_memory("u", r.id).text == r.text
        assert [m for m, _ in s2.text_search("u", "编程语言", 3)] == [r.id]
        assert [m for m, _ in s2.vector_search("u", unit(3), 3)] == [r.id]
        assert [m.content for m in s2.get_messages("u", t.id)] == ["hi"]
        with pytest.raises(EmbedderMismatchError, match="python main.py reembed"):
            s2.open("other-embedder", DIM)
    finally:
        s2.close()


def test_locked_database_gives_store_error_and_keeps_data(db_path):
    store = SQLiteStore(db_path, busy_timeout_ms=100)
    store.open(EMB, DIM)
    before = rec("u", "written before the lock", seed=1)
    store.insert_memories([before])
    locker = raw_connection(db_path)
    try:
        locker.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        started = time.monotonic()
        with pytest.raises(StoreError, match="database is locked"):
            store.insert_memories([rec("u", "blocked write", seed=2)])
        assert time.monotonic() - started >= 0.09  # it waited for the busy timeout
        with pytest.raises(StoreError, match="database is locked"):
            store.delete_user_memories("u")
        # readers are not blocked in WAL mode
        assert store.get_memory("u", before.id).text == "written before the lock"
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert [r.text for r in store.list_memories("u")] == ["written before the lock"]
    assert store.count_memories("u") == 1
    assert len(store.vector_search("u", unit(2), 5)) == 1
    store.insert_memories([rec("u", "after the lock", seed=3)])  # works again
    assert store.count_memories("u") == 2
    assert store._conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()


def _insert_worker(path: str, worker: int, n: int, barrier) -> None:
    store = SQLiteStore(Path(path), busy_timeout_ms=60_000)
    store.open(EMB, DIM)
    barrier.wait(timeout=60)
    for i in range(n):
        store.insert_memories([MemoryRecord(id=f"w{worker}-{i:04d}", user_id="shared",
                                            text=f"worker {worker} memory {i}",
                                            embedding=unit(worker * 1000 + i))])
    store.close()


@pytest.mark.skipif(sys.platform != "linux", reason="uses the fork start method")
def test_two_processes_insert_concurrently_without_loss(db_path):
    SQLiteStore(db_path).close()  # create the file first
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_insert_worker, args=(str(db_path), w, 200, barrier))
             for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    store = SQLiteStore(db_path)
    store.open(EMB, DIM)
    try:
        assert store.count_memories("shared") == 400
        got = sorted(r.id for batch in store.iter_memories("shared", with_embedding=False)
                     for r in batch)
        assert got == sorted(f"w{w}-{i:04d}" for w in (1, 2) for i in range(200))
        assert len(store.vector_search("shared", unit(1), 1000)) == 400
        assert len(store.text_search("shared", "worker", 1000)) == 400
        assert store._conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        store.close()


def test_threads_share_one_store(store):
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(25):
                store.insert_memories([rec("threads", f"thread {t} item {i}", seed=t * 100 + i)])
                store.text_search("threads", "item", 5)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert errors == []
    assert store.count_memories("threads") == 100


def test_missing_extension_loader_gives_install_hint(monkeypatch, tmp_path):
    monkeypatch.setattr(driver_mod, "_sqlite_module", None)
    monkeypatch.setitem(sys.modules, "sqlite_vec", None)  # import sqlite_vec -> ImportError
    with pytest.raises(StoreError, match="pip install pysqlite3-binary sqlite-vec") as info:
        SQLiteStore(tmp_path / "x.db")
    # the real import error is shown next to the hint, not hidden behind it
    assert "(sqlite_vec: ModuleNotFoundError: import of sqlite_vec halted" in str(info.value)


def test_failing_extension_load_shows_each_loaders_error(monkeypatch, tmp_path):
    """sqlite-vec is installed but cannot be loaded (e.g. built for another platform):
    the message names what each sqlite3 module reported, then the install hint."""
    import sqlite_vec

    def broken(conn):
        raise OSError("vec0.so: wrong ELF class: ELFCLASS32")
    monkeypatch.setattr(driver_mod, "_sqlite_module", None)
    monkeypatch.setattr(sqlite_vec, "load", broken)
    with pytest.raises(StoreError) as info:
        SQLiteStore(tmp_path / "x.db")
    msg = str(info.value)
    assert "\n" not in msg and msg.endswith("(run: pip install pysqlite3-binary sqlite-vec)")
    assert "pysqlite3: OSError: vec0.so: wrong ELF class" in msg
    assert "sqlite3: " in msg.split("pysqlite3: ", 1)[1]  # the stdlib module was tried too
    assert not (tmp_path / "x.db").exists() or (tmp_path / "x.db").stat().st_size == 0


def test_open_store_factory_creates_data_dir(tmp_path):
    from memory.config import load_config

    config = load_config(env_file=None, memory_data_dir=tmp_path / "a" / "b", memory_store="sqlite")
    store = open_store(config, EMB, DIM)
    try:
        assert isinstance(store, SQLiteStore)
        assert (tmp_path / "a" / "b" / "memory.db").exists()
        assert store.get_meta("embedder_id") == EMB
        assert store.health()["ok"] is True
    finally:
        store.close()


def test_no_unscoped_delete_in_product_code():
    source = "\n".join(p.read_text() for p in Path(sqlite_mod.__file__).parent.glob("*.py"))
    deletes = re.findall(r"DELETE FROM \w+[^\"]*", source)
    assert deletes, "expected DELETE statements"
    for stmt in deletes:
        assert " WHERE " in stmt, stmt
    # vec_memories: reset_vector_index and migration 0004 (which copies the vectors back);
    # memories_fts: migration 0003, which refills it from ``memories`` in the same
    # transaction (derived indexes, nothing lost)
    assert set(re.findall(r"DROP TABLE IF EXISTS (\w+)", source)) == {"vec_memories", "memories_fts"}


# ---- in-process matrix for large users ---------------------------------------------------
from datetime import timedelta  # noqa: E402

from memory.store.sqlite import MAX_K  # noqa: E402
from memory.types import utcnow  # noqa: E402

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


def test_context_column_is_searched_weighted_lower_and_follows_updates(store):
    body_hit = rec("u", "We adopted a dog named Rex", seed=1)
    ctx_only = MemoryRecord(id=new_id(), user_id="u", text="Yes, last Friday!", embedding=unit(2),
                            metadata={"context": "Melanie: When did you adopt the dog?"})
    store.insert_memories([body_hit, ctx_only])
    assert [m for m, _ in store.text_search("u", "last Friday", 5)] == [ctx_only.id]
    assert [m for m, _ in store.text_search("u", "Melanie", 5)] == [ctx_only.id]
    # the same terms in the body outrank them in the context (CONTEXT_WEIGHT < 1)
    assert [m for m, _ in store.text_search("u", "adopt dog", 5)] == [body_hit.id, ctx_only.id]
    assert store.get_memory("u", ctx_only.id).text == "Yes, last Friday!"
    # a new text keeps the context; new metadata replaces it
    assert store.update_memory("u", ctx_only.id, text="Yes, on Friday", embedding=unit(3))
    assert [m for m, _ in store.text_search("u", "Melanie", 5)] == [ctx_only.id]
    assert store.update_memory("u", ctx_only.id, fields={"metadata": {"context": "a cat"}})
    assert store.text_search("u", "Melanie", 5) == []
    assert [m for m, _ in store.text_search("u", "cat", 5)] == [ctx_only.id]
    assert store.text_search("other", "cat", 5) == []


def test_schema_2_store_gets_context_column_and_keeps_text_search(db_path):
    s = SQLiteStore(db_path)
    s.open(EMB, DIM)
    old = [rec("old", "I like green tea", seed=1),
           MemoryRecord(id=new_id(), user_id="old", text="Sure, tomorrow", embedding=unit(2),
                        metadata={"context": "Are you coming to the concert?"}),
           rec("other", "green tea too", seed=3)]
    s.insert_memories(old)
    s.close()
    conn = raw_connection(db_path)  # rewrite the file as schema 2 wrote it: FTS (user_tok, body)
    try:
        conn.execute("DROP TABLE memories_fts")
        conn.execute("CREATE VIRTUAL TABLE memories_fts USING fts5(user_tok, body, "
                     f"tokenize = '{FTS5_TOKENIZE}')")
        for r in old:
            rid = conn.execute("SELECT rid FROM memories WHERE id = ?", (r.id,)).fetchone()[0]
            conn.execute("INSERT INTO memories_fts(rowid, user_tok, body) VALUES (?, ?, ?)",
                         (rid, sqlite_mod.user_token(r.user_id), r.text))
        conn.execute("DROP TABLE schema_migrations")  # a file from before named migrations
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', '2')")
    finally:
        conn.close()
    s = SQLiteStore(db_path)
    try:
        s.open(EMB, DIM)
        assert all(m.applied_at is not None for m in s.migration_status())
        assert [m for m, _ in s.text_search("old", "green tea", 5)] == [old[0].id]
        assert [m for m, _ in s.text_search("old", "concert", 5)] == [old[1].id]
        assert [m for m, _ in s.text_search("other", "tea", 5)] == [old[2].id]
        s.insert_memories([rec("old", "green tea again", seed=4)])
        assert len(s.text_search("old", "green tea", 5)) == 2
    finally:
        s.close()


# ---- transactions ----------------------------------------------------------------------
def test_a_failed_call_inside_a_transaction_undoes_only_itself(store, monkeypatch):
    kept = rec("u", "kept", seed=1)
    failing = rec("u", "half written", seed=2)
    with store.transaction():
        store.insert_memories([kept])
        real = SQLiteStore._insert_history

        def broken(conn, rows):
            raise RuntimeError("disk trouble after the memory rows were written")

        monkeypatch.setattr(SQLiteStore, "_insert_history", staticmethod(broken))
        with pytest.raises(RuntimeError):
            store.insert_memories([failing])
        monkeypatch.setattr(SQLiteStore, "_insert_history", staticmethod(real))
        assert store.get_memory("u", failing.id) is None  # its savepoint was rolled back
    assert [m.id for m in store.list_memories("u")] == [kept.id]
    assert [m for m, _ in store.vector_search("u", unit(2), 5)] == [kept.id]
    assert store.text_search("u", "half written", 5) == []
    c = store._conn()
    assert c.execute("SELECT COUNT(*) FROM memories_fts").fetchone()[0] == 1
    assert c.execute("SELECT COUNT(*) FROM vec_memories").fetchone()[0] == 1


def test_another_threads_write_waits_for_the_lock_then_fails_or_proceeds(db_path):
    store = SQLiteStore(db_path, busy_timeout_ms=200)
    store.open(EMB, DIM)
    results: list = []
    ready = threading.Event()

    def write() -> None:
        ready.set()
        try:
            store.set_profile("bob", "from the other thread", utcnow())
            results.append("written")
        except StoreError as exc:
            results.append(str(exc))

    try:
        with store.transaction():
            store.set_profile("alice", "inside", utcnow())
            other = threading.Thread(target=write)
            other.start()
            assert ready.wait(30)
            other.join(timeout=30)  # bounded by busy_timeout_ms, not by this transaction
            assert not other.is_alive()
        assert len(results) == 1 and results[0].startswith("database is locked")
        other = threading.Thread(target=write)
        other.start()
        other.join(timeout=30)
        assert results[1] == "written"
        assert store.get_profile("bob")[0] == "from the other thread"
        assert store.get_profile("alice")[0] == "inside"
    finally:
        store.close()


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


def test_close_waits_for_a_statement_another_thread_is_running(db_path):
    """Closing the store while a background thread (the app's memory extraction) is in
    a read used to close that thread's connection under it and crash the process."""
    store = SQLiteStore(db_path)
    store.open(EMB, DIM)
    inside, release, closed = threading.Event(), threading.Event(), threading.Event()
    seen: list = []

    def reader():
        with store._read() as conn:
            inside.set()
            release.wait(10)
            seen.append(conn.execute("SELECT 1").fetchone()[0])  # still open here

    def closer():
        store.close()
        closed.set()

    t = threading.Thread(target=reader)
    t.start()
    assert inside.wait(10)
    c = threading.Thread(target=closer)
    c.start()
    # close() is still waiting for the running read (a bounded check of a non-event) …
    assert not closed.wait(0.2)
    release.set()
    t.join(10)
    assert closed.wait(10) and seen == [1]  # … which finished on an open connection
    c.join(10)
    with pytest.raises(StoreError):
        store.list_memories("u")
