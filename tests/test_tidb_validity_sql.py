"""Offline checks of the TiDB store's memory validity (status current / superseded / ended
/ forgotten, ``history.turn_id``), without a TiDB server:

* the compiled SQL (MySQL dialect): every query that returns, counts or searches live
  memories requires ``status = 'current'``; the validity statements keep ``user_id``
  inside their WHERE; the table definitions and migration ``0004_validity``'s DDL;
* the store methods' statement sequence and results against a connection that records
  the compiled statements (what is run, in what order, what is returned);
* the same methods run against an SQLite engine standing in for TiDB (portable
  statements only: no upsert, no vector search), for their effect on real rows.

The contract suite (tests/contract/test_validity.py) runs them against a real TiDB when
``TIDB_HOST`` or ``DATABASE_URL`` is set."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from pytidb.datatype import MEDIUMTEXT
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateColumn

from memory.store.common import ORDERS, validity_values
from memory.store.tidb import TiDBSQL, TiDBStore, build_schema, connection_settings, schema_ddl
from memory.store.tidb.migrations import validity_ddl
from memory.store.tidb.resources import ResourceSQL, resources_table
from memory.store.tidb.rows import memory_row
from memory.store.tidb.schema import VALIDITY_COLUMNS, later_index_names
from memory.types import WRITE_EVENTS, HistoryEvent, MemoryRecord, new_id, utcnow
from tests.test_tidb_store import RecordingConn, _migrating_store
from tests.tidb_helpers import FakeClient, cfg, sqlite_engine

DIALECT = mysql.dialect()
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
LIVE = "memories.status = 'current' AND (memories.expires_at IS NULL OR memories.expires_at > %s)"


def sql(stmt) -> str:
    return " ".join(str(stmt.compile(dialect=DIALECT)).split())


def where_of(text: str) -> str:
    """The outermost WHERE clause of ``text`` (up to ORDER BY / GROUP BY / LIMIT)."""
    where = text[text.rindex(" FROM memories WHERE ") + len(" FROM memories WHERE "):]
    return re.split(r" (?:ORDER BY|GROUP BY|LIMIT) ", where)[0]


@pytest.fixture(scope="module")
def q() -> TiDBSQL:
    return TiDBSQL(build_schema(8))


# ---- live means current and unexpired, in every live query -----------------------------
def _live_queries(q: TiDBSQL) -> dict[str, list]:
    lm = dict(limit=5, offset=0, types=["fact"], since=NOW, until=NOW, with_embedding=False)
    rq = ResourceSQL(resources_table(), q.s.memories)
    return {
        "get_memories": [q.get_memories("u1", ["a", "b"], NOW),
                         q.get_memories("u1", ["a"], NOW, with_embedding=True)],
        "list_memories": [q.list_memories("u1", NOW, order=o, **lm) for o in ORDERS],
        "count_memories": [q.count_memories("u1", NOW, None), q.count_memories("u1", NOW, ["fact"])],
        "vector_search": [q.vector_search("u1", [0.5] * 8, 3, NOW),
                          q.vector_search("u1", [0.5] * 8, 3, NOW, types=["fact"], since=NOW)],
        "text_search": [q.text_search("u1", "coffee", 3, NOW),
                        q.text_search("u1", "coffee", 3, NOW, until=NOW)],
        "message_neighbours": [q.message_neighbours("u1", ["a", "b"], NOW, 60)],
        "resource_memory_ids": [rq.memory_ids("u1", "r1", NOW)],
        "resource_memory_counts": [rq.memory_counts("u1", NOW)],
    }


@pytest.mark.parametrize("name", sorted(_live_queries(TiDBSQL(build_schema(8)))))
def test_every_live_query_requires_status_current(q, name):
    for stmt in _live_queries(q)[name]:
        text = sql(stmt)
        where = where_of(text)
        assert "memories.user_id = %s AND " + LIVE in where, (name, text)


def test_both_neighbour_subqueries_require_status_current(q):
    text = sql(q.message_neighbours("bob", ["m1"], NOW, 1.5))
    for side in ("prev_id", "next_id"):
        sub = text[:text.index(f"AS {side}")]
        sub = sub[sub.rindex("(SELECT n.id"):]
        assert "n.status = 'current' AND (n.expires_at IS NULL OR n.expires_at > %s)" in sub
    assert text.count("status = 'current'") == 3  # outer row and both neighbours


def test_reads_of_any_status_have_no_status_condition(q):
    """get_any_memory, iter_page (export, re-embedding) and the past see every status."""
    for stmt in (q.get_any_memory("u1", "m1"), q.iter_page("u1", "", 10, True)):
        assert "status" not in where_of(sql(stmt))
    past = sql(q.past_memories("u1", ["superseded", "ended"], 5))
    assert "memories.status IN (" in past and "'current'" not in past


def test_live_status_is_a_literal_and_the_expiry_is_bound(q):
    stmt = q.count_memories("u1", NOW, None)
    params = stmt.compile(dialect=DIALECT).construct_params()
    assert "current" not in params.values()  # written into the SQL, like the SQLite store
    assert NOW in params.values()


# ---- the validity statements -----------------------------------------------------------
def _validity_statements(q: TiDBSQL) -> dict[str, list]:
    return {
        "invalidate": [q.invalidate("u1", "m1", validity_values("superseded", NOW, "m2", "llm"))],
        "restore": [q.restore("u1", "m1")],
        "get_any_memory": [q.get_any_memory("u1", "m1", True)],
        "past_memories": [q.past_memories("u1", ["forgotten"], 5)],
        "forgotten_before": [q.forgotten_before("u1", NOW)],
        "purge": [q.purge("u1", ["a", "b"])],
        "delete_versions": [q.delete_versions("u1", "m1")],
        "turn_history": [q.turn_history("u1", "t1")],
        "last_turn": [q.last_turn("u1", WRITE_EVENTS)],
    }


@pytest.mark.parametrize("name", sorted(_validity_statements(TiDBSQL(build_schema(8)))))
def test_validity_statements_have_user_id_in_their_where(q, name):
    for stmt in _validity_statements(q)[name]:
        text = sql(stmt)
        where = text.split(" WHERE ", 1)[1]
        assert re.match(r"(memories|memory_history)\.user_id = %s AND ", where), text
        params = stmt.compile(dialect=DIALECT).construct_params()
        assert params["user_id_1"] == "u1"


def test_invalidate_and_restore_are_single_conditional_updates(q):
    stmt = q.invalidate("u1", "m1", validity_values("superseded", NOW, "m2", "rule:x"))
    assert sql(stmt) == (
        "UPDATE memories SET status=%s, invalid_at=%s, superseded_by=%s, invalid_reason=%s "
        "WHERE memories.user_id = %s AND memories.id = %s AND memories.status = 'current'")
    compiled = stmt.compile(dialect=DIALECT)
    params = compiled.construct_params()
    assert (params["status"], params["superseded_by"], params["invalid_reason"]) == (
        "superseded", "m2", "rule:x")
    # the time is stored as naive UTC (DATETIME(6) has no zone), like every other time
    assert compiled._bind_processors["invalid_at"](params["invalid_at"]) == NOW.replace(tzinfo=None)
    assert sql(q.restore("u1", "m1")) == (
        "UPDATE memories SET status='current', invalid_at=NULL, superseded_by=NULL, "
        "invalid_reason=NULL WHERE memories.user_id = %s AND memories.id = %s AND "
        "memories.status != 'current'")


def test_purge_reads_the_tombstones_with_a_lock_and_deletes_their_versions(q):
    read = sql(q.forgotten_before("u1", NOW))
    assert read == ("SELECT memories.id FROM memories WHERE memories.user_id = %s AND "
                    "memories.status = %s AND memories.invalid_at < %s ORDER BY memories.id "
                    "FOR UPDATE")
    assert "forgotten" in q.forgotten_before("u1", NOW).compile(dialect=DIALECT).construct_params().values()
    purge = q.purge("u1", ["a", "b"])
    assert sql(purge).startswith(
        "DELETE FROM memories WHERE memories.user_id = %s AND (memories.id IN (")
    assert "memories.superseded_by IN (" in sql(purge)
    assert "superseded" in purge.compile(dialect=DIALECT).construct_params().values()
    assert sql(q.delete_versions("u1", "m1")) == (
        "DELETE FROM memories WHERE memories.user_id = %s AND memories.superseded_by = %s")


def test_past_memories_newest_invalidation_first(q):
    text = sql(q.past_memories("u1", ["superseded", "ended"], 7, with_embedding=True))
    assert "memories.embedding" in text and "memories.invalid_reason" in text
    assert text.endswith("ORDER BY memories.invalid_at DESC, memories.id DESC LIMIT %s")


def test_last_turn_leaves_out_undone_turns_of_the_same_user(q):
    stmt = q.last_turn("u1", WRITE_EVENTS)
    text = sql(stmt)
    sub = text[text.index("NOT IN (SELECT"):]
    assert sub.startswith("NOT IN (SELECT u.turn_id FROM memory_history AS u WHERE "
                          "u.user_id = %s AND u.event IN (")
    assert "u.turn_id IS NOT NULL" in sub  # NOT IN over a NULL would match nothing
    assert "memory_history.turn_id IS NOT NULL" in text
    assert text.endswith("ORDER BY memory_history.at DESC, memory_history.id DESC LIMIT %s")
    params = stmt.compile(dialect=DIALECT).construct_params()
    assert [params[k] for k in params if k.startswith("user_id")] == ["u1", "u1"]
    events = [v for k, v in params.items() if k.startswith("event")]
    assert events == [list(WRITE_EVENTS), ["UNDO", "RESTORE"]]
    turn = sql(q.turn_history("u1", "t1"))
    assert turn.endswith("WHERE memory_history.user_id = %s AND memory_history.turn_id = %s "
                         "ORDER BY memory_history.at, memory_history.id")


# ---- schema and migration 0004_validity ------------------------------------------------
def test_tables_carry_the_validity_columns_and_indexes():
    ddl = [sql(d) for d in schema_ddl(build_schema(8))]
    memories = next(d for d in ddl if d.startswith("CREATE TABLE IF NOT EXISTS memories "))
    for col in ("status VARCHAR(16) NOT NULL DEFAULT 'current'", "valid_from DATETIME(6)",
                "invalid_at DATETIME(6)", "superseded_by VARCHAR(64)", "invalid_reason TEXT"):
        assert col in memories, col
    history = next(d for d in ddl if d.startswith("CREATE TABLE IF NOT EXISTS memory_history "))
    assert "turn_id VARCHAR(64)" in history
    assert ("CREATE INDEX IF NOT EXISTS ix_memories_user_status ON memories "
            "(user_id, status, invalid_at)") in ddl
    assert ("CREATE INDEX IF NOT EXISTS ix_history_user_turn ON memory_history "
            "(user_id, turn_id)") in ddl


def test_migration_columns_match_the_table_models():
    """``VALIDITY_COLUMNS`` (the ALTERs of 0004) declare what the models (CREATE TABLE of
    a new database) declare: a migrated database and a new one end up alike."""
    schema = build_schema(8)
    tables = {"memories": schema.memories, "history": schema.history}
    for key, column, decl in VALIDITY_COLUMNS:
        model = " ".join(str(CreateColumn(tables[key].c[column]).compile(dialect=DIALECT)).split())
        assert model == f"{column} {decl}".removesuffix(" NULL"), (model, decl)
        assert decl.endswith(" NULL") == tables[key].c[column].nullable


def test_0004_ddl_is_one_column_per_alter_then_the_indexes():
    assert [sql(d) for d in validity_ddl(build_schema(8, prefix="t1_"))] == [
        "ALTER TABLE t1_memories ADD COLUMN IF NOT EXISTS status VARCHAR(16) NOT NULL "
        "DEFAULT 'current'",
        "ALTER TABLE t1_memories ADD COLUMN IF NOT EXISTS valid_from DATETIME(6) NULL",
        "ALTER TABLE t1_memories ADD COLUMN IF NOT EXISTS invalid_at DATETIME(6) NULL",
        "ALTER TABLE t1_memories ADD COLUMN IF NOT EXISTS superseded_by VARCHAR(64) NULL",
        "ALTER TABLE t1_memories ADD COLUMN IF NOT EXISTS invalid_reason TEXT NULL",
        "ALTER TABLE t1_memory_history ADD COLUMN IF NOT EXISTS turn_id VARCHAR(64) NULL",
        "CREATE INDEX IF NOT EXISTS ix_t1_memories_user_status ON t1_memories "
        "(user_id, status, invalid_at)",
        "CREATE INDEX IF NOT EXISTS ix_t1_history_user_turn ON t1_memory_history "
        "(user_id, turn_id)",
    ]


def test_migrate_applies_0004_after_0003_and_records_it():
    conn = RecordingConn(applied=["0001_initial", "0002_resources", "0003_conversations"])
    assert _migrating_store(conn).migrate() == ["0004_validity"]
    step = conn.sql[2:]  # after CREATE TABLE schema_migrations and reading it
    assert step[:-1] == [sql(d) for d in validity_ddl(build_schema(8, prefix="t1_"))]
    assert step[-1].startswith("INSERT INTO t1_schema_migrations (id, applied_at)")
    # DDL only (every statement re-runnable), no row rewrite: TiDB gives existing rows
    # the column's default, 'current'
    assert all(s.startswith(("ALTER TABLE", "CREATE INDEX IF NOT EXISTS")) for s in step[:-1])
    assert all("IF NOT EXISTS" in s for s in step[:-1])


def test_0001_leaves_the_indexes_of_later_columns_to_their_migrations():
    """On a database that predates named migrations, 0001 runs against tables without
    conversation_id / status / turn_id: creating their indexes there would fail. A new
    database gets each index once, from the migration that adds its columns."""
    conn = RecordingConn(updated=[0])
    assert _migrating_store(conn).migrate() == ["0001_initial", "0002_resources",
                                                "0003_conversations", "0004_validity"]
    records = [i for i, s in enumerate(conn.sql)
               if s.startswith("INSERT INTO t1_schema_migrations")]
    for name in sorted(later_index_names("t1_")):
        made = [i for i, s in enumerate(conn.sql) if f"INDEX IF NOT EXISTS {name} " in s]
        assert len(made) == 1 and made[0] > records[0], name  # not in 0001
    status_index = next(i for i, s in enumerate(conn.sql) if "ix_t1_memories_user_status " in s)
    assert records[2] < status_index < records[3]  # in 0004


# ---- store methods: statement sequence and results ------------------------------------
class ScriptedConn:
    """Records the compiled SQL of each statement; a statement's result is the next
    entry of ``results`` whose key starts the SQL (rows for SELECT, a row count for
    UPDATE/DELETE; INSERTs count 1)."""

    def __init__(self, **results):
        self.sql: list[str] = []
        self.results = {k.replace("_", " "): list(v) for k, v in results.items()}

    def execute(self, stmt, *args):
        text = sql(stmt)
        self.sql.append(text)
        key = next((k for k in self.results if text.startswith(k)), None)
        value = self.results[key].pop(0) if key and self.results[key] else None
        rows = value if isinstance(value, list) else []
        count = value if isinstance(value, int) else (1 if text.startswith("INSERT") else 0)
        return type("Result", (), {
            "rowcount": count, "__iter__": lambda self_: iter(rows),
            "first": lambda self_: rows[0] if rows else None,
            "scalar": lambda self_: rows[0][0] if rows else None})()


def _scripted_store(conn) -> TiDBStore:
    store = TiDBStore(connection_settings(cfg(tidb_host="127.0.0.1")))
    store._sql = TiDBSQL(build_schema(8))
    store._tx = lambda what, fn: fn(conn)
    return store


def _event(kind="END", user="u1") -> HistoryEvent:
    return HistoryEvent("m1", user, kind, "old", None, "llm", at=NOW, turn_id="t1")


def test_invalidate_refuses_current_or_unknown_status_before_any_sql():
    conn = ScriptedConn()
    store = _scripted_store(conn)
    for status in ("current", "vanished", ""):
        with pytest.raises(ValueError):
            store.invalidate_memory("u1", "m1", status=status, at=NOW, reason="llm")
    with pytest.raises(ValueError):
        store.invalidate_memory("", "m1", status="ended", at=NOW, reason="llm")
    assert conn.sql == []


def test_invalidate_writes_the_event_only_when_the_row_was_current():
    conn = ScriptedConn(UPDATE=[0, 1])
    store = _scripted_store(conn)
    assert not store.invalidate_memory("u1", "m1", status="ended", at=NOW, reason="llm",
                                       history=_event())
    assert [s.split()[0] for s in conn.sql] == ["UPDATE"]  # no history for a miss
    assert store.invalidate_memory("u1", "m1", status="forgotten", at=NOW, reason="user",
                                   history=_event("FORGET"))
    assert conn.sql[1].startswith("UPDATE memories SET status=%s")
    assert conn.sql[2].startswith("INSERT INTO memory_history (id, memory_id, user_id, "
                                  "event, old_text, new_text, actor, at, turn_id)")


def test_restore_is_one_update_and_its_event():
    conn = ScriptedConn(UPDATE=[1, 0])
    store = _scripted_store(conn)
    assert store.restore_memory("u1", "m1", history=_event("RESTORE"))
    assert not store.restore_memory("u1", "m1", history=_event("RESTORE"))
    assert [s.split()[0] for s in conn.sql] == ["UPDATE", "INSERT", "UPDATE"]


def test_delete_memory_erases_the_versions_only_when_the_memory_was_the_users():
    conn = ScriptedConn(DELETE=[0])
    store = _scripted_store(conn)
    assert not store.delete_memory("u1", "m1", history=_event("DELETE"))
    assert conn.sql == ["DELETE FROM memories WHERE memories.user_id = %s AND memories.id = %s"]
    conn = ScriptedConn(DELETE=[1, 2])
    assert _scripted_store(conn).delete_memory("u1", "m1", history=_event("DELETE"))
    assert conn.sql[1] == ("DELETE FROM memories WHERE memories.user_id = %s AND "
                           "memories.superseded_by = %s")
    assert conn.sql[2].startswith("INSERT INTO memory_history")


def test_purge_deletes_in_chunks_and_counts_the_rows(monkeypatch):
    from memory.store.tidb import validity

    monkeypatch.setattr(validity, "PURGE_CHUNK", 2)
    ids = [("a",), ("b",), ("c",)]
    conn = ScriptedConn(SELECT=[ids], DELETE=[3, 1])
    assert _scripted_store(conn).purge_forgotten("u1", NOW) == 4
    assert conn.sql[0].endswith("FOR UPDATE")
    assert [s.split()[0] for s in conn.sql] == ["SELECT", "DELETE", "DELETE"]
    conn = ScriptedConn(SELECT=[[]])
    assert _scripted_store(conn).purge_forgotten("u1", NOW) == 0
    assert len(conn.sql) == 1
    with pytest.raises(ValueError):
        _scripted_store(ScriptedConn()).purge_forgotten("u1", None)


def test_past_memories_without_a_past_status_runs_nothing():
    conn = ScriptedConn()
    store = _scripted_store(conn)
    assert store.past_memories("u1", statuses=("current",)) == []
    assert store.past_memories("u1", statuses=()) == []
    assert store.past_memories("u1", limit=0) == []
    assert conn.sql == []


def test_last_turn_and_turn_history_results():
    conn = ScriptedConn(SELECT=[[("t2",)], []])
    store = _scripted_store(conn)
    assert store.last_turn("u1") == "t2"
    assert store.last_turn("u1") is None


# ---- the same methods on real rows (an SQLite engine standing in for TiDB) -------------
@compiles(MEDIUMTEXT, "sqlite")
def _mediumtext_on_sqlite(type_, compiler, **kw):  # only the stand-in engine needs it
    return "TEXT"


@pytest.fixture
def standin(tmp_path):
    """A TiDBStore whose pool is an SQLite engine with the store's tables (schema_ddl).
    Rows are written with portable INSERTs (the store's upserts are MySQL-only)."""
    engine = sqlite_engine(tmp_path / "validity.db")
    schema = build_schema(4)
    with engine.begin() as c:
        for ddl in schema_ddl(schema):
            c.execute(ddl)
    store = TiDBStore(connection_settings(cfg(tidb_host="127.0.0.1")))
    store._client = FakeClient(engine)
    store._sql = TiDBSQL(schema)
    yield store
    store.close()


def _put(store, *recs: MemoryRecord, events=()) -> None:
    with store.engine.begin() as c:
        if recs:
            c.execute(sa.insert(store.sql.s.memories), [memory_row(r, 4) for r in recs])
        for ev in events:
            c.execute(sa.insert(store.sql.s.history), [
                {"id": ev.id, "memory_id": ev.memory_id, "user_id": ev.user_id,
                 "event": ev.event, "old_text": ev.old_text, "new_text": ev.new_text,
                 "actor": ev.actor, "at": ev.at, "turn_id": ev.turn_id}])


def _rec(user: str, text: str, **kw) -> MemoryRecord:
    return MemoryRecord(id=kw.pop("id", new_id()), user_id=user, text=text,
                        embedding=[0.5] * 4, **kw)


def test_standin_invalidate_restore_and_the_live_views(standin):
    keep, gone = _rec("alice", "Lives in Lyon"), _rec("alice", "Works at Acme")
    _put(standin, keep, gone)
    at = utcnow()
    assert not standin.invalidate_memory("bob", gone.id, status="ended", at=at, reason="llm")
    assert standin.invalidate_memory("alice", gone.id, status="ended", at=at,
                                     reason="rule:ceased")
    assert not standin.invalidate_memory("alice", gone.id, status="forgotten", at=at,
                                         reason="user")  # no longer current
    assert standin.get_memory("alice", gone.id) is None
    assert [r.id for r in standin.list_memories("alice")] == [keep.id]
    assert standin.count_memories("alice") == 1
    assert [r.id for r in standin.get_memories("alice", [gone.id, keep.id])] == [keep.id]
    past = standin.get_any_memory("alice", gone.id)
    assert (past.status, past.invalid_reason) == ("ended", "rule:ceased")
    assert abs((past.invalid_at - at).total_seconds()) < 1e-3
    assert standin.get_any_memory("bob", gone.id) is None
    assert not standin.restore_memory("bob", gone.id)
    assert standin.restore_memory("alice", gone.id)
    back = standin.get_memory("alice", gone.id)
    assert back.status == "current" and back.invalid_at is None and back.invalid_reason is None
    assert not standin.restore_memory("alice", gone.id)
    assert standin.count_memories("alice") == 2


def test_standin_past_delete_and_purge(standin):
    now = utcnow()
    cur, old, ended = _rec("alice", "Berlin"), _rec("alice", "Munich"), _rec("alice", "Smokes")
    secret, fresh, bobs = _rec("alice", "old secret"), _rec("alice", "fresh"), _rec("bob", "b")
    secret_v = _rec("alice", "older secret")
    _put(standin, cur, old, ended, secret, fresh, bobs, secret_v)
    standin.invalidate_memory("alice", old.id, status="superseded", at=now, reason="llm",
                              superseded_by=cur.id)
    standin.invalidate_memory("alice", ended.id, status="ended", at=now + timedelta(seconds=1),
                              reason="llm")
    assert [r.id for r in standin.past_memories("alice")] == [ended.id, old.id]
    assert standin.past_memories("alice")[1].superseded_by == cur.id
    long_ago = now - timedelta(hours=30)
    standin.invalidate_memory("alice", secret.id, status="forgotten", at=long_ago, reason="user")
    standin.invalidate_memory("alice", secret_v.id, status="superseded", at=long_ago,
                              reason="llm", superseded_by=secret.id)
    standin.invalidate_memory("alice", fresh.id, status="forgotten", at=now, reason="user")
    standin.invalidate_memory("bob", bobs.id, status="forgotten", at=long_ago, reason="user")
    assert {r.id for r in standin.past_memories("alice", statuses=("forgotten",))} == {
        secret.id, fresh.id}
    assert standin.purge_forgotten("alice", now - timedelta(hours=24)) == 2  # + its version
    assert standin.get_any_memory("alice", secret.id) is None
    assert standin.get_any_memory("alice", secret_v.id) is None
    assert standin.get_any_memory("alice", fresh.id) is not None
    assert standin.get_any_memory("bob", bobs.id) is not None
    # delete of the current memory erases its earlier version, not the other past
    assert not standin.delete_memory("bob", cur.id)
    assert standin.get_any_memory("alice", old.id) is not None
    assert standin.delete_memory("alice", cur.id)
    assert standin.get_any_memory("alice", old.id) is None
    assert standin.get_any_memory("alice", ended.id) is not None


def test_standin_turn_history_and_last_turn(standin):
    t0 = utcnow()
    ev = [HistoryEvent("m1", "alice", "ADD", None, "one", "llm", at=t0, turn_id="t1"),
          HistoryEvent("m2", "alice", "ADD", None, "two", "llm", at=t0 + timedelta(seconds=1),
                       turn_id="t2"),
          HistoryEvent("m3", "alice", "END", "x", None, "llm", at=t0 + timedelta(seconds=2),
                       turn_id="t2"),
          HistoryEvent("m4", "bob", "ADD", None, "b", "llm", at=t0 + timedelta(seconds=3),
                       turn_id="t9"),
          HistoryEvent("m5", "alice", "ADD", None, "no turn", "llm",
                       at=t0 + timedelta(seconds=4), turn_id=None)]
    _put(standin, events=ev)
    assert [e.memory_id for e in standin.turn_history("alice", "t2")] == ["m2", "m3"]
    assert standin.turn_history("alice", "t2")[0].turn_id == "t2"
    assert standin.turn_history("bob", "t2") == []
    assert standin.last_turn("alice") == "t2"
    _put(standin, events=[HistoryEvent("m2", "alice", "UNDO", "two", None, "user",
                                       at=t0 + timedelta(seconds=5), turn_id="t2")])
    assert standin.last_turn("alice") == "t1"
    _put(standin, events=[HistoryEvent("m1", "bob", "UNDO", "one", None, "user",
                                       at=t0 + timedelta(seconds=6), turn_id="t1")])
    assert standin.last_turn("alice") == "t1"  # bob's undo does not count for alice
    assert standin.last_turn("nobody") is None
