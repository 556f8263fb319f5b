"""TiDB statement builder: every query and write of the store as a SQLAlchemy statement (pure; compile with the MySQL dialect to read the SQL)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pytidb.orm.functions import fts_match_word, vec_cosine_distance
from pytidb.orm.vector import VECTOR
from sqlalchemy.dialects.mysql import insert as mysql_insert

from memory.store.common import check_order
from memory.store.tidb.rows import vector_literal
from memory.store.tidb.schema import TiDBSchema
from memory.store.tidb.validity_statements import ValiditySQL, live_conditions
from memory.text.fulltext import (ENGLISH_STOPWORDS, MAX_QUERY_CHARS, normalize, query_terms,
                               segment, word_runs)
from memory.types import Message, Thread


def fulltext_terms(query: str) -> str:
    """The text handed to ``FTS_MATCH_WORD`` for a raw user query: the normalised query
    (``memory.text.fulltext.normalize``: NFKC, control characters out), cut into runs of
    letters/digits/marks so operator characters (``" * - ( ) :``) never reach TiDB, with
    English stop-words and repeated words (case-insensitive) dropped, joined by spaces.
    Han text is kept as written, not jieba-segmented: TiDB's MULTILINGUAL parser segments
    it itself, and overlapping search segments (``咖啡 喝咖啡``) would count the same
    term twice in BM25 (TiDB counts repeated query terms each time). Returns "" when the
    query has no searchable term by ``query_terms`` (the SQLite store's rule), so both
    stores return nothing for the same stop-word-only queries."""
    if not query_terms(query or ""):
        return ""
    words: list[str] = []
    seen: set[str] = set()
    for chunk, is_han in segment(normalize((query or "")[:MAX_QUERY_CHARS])):
        runs = [chunk] if is_han else word_runs(chunk)
        for word in runs:
            key = word.casefold()
            if key in seen or key in ENGLISH_STOPWORDS:
                continue
            seen.add(key)
            words.append(word)
    return " ".join(words)


class TiDBSQL(ValiditySQL):
    """Builds every statement of the store for one ``TiDBSchema``. Pure: methods return
    SQLAlchemy statements (compile them with the MySQL dialect to see the SQL). Each
    statement on user data has ``user_id = :user_id`` inside its WHERE clause."""

    def __init__(self, schema: TiDBSchema):
        self.s = schema

    # ---- helpers --------------------------------------------------------------------
    def _live(self, user_id: str, now: datetime) -> list[Any]:
        """``user_id = :u AND <current> AND (expires_at IS NULL OR expires_at > :now)``."""
        m = self.s.memories
        return [m.c.user_id == user_id, *live_conditions(m, now)]

    def _types(self, types: list[str] | None) -> list[Any]:
        return [self.s.memories.c.type.in_(list(types))] if types else []

    def _filters(self, types: list[str] | None, since: datetime | None,
                 until: datetime | None) -> list[Any]:
        """``type IN (..)``, ``created_at >= since``, ``created_at <= until`` (each only
        when given): the optional filters of listing and both searches, in SQL."""
        m = self.s.memories.c
        cond = self._types(types)
        if since is not None:
            cond.append(m.created_at >= since)
        if until is not None:
            cond.append(m.created_at <= until)
        return cond

    def memory_columns(self, with_embedding: bool = False) -> list[Any]:
        """Columns selected for a MemoryRecord (embedding only on request)."""
        cols = [c for c in self.s.memories.c if c.name != "embedding"]
        return cols + [self.s.memories.c.embedding] if with_embedding else cols

    def _owned_upsert(self, table: sa.Table, rows: list[dict[str, Any]] | dict[str, Any],
                      update_cols: list[str]) -> Any:
        """INSERT ... ON DUPLICATE KEY UPDATE that changes an existing row only when it
        belongs to the same user: ``col = IF(t.user_id = VALUES(user_id), VALUES(col), col)``."""
        stmt = mysql_insert(table).values(rows) if isinstance(rows, dict) else mysql_insert(table)
        same_user = table.c.user_id == stmt.inserted.user_id
        return stmt.on_duplicate_key_update(
            {c: sa.func.IF(same_user, stmt.inserted[c], table.c[c]) for c in update_cols})

    # ---- memories -------------------------------------------------------------------
    def upsert_memories(self) -> Any:
        """Executemany-able upsert of memory rows (replace only rows of the same user)."""
        cols = [c.name for c in self.s.memories.c if c.name not in ("id", "user_id")]
        return self._owned_upsert(self.s.memories, [], cols)

    def insert_history_ignore(self) -> Any:
        """Executemany-able insert of history rows; an existing id is left as it is
        (stable ids make copies idempotent)."""
        t = self.s.history
        stmt = mysql_insert(t)
        return stmt.on_duplicate_key_update(id=t.c.id)

    def owned_ids(self, user_id: str, ids: list[str]) -> Any:
        """``SELECT id FROM memories WHERE user_id = :u AND id IN (...) FOR UPDATE``:
        which of ``ids`` belong to ``user_id`` (expired rows included), read after the
        upsert with a lock. A locking read sees the latest committed rows in TiDB's
        pessimistic mode; a plain SELECT reads the transaction's start snapshot and
        misses a row another session committed after it began (TiDB docs: Pessimistic
        Transaction Mode). The ids are selected, not counted: a locking read through an
        aggregate is not guaranteed to lock (pingcap/tidb#60281 shows a locking read
        losing its lock inside a derived table)."""
        m = self.s.memories.c
        return (sa.select(m.id).where(m.user_id == user_id, m.id.in_(list(ids)))
                .with_for_update())

    def update_memory(self, user_id: str, memory_id: str, values: dict[str, Any]) -> Any:
        """``UPDATE memories SET … WHERE user_id = :u AND id = :id`` with ``values``."""
        m = self.s.memories
        return (sa.update(m).where(m.c.user_id == user_id, m.c.id == memory_id)
                .values(**values))

    def delete_memory(self, user_id: str, memory_id: str) -> Any:
        """``DELETE FROM memories WHERE user_id = :u AND id = :id`` (whatever its status)."""
        m = self.s.memories
        return sa.delete(m).where(m.c.user_id == user_id, m.c.id == memory_id)

    def delete_versions(self, user_id: str, memory_id: str) -> Any:
        """``DELETE FROM memories WHERE user_id = :u AND superseded_by = :id``: the
        earlier versions of a memory, erased with it (``Store.delete_memory``)."""
        m = self.s.memories
        return sa.delete(m).where(m.c.user_id == user_id, m.c.superseded_by == memory_id)

    def delete_user(self, user_id: str) -> list[Any]:
        """Deletes of one user's memories, history and profile (in that order)."""
        return [sa.delete(t).where(t.c.user_id == user_id)
                for t in (self.s.memories, self.s.history, self.s.profiles)]

    def get_memories(self, user_id: str, ids: list[str], now: datetime,
                     with_embedding: bool = False) -> Any:
        """SELECT of ``user_id``'s live memories among ``ids`` (embedding column optional)."""
        m = self.s.memories
        return (sa.select(*self.memory_columns(with_embedding))
                .where(*self._live(user_id, now), m.c.id.in_(list(ids))))

    def list_memories(self, user_id: str, now: datetime, *, limit: int, offset: int,
                      types: list[str] | None, since: datetime | None,
                      until: datetime | None, order: str, with_embedding: bool) -> Any:
        """SELECT of ``user_id``'s live memories, filtered, ordered and paged as in
        ``Store.list_memories``."""
        m = self.s.memories.c
        check_order(order)
        cond = self._live(user_id, now) + self._filters(types, since, until)
        order_by = {
            "created_desc": [m.created_at.desc(), m.id.desc()],
            "created_asc": [m.created_at.asc(), m.id.asc()],
            # NULL sorts lowest in MySQL, so never-recalled rows come last in DESC order.
            "accessed_desc": [m.access_count.desc(), m.last_accessed_at.desc(),
                              m.created_at.desc(), m.id.desc()],
        }[order]
        return (sa.select(*self.memory_columns(with_embedding)).where(*cond)
                .order_by(*order_by).limit(max(0, int(limit))).offset(max(0, int(offset))))

    def count_memories(self, user_id: str, now: datetime, types: list[str] | None) -> Any:
        """``SELECT COUNT(*)`` of ``user_id``'s live memories, optionally of some types."""
        return (sa.select(sa.func.count()).select_from(self.s.memories)
                .where(*self._live(user_id, now), *self._types(types)))

    def vector_search(self, user_id: str, embedding: list[float], k: int, now: datetime,
                      *, types: list[str] | None = None, since: datetime | None = None,
                      until: datetime | None = None) -> Any:
        """``SELECT id, VEC_COSINE_DISTANCE(embedding, :q) AS distance FROM memories
        WHERE user_id = :u AND status = 'current' AND (expires_at IS NULL OR expires_at >
        :now) AND embedding IS NOT NULL [AND type IN ..] [AND created_at >= :since] [AND
        created_at <= :until] ORDER BY distance LIMIT :k``: an exact KNN over the user's rows, every filter
        applied before the limit (a pre-filter), so a user gets k rows whenever they own k
        matching rows. TiDB's HNSW index cannot serve a query with such a pre-filter (TiDB
        docs: Vector Search Index, "Use the vector index with filters"); the query is found
        through the ``(user_id, created_at)`` index instead. Raises ValueError for a query
        vector of the wrong dimension, non-finite or zero (``vector_literal``)."""
        m = self.s.memories.c
        q = sa.bindparam("query_vector",
                         vector_literal(embedding, self.s.dim, "query embedding"),
                         type_=VECTOR(self.s.dim))
        distance = vec_cosine_distance(m.embedding, q).label("distance")
        return (sa.select(m.id, distance)
                .where(*self._live(user_id, now), m.embedding.is_not(None),
                       *self._filters(types, since, until))
                .order_by(sa.asc(distance), m.id).limit(max(0, int(k))))

    def text_search(self, user_id: str, terms: str, k: int, now: datetime,
                    *, types: list[str] | None = None, since: datetime | None = None,
                    until: datetime | None = None) -> Any:
        """``SELECT id, FTS_MATCH_WORD(:terms, text) AS score ... WHERE
        FTS_MATCH_WORD(:terms, text) AND user_id = :u AND <live> [AND type/created_at
        filters] ORDER BY score DESC LIMIT :k`` (BM25, higher is better). ``terms`` comes
        from ``fulltext_terms``; one match function in WHERE, as TiDB requires for
        ``ORDER BY`` on the score."""
        m = self.s.memories.c
        score = fts_match_word(sa.bindparam("terms", terms, type_=sa.String), m.text)
        return (sa.select(m.id, score.label("score"))
                .where(score, *self._live(user_id, now), *self._filters(types, since, until))
                .order_by(sa.desc("score"), m.id).limit(max(0, int(k))))

    def message_neighbours(self, user_id: str, ids: list[str], now: datetime,
                           window_s: float) -> Any:
        """``SELECT id, (previous message) AS prev_id, (next message) AS next_id FROM
        memories WHERE user_id = :u AND <live> AND id IN (..) AND source = 'raw' AND
        conversation_id <> ''``: each neighbour is a correlated ``ORDER BY created_at,
        id LIMIT 1`` over the same user's live raw rows of the same conversation (thread
        or ``Memory.add`` call) within ``window_s`` seconds (found through the
        ``(user_id, conversation_id, created_at)`` index), as in
        ``Store.message_neighbours``."""
        m = self.s.memories
        n = m.alias("n")
        us = int(round(float(window_s) * 1e6))
        window = sa.text(f"INTERVAL {us} MICROSECOND")  # an int: nothing to escape

        def adjacent(before: bool) -> Any:
            if before:
                order = sa.or_(n.c.created_at < m.c.created_at,
                               sa.and_(n.c.created_at == m.c.created_at, n.c.id < m.c.id))
                near = n.c.created_at >= sa.func.date_sub(m.c.created_at, window)
                sort = [n.c.created_at.desc(), n.c.id.desc()]
            else:
                order = sa.or_(n.c.created_at > m.c.created_at,
                               sa.and_(n.c.created_at == m.c.created_at, n.c.id > m.c.id))
                near = n.c.created_at <= sa.func.date_add(m.c.created_at, window)
                sort = [n.c.created_at.asc(), n.c.id.asc()]
            return (sa.select(n.c.id)
                    .where(n.c.user_id == m.c.user_id,
                           n.c.conversation_id == m.c.conversation_id,
                           n.c.source == "raw", *live_conditions(n, now),
                           order, near)
                    .order_by(*sort).limit(1).correlate(m).scalar_subquery())

        return (sa.select(m.c.id, adjacent(True).label("prev_id"),
                          adjacent(False).label("next_id"))
                .where(*self._live(user_id, now), m.c.id.in_(list(ids)),
                       m.c.source == "raw", m.c.conversation_id != ""))

    def touch(self, user_id: str, ids: list[str], at: datetime) -> Any:
        """UPDATE that records a recall: ``access_count + 1`` and ``last_accessed_at = at``."""
        m = self.s.memories
        return (sa.update(m).where(m.c.user_id == user_id, m.c.id.in_(list(ids)))
                .values(access_count=m.c.access_count + 1, last_accessed_at=at))

    def set_embedding(self) -> Any:
        """Executemany-able ``UPDATE memories SET embedding = :embedding WHERE user_id =
        :b_user AND id = :b_id``."""
        m = self.s.memories
        return (sa.update(m).where(m.c.user_id == sa.bindparam("b_user"),
                                   m.c.id == sa.bindparam("b_id"))
                .values(embedding=sa.bindparam("b_embedding", type_=VECTOR(self.s.dim))))

    def iter_page(self, user_id: str, after_id: str, batch: int, with_embedding: bool) -> Any:
        """Keyset page of ``user_id``'s memories (expired too): ``id > after_id`` by id."""
        m = self.s.memories.c
        return (sa.select(*self.memory_columns(with_embedding))
                .where(m.user_id == user_id, m.id > after_id).order_by(m.id).limit(batch))

    def any_memory(self) -> Any:
        """``SELECT 1 FROM memories LIMIT 1``: whether the store holds any vectors at all
        (admin check before rebuilding the vector column; reads no user data)."""
        return sa.select(sa.literal(1)).select_from(self.s.memories).limit(1)

    # ---- history --------------------------------------------------------------------
    def history(self, user_id: str, memory_id: str | None = None) -> Any:
        """SELECT of ``user_id``'s history events (of one memory if given), oldest first."""
        h = self.s.history.c
        cond = [h.user_id == user_id]
        if memory_id is not None:
            cond.append(h.memory_id == memory_id)
        return sa.select(self.s.history).where(*cond).order_by(h.at, h.id)

    # ---- profile --------------------------------------------------------------------
    def get_profile(self, user_id: str) -> Any:
        """SELECT of ``user_id``'s profile text and its update time."""
        p = self.s.profiles.c
        return sa.select(p.text, p.updated_at).where(p.user_id == user_id)

    def set_profile(self, user_id: str, text: str, at: datetime) -> Any:
        """Upsert of ``user_id``'s profile (never overwrites another user's row)."""
        return self._owned_upsert(self.s.profiles,
                                  {"user_id": user_id, "text": text, "updated_at": at},
                                  ["text", "updated_at"])

    # ---- threads --------------------------------------------------------------------
    def upsert_thread(self, thread: Thread) -> Any:
        """Upsert of a thread (an id owned by another user is left unchanged)."""
        return self._owned_upsert(self.s.threads, {
            "id": thread.id, "user_id": thread.user_id, "title": thread.title,
            "created_at": thread.created_at, "updated_at": thread.updated_at,
            "summary": thread.summary or "", "summarized_upto": int(thread.summarized_upto),
        }, ["title", "updated_at", "summary", "summarized_upto"])

    def get_thread(self, user_id: str, thread_id: str, for_update: bool = False) -> Any:
        """SELECT of one thread of ``user_id``; ``FOR UPDATE`` to serialise appends and
        to read the latest committed row after an upsert (a plain SELECT reads the
        transaction's start snapshot)."""
        t = self.s.threads
        stmt = sa.select(t).where(t.c.user_id == user_id, t.c.id == thread_id)
        return stmt.with_for_update() if for_update else stmt

    def list_threads(self, user_id: str, limit: int) -> Any:
        """SELECT of ``user_id``'s threads, most recently updated first."""
        t = self.s.threads.c
        return (sa.select(self.s.threads).where(t.user_id == user_id)
                .order_by(t.updated_at.desc(), t.created_at.desc(), t.id)
                .limit(max(0, int(limit))))

    def delete_thread(self, user_id: str, thread_id: str) -> list[Any]:
        """Deletes of one thread's messages, then of the thread, both scoped by user."""
        msg, thr = self.s.messages, self.s.threads
        return [sa.delete(msg).where(msg.c.user_id == user_id, msg.c.thread_id == thread_id),
                sa.delete(thr).where(thr.c.user_id == user_id, thr.c.id == thread_id)]

    def get_message(self, user_id: str, message_id: str) -> Any:
        """The message row (locking read: ``FOR UPDATE`` reads the latest committed data
        in TiDB's pessimistic mode, not the transaction's start snapshot)."""
        m = self.s.messages
        return sa.select(m).where(m.c.user_id == user_id, m.c.id == message_id).with_for_update()

    def last_seq(self, user_id: str, thread_id: str) -> Any:
        """``SELECT seq ... ORDER BY seq DESC LIMIT 1 FOR UPDATE``: the thread's last
        position, read with a lock (a plain SELECT in a pessimistic TiDB transaction
        reads the start snapshot and could miss a message committed meanwhile)."""
        m = self.s.messages.c
        return (sa.select(m.seq).where(m.user_id == user_id, m.thread_id == thread_id)
                .order_by(m.seq.desc()).limit(1).with_for_update())

    def insert_message(self, message: Message) -> Any:
        """INSERT of one message (``seq`` already assigned by the caller)."""
        return sa.insert(self.s.messages).values(
            id=message.id, thread_id=message.thread_id, user_id=message.user_id,
            role=message.role, content=message.content, seq=message.seq,
            created_at=message.created_at, metadata=dict(message.metadata or {}))

    def bump_thread(self, user_id: str, thread_id: str, at: datetime) -> Any:
        """UPDATE of a thread's ``updated_at`` to ``at`` (never backwards)."""
        t = self.s.threads
        return (sa.update(t).where(t.c.user_id == user_id, t.c.id == thread_id)
                .values(updated_at=sa.func.GREATEST(t.c.updated_at, at)))

    def get_messages(self, user_id: str, thread_id: str, after_seq: int,
                     limit: int | None) -> Any:
        """SELECT of one thread's messages with ``seq > after_seq`` (the last ``limit``)."""
        m = self.s.messages
        stmt = sa.select(m).where(m.c.user_id == user_id, m.c.thread_id == thread_id,
                                  m.c.seq > after_seq)
        if limit is None:
            return stmt.order_by(m.c.seq)
        return stmt.order_by(m.c.seq.desc()).limit(max(0, int(limit)))

    # ---- admin ----------------------------------------------------------------------
    def user_ids(self) -> Any:
        """Every user id present in any table (UNION, so each appears once)."""
        s = self.s
        return sa.union(*(sa.select(t.c.user_id) for t in
                          (s.memories, s.history, s.profiles, s.threads)))

    def get_meta(self, name: str) -> Any:
        """SELECT of one store-wide setting."""
        return sa.select(self.s.meta.c.value).where(self.s.meta.c.name == name)

    def set_meta(self, name: str, value: str) -> Any:
        """Upsert of one store-wide setting."""
        stmt = mysql_insert(self.s.meta).values(name=name, value=value)
        return stmt.on_duplicate_key_update(value=stmt.inserted.value)
