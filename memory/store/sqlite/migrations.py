"""Named, ordered schema migrations of the SQLite store (the runner rules are in ``memory.store.migrations``).

Each step is a small function registered with :func:`_step` under an id
``NNNN_snake_name``; its docstring says what it changes. ``run`` applies the pending
ones in order, each in its own ``BEGIN IMMEDIATE`` transaction that also records the id
in ``schema_migrations(id, applied_at)``, so a crash leaves whole steps behind and two
processes opening the same file never apply a step twice.

Files written before named migrations carry ``meta.schema_version`` (1, 2 or 3): the
first run records the steps that version had as applied (:data:`LEGACY`) instead of
guessing from the columns, then applies the rest.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable, ContextManager

from memory.store.base import StoreError
from memory.store.migrations import Migration, MigrationStatus, pending, status
from memory.store.sqlite import schema
from memory.text.fulltext import index_text
from memory.types import utcnow

MIGRATIONS: list[Migration] = []

#: ``meta.schema_version`` of a file from before named migrations -> how many of the
#: first steps it already had.
LEGACY = {"1": 1, "2": 2, "3": 3}

_TABLE = ("CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, "
          "applied_at TEXT NOT NULL)")


def _step(step_id: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    def register(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        MIGRATIONS.append(Migration(step_id, " ".join((fn.__doc__ or "").split()), fn))
        return fn
    return register


@_step("0001_initial")
def _initial(conn: Any) -> None:
    """Create meta, memories, memories_fts (user_tok, body), history, profiles, threads
    and messages."""
    for stmt in schema.statements(schema.BASE_DDL):
        conn.execute(stmt)


@_step("0002_vec_versions")
def _vec_versions(conn: Any) -> None:
    """Add vec_versions, the per-user vector version that keys the matrix cache."""
    conn.execute(schema.VEC_VERSIONS_DDL)


@_step("0003_fts_context")
def _fts_context(conn: Any) -> None:
    """Rebuild memories_fts with a context column filled from metadata.context."""
    conn.execute("DROP TABLE IF EXISTS memories_fts")
    conn.execute(schema.FTS_DDL)
    cur = conn.execute("SELECT rid, user_id, text, metadata FROM memories")
    while rows := cur.fetchmany(1000):
        fts = []
        for rid, uid, text, meta in rows:
            try:
                ctx = schema.context_of(json.loads(meta))
            except ValueError:
                ctx = ""
            fts.append((rid, schema.user_token(uid), index_text(text), index_text(ctx)))
        conn.executemany("INSERT INTO memories_fts(rowid, user_tok, body, context) "
                         "VALUES (?, ?, ?, ?)", fts)


@_step("0004_vec_created_at")
def _vec_created_at(conn: Any) -> None:
    """Add created_at to the vector index (so date filters run inside the KNN scan),
    copying every vector."""
    sql = schema.vec_table_sql(conn)
    if sql is None or re.search(r"\bcreated_at\b", sql):
        return  # no index yet (open() creates it), or already there
    dim = schema.vec_table_dim(conn)
    chunk = re.search(r"chunk_size\s*=\s*(\d+)", sql)
    conn.execute("CREATE TEMP TABLE vec_copy AS SELECT rowid AS rid, user_id, embedding, "
                 "type, expires_at FROM vec_memories")
    schema.create_vec_table(conn, dim or 1, int(chunk.group(1)) if chunk else 256)
    conn.execute("INSERT INTO vec_memories(rowid, user_id, embedding, type, expires_at, "
                 "created_at) SELECT c.rid, c.user_id, c.embedding, c.type, c.expires_at, "
                 "m.created_at FROM vec_copy c JOIN memories m ON m.rid = c.rid")
    conn.execute("DROP TABLE temp.vec_copy")



@_step("0005_resources")
def _resources(conn: Any) -> None:
    """Add resources (uploaded files: one live row per user and sha256) and an index of
    memories by metadata.resource_id."""
    from memory.store.sqlite.resources import RESOURCES_DDL

    for stmt in schema.statements(RESOURCES_DDL):
        conn.execute(stmt)


@_step("0006_thread_index")
def _thread_index(conn: Any) -> None:
    """Add the (user_id, thread_id, created_at) index of memories, so search finds a chat
    message's neighbours in its thread by one seek each."""
    conn.execute(schema.THREAD_INDEX_DDL)


@_step("0007_conversations")
def _conversations(conn: Any) -> None:
    """Add memories.conversation_id (a raw message's thread, or the one Memory.add call
    that stored it), fill it with thread_id for the raw messages of a thread, and index
    (user_id, conversation_id, created_at) instead of the thread index."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(memories)")}
    if "conversation_id" not in columns:  # re-runnable, like the steps before it
        conn.execute("ALTER TABLE memories ADD COLUMN conversation_id TEXT")
    conn.execute("UPDATE memories SET conversation_id = thread_id "
                 "WHERE source = 'raw' AND thread_id <> '' AND conversation_id IS NULL")
    conn.execute(schema.CONVERSATION_INDEX_DDL)
    conn.execute(f"DROP INDEX IF EXISTS {schema.THREAD_INDEX}")


@_step("0008_validity")
def _validity(conn: Any) -> None:
    """Add memories.status (current/superseded/ended/forgotten; every existing memory is
    current), valid_from, invalid_at, superseded_by and invalid_reason, history.turn_id,
    and the indexes (user_id, status, invalid_at) and (user_id, turn_id)."""
    for table, column, decl in schema.VALIDITY_COLUMNS:
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
    conn.execute(schema.VALIDITY_INDEX_DDL)
    conn.execute(schema.TURN_INDEX_DDL)


def _applied(conn: Any) -> dict[str, str]:
    return dict(conn.execute("SELECT id, applied_at FROM schema_migrations"))


def _adopt_legacy(conn: Any) -> None:
    """Record the steps a pre-migration file already had (``meta.schema_version``)."""
    if _applied(conn) or conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                      "AND name = 'meta'").fetchone() is None:
        return
    done = LEGACY.get(schema.get_meta(conn, "schema_version") or "", 0)
    now = utcnow().isoformat()
    conn.executemany("INSERT INTO schema_migrations(id, applied_at) VALUES (?, ?)",
                     [(m.id, now) for m in MIGRATIONS[:done]])


def run(write: Callable[[], ContextManager[Any]]) -> list[str]:
    """Apply every pending step in order, each in its own ``write()`` transaction, and
    return the ids applied (``[]`` when up to date). Raises StoreError when the file
    has steps this code does not know (written by a newer version) or a step fails
    (that step is rolled back; earlier ones stay)."""
    with write() as conn:
        conn.execute(_TABLE)
        _adopt_legacy(conn)
        todo = _pending(conn)
    done: list[str] = []
    for step in todo:
        with write() as conn:
            if step.id in _applied(conn):
                continue  # another process applied it meanwhile
            step.apply(conn)
            conn.execute("INSERT INTO schema_migrations(id, applied_at) VALUES (?, ?)",
                         (step.id, utcnow().isoformat()))
        done.append(step.id)
    return done


def _pending(conn: Any) -> list[Migration]:
    try:
        return pending(MIGRATIONS, _applied(conn))
    except ValueError as exc:
        raise StoreError(str(exc)) from None


def report(conn: Any) -> list[MigrationStatus]:
    """Every known step with its ``applied_at`` (None when pending)."""
    has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'"
                             ).fetchone() is not None
    return status(MIGRATIONS, _applied(conn) if has_table else {})
