"""Unit tests of TiDBStore's plumbing without a TiDB server: ``transaction()`` on an
SQLAlchemy SQLite engine standing in for TiDB's connection pool, ``migrate()`` against a
connection that records the compiled MySQL statements, the opt-in HNSW index, error 1061
and the full-text re-probe (fake clock, fake index/probe results). What is retried, and
when, is in tests/test_tidb_transactions.py."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from memory.config import load_config
from memory.store.base import StoreError
from memory.store.tidb import FULLTEXT_REPROBE_SECONDS, TiDBSQL, TiDBStore, build_schema
from memory.store.tidb.retry import store_error
from memory.store.tidb.settings import connection_settings
from tests.tidb_helpers import FakeClient, put, rows, sqlite_store

DIALECT = mysql.dialect()


def cfg(**kw):
    base = dict(tidb_host="127.0.0.1", database_url=None, tidb_ssl_ca=None)
    base.update(kw)
    return load_config(env_file=None, **base)


@pytest.fixture
def store(tmp_path):
    s = sqlite_store(tmp_path)
    yield s
    s.close()


def test_calls_in_a_transaction_commit_together(store):
    with store.transaction():
        put(store, 1)
        put(store, 2)
        assert rows(store) == []  # nothing visible before the block ends
    assert rows(store) == [1, 2]


def test_an_exception_rolls_every_call_back(store):
    with pytest.raises(RuntimeError):
        with store.transaction():
            put(store, 1)
            put(store, 2)
            raise RuntimeError("boom")
    assert rows(store) == []
    put(store, 3)  # outside a transaction each call commits on its own again
    assert rows(store) == [3]


def test_nested_blocks_join_the_outer_transaction(store):
    with pytest.raises(RuntimeError):
        with store.transaction():
            with store.transaction():
                put(store, 1)
            assert rows(store) == []  # the inner block did not commit
            raise RuntimeError("boom")
    assert rows(store) == []


def test_a_failed_call_inside_leaves_none_of_its_rows(store):
    def half_then_fail(c):
        c.execute(sa.text("INSERT INTO t (x) VALUES (10)"))
        raise ValueError("ownership clash")

    with store.transaction():
        put(store, 1)
        with pytest.raises(ValueError):
            store._tx("insert", half_then_fail)
        put(store, 2)
    assert rows(store) == [1, 2]  # row 10 went with its savepoint


def test_a_database_error_inside_is_a_store_error_and_rolls_back(store):
    with pytest.raises(StoreError, match="TiDB put failed"):
        with store.transaction():
            put(store, 1)
            put(store, 1)  # primary key clash
    assert rows(store) == []


def test_other_threads_are_not_joined(store):
    seen = []
    with store.transaction():
        put(store, 1)
        worker = threading.Thread(target=lambda: seen.append(
            (store._in_transaction(), rows(store))))
        worker.start()
        worker.join()
    assert seen == [(False, [])]
    assert rows(store) == [1]


def test_ddl_is_refused_inside_a_transaction(store):
    with store.transaction():
        for call in (store.migrate, lambda: store.reset_vector_index("e", 4),
                     lambda: store.open("e", 4)):
            with pytest.raises(StoreError, match="cannot run inside transaction"):
                call()


# ---- migrate() -------------------------------------------------------------------------
class RecordingConn:
    """Compiles every statement with the MySQL dialect; SELECTs of schema_migrations
    return ``applied``; UPDATEs report the next of ``updated`` as their row count (0
    when none is left); ``commit()`` is recorded as ``COMMIT``."""

    def __init__(self, applied=(), updated=()):
        self.sql: list[str] = []
        self.applied = list(applied)
        self.updated = list(updated)

    def execute(self, stmt, *args):
        text = " ".join(str(stmt.compile(dialect=DIALECT)).split())
        self.sql.append(text)
        at = datetime(2025, 1, 1, tzinfo=timezone.utc)
        data = [(a, at) for a in self.applied] if text.startswith("SELECT") else []
        count = self.updated.pop(0) if text.startswith("UPDATE") and self.updated else 0
        return type("Result", (), {"all": lambda self_: data, "rowcount": count})()

    def commit(self):
        self.sql.append("COMMIT")


def _migrating_store(conn):
    s = TiDBStore(connection_settings(cfg()), table_prefix="t1_")
    s._sql = TiDBSQL(build_schema(8, prefix="t1_"))
    s._tx = lambda what, fn: fn(conn)
    return s


def test_migrate_applies_0001_on_a_new_database_and_records_it():
    conn = RecordingConn()
    assert _migrating_store(conn).migrate() == ["0001_initial", "0002_resources",
                                                "0003_conversations", "0004_validity"]
    assert conn.sql[0].startswith("CREATE TABLE IF NOT EXISTS t1_schema_migrations")
    assert any(s.startswith("CREATE TABLE IF NOT EXISTS t1_memories ") and "VECTOR(8)" in s
               for s in conn.sql)
    assert conn.sql[-1].startswith("INSERT INTO t1_schema_migrations (id, applied_at)")
    create_memories = next(i for i, s in enumerate(conn.sql) if "TABLE IF NOT EXISTS t1_memories" in s)
    assert create_memories < len(conn.sql) - 1  # recorded only after its DDL ran
    create_resources = next(i for i, s in enumerate(conn.sql) if "TABLE IF NOT EXISTS t1_resources" in s)
    records = [i for i, s in enumerate(conn.sql) if s.startswith("INSERT INTO t1_schema_migrations")]
    assert records[0] < create_resources < records[1]  # 0002 after 0001 was recorded
    assert any("conversation_id" in s for s in conn.sql[records[1]:records[2]])


def test_0003_adds_the_conversation_column_and_fills_it_in_committed_batches():
    """Issue 26: old rows of a thread get their thread as conversation, in batches of
    BACKFILL_ROWS rows each committed (a large table stays under TiDB's transaction
    size), until an UPDATE changes nothing; every statement is re-runnable."""
    from memory.store.tidb.migrations import BACKFILL_ROWS

    conn = RecordingConn(applied=["0001_initial", "0002_resources"],
                         updated=[BACKFILL_ROWS, 17])
    assert _migrating_store(conn).migrate() == ["0003_conversations", "0004_validity"]
    assert conn.sql[1].startswith("SELECT t1_schema_migrations.id")
    step = conn.sql[2:]  # after CREATE TABLE schema_migrations and reading it
    assert step[0] == ("ALTER TABLE t1_memories ADD COLUMN IF NOT EXISTS conversation_id "
                       "VARCHAR(64) NULL")
    assert step[1] == ("CREATE INDEX IF NOT EXISTS ix_t1_memories_user_conversation ON "
                       "t1_memories (user_id, conversation_id, created_at)")
    fill = ("UPDATE t1_memories SET conversation_id=t1_memories.thread_id WHERE "
            "t1_memories.source = %s AND t1_memories.thread_id != %s AND "
            f"t1_memories.conversation_id IS NULL LIMIT {BACKFILL_ROWS}")
    assert step[2:8] == [fill, "COMMIT", fill, "COMMIT", fill,
                         step[7]] and step[7].startswith("INSERT INTO t1_schema_migrations")


def test_migrate_is_a_no_op_when_up_to_date_and_refuses_unknown_ids():
    conn = RecordingConn(applied=["0001_initial", "0002_resources", "0003_conversations",
                                  "0004_validity"])
    store = _migrating_store(conn)
    assert store.migrate() == []
    assert not any("t1_memories" in s for s in conn.sql)
    with pytest.raises(ValueError, match="upgrade Memory Chat"):
        _migrating_store(RecordingConn(applied=["0001_initial", "0099_future"])).migrate()


def test_migration_status_lists_applied_and_pending():
    store = _migrating_store(RecordingConn(applied=["0001_initial"]))
    store._connect = lambda: None
    row, pending_row, _, last = store.migration_status()
    assert row.id == "0001_initial" and row.applied_at.startswith("2025-01-01T00:00:00")
    assert pending_row.id == "0002_resources" and pending_row.applied_at is None
    assert last.id == "0004_validity" and last.applied_at is None
    store = _migrating_store(RecordingConn())
    store._connect = lambda: None
    assert [r.applied_at for r in store.migration_status()] == [None, None, None, None]


# ---- search indexes ------------------------------------------------------------------
def _index_store(vector_index: bool, serverless: bool = True):
    s = TiDBStore(connection_settings(cfg(tidb_vector_index=vector_index)))
    s._sql = TiDBSQL(build_schema(4))
    s._features.tiflash = True
    s._features.serverless = serverless
    created: list[str] = []
    s._index_exists = lambda name: name in created
    s._create_index = lambda index: created.append(index.name)
    s._create_fulltext_index = lambda: created.append(s.sql.s.fulltext_index.name)
    s._replica_progress = lambda: {"replica_count": 0, "available": False, "progress": 0.0}
    s._probe_fulltext = lambda: None
    return s, created


def test_hnsw_index_is_created_only_when_opted_in():
    store, created = _index_store(vector_index=False)
    store._ensure_search_indexes()
    assert created == ["fts_idx_memories_text"] and store._features.vector_index is False
    assert store._features.fulltext and store._features.notes == []
    store, created = _index_store(vector_index=True)
    store._ensure_search_indexes()
    assert created == ["vec_idx_memories_embedding_cosine", "fts_idx_memories_text"]
    assert store._features.vector_index is True


def test_error_1061_means_the_index_exists():
    store = TiDBStore(connection_settings(cfg()))
    store._sql = TiDBSQL(build_schema(4))
    store._index_exists = lambda name: False

    def error(code):
        return sa.exc.OperationalError("CREATE INDEX", {}, pymysql.err.OperationalError(
            code, "Duplicate key name" if code == 1061 else "unsupported"))

    class Index:
        name = "fts_idx_memories_text"

        def __init__(self, code):
            self.code = code

        def create(self, engine):
            raise error(self.code)

    store._client = FakeClient(sa.create_engine("sqlite://"))
    assert store._create_index(Index(1061)) is None
    assert store._create_index(Index(1105)) == "(1105, 'unsupported')"

    def failing_tx(code):
        """``_tx`` as the store maps a database error (``retry.store_error``)."""
        def run(what, fn):
            raise store_error(what, error(code)) from error(code)
        return run

    store._tx = failing_tx(1061)  # the FULLTEXT index, created by the store's own DDL
    assert store._create_fulltext_index() is None
    store._tx = failing_tx(1105)
    assert store._create_fulltext_index() == "TiDB create full-text index failed: (1105, 'unsupported')"


def test_full_text_is_reprobed_while_off_at_most_every_interval():
    store = TiDBStore(connection_settings(cfg()))
    store._sql = TiDBSQL(build_schema(4))
    store._client = FakeClient(sa.create_engine("sqlite://"))
    now = [1000.0]
    store._clock = lambda: now[0]
    probes = ["no TiFlash replica yet"]
    calls = []
    store._index_exists = lambda name: True
    store._replica_progress = lambda: {"replica_count": 0, "available": False, "progress": 0.0}
    store._probe_fulltext = lambda: calls.append(1) or (probes.pop(0) if probes else None)
    store._tx = lambda what, fn: [("m1", 2.5)]
    assert store.text_search("u1", "coffee", 5) == []  # first probe fails
    now[0] += FULLTEXT_REPROBE_SECONDS / 2
    assert store.text_search("u1", "coffee", 5) == [] and len(calls) == 1  # too soon
    now[0] += FULLTEXT_REPROBE_SECONDS
    assert store.text_search("u1", "coffee", 5) == [("m1", 2.5)] and len(calls) == 2
    assert store.fulltext_available and store.health()["notes"] == []
    store.text_search("u1", "tea", 5)
    assert len(calls) == 2  # on: no more probes


def test_no_reprobe_inside_a_transaction(store):
    store._clock = lambda: 10_000.0
    calls = []
    store._probe_fulltext = lambda: calls.append(1)
    with store.transaction():
        assert store.text_search("u1", "coffee", 5) == []
    assert calls == []
