"""TiDB store, memories: insert, update, delete, read, list, both searches, recall counts and history."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from memory.store import common
from memory.store.base import require_user as _user
from memory.store.tidb.rows import (event_from_row, history_row, memory_row, record_from_row,
                                    vector_literal)
from memory.store.tidb.statements import fulltext_terms
from memory.types import HistoryEvent, MemoryRecord, as_utc, utcnow


class MemoriesMixin:
    """The memory methods of ``TiDBStore`` (each one transaction through ``_tx``, which
    joins an open ``transaction()``). Needs ``sql``, ``_tx``, ``_features`` and
    ``_maybe_reprobe_fulltext`` from the store."""

    def insert_memories(self, records: list[MemoryRecord],
                        history: list[HistoryEvent] | None = None) -> None:
        """Insert ``records`` and ``history`` events in one transaction. A same-id row
        of the same user is replaced; an id that exists for another user, a record without
        embedding or of the wrong dimension raise ValueError and nothing is written (the
        upsert never overwrites another user's row, and a locking read of the user's rows
        among the ids, inside the transaction, detects the clash and rolls back; locking,
        so a row committed by another session after this transaction began is seen). A
        repeated id
        within the batch keeps the last record. StoreError on database failure."""
        events = [history_row(e) for e in history or []]
        unique = common.unique_records(records or [])
        if not unique and not events:
            return
        dim = self.sql.s.dim if unique else 0
        prepared = {mid: memory_row(rec, dim) for mid, rec in unique.items()}
        by_user: dict[str, list[str]] = {}
        for mid, row in prepared.items():
            by_user.setdefault(row["user_id"], []).append(mid)

        def work(c: Connection) -> None:
            if prepared:
                c.execute(self.sql.upsert_memories(), list(prepared.values()))
                for user_id, ids in by_user.items():
                    owned = {r[0] for r in c.execute(self.sql.owned_ids(user_id, ids))}
                    if len(owned) != len(ids):
                        raise ValueError("a memory id in this batch already belongs to "
                                         "another user; nothing was written")
            if events:
                c.execute(self.sql.insert_history_ignore(), events)

        self._tx("insert memories", work)

    def update_memory(self, user_id: str, memory_id: str, *, text: str | None = None,
                      embedding: list[float] | None = None,
                      fields: dict[str, Any] | None = None,
                      history: HistoryEvent | None = None) -> bool:
        """Change one memory of ``user_id`` (expired ones too, so an expiry can be
        lifted) and write ``history`` in the same transaction. ``text`` requires
        ``embedding``; ``fields`` may set the keys of ``common.UPDATABLE_FIELDS``; updated_at
        defaults to now. Returns False (nothing written) if ``user_id`` has no such
        memory. Raises ValueError for unknown fields or bad values."""
        user_id, values = common.prepare_update(user_id, text, embedding, fields)
        if embedding is not None:
            values["embedding"] = vector_literal(embedding, self.sql.s.dim)
        stmt = self.sql.update_memory(user_id, memory_id, values)
        return self._change_one("update memory", stmt, history)

    def delete_memory(self, user_id: str, memory_id: str,
                      history: HistoryEvent | None = None) -> bool:
        """Erase one memory of ``user_id`` for good, whatever its status, then the
        earlier versions it superseded (``superseded_by`` = its id), and record
        ``history``, in one transaction. False (nothing erased, no history) when the user
        has no memory with that id."""
        user_id = _user(user_id)
        history_rows = [history_row(history)] if history is not None else []

        def work(c: Connection) -> bool:
            if not c.execute(self.sql.delete_memory(user_id, memory_id)).rowcount:
                return False
            c.execute(self.sql.delete_versions(user_id, memory_id))
            if history_rows:
                c.execute(self.sql.insert_history_ignore(), history_rows)
            return True

        return self._tx("delete memory", work)

    def _change_one(self, what: str, stmt: Any, history: HistoryEvent | None) -> bool:
        """Run the UPDATE/DELETE ``stmt`` of one memory and, if it found the row, insert
        ``history`` in the same transaction. Returns whether the row was found (no
        history is written otherwise). The event is validated before any SQL."""
        history_rows = [history_row(history)] if history is not None else []

        def work(c: Connection) -> bool:
            if not c.execute(stmt).rowcount:
                return False
            if history_rows:
                c.execute(self.sql.insert_history_ignore(), history_rows)
            return True

        return self._tx(what, work)

    def delete_user_memories(self, user_id: str) -> int:
        """Delete the memories, history and profile of ``user_id`` only (one
        transaction). Returns the number of memories deleted."""
        user_id = _user(user_id)

        def work(c: Connection) -> int:
            counts = [c.execute(stmt).rowcount for stmt in self.sql.delete_user(user_id)]
            return int(counts[0])

        return self._tx("delete user memories", work)

    def get_memory(self, user_id: str, memory_id: str,
                   with_embedding: bool = False) -> MemoryRecord | None:
        """Return one live (current, unexpired) memory of ``user_id`` or None."""
        found = self._get(user_id, [memory_id], with_embedding)
        return found[0] if found else None

    def get_memories(self, user_id: str, ids: list[str]) -> list[MemoryRecord]:
        """Return the live memories of ``user_id`` among ``ids``."""
        ids = list(dict.fromkeys(ids or []))
        return self._get(user_id, ids, False) if ids else []

    def _get(self, user_id: str, ids: list[str], with_embedding: bool) -> list[MemoryRecord]:
        stmt = self.sql.get_memories(user_id, ids, utcnow(), with_embedding)
        return self._tx("read memories", lambda c: [record_from_row(r) for r in c.execute(stmt)])

    def list_memories(self, user_id: str, *, limit: int = 100, offset: int = 0,
                      types: list[str] | None = None,
                      since: datetime | None = None, until: datetime | None = None,
                      order: str = "created_desc",
                      with_embedding: bool = False) -> list[MemoryRecord]:
        """Return live memories of ``user_id`` (see ``Store.list_memories``). Raises
        ValueError for an unknown ``order``."""
        common.check_order(order)
        limit, offset = common.check_paging(limit, offset)
        stmt = self.sql.list_memories(user_id, utcnow(), limit=limit, offset=offset,
                                      types=types, since=as_utc(since), until=as_utc(until),
                                      order=order, with_embedding=with_embedding)
        return self._tx("list memories", lambda c: [record_from_row(r) for r in c.execute(stmt)])

    def count_memories(self, user_id: str, types: list[str] | None = None) -> int:
        """Return how many live memories ``user_id`` has."""
        stmt = self.sql.count_memories(user_id, utcnow(), types)
        return int(self._tx("count memories", lambda c: c.execute(stmt).scalar() or 0))

    def vector_search(self, user_id: str, embedding: list[float], k: int,
                      *, types: list[str] | None = None, since: datetime | None = None,
                      until: datetime | None = None) -> list[tuple[str, float]]:
        """Exact cosine KNN over ``user_id``'s live memories, filtered in SQL by
        ``types`` and ``since <= created_at <= until`` before the limit. Returns
        ``[(memory_id, cosine_distance)]`` nearest first. Raises ValueError for a query
        vector of the wrong dimension, with NaN/inf, or all zeros."""
        if k <= 0:
            return []
        stmt = self.sql.vector_search(user_id, embedding, k, utcnow(), types=types,
                                      since=as_utc(since), until=as_utc(until))
        return self._tx("vector search",
                        lambda c: [(r[0], float(r[1])) for r in c.execute(stmt)])

    def text_search(self, user_id: str, query: str, k: int,
                    *, types: list[str] | None = None, since: datetime | None = None,
                    until: datetime | None = None) -> list[tuple[str, float]]:
        """BM25 full-text search with ``FTS_MATCH_WORD`` over ``user_id``'s live
        memories, filtered in SQL like ``vector_search``, best first. Returns [] when the
        query has no searchable word or the cluster has no full-text support (see
        ``health()``; while it is off, support is probed again at most every
        ``FULLTEXT_REPROBE_SECONDS``, since TiDB Cloud builds the columnar replica the
        index needs on demand). TiDB's parsers do not stem: "run" does not find
        "running" (the SQLite store's Porter stemmer does)."""
        terms = fulltext_terms(query)
        if not terms or k <= 0:
            return []
        if not self._features.fulltext:
            self._maybe_reprobe_fulltext()
            if not self._features.fulltext:
                return []
        stmt = self.sql.text_search(user_id, terms, k, utcnow(), types=types,
                                    since=as_utc(since), until=as_utc(until))
        return self._tx("text search", lambda c: [(r[0], float(r[1])) for r in c.execute(stmt)])

    def message_neighbours(self, user_id: str, ids: list[str], window_s: float
                           ) -> dict[str, tuple[str | None, str | None]]:
        """``{id: (previous_id, next_id)}`` of the chat messages among ``ids`` (see
        ``Store.message_neighbours``; ties of ``created_at`` broken by id)."""
        ids = list(dict.fromkeys(ids or []))
        if not ids:
            return {}
        stmt = self.sql.message_neighbours(_user(user_id), ids, utcnow(), window_s)
        return self._tx("read neighbours",
                        lambda c: {r[0]: (r[1], r[2]) for r in c.execute(stmt)})

    def touch_memories(self, user_id: str, ids: list[str], at: datetime) -> None:
        """Increment access_count (in SQL, so concurrent touches add up) and set
        last_accessed_at for these memories of ``user_id``."""
        ids = list(dict.fromkeys(ids or []))  # once per distinct id
        if ids:
            self._tx("touch memories",
                     lambda c: c.execute(self.sql.touch(user_id, ids, as_utc(at))))

    def history(self, user_id: str, memory_id: str) -> list[HistoryEvent]:
        """History of one memory of ``user_id``, oldest first."""
        stmt = self.sql.history(user_id, memory_id)
        return self._tx("read history", lambda c: [event_from_row(r) for r in c.execute(stmt)])

    def add_history(self, events: list[HistoryEvent]) -> None:
        """Append history events; an event whose id is already stored is skipped."""
        rows = [history_row(e) for e in events]
        if rows:
            self._tx("add history", lambda c: c.execute(self.sql.insert_history_ignore(), rows))

