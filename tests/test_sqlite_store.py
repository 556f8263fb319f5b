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
from memory.store.sqlite import SQLiteStore, load_sqlite_module
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
    monkeypatch.setattr(sqlite_mod, "_sqlite_module", None)
    monkeypatch.setitem(sys.modules, "sqlite_vec", None)  # import sqlite_vec -> ImportError
    with pytest.raises(StoreError, match="pip install pysqlite3-binary sqlite-vec"):
        SQLiteStore(tmp_path / "x.db")


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
    source = Path(sqlite_mod.__file__).read_text()
    deletes = re.findall(r"DELETE FROM \w+[^\"]*", source)
    assert deletes, "expected DELETE statements"
    for stmt in deletes:
        assert " WHERE " in stmt, stmt
    assert set(re.findall(r"DROP TABLE IF EXISTS (\w+)", source)) == {"vec_memories"}
