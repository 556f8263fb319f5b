"""SQLite-specific message neighbours (insertion order for equal timestamps, seeks of the conversation index, the migrations that add it) and the record decoding search relies on."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from memory.store.sqlite import SQLiteStore, load_sqlite_module
from memory.store.sqlite.schema import CONVERSATION_INDEX, THREAD_INDEX
from memory.store.sqlite.search import _NEIGHBOURS
from memory.types import MemoryRecord, new_id

DIM = 4
DAY = datetime(2024, 3, 1, tzinfo=timezone.utc)


def chat(user: str, thread: str, n: int) -> list[MemoryRecord]:
    """``n`` raw messages of one thread, all with the same timestamp (an imported chat
    without per-message dates), in insertion order."""
    vec = (np.ones(DIM) / np.sqrt(DIM)).tolist()
    return [MemoryRecord(id=new_id(), user_id=user, text=f"message {i}", thread_id=thread,
                         source="raw", created_at=DAY, updated_at=DAY, embedding=vec)
            for i in range(n)]


def test_equal_timestamps_keep_insertion_order_by_index_seeks(tmp_path):
    store = SQLiteStore(tmp_path / "memory.db")
    store.open("e", DIM)
    try:
        msgs = chat("u1", "t1", 1500)
        store.insert_memories(msgs)
        ids = [m.id for m in msgs]
        got = store.message_neighbours("u1", [ids[0], ids[700], ids[-1]], 60)
        assert got == {ids[0]: (None, ids[1]), ids[700]: (ids[699], ids[701]),
                       ids[-1]: (ids[-2], None)}
        with store._read() as conn:
            plan = [r[3] for r in conn.execute(
                "EXPLAIN QUERY PLAN " + _NEIGHBOURS.replace("{ids}", ":i0"),
                {"user": "u1", "now": 0, "w": 1, "i0": ids[0]})]
        seeks = [p for p in plan if p.startswith("SEARCH p USING INDEX")]
        assert len(seeks) == 4 and all(CONVERSATION_INDEX in p for p in seeks), plan
        assert any("created_at=? AND rowid<?" in p for p in seeks), plan
    finally:
        store.close()


def _index_exists(conn, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() \
        is not None


def _old_file(path, records: list[MemoryRecord], before: str) -> None:
    """A store file as the code before migration ``before`` (``"0006"`` or ``"0007"``)
    left it, holding ``records``: written by today's store, then the later steps undone
    (no ``conversation_id`` column, the thread index only from 0006 on, the steps'
    records gone)."""
    store = SQLiteStore(path)
    store.open("e", DIM)
    store.insert_memories(records)
    store.close()
    conn = load_sqlite_module().connect(str(path))
    try:
        conn.execute(f"DROP INDEX {CONVERSATION_INDEX}")
        conn.execute("ALTER TABLE memories DROP COLUMN conversation_id")
        if before > "0006":
            conn.execute(f"CREATE INDEX {THREAD_INDEX} ON memories(user_id, thread_id, created_at)")
        conn.execute("DELETE FROM schema_migrations WHERE id >= ?", (before,))
        conn.commit()
        assert "conversation_id" not in {r[1] for r in conn.execute("PRAGMA table_info(memories)")}
    finally:
        conn.close()


def test_a_file_from_before_the_thread_index_upgrades(tmp_path):
    path = tmp_path / "memory.db"
    msgs = chat("u1", "t1", 3)
    _old_file(path, msgs, "0006")
    store = SQLiteStore(path)
    try:
        store.open("e", DIM)
        applied = {m.id: m.applied_at is not None for m in store.migration_status()}
        assert applied["0006_thread_index"] and applied["0007_conversations"]
        ids = [m.id for m in msgs]
        assert store.message_neighbours("u1", [ids[1]], 60) == {ids[1]: (ids[0], ids[2])}
        with store._read() as c:
            assert _index_exists(c, CONVERSATION_INDEX) and not _index_exists(c, THREAD_INDEX)
    finally:
        store.close()


def test_a_file_from_before_conversations_keeps_its_thread_neighbours(tmp_path):
    """Rows written before ``0007_conversations``: a thread's raw messages get their thread
    as conversation (neighbours as before), other rows none (no neighbours, as before)."""
    path = tmp_path / "memory.db"
    msgs = chat("u1", "t1", 3)
    loose = chat("u1", None, 2)  # raw without a thread: the old code gave them no neighbours
    fact = MemoryRecord(id=new_id(), user_id="u1", text="a learned fact", thread_id="t1",
                        source="chat", created_at=DAY, updated_at=DAY, embedding=msgs[0].embedding)
    _old_file(path, [*msgs, *loose, fact], "0007")
    store = SQLiteStore(path)
    try:
        store.open("e", DIM)
        ids = [m.id for m in msgs]
        got = {r.id: r.conversation_id
               for r in store.get_memories("u1", [*ids, loose[0].id, fact.id])}
        assert got == {ids[0]: "t1", ids[1]: "t1", ids[2]: "t1", loose[0].id: None,
                       fact.id: None}
        assert store.message_neighbours("u1", [ids[0], loose[0].id, fact.id], 60) == \
            {ids[0]: (None, ids[1])}
    finally:
        store.close()


def test_empty_json_columns_decode_to_fresh_objects():
    from memory.store.common import json_value

    a, b = json_value("{}", None), json_value("{}", None)
    assert a == {} and b == {} and a is not b
    assert json_value(b"[]", None) == [] and json_value("[1]", None) == [1]
    assert json_value("not json", {"d": 1}) == {"d": 1} and json_value({"x": 1}, {}) == {"x": 1}


def test_text_search_without_the_user_token_when_alone_gives_the_same_hits(tmp_path,
                                                                           monkeypatch):
    from memory.store.sqlite import search as search_mod

    store = SQLiteStore(tmp_path / "memory.db")
    store.open("e", DIM)
    try:
        vec = (np.ones(DIM) / np.sqrt(DIM)).tolist()
        texts = ["I play chess with my brother", "Chess club on Tuesdays", "My brother Tom",
                 "Tea with Tom's chess club", "nothing to see"] * 8
        store.insert_memories([MemoryRecord(id=new_id(), user_id="u1", text=t, embedding=vec)
                               for t in texts])
        with store._read() as conn:
            assert search_mod._sole_owner(conn, "u1") and not search_mod._sole_owner(conn, "u2")
        alone = [store.text_search("u1", "chess brother Tom", k) for k in (3, 40)]
        dated = store.text_search("u1", "chess brother", 10, since=DAY.replace(year=2000))
        monkeypatch.setattr(search_mod, "_sole_owner", lambda conn, user: False)
        assert [store.text_search("u1", "chess brother Tom", k) for k in (3, 40)] == alone
        assert store.text_search("u1", "chess brother", 10, since=DAY.replace(year=2000)) == dated
        assert len(alone[1]) == 32 and alone[0] == alone[1][:3]
        monkeypatch.undo()
        gone = DAY.replace(year=2001)  # another user's expired row still counts as theirs
        store.insert_memories([MemoryRecord(id=new_id(), user_id="u2", text="chess",
                                            embedding=vec, expires_at=gone)])
        with store._read() as conn:
            assert not search_mod._sole_owner(conn, "u1")
        mine = {m for m, _ in alone[1]}
        assert {m for m, _ in store.text_search("u1", "chess", 40)} <= mine
        assert store.text_search("u2", "chess", 40) == []  # expired
    finally:
        store.close()


def test_positional_record_decoding_equals_the_shared_mapper():
    from memory.store import common
    from memory.store.sqlite import rows

    row = (7, "m1", "u1", "text", "event", "t1", 4, '["a", "b"]', "raw", '{"k": [1]}',
           1683554160123456, 1683554161000000, -5, 2**40, 3, "c1", "superseded",
           1683554100000000, 1683554170000000, "m2", "llm")
    want = common.memory_from_row(dict(zip(common.MEMORY_FIELDS, row[1:])), rows.dt)
    assert rows.record(row) == want and want.tags == ["a", "b"] and want.access_count == 3
    assert want.conversation_id == "c1"
    assert (want.status, want.superseded_by, want.invalid_reason) == ("superseded", "m2", "llm")
    empty = (None, None, None, None, "current", None, None, None, None)
    assert rows.record(row[:12] + empty) == common.memory_from_row(
        dict(zip(common.MEMORY_FIELDS, row[1:12] + empty)), rows.dt)
    assert rows.record(row, {7: [1.0, 2.0]}).embedding == [1.0, 2.0]
    assert rows.record(row, {8: [1.0]}).embedding is None
    assert rows.dt(1683554160123456) == datetime(2023, 5, 8, 13, 56, 0, 123456,
                                                 tzinfo=timezone.utc)
