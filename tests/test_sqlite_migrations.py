"""Named migrations of the SQLite store: files written by older code upgrade and keep their rows; files are private (0700 directory, 0600 database)."""
from __future__ import annotations

import os
import shutil
import stat
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from memory.store import StoreError
from memory.store.sqlite import SQLiteStore, load_sqlite_module
from memory.store.sqlite.migrations import MIGRATIONS
from memory.types import MemoryRecord, new_id

DATA = Path(__file__).parent / "data"
EMB, DIM = "fixture-embedder", 4
IDS = {"a": "a" * 32, "b": "b" * 32, "c": "c" * 32}


def unit(seed: int) -> list[float]:
    x = np.random.default_rng(seed).normal(size=DIM)
    return (x / np.linalg.norm(x)).tolist()


def copy_fixture(name: str, tmp_path: Path) -> Path:
    path = tmp_path / "memory.db"
    shutil.copyfile(DATA / name, path)
    return path


def raw(path: Path):
    return load_sqlite_module().connect(str(path), isolation_level=None)


@pytest.mark.parametrize("name, legacy", [("sqlite_schema1.db", 1), ("sqlite_schema3.db", 3)])
def test_old_file_upgrades_and_keeps_its_rows(tmp_path, name, legacy):
    path = copy_fixture(name, tmp_path)
    conn = raw(path)
    try:  # really the old layout: no migrations table, FTS without context in schema 1
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                            ).fetchone()[0] == str(legacy)
        assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'"
                            ).fetchone() is None
    finally:
        conn.close()
    store = SQLiteStore(path)
    try:
        status = store.migration_status()
        assert [m.id for m in status] == [m.id for m in MIGRATIONS]
        assert all(m.applied_at for m in status)
        assert store.migrate() == []  # idempotent
        store.open(EMB, DIM)  # same embedder: no mismatch, vectors kept
        alice = store.list_memories("alice", order="created_asc", with_embedding=True)
        assert [m.id for m in alice] == [IDS["a"], IDS["b"]]
        assert alice[0].tags == ["drink"] and alice[0].type == "preference"
        assert alice[1].metadata == {"context": "Are you coming to the concert?"}
        assert np.allclose(alice[0].embedding, unit(1), atol=1e-6)
        assert [m.id for m in store.list_memories("bob")] == [IDS["c"]]
        assert len(store.all_history("alice")) == 2 and len(store.all_history("bob")) == 1
        assert store.get_profile("alice")[0] == "Alice likes tea."
        [thread] = store.list_threads("alice")
        assert [m.content for m in store.get_messages("alice", thread.id)] == ["hello"]
        # search still works, the context column too (rebuilt from metadata in schema 1)
        assert [m for m, _ in store.text_search("alice", "green tea", 5)] == [IDS["a"]]
        assert [m for m, _ in store.text_search("alice", "concert", 5)] == [IDS["b"]]
        assert [m for m, _ in store.text_search("bob", "福州", 5)] == [IDS["c"]]
        assert store.vector_search("alice", unit(2), 1)[0][0] == IDS["b"]
        assert [m for m, _ in store.vector_search("bob", unit(1), 5)] == [IDS["c"]]
        # the date filter runs inside the KNN on the migrated vectors
        since = datetime(2026, 1, 2, tzinfo=timezone.utc)
        assert [m for m, _ in store.vector_search("alice", unit(1), 5, since=since)] == [IDS["b"]]
        store.insert_memories([MemoryRecord(id=new_id(), user_id="alice", text="more tea",
                                            embedding=unit(9))])
        assert store.count_memories("alice") == 3
        # 0008_validity: every old memory is current; superseding and undo work on it
        assert {m.status for m in alice} == {"current"} and store.past_memories("alice") == []
        assert store.invalidate_memory("alice", IDS["a"], status="superseded",
                                       at=datetime.now(timezone.utc), reason="llm")
        assert store.vector_search("alice", unit(1), 5)[0][0] != IDS["a"]
        assert [m.id for m in store.past_memories("alice")] == [IDS["a"]]
        assert store.restore_memory("alice", IDS["a"])
        assert store.vector_search("alice", unit(1), 1)[0][0] == IDS["a"]
        assert store.last_turn("alice") is None  # old history has no turn ids
    finally:
        store.close()
    conn = raw(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_file_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "memory.db"
    SQLiteStore(path).close()
    conn = raw(path)
    try:
        conn.execute("INSERT INTO schema_migrations(id, applied_at) VALUES "
                     "('9999_from_the_future', '2030-01-01T00:00:00+00:00')")
    finally:
        conn.close()
    with pytest.raises(StoreError, match="9999_from_the_future"):
        SQLiteStore(path)


def test_a_failing_migration_is_rolled_back_and_not_recorded(tmp_path, monkeypatch):
    from memory.store.migrations import Migration
    from memory.store.sqlite import migrations

    path = tmp_path / "memory.db"
    SQLiteStore(path).close()

    def broken(conn):
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("step failed")

    monkeypatch.setattr(migrations, "MIGRATIONS",
                        [*migrations.MIGRATIONS, Migration("0999_broken", "fails", broken)])
    with pytest.raises(RuntimeError, match="step failed"):
        SQLiteStore(path)
    conn = raw(path)
    try:
        assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'half_done'").fetchone() is None
        assert conn.execute("SELECT 1 FROM schema_migrations WHERE id = '0999_broken'"
                            ).fetchone() is None
    finally:
        conn.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_directory_and_database_are_created_private(tmp_path):
    old = os.umask(0o022)  # the usual umask, under which SQLite alone creates 0644 files
    try:
        path = tmp_path / "data" / "memory.db"
        store = SQLiteStore(path)
        try:
            store.open("e", DIM)
            store.insert_memories([MemoryRecord(id=new_id(), user_id="u", text="secret",
                                                embedding=unit(1))])
            assert mode(path.parent) == 0o700
            for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                assert name.exists(), name
                assert mode(name) == 0o600, (name, oct(mode(name)))
        finally:
            store.close()
    finally:
        os.umask(old)


def test_open_store_creates_the_data_directory_private(tmp_path):
    from memory.config import load_config
    from memory.store import open_store

    old = os.umask(0o022)
    try:
        config = load_config(env_file=None, memory_data_dir=tmp_path / "a" / "b",
                             memory_store="sqlite")
        store = open_store(config, "e", DIM)
        store.close()
    finally:
        os.umask(old)
    assert mode(tmp_path / "a" / "b") == 0o700
    assert mode(tmp_path / "a" / "b" / "memory.db") == 0o600


def test_an_existing_world_readable_database_is_made_private(tmp_path):
    path = tmp_path / "memory.db"
    SQLiteStore(path).close()
    os.chmod(path, 0o644)
    SQLiteStore(path).close()
    assert mode(path) == 0o600
