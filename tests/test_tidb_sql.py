"""Offline checks of the TiDB store's SQL: the DDL and every statement are compiled
against SQLAlchemy's MySQL dialect (no TiDB server here): vector and full-text search,
every statement scoped by user, row binding, index names, the migrations table.

Connection settings are in tests/test_tidb_connection.py, retries and input errors in
tests/test_tidb_errors.py."""
from __future__ import annotations

import inspect
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from memory.store import tidb
from memory.store.tidb import (TiDBSQL, TiDBStore, UTCDateTime, build_schema,
                               connection_settings, fulltext_terms, schema_ddl)
from memory.store.common import ORDERS, validity_values
from memory.store.tidb.rows import history_row, memory_row
from memory.types import WRITE_EVENTS, HistoryEvent, MemoryRecord, Message, Thread
from tests.tidb_helpers import cfg

DIALECT = mysql.dialect()
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
USER_TABLES = ("memories", "memory_history", "profiles", "threads", "messages")


def sql(stmt) -> str:
    return " ".join(str(stmt.compile(dialect=DIALECT)).split())


@pytest.fixture(scope="module")
def q() -> TiDBSQL:
    return TiDBSQL(build_schema(384))


# ---- DDL ---------------------------------------------------------------------------
def test_ddl_has_vector_column_user_indexes_and_no_truncate():
    schema = build_schema(384)
    ddl = [sql(d) for d in schema_ddl(schema)]
    create_memories = next(d for d in ddl if d.startswith("CREATE TABLE IF NOT EXISTS memories "))
    assert "embedding VECTOR(384)" in create_memories
    assert "PRIMARY KEY (id)" in create_memories
    # every table holding user data has an index (or primary key) led by user_id
    for table in USER_TABLES:
        led_by_user = [d for d in ddl if re.search(rf"INDEX IF NOT EXISTS \w+ ON {table} \(user_id\b", d)]
        pk_user = any(d.startswith(f"CREATE TABLE IF NOT EXISTS {table} ") and "PRIMARY KEY (user_id)" in d
                      for d in ddl)
        assert led_by_user or pk_user, f"{table} has no index on user_id"
    assert all(d.startswith(("CREATE TABLE IF NOT EXISTS", "CREATE INDEX IF NOT EXISTS",
                             "CREATE UNIQUE INDEX IF NOT EXISTS")) for d in ddl)
    assert not any("TRUNCATE" in d.upper() or d.upper().startswith("DROP") for d in ddl)
    # the HNSW / FULLTEXT indexes are not part of the base DDL (created only if supported)
    assert not any("VECTOR INDEX" in d or "FULLTEXT" in d for d in ddl)


def test_search_indexes_compile_to_tidb_syntax():
    schema = build_schema(8)
    vec = sql(sa.schema.CreateIndex(schema.vector_index))
    fts = sql(sa.schema.CreateIndex(schema.fulltext_index))
    assert vec.startswith("CREATE VECTOR INDEX")
    assert "ON memories ((VEC_COSINE_DISTANCE(embedding))) USING HNSW" in vec
    assert fts.startswith("CREATE FULLTEXT INDEX")
    # created on TiDB Cloud only, with the replica on demand (never SET TIFLASH REPLICA)
    assert fts.endswith("ON memories (text) WITH PARSER MULTILINGUAL ADD_COLUMNAR_REPLICA_ON_DEMAND")


def test_schemas_of_two_dimensions_coexist_and_prefix_applies():
    a, b = build_schema(3), build_schema(5, prefix="t1_")
    assert "embedding VECTOR(3)" in sql(sa.schema.CreateTable(a.memories))
    assert "embedding VECTOR(5)" in sql(sa.schema.CreateTable(b.memories))
    assert {t.name for t in b.tables} == {"t1_store_meta", "t1_memories", "t1_memory_history",
                                          "t1_profiles", "t1_threads", "t1_messages"}
    assert a.memories.metadata is not b.memories.metadata
    with pytest.raises(ValueError):
        build_schema(0)
    with pytest.raises(ValueError):
        build_schema(4, prefix="x; DROP")


# ---- search ------------------------------------------------------------------------
def test_vector_search_filters_user_before_limit(q):
    stmt = q.vector_search("alice", [0.5] * 384, 7, NOW, types=["fact"])
    text = sql(stmt)
    assert "VEC_COSINE_DISTANCE(memories.embedding, %s)" in text
    where, order, limit = text.index(" WHERE "), text.index(" ORDER BY "), text.index(" LIMIT ")
    user = text.index("memories.user_id = %s")
    assert where < user < order < limit, text
    assert "(memories.expires_at IS NULL OR memories.expires_at > %s)" in text[where:order]
    assert "memories.type IN" in text[where:order]
    assert text.count("SELECT") == 1, "no post-filtering subquery"
    assert "ORDER BY distance ASC" in text
    compiled = stmt.compile(dialect=DIALECT)
    params = compiled.construct_params()
    assert params["user_id_1"] == "alice"
    assert 7 in params.values()
    # the query vector is bound (not inlined) and encoded the way TiDB expects
    encoded = compiled._bind_processors["query_vector"](params["query_vector"])
    assert encoded.startswith("[0.5, 0.5") and encoded.endswith("]")
    # 'now' is bound as naive UTC (DATETIME has no zone)
    key = next(k for k in params if k.startswith("expires_at"))
    assert compiled._bind_processors[key](params[key]) == NOW.replace(tzinfo=None)


def test_vector_search_rejects_wrong_dimension_and_nan(q):
    with pytest.raises(ValueError, match="384"):
        q.vector_search("u", [0.1] * 5, 3, NOW)
    with pytest.raises(ValueError, match="NaN"):
        q.vector_search("u", [float("nan")] * 384, 3, NOW)


def test_message_neighbours_are_correlated_seeks_inside_the_users_conversation(q):
    stmt = q.message_neighbours("bob", ["m1", "m2"], NOW, 1.5)
    text = sql(stmt)
    outer = text[text.rindex(" FROM memories WHERE "):]
    assert "memories.user_id = %s" in outer and "memories.id IN (" in outer
    assert "memories.source = %s" in outer and "memories.conversation_id != %s" in outer
    for side, cmp, fn, order in (("prev_id", "<", "date_sub", "DESC"),
                                 ("next_id", ">", "date_add", "ASC")):
        sub = text[:text.index(f"AS {side}")]
        sub = sub[sub.rindex("(SELECT n.id"):]
        assert ("n.user_id = memories.user_id AND n.conversation_id = "
                "memories.conversation_id") in sub
        assert (f"(n.created_at {cmp} memories.created_at OR n.created_at = "
                f"memories.created_at AND n.id {cmp} memories.id)") in sub
        assert f"{fn}(memories.created_at, INTERVAL 1500000 MICROSECOND)" in sub
        assert sub.rstrip().endswith(f"ORDER BY n.created_at {order}, n.id {order} LIMIT %s)")
    params = stmt.compile(dialect=DIALECT).construct_params()
    assert params["user_id_1"] == "bob" and "raw" in params.values()


def test_text_search_uses_fts_match_word_scoped_by_user(q):
    stmt = q.text_search("bob", fulltext_terms('coffee "AND" tea*'), 4, NOW)
    text = sql(stmt)
    assert "FTS_MATCH_WORD(%s, memories.text)" in text
    where, order = text.index(" WHERE "), text.index(" ORDER BY ")
    assert "memories.user_id = %s" in text[where:order]
    assert "ORDER BY score DESC" in text and text.rstrip().endswith("LIMIT %s")
    params = stmt.compile(dialect=DIALECT).construct_params()
    assert params["terms"] == "coffee tea"  # quotes/* dropped, stop-word "AND" too
    assert params["user_id_1"] == "bob"


@pytest.mark.parametrize("raw, expected", [
    ('NEAR "x" AND y* -z (w)', "NEAR x y z w"),
    # Han text as written (TiDB segments it; jieba's overlapping 咖啡/喝咖啡 would count twice)
    ("我喜欢喝咖啡，不喝茶", "我喜欢喝咖啡 不喝茶"),
    ("Coffee coffee COFFEE and tea", "Coffee tea"),  # repeated words once, stop-words out
    ("Ｐｙｔｈｏｎ\u200b３", "Python3"),  # NFKC, zero-width space removed
    ("the a of is", ""), ("的了吗", ""),  # no searchable term (the SQLite store's rule)
    ("***  \"\"  --", ""),
    ("", ""),
])
def test_fulltext_terms_strip_operators(raw, expected):
    assert fulltext_terms(raw) == expected


# ---- every statement on user data is scoped by user --------------------------------
def _statements(q: TiDBSQL) -> dict[str, list]:
    thread = Thread(id="t1", user_id="u1", title="x")
    msg = Message(id="m1", thread_id="t1", user_id="u1", role="user", content="hi")
    lm = dict(limit=5, offset=0, types=["fact"], since=NOW, until=NOW, with_embedding=True)
    return {
        "update_memory": [q.update_memory("u1", "m1", {"text": "x"})],
        "owned_ids": [q.owned_ids("u1", ["a", "b"])],
        "delete_memory": [q.delete_memory("u1", "m1")],
        "delete_versions": [q.delete_versions("u1", "m1")],
        "invalidate": [q.invalidate("u1", "m1", validity_values("ended", NOW, None, "llm"))],
        "restore": [q.restore("u1", "m1")],
        "get_any_memory": [q.get_any_memory("u1", "m1"), q.get_any_memory("u1", "m1", True)],
        "past_memories": [q.past_memories("u1", ["superseded", "ended"], 5, True)],
        "forgotten_before": [q.forgotten_before("u1", NOW)],
        "purge": [q.purge("u1", ["a", "b"])],
        "turn_history": [q.turn_history("u1", "t1")],
        "last_turn": [q.last_turn("u1", WRITE_EVENTS)],
        "delete_user": q.delete_user("u1"),
        "get_memories": [q.get_memories("u1", ["a", "b"], NOW)],
        "list_memories": [q.list_memories("u1", NOW, order=o, **lm) for o in ORDERS],
        "count_memories": [q.count_memories("u1", NOW, None)],
        "vector_search": [q.vector_search("u1", [0.1] * 384, 3, NOW, types=["fact"], since=NOW,
                                          until=NOW)],
        "text_search": [q.text_search("u1", "x", 3, NOW, types=["fact"], since=NOW, until=NOW)],
        "message_neighbours": [q.message_neighbours("u1", ["a", "b"], NOW, 3600)],
        "touch": [q.touch("u1", ["a"], NOW)],
        "set_embedding": [q.set_embedding()],
        "iter_page": [q.iter_page("u1", "", 10, True)],
        "history": [q.history("u1", "m1"), q.history("u1")],
        "get_profile": [q.get_profile("u1")],
        "get_thread": [q.get_thread("u1", "t1"), q.get_thread("u1", "t1", for_update=True)],
        "list_threads": [q.list_threads("u1", 10)],
        "delete_thread": q.delete_thread("u1", "t1"),
        "get_message": [q.get_message("u1", "m1")],
        "last_seq": [q.last_seq("u1", "t1")],
        "bump_thread": [q.bump_thread("u1", "t1", NOW)],
        "get_messages": [q.get_messages("u1", "t1", -1, None), q.get_messages("u1", "t1", 3, 2)],
        # inserts carry user_id as a value; upserts only overwrite rows of the same user
        "upsert_memories": [q.upsert_memories()],
        "set_profile": [q.set_profile("u1", "p", NOW)],
        "upsert_thread": [q.upsert_thread(thread)],
        "insert_message": [q.insert_message(msg)],
        "insert_history_ignore": [q.insert_history_ignore()],
    }


#: builders that read no user rows or are store-wide by design (meta, admin)
EXEMPT = {"memory_columns", "any_memory", "user_ids", "get_meta", "set_meta"}


def test_every_builder_is_checked(q):
    public = {n for n, _ in inspect.getmembers(TiDBSQL, inspect.isfunction) if not n.startswith("_")}
    assert public - EXEMPT == set(_statements(q)), "classify new TiDBSQL builders in this test"


def test_every_select_update_delete_filters_by_user(q):
    for name, stmts in _statements(q).items():
        for stmt in stmts:
            text = sql(stmt)
            if text.startswith("INSERT"):
                assert "user_id" in text.split(" VALUES ")[0], name
                if "ON DUPLICATE KEY UPDATE" in text and name != "insert_history_ignore":
                    table = text.split()[2]
                    updates = stmt._post_values_clause.update  # column -> new value
                    assert updates, name
                    for column, value in updates.items():
                        expr = " ".join(str(value.compile(dialect=DIALECT)).split())
                        assert expr.startswith(f"IF({table}.user_id = inserted.user_id, "), (name, column, expr)
                    assert f"IF({table}.user_id = VALUES(user_id), " in text
                continue
            assert " WHERE " in text, (name, text)
            where = text.split(" WHERE ", 1)[1]
            assert re.search(r"\b(memories|memory_history|profiles|threads|messages)\.user_id = %s", where), (name, text)


def test_reads_after_an_upsert_are_locking_reads(q):
    """Issue 25, point 4: the ownership checks after the memory and thread upserts and
    the read of the INSERT IGNORE winner of a resource are ``FOR UPDATE``: in TiDB's
    pessimistic mode only a locking read sees a row committed after the transaction
    began (a snapshot read returns nothing: a false "belongs to another user", or
    NoResultFound for the second of two racing uploads)."""
    from memory.store.tidb.resources import ResourceSQL, resources_table

    owned = sql(q.owned_ids("u1", ["a", "b"]))
    assert owned.startswith("SELECT memories.id FROM memories WHERE memories.user_id = %s")
    assert owned.endswith("FOR UPDATE") and "count(" not in owned.lower()
    assert sql(q.get_thread("u1", "t1", for_update=True)).endswith("FOR UPDATE")
    rq = ResourceSQL(resources_table(), q.s.memories)
    assert sql(rq.live_by_sha("u1", "ab" * 32, for_update=True)).endswith("FOR UPDATE")
    assert not sql(rq.live_by_sha("u1", "ab" * 32)).endswith("FOR UPDATE")  # find_resource


def test_message_append_reads_the_latest_rows_with_locks(q):
    """add_message's reads are locking reads: in TiDB's pessimistic mode a plain SELECT
    sees the transaction's start snapshot, so MAX(seq) could be stale."""
    for stmt in (q.get_thread("u1", "t1", for_update=True), q.last_seq("u1", "t1"),
                 q.get_message("u1", "m1")):
        assert sql(stmt).endswith("FOR UPDATE"), sql(stmt)
    assert "ORDER BY messages.seq DESC LIMIT %s FOR UPDATE" in sql(q.last_seq("u1", "t1"))


def test_deletes_are_all_scoped_and_nothing_truncates(q):
    deletes = [s for stmts in _statements(q).values() for s in stmts if sql(s).startswith("DELETE")]
    assert len(deletes) >= 6  # memory, user (3 tables), thread (2 tables)
    for stmt in deletes:
        text = sql(stmt)
        table = text.split()[2]
        assert re.search(rf"WHERE {table}\.user_id = %s", text), text
    for path in Path(tidb.__file__).parent.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"TRUNCATE\s+TABLE|\.truncate\(", source, re.IGNORECASE), path
        assert not re.search(r"DELETE\s+FROM\s+\w+\s*(;|\"|')", source, re.IGNORECASE), path


def test_memory_rows_bind_every_column(q):
    rec = MemoryRecord(id="a" * 32, user_id="u1", text="我住在上海", tags=["home"],
                       metadata={"k": 1}, embedding=[0.25] * 384,
                       created_at=datetime(2025, 1, 1, 8, tzinfo=timezone(timedelta(hours=8))))
    row = memory_row(rec, 384)
    compiled = q.upsert_memories().compile(dialect=DIALECT, column_keys=list(row))
    params = compiled.construct_params(row)
    assert set(row) <= set(params)
    procs = compiled._bind_processors
    assert procs["embedding"](params["embedding"]).startswith("[0.25, 0.25")
    # aware datetimes are stored as naive UTC
    stored = UTCDateTime().process_bind_param(rec.created_at, DIALECT)
    assert stored == datetime(2025, 1, 1, 0, 0) and stored.tzinfo is None
    assert UTCDateTime().process_result_value(stored, DIALECT).tzinfo is timezone.utc
    with pytest.raises(ValueError):
        memory_row(MemoryRecord(id="b", user_id="u1", text="x"), 384)  # no embedding
    with pytest.raises(ValueError):
        memory_row(MemoryRecord(id="b", user_id="", text="x", embedding=[0.0] * 384), 384)
    hist = history_row(HistoryEvent("a", "u1", "ADD", None, "x", "user"))
    compiled = q.insert_history_ignore().compile(dialect=DIALECT, column_keys=list(hist))
    assert set(hist) <= set(compiled.construct_params(hist))


# ---- issue 8: the TiDB fixes, each checked offline --------------------------------
def test_teardown_drops_fulltext_index_before_table():
    """TiDB: "DROP TABLE ... Drop the full-text index first" (Full-Text Search Index,
    DDL restrictions)."""
    from memory.store.tidb.schema import drop_table_ddl

    quote = DIALECT.identifier_preparer.quote
    ddl = drop_table_ddl("t1_memories", ["fts_idx_t1_memories_text"], quote)
    assert ddl == ["ALTER TABLE t1_memories DROP INDEX fts_idx_t1_memories_text",
                   "DROP TABLE IF EXISTS t1_memories"]
    assert drop_table_ddl("t1_threads", [], quote) == ["DROP TABLE IF EXISTS t1_threads"]


def test_teardown_drops_the_fulltext_index_by_its_known_name():
    """Issue 25, point 7: TiDB may report a FULLTEXT index with INDEX_TYPE BTREE, so the
    teardown drops it by the name the schema gives it, IF EXISTS, before DROP TABLE."""
    from memory.store.tidb.schema import teardown_ddl

    quote = DIALECT.identifier_preparer.quote
    schema = build_schema(8, prefix="t1_")
    ddl = teardown_ddl(schema, ["t1_threads", "t1_memories"], quote)
    assert ddl == ["DROP TABLE IF EXISTS t1_threads",
                   "ALTER TABLE t1_memories DROP INDEX IF EXISTS fts_idx_t1_memories_text",
                   "DROP TABLE IF EXISTS t1_memories"]


@pytest.mark.parametrize("vec, message", [
    ([1e-30] * 4, "float32 sum of squares is 0"),   # valid float32, squares underflow
    ([1e-23, 0.0, 0.0, 1e-23], "float32 sum of squares is 0"),
    ([1e20] * 4, "overflows"),                        # squares overflow float32
])
def test_vectors_whose_float32_norm_vanishes_are_refused(vec, message):
    """Issue 25, point 7: such a vector is not all zeros, yet TiDB's float32 norm is 0
    (or infinite), so VEC_COSINE_DISTANCE would be NULL and break the ORDER BY."""
    q4 = TiDBSQL(build_schema(4))
    with pytest.raises(ValueError, match=message):
        q4.vector_search("u1", vec, 3, NOW)
    with pytest.raises(ValueError, match=message):
        memory_row(MemoryRecord(id="z", user_id="u1", text="x", embedding=vec), 4)
    store = TiDBStore(connection_settings(cfg(tidb_host="127.0.0.1")))
    store._sql = q4
    with pytest.raises(ValueError, match=message):
        store.set_embeddings("u1", [("a", vec)])
    q4.vector_search("u1", [1e-19] * 4, 3, NOW)  # tiny but representable squares: kept


def test_vector_search_is_a_prefiltered_exact_knn_with_date_filters(q):
    since, until = NOW - timedelta(days=7), NOW
    text = sql(q.vector_search("alice", [0.5] * 384, 5, NOW, types=["fact"], since=since,
                              until=until))
    where, order = text.index(" WHERE "), text.index(" ORDER BY ")
    for cond in ("memories.user_id = %s", "memories.type IN", "memories.created_at >= %s",
                 "memories.created_at <= %s", "memories.embedding IS NOT NULL"):
        assert cond in text[where:order], cond
    assert text.count("SELECT") == 1 and "ANN" not in text  # no post-filtering subquery
    text = sql(q.text_search("alice", "coffee", 5, NOW, since=since))
    where, order = text.index(" WHERE "), text.index(" ORDER BY ")
    assert "memories.created_at >= %s" in text[where:order]
    assert "created_at <=" not in text and "type IN" not in text
    assert text.count("FTS_MATCH_WORD") == 2  # one match function in WHERE, one for the score


def test_zero_vectors_are_rejected_before_vec_cosine_distance(q):
    with pytest.raises(ValueError, match="zero vector"):
        q.vector_search("u", [0.0] * 384, 3, NOW)
    with pytest.raises(ValueError, match="zero vector"):
        memory_row(MemoryRecord(id="z", user_id="u1", text="x", embedding=[0.0] * 384), 384)
    store = TiDBStore(connection_settings(cfg(tidb_host="127.0.0.1")))
    store._sql = TiDBSQL(build_schema(4))
    with pytest.raises(ValueError, match="zero vector"):
        store.set_embeddings("u1", [("a", [0.0] * 4)])
    with pytest.raises(ValueError, match="zero vector"):
        store.update_memory("u1", "a", text="t", embedding=[0.0] * 4)


def test_index_names_fit_tidbs_64_characters():
    prefix = "p" * 32  # the longest prefix build_schema accepts
    schema = build_schema(8, prefix=prefix)
    names = {ix.name for t in schema.tables for ix in t.indexes}
    names |= {schema.vector_index.name, schema.fulltext_index.name}
    assert all(len(n) <= 64 for n in names), [n for n in names if len(n) > 64]
    assert len(names) == 9  # 7 B-tree indexes, HNSW, FULLTEXT: still distinct
    assert build_schema(8).vector_index.name == "vec_idx_memories_embedding_cosine"  # short: unchanged
    from memory.store.tidb.schema import index_name

    long_a, long_b = "x" * 70 + "a", "x" * 70 + "b"
    assert len(index_name(long_a)) == 64 and index_name(long_a) != index_name(long_b)
    assert index_name(long_a) == index_name(long_a)


def test_migrations_table_statements_compile():
    from memory.store.tidb.migrations import (applied_migrations, create_migrations_table,
                                              migrations_for, record_migration)
    from memory.store.tidb.schema import build_migrations_table

    table = build_migrations_table("t1_")
    create = sql(create_migrations_table(table))
    assert create.startswith("CREATE TABLE IF NOT EXISTS t1_schema_migrations (")
    assert "id VARCHAR(64) NOT NULL" in create and "applied_at DATETIME(6) NOT NULL" in create
    assert "PRIMARY KEY (id)" in create and "COLLATE utf8mb4_bin" in create
    assert sql(applied_migrations(table)) == ("SELECT t1_schema_migrations.id, "
                                              "t1_schema_migrations.applied_at FROM "
                                              "t1_schema_migrations ORDER BY t1_schema_migrations.id")
    record = sql(record_migration(table, "0001_initial", NOW))
    assert record.startswith("INSERT INTO t1_schema_migrations (id, applied_at) VALUES (%s, %s)")
    assert record.endswith("ON DUPLICATE KEY UPDATE id = t1_schema_migrations.id")
    assert [m.id for m in migrations_for(None)] == ["0001_initial", "0002_resources",
                                                    "0003_conversations", "0004_validity"]
    with pytest.raises(ValueError, match="open"):
        migrations_for(None)[0].apply(object())


def test_a_resource_finds_the_memories_it_also_supports(q):
    """Provenance (``memory.write.provenance``): a file's memories are those learned from it
    (``metadata.resource_id``) or listing it in ``metadata.also_from``, found with
    ``JSON_CONTAINS`` (TiDB has no ``JSON_TABLE``, so counts of ``also_from`` are
    added in Python from a read of the column), inside the user's live rows."""
    from memory.store.tidb.resources import ResourceSQL, resources_table

    rq = ResourceSQL(resources_table(), q.s.memories)
    ids = sql(rq.memory_ids("u1", "r1", NOW))
    assert ids.startswith("SELECT memories.id FROM memories WHERE memories.user_id = %s")
    assert "json_unquote(json_extract(memories.metadata, %s)) = %s OR " \
           "json_contains(memories.metadata, json_quote(%s), %s) = %s" in ids
    params = rq.memory_ids("u1", "r1", NOW).compile(dialect=DIALECT).params
    assert {"$.resource_id", "r1", "resource:r1", "$.also_from"} <= set(params.values())
    also = sql(rq.also_from("u1", NOW))
    assert also.startswith("SELECT json_extract(memories.metadata, %s) AS json_extract_1 "
                           "FROM memories WHERE memories.user_id = %s")
    assert "json_extract(memories.metadata, %s) IS NOT NULL" in also
    assert "memories.status = 'current'" in also


def test_a_resource_claim_is_a_compare_and_set(q):
    """Taking over an abandoned upload (``claim_resource``): the UPDATE matches only the
    ``updated_at`` the claimer read, so the second of two claims changes no row."""
    from memory.store.tidb.resources import ResourceSQL, resources_table

    rq = ResourceSQL(resources_table(), q.s.memories)
    claim = sql(rq.update("u1", "r1", {"status": "pending"}, seen_updated_at=NOW))
    assert claim.startswith("UPDATE resources SET status=%s WHERE resources.user_id = %s "
                            "AND resources.id = %s AND resources.updated_at = %s"), claim
    assert "updated_at = %s" not in sql(rq.update("u1", "r1", {"status": "ready"}))
