"""Whole-store operations of the SQLite store: resetting the vector index, re-embedding, listing users, iterating a user's memories and history."""
from __future__ import annotations

from typing import Iterator

from memory.store import common
from memory.store.base import require_user as _user
from memory.store.sqlite import rows
from memory.store.sqlite.cache import unit
from memory.store.sqlite.memories import Memories, _exp
from memory.store.sqlite.schema import VEC_EXPIRES_SQL
from memory.store.sqlite.schema import create_vec_table, set_meta
from memory.types import HistoryEvent, MemoryRecord


class Admin(Memories):
    """The admin half of ``SQLiteStore`` (migration and re-embedding only)."""

    def reset_vector_index(self, embedder_id: str, dim: int) -> None:
        """Drop every stored vector and recreate the vector index for ``dim``, recording
        ``embedder_id``/``dim``. Memories, history and FTS rows are kept; vector search
        finds nothing until ``set_embeddings`` has been called."""
        embedder_id, dim = common.check_embedder(embedder_id, dim)
        with self._write() as conn:
            create_vec_table(conn, dim, self.vec_chunk_size)
            set_meta(conn, "embedder_id", embedder_id)
            set_meta(conn, "dim", str(dim))
        self._dim = dim
        self._matrices.clear()

    def set_embeddings(self, user_id: str, items: list[tuple[str, list[float]]]) -> None:
        """Write new vectors ``(memory_id, vector)`` of ``user_id``'s memories in one
        transaction (expired ones too). Unknown ids and other users' ids are ignored.
        Raises ValueError (nothing written) for a vector of the wrong dimension."""
        user_id = _user(user_id)
        dim = self._require_dim()
        blobs = {mid: rows.blob(vec, dim, f"embedding of memory {mid}") for mid, vec in items or []}
        if not blobs:
            return
        with self._vec_write() as (conn, patches):
            found = []
            for chunk in rows.chunks(list(blobs)):
                q = (f"SELECT rid, id, type, {VEC_EXPIRES_SQL}, created_at FROM memories WHERE "
                     f"user_id = ? AND id IN ({', '.join('?' * len(chunk))})")
                found.extend(conn.execute(q, (user_id, *chunk)).fetchall())
            conn.executemany("DELETE FROM vec_memories WHERE rowid = ?", [(r[0],) for r in found])
            conn.executemany(
                "INSERT INTO vec_memories(rowid, user_id, embedding, type, expires_at, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(rid, user_id, blobs[mid], mtype, _exp(exp), born)
                 for rid, mid, mtype, exp, born in found])
            ops = [("add", mid, unit(blobs[mid]), mtype, _exp(exp), born)
                   for _, mid, mtype, exp, born in found]
            self._bump(conn, patches, user_id, ops)

    def user_ids(self) -> list[str]:
        """Return every user id with memories, history, a profile or threads (sorted)."""
        with self._read() as conn:
            found = conn.execute("SELECT user_id FROM memories UNION SELECT user_id FROM history "
                                 "UNION SELECT user_id FROM profiles UNION SELECT user_id FROM "
                                 "threads ORDER BY 1").fetchall()
        return [r[0] for r in found]

    def iter_memories(self, user_id: str, batch: int = 500,
                      with_embedding: bool = True) -> Iterator[list[MemoryRecord]]:
        """Yield all memories of ``user_id`` (expired ones included) in lists of at most
        ``batch``, ordered by id (keyset paging, so concurrent inserts do not repeat rows).
        Raises ValueError if ``batch < 1``."""
        if batch < 1:
            raise ValueError("batch must be >= 1")
        last = ""
        while True:
            with self._read() as conn:
                found = conn.execute(f"SELECT {rows.MEM_COLS} FROM memories WHERE user_id = ? "
                                     "AND id > ? ORDER BY id LIMIT ?",
                                     (user_id, last, int(batch))).fetchall()
                records = self._records(conn, found, with_embedding)
            if not records:
                return
            last = records[-1].id
            yield records
            if len(records) < batch:
                return

    def all_history(self, user_id: str) -> list[HistoryEvent]:
        """Return every history event of ``user_id``, oldest first."""
        with self._read() as conn:
            found = conn.execute(f"SELECT {rows.HIST_COLS} FROM history WHERE user_id = ? "
                                 "ORDER BY at, seq", (user_id,)).fetchall()
        return [rows.event(r) for r in found]
