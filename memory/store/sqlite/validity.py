"""Validity of the SQLite store's memories: superseding, ending, forgetting and restoring a memory, its past versions, the purge of forgotten ones, and the history of one turn."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from memory.store import common
from memory.store.base import require_user as _user
from memory.store.sqlite import rows
from memory.store.sqlite.memories import Memories, _exp
from memory.store.sqlite.schema import PAST, vec_table_dim
from memory.types import PAST_STATUSES, HistoryEvent, MemoryRecord

#: The history events undo takes back (``Store.last_turn``).
UNDOABLE = ("ADD", "UPDATE", "END", "FORGET")


class Validity(Memories):
    """The validity half of ``SQLiteStore`` (see ``Store.invalidate_memory``)."""

    def invalidate_memory(self, user_id: str, memory_id: str, *, status: str, at: datetime,
                          reason: str, superseded_by: str | None = None,
                          history: HistoryEvent | None = None) -> bool:
        """Make one *current* memory of ``user_id`` ``superseded``, ``ended`` or
        ``forgotten`` at ``at`` (see ``Store.invalidate_memory``): the row, its vector and
        full-text rows stay; search, lists and counts no longer see it. Returns False
        (nothing written) when the user has no such current memory. Raises ValueError for
        status ``current`` or an unknown status."""
        user_id = _user(user_id)
        values = rows.encode(common.validity_values(status, at, superseded_by, reason))
        if values["status"] == "current":
            raise ValueError("invalidate_memory needs a status other than current")
        history_rows = [rows.history_row(history)] if history is not None else []
        with self._vec_write() as (conn, patches):
            row = conn.execute("SELECT rid FROM memories WHERE user_id = ? AND id = ? AND "
                               "status = 'current'", (user_id, memory_id)).fetchone()
            if row is None:
                return False
            conn.execute("UPDATE memories SET status = ?, invalid_at = ?, superseded_by = ?, "
                         "invalid_reason = ? WHERE rid = ?",
                         (values["status"], values["invalid_at"], values["superseded_by"],
                          values["invalid_reason"], row[0]))
            self._set_vec_expiry(conn, patches, user_id, memory_id, row[0], PAST)
            self._insert_history(conn, history_rows)
        return True

    def restore_memory(self, user_id: str, memory_id: str,
                       history: HistoryEvent | None = None) -> bool:
        """Make a superseded, ended or forgotten memory of ``user_id`` current again
        (undo): validity fields cleared, searchable again. Returns False when the user
        has no such memory or it is already current."""
        user_id = _user(user_id)
        history_rows = [rows.history_row(history)] if history is not None else []
        with self._vec_write() as (conn, patches):
            row = conn.execute("SELECT rid, expires_at FROM memories WHERE user_id = ? AND "
                               "id = ? AND status <> 'current'", (user_id, memory_id)).fetchone()
            if row is None:
                return False
            conn.execute("UPDATE memories SET status = 'current', invalid_at = NULL, "
                         "superseded_by = NULL, invalid_reason = NULL WHERE rid = ?", (row[0],))
            self._set_vec_expiry(conn, patches, user_id, memory_id, row[0], _exp(row[1]))
            self._insert_history(conn, history_rows)
        return True

    def _set_vec_expiry(self, conn: Any, patches: list[tuple], user_id: str, memory_id: str,
                        rid: int, expires: int) -> None:
        if vec_table_dim(conn) is not None:
            conn.execute("UPDATE vec_memories SET expires_at = ? WHERE rowid = ?", (expires, rid))
        self._bump(conn, patches, user_id, [("set", memory_id, None, expires, None)])

    def get_any_memory(self, user_id: str, memory_id: str,
                       with_embedding: bool = False) -> MemoryRecord | None:
        """One memory of ``user_id`` whatever its status (current, past or forgotten;
        expired too), or None."""
        with self._read() as conn:
            row = conn.execute(f"SELECT {rows.MEM_COLS} FROM memories WHERE user_id = ? "
                               "AND id = ?", (user_id, memory_id)).fetchone()
            return None if row is None else self._records(conn, [row], with_embedding)[0]

    def past_memories(self, user_id: str, *, statuses: tuple[str, ...] = PAST_STATUSES,
                      limit: int = 200, with_embedding: bool = False) -> list[MemoryRecord]:
        """``user_id``'s memories with one of ``statuses`` (default superseded and
        ended: the user's past; ``("forgotten",)`` for the tombstones), the most recently
        invalidated first, at most ``limit``."""
        statuses = tuple(s for s in statuses if s != "current")
        if not statuses or limit <= 0:
            return []
        marks = ", ".join("?" * len(statuses))
        with self._read() as conn:
            found = conn.execute(
                f"SELECT {rows.MEM_COLS} FROM memories WHERE user_id = ? AND status IN "
                f"({marks}) ORDER BY invalid_at DESC, rid DESC LIMIT ?",
                (user_id, *statuses, int(limit))).fetchall()
            return self._records(conn, found, with_embedding)

    def purge_forgotten(self, user_id: str, before: datetime) -> int:
        """Erase for good (base, vector and text rows) ``user_id``'s forgotten memories
        whose ``invalid_at`` is before ``before``, and the versions they superseded.
        Returns how many rows were erased. History events stay (they hold the texts the
        user saw change; ``delete_user_memories`` erases them)."""
        user_id = _user(user_id)
        cutoff = rows.ts(before)
        with self._vec_write() as (conn, patches):
            found = conn.execute(
                "SELECT rid, id FROM memories WHERE user_id = ? AND status = 'forgotten' "
                "AND invalid_at < ?", (user_id, cutoff)).fetchall()
            ids = [mid for _, mid in found]
            for chunk in rows.chunks(ids):
                found += conn.execute(
                    f"SELECT rid, id FROM memories WHERE user_id = ? AND superseded_by IN "
                    f"({', '.join('?' * len(chunk))}) AND status = 'superseded'",
                    (user_id, *chunk)).fetchall()
            if not found:
                return 0
            self._delete_rows(conn, [rid for rid, _ in found])
            self._bump(conn, patches, user_id, [("kill", mid) for _, mid in found])
        return len(found)

    def turn_history(self, user_id: str, turn_id: str) -> list[HistoryEvent]:
        """The history events of one turn of ``user_id``, in the order written."""
        with self._read() as conn:
            found = conn.execute(f"SELECT {rows.HIST_COLS} FROM history WHERE user_id = ? "
                                 "AND turn_id = ? ORDER BY seq", (user_id, turn_id))
            return [rows.event(r) for r in found.fetchall()]

    def last_turn(self, user_id: str) -> str | None:
        """The id of ``user_id``'s most recent turn that changed a memory (an ADD,
        UPDATE, END or FORGET event with a ``turn_id``) and was not undone since, or
        None."""
        marks = ", ".join("?" * len(UNDOABLE))
        with self._read() as conn:
            row = conn.execute(
                f"SELECT turn_id FROM history WHERE user_id = ? AND turn_id IS NOT NULL AND "
                f"event IN ({marks}) AND turn_id NOT IN (SELECT turn_id FROM history WHERE "
                "user_id = ? AND event IN ('UNDO', 'RESTORE') AND turn_id IS NOT NULL) "
                "ORDER BY seq DESC LIMIT 1", (user_id, *UNDOABLE, user_id)).fetchone()
            return None if row is None else row[0]
