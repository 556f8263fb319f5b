"""Schema of the SQLite store: table DDL by schema step, the vec0 vector table, meta helpers and the FTS user token.

Layout (all in one database file, WAL mode):

* ``meta(key, value)`` — store-wide settings: ``embedder_id``, ``dim``, ``vec_epoch``
  (``schema_version`` in files from before named migrations).
* ``schema_migrations(id, applied_at)`` — the named migrations applied (see
  ``migrations.py``).
* ``memories`` — one row per memory; ``rid`` (integer rowid) links the row to its vector
  and full-text rows; ``id`` is the public 32-hex id. ``tags``/``metadata`` are JSON text.
  Datetimes are **integer microseconds since the Unix epoch, UTC** (exact round trip to
  aware UTC datetimes, cheap range comparisons).
* ``vec_memories`` — sqlite-vec ``vec0`` table, ``rowid = memories.rid``, with ``user_id``
  as a *partition key* (a KNN query only scans that user's vector chunks),
  ``distance_metric=cosine`` and three metadata columns, ``type``, ``expires_at``
  (:data:`NEVER` when the memory does not expire) and ``created_at``, so the type, date
  and expiry filters are applied inside the KNN scan and a user gets exactly k rows.
* ``memories_fts`` — FTS5 table ``(user_tok, body, context)`` with ``rowid = memories.rid``.
  ``body`` holds :func:`memory.text.fulltext.index_text` of the memory (jieba-segmented
  Chinese), ``context`` that of its conversational context ``metadata["context"]``;
  ``user_tok`` holds :func:`user_token` of the owner, so a search is
  ``user_tok : "u…" AND {body context} : ("term" OR …)``: FTS5 intersects the user's
  doclist with the terms' doclists instead of ranking every user's rows. BM25 weights are
  ``(0, 1, CONTEXT_WEIGHT)``.
  ``conversation_id`` (added by ``0007_conversations``) groups a raw import's messages:
  the thread, or one ``Memory.add`` call. Indexes ``(user_id, created_at)``,
  ``(user_id, type)`` and ``(user_id, conversation_id, created_at)``
  (:data:`CONVERSATION_INDEX`; it replaced ``(user_id, thread_id, created_at)``).
* validity (migration ``0008_validity``): ``status`` (``current``, ``superseded``,
  ``ended``, ``forgotten``), ``valid_from``, ``invalid_at``, ``superseded_by``,
  ``invalid_reason``. Only ``current`` rows are live; the vector index stores
  :data:`PAST` as the expiry of the others, so the KNN scan skips them. Index
  ``(user_id, status, invalid_at)`` finds a user's past and forgotten memories.
* ``history`` (``turn_id`` since ``0008_validity``), ``profiles``, ``threads``, ``messages``.
* ``vec_versions(user_id, version)`` — bumped in every write transaction that changes a
  user's vectors, types, dates or expiries; ``meta.vec_epoch`` is bumped when the vector
  index is recreated. Both key the in-process matrix cache (``cache.py``).
"""
from __future__ import annotations

import hashlib
import re
from typing import Any

from memory.text.fulltext import FTS5_TOKENIZE

#: ``expires_at`` value stored in the vector index for memories that never expire
#: (microseconds; about year 148,000, beyond any datetime).
NEVER = 2**62

#: ``expires_at`` stored in the vector index for a memory that is no longer current
#: (superseded, ended, forgotten): the KNN and the cached matrix skip it like an expired one.
PAST = 0

#: SQL of a ``memories`` row's expiry as the vector index stores it (None: no expiry).
VEC_EXPIRES_SQL = f"CASE WHEN status = 'current' THEN expires_at ELSE {PAST} END"

#: sqlite-vec refuses KNN queries with k > 4096; larger k are clamped to this.
MAX_K = 4096

#: BM25 weight of the ``context`` FTS column relative to ``body`` (1.0): the conversational
#: context of a raw memory (``metadata["context"]``, e.g. the chat turn it replies to)
#: helps a search find the memory but is not what the memory says. LoCoMo R@5 / R@10
#: (``bench/locomo.py --format context-meta``, whole previous turn as context) for weight
#: 0.1 / 0.2 / 0.3 / 0.5 / 0.8: .641/.718, .639/.722, .636/.721, .630/.715, .618/.706.
CONTEXT_WEIGHT = 0.2

#: The tables of the first schema (``schema_version`` 1), as it created them.
BASE_DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS memories (
    rid              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    user_id          TEXT NOT NULL,
    text             TEXT NOT NULL,
    type             TEXT NOT NULL,
    thread_id        TEXT,
    importance       INTEGER NOT NULL,
    tags             TEXT NOT NULL,
    source           TEXT NOT NULL,
    metadata         TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    last_accessed_at INTEGER,
    expires_at       INTEGER,
    access_count     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS memories_user_created ON memories(user_id, created_at);
CREATE INDEX IF NOT EXISTS memories_user_type ON memories(user_id, type);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(
    user_tok, body, tokenize = '{tokenize}'
);
CREATE TABLE IF NOT EXISTS history (
    seq       INTEGER PRIMARY KEY,
    id        TEXT NOT NULL,
    memory_id TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    event     TEXT NOT NULL,
    old_text  TEXT,
    new_text  TEXT,
    actor     TEXT NOT NULL,
    at        INTEGER NOT NULL,
    UNIQUE (user_id, id)
);
CREATE INDEX IF NOT EXISTS history_user_memory ON history(user_id, memory_id, at);
CREATE TABLE IF NOT EXISTS profiles (
    user_id    TEXT PRIMARY KEY,
    text       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS threads (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    title           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    summary         TEXT NOT NULL DEFAULT '',
    summarized_upto INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS threads_user_updated ON threads(user_id, updated_at);
CREATE TABLE IF NOT EXISTS messages (
    id         TEXT PRIMARY KEY,
    thread_id  TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    role       TEXT NOT NULL,
    content    TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    metadata   TEXT NOT NULL,
    UNIQUE (thread_id, seq)
);
CREATE INDEX IF NOT EXISTS messages_user_thread ON messages(user_id, thread_id, seq);
""".format(tokenize=FTS5_TOKENIZE)

#: ``vec_versions`` (schema_version 2).
VEC_VERSIONS_DDL = """
CREATE TABLE IF NOT EXISTS vec_versions (
    user_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL
) WITHOUT ROWID
"""

#: The index that finds a chat message's neighbours in its thread (migration
#: ``0006_thread_index``): ``(user_id, thread_id, created_at)`` plus the rowid, so the
#: message before / after one is a single seek even when a whole imported chat shares
#: one timestamp (``memories.Memories.message_neighbours``).
THREAD_INDEX = "memories_user_thread"
THREAD_INDEX_DDL = (f"CREATE INDEX IF NOT EXISTS {THREAD_INDEX} "
                    "ON memories(user_id, thread_id, created_at)")

#: The index that finds a message's neighbours in its conversation (migration
#: ``0007_conversations``, which drops :data:`THREAD_INDEX`): the same seeks as the
#: thread index, for messages of a thread and of one ``Memory.add`` call alike.
CONVERSATION_INDEX = "memories_user_conversation"
CONVERSATION_INDEX_DDL = (f"CREATE INDEX IF NOT EXISTS {CONVERSATION_INDEX} "
                          "ON memories(user_id, conversation_id, created_at)")

#: The full-text table with the ``context`` column (schema_version 3).
FTS_DDL = ("CREATE VIRTUAL TABLE memories_fts USING fts5(user_tok, body, context, "
           f"tokenize = '{FTS5_TOKENIZE}')")


#: Migration ``0008_validity``: the validity columns of ``memories`` and ``history.turn_id``.
VALIDITY_COLUMNS = (("memories", "status", "TEXT NOT NULL DEFAULT 'current'"),
                    ("memories", "valid_from", "INTEGER"),
                    ("memories", "invalid_at", "INTEGER"),
                    ("memories", "superseded_by", "TEXT"),
                    ("memories", "invalid_reason", "TEXT"),
                    ("history", "turn_id", "TEXT"))
VALIDITY_INDEX_DDL = ("CREATE INDEX IF NOT EXISTS memories_user_status "
                      "ON memories(user_id, status, invalid_at)")
TURN_INDEX_DDL = "CREATE INDEX IF NOT EXISTS history_user_turn ON history(user_id, turn_id)"


def statements(ddl: str) -> list[str]:
    """The non-empty ``;``-separated statements of ``ddl``."""
    return [s for s in ddl.split(";") if s.strip()]


def vec_table_ddl(dim: int, chunk_size: int) -> str:
    """``CREATE VIRTUAL TABLE vec_memories`` for ``dim``-float vectors (cosine), the user
    as partition key, metadata columns type / expires_at / created_at."""
    return ("CREATE VIRTUAL TABLE vec_memories USING vec0("
            "user_id text partition key, "
            f"embedding float[{int(dim)}] distance_metric=cosine, "
            "type text, expires_at integer, created_at integer, "
            f"chunk_size={int(chunk_size)})")


def vec_table_sql(conn: Any) -> str | None:
    """The ``CREATE`` text of ``vec_memories`` or None when it does not exist."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'vec_memories'").fetchone()
    return None if row is None else (row[0] or "")


def vec_table_dim(conn: Any) -> int | None:
    """The vector dimension of ``vec_memories`` (from its DDL) or None without a table."""
    sql = vec_table_sql(conn)
    if sql is None:
        return None
    match = re.search(r"float\[(\d+)\]", sql)
    return int(match.group(1)) if match else None


def get_meta(conn: Any, key: str) -> str | None:
    """``meta.value`` of ``key`` or None."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def set_meta(conn: Any, key: str, value: str) -> None:
    """Insert or replace ``meta.key``."""
    conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))


def bump_epoch(conn: Any) -> int:
    """Increment ``meta.vec_epoch`` (every cached matrix of every process is stale from
    then on) and return the new value."""
    epoch = int(get_meta(conn, "vec_epoch") or 0) + 1
    set_meta(conn, "vec_epoch", str(epoch))
    return epoch


def create_vec_table(conn: Any, dim: int, chunk_size: int) -> None:
    """(Re)create an empty ``vec_memories`` for ``dim`` and bump ``meta.vec_epoch``."""
    bump_epoch(conn)
    conn.execute("DROP TABLE IF EXISTS vec_memories")
    conn.execute(vec_table_ddl(dim, chunk_size))


def user_token(user_id: str) -> str:
    """Return the FTS token that marks ``user_id``'s rows: ``"u" + sha1 hex + "0"``.

    Letters+digits only, so unicode61 keeps it as one token; it ends with a digit, so
    the Porter stemmer leaves it unchanged.
    """
    return "u" + hashlib.sha1(user_id.encode("utf-8")).hexdigest() + "0"


def context_of(metadata: Any) -> str:
    """The conversational context of a memory: ``metadata["context"]`` when it is a
    non-empty string, else ``""``."""
    ctx = metadata.get("context") if isinstance(metadata, dict) else None
    return ctx.strip() if isinstance(ctx, str) else ""
