"""TiDB store, validity: superseding, ending, forgetting and restoring a memory, its past versions, the purge of forgotten ones, and the history of one turn."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from memory.store import common
from memory.store.base import require_user as _user
from memory.store.tidb.rows import event_from_row, record_from_row
from memory.types import PAST_STATUSES, WRITE_EVENTS, HistoryEvent, MemoryRecord

#: Memory ids per ``DELETE`` of ``purge_forgotten`` (each ``IN`` list twice).
PURGE_CHUNK = 500


class ValidityMixin:
    """The validity methods of ``TiDBStore`` (see ``Store.invalidate_memory``), each one
    transaction through ``_tx`` (joining an open ``transaction()``). Needs ``sql``,
    ``_tx`` and ``_change_one`` (``MemoriesMixin``) from the store. A non-current row
    keeps its vector and text: the live conditions of every search, list and count
    (``statements.live_conditions``) leave it out."""

    def invalidate_memory(self, user_id: str, memory_id: str, *, status: str, at: datetime,
                          reason: str, superseded_by: str | None = None,
                          history: HistoryEvent | None = None) -> bool:
        """Make one *current* memory of ``user_id`` ``superseded``, ``ended`` or
        ``forgotten`` from ``at`` on, with ``history``, in one transaction: a single
        ``UPDATE … WHERE user_id = :u AND id = :id AND status = 'current'``. Returns
        False (nothing written) when the user has no such current memory. Raises
        ValueError for status ``current``, an unknown status or a bad value (before any
        SQL)."""
        user_id = _user(user_id)
        values = common.validity_values(status, at, superseded_by, reason)
        if values["status"] == "current":
            raise ValueError("invalidate_memory needs a status other than current")
        stmt = self.sql.invalidate(user_id, memory_id, values)
        return self._change_one("invalidate memory", stmt, history)

    def restore_memory(self, user_id: str, memory_id: str,
                       history: HistoryEvent | None = None) -> bool:
        """Make a superseded, ended or forgotten memory of ``user_id`` current again
        (its validity fields cleared), with ``history``. False when the user has no such
        memory or it is already current."""
        stmt = self.sql.restore(_user(user_id), memory_id)
        return self._change_one("restore memory", stmt, history)

    def get_any_memory(self, user_id: str, memory_id: str,
                       with_embedding: bool = False) -> MemoryRecord | None:
        """One memory of ``user_id`` whatever its status or expiry, or None."""
        stmt = self.sql.get_any_memory(user_id, memory_id, with_embedding)
        row = self._tx("read memory", lambda c: c.execute(stmt).first())
        return None if row is None else record_from_row(row)

    def past_memories(self, user_id: str, *, statuses: tuple[str, ...] = PAST_STATUSES,
                      limit: int = 200, with_embedding: bool = False) -> list[MemoryRecord]:
        """``user_id``'s memories with one of ``statuses`` (default superseded and ended;
        ``("forgotten",)`` for the tombstones; ``current`` is ignored), most recently
        invalidated first, at most ``limit``."""
        wanted = [s for s in dict.fromkeys(statuses or ()) if s != "current"]
        if not wanted or limit <= 0:
            return []
        stmt = self.sql.past_memories(user_id, wanted, limit, with_embedding)
        return self._tx("read past memories",
                        lambda c: [record_from_row(r) for r in c.execute(stmt)])

    def purge_forgotten(self, user_id: str, before: datetime) -> int:
        """Erase for good ``user_id``'s forgotten memories invalidated before ``before``
        and the versions they superseded, in one transaction (the tombstones are read
        ``FOR UPDATE`` first). History events stay. Returns how many rows were erased."""
        user_id = _user(user_id)
        cutoff = common.required_time(before, "purge time")

        def work(c: Connection) -> int:
            ids = [r[0] for r in c.execute(self.sql.forgotten_before(user_id, cutoff))]
            erased = 0
            for start in range(0, len(ids), PURGE_CHUNK):
                chunk = ids[start:start + PURGE_CHUNK]
                erased += int(c.execute(self.sql.purge(user_id, chunk)).rowcount)
            return erased

        return self._tx("purge forgotten memories", work)

    def turn_history(self, user_id: str, turn_id: str) -> list[HistoryEvent]:
        """The history events of one turn of ``user_id`` by time, then id (the order
        written when their times differ: see ``TiDBSQL.turn_history``)."""
        stmt = self.sql.turn_history(user_id, turn_id)
        return self._tx("read turn history", lambda c: [event_from_row(r) for r in c.execute(stmt)])

    def last_turn(self, user_id: str) -> str | None:
        """The id of ``user_id``'s latest turn with an ADD, UPDATE, END or FORGET event
        (``memory.types.WRITE_EVENTS``) that no UNDO/RESTORE event names, or None."""
        stmt = self.sql.last_turn(user_id, WRITE_EVENTS)
        return self._tx("read last turn", lambda c: c.execute(stmt).scalar())

