"""The context column of SQLite memories: searched by FTS5 at a lower weight than the
text, kept or replaced by updates, scoped by user, and added to files of schema 2."""
from __future__ import annotations

from memory.store import sqlite as sqlite_mod
from memory.store.sqlite import SQLiteStore
from memory.text.fulltext import FTS5_TOKENIZE
from memory.types import MemoryRecord, new_id
from tests.sqlite_helpers import DIM, EMB, raw_connection, rec, unit


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
