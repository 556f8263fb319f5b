"""SQLite-specific behaviour of SQLiteStore: WAL, persistence, locking, concurrency,
extension loading, scoped deletes, transactions and close.

The interface itself is covered by tests/contract/ (run for SQLite and TiDB); the cached
vector matrix is in tests/test_sqlite_matrix.py, the context column in
tests/test_sqlite_context.py.
"""
from __future__ import annotations

import multiprocessing
import re
import sys
import threading
import time
from pathlib import Path

import pytest

from memory.store import EmbedderMismatchError, StoreError, open_store
from memory.store import sqlite as sqlite_mod
from memory.store.sqlite import driver as driver_mod
from memory.store.sqlite import SQLiteStore
from memory.types import MemoryRecord, Message, Thread, new_id, utcnow
from tests.sqlite_helpers import DIM, EMB, raw_connection, rec, unit


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
