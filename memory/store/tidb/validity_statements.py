"""TiDB statements of memory validity: what is live (``status = 'current'`` and not expired), superseding, ending, forgetting and restoring a memory, past versions, the purge of forgotten ones, and one turn's history (pure SQLAlchemy, like ``statements.py``)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

#: ``memories.status`` of a live memory (``memory.types.MEMORY_STATUSES``), written into
#: the SQL as a literal (as the SQLite store does), not bound.
CURRENT_SQL = sa.literal_column("'current'")


def live_conditions(table: Any, now: datetime) -> list[Any]:
    """The conditions that make a row of ``table`` (the memories table or an alias of it)
    live: ``status = 'current'`` (not superseded, ended or forgotten) and not expired at
    ``now``. Every query that returns, counts or searches live memories uses them (the
    store's statements, the neighbour subqueries, the resource lookups)."""
    c = table.c
    return [c.status == CURRENT_SQL, sa.or_(c.expires_at.is_(None), c.expires_at > now)]


class ValiditySQL:
    """The validity statements of ``TiDBSQL`` (its base class): needs ``self.s`` (the
    ``TiDBSchema``) and ``self.memory_columns``."""

    def invalidate(self, user_id: str, memory_id: str, values: dict[str, Any]) -> Any:
        """``UPDATE memories SET status, invalid_at, superseded_by, invalid_reason WHERE
        user_id = :u AND id = :id AND status = 'current'``: one conditional write (in
        TiDB's pessimistic mode an UPDATE reads the latest committed row and locks it),
        whose row count says whether the user had that current memory. ``values`` from
        ``common.validity_values``; ``valid_from`` is left as it is."""
        m = self.s.memories
        return (sa.update(m)
                .where(m.c.user_id == user_id, m.c.id == memory_id, m.c.status == CURRENT_SQL)
                .values(status=values["status"], invalid_at=values["invalid_at"],
                        superseded_by=values["superseded_by"],
                        invalid_reason=values["invalid_reason"]))

    def restore(self, user_id: str, memory_id: str) -> Any:
        """``UPDATE memories SET status = 'current', invalid_at = NULL, superseded_by =
        NULL, invalid_reason = NULL WHERE user_id = :u AND id = :id AND status <>
        'current'`` (row count 0: no such non-current memory)."""
        m = self.s.memories
        return (sa.update(m)
                .where(m.c.user_id == user_id, m.c.id == memory_id, m.c.status != CURRENT_SQL)
                .values(status=CURRENT_SQL, invalid_at=sa.null(), superseded_by=sa.null(),
                        invalid_reason=sa.null()))

    def get_any_memory(self, user_id: str, memory_id: str, with_embedding: bool = False) -> Any:
        """SELECT of one memory of ``user_id`` whatever its status or expiry."""
        m = self.s.memories.c
        return (sa.select(*self.memory_columns(with_embedding))
                .where(m.user_id == user_id, m.id == memory_id))

    def past_memories(self, user_id: str, statuses: list[str], limit: int,
                      with_embedding: bool = False) -> Any:
        """SELECT of ``user_id``'s memories whose status is one of ``statuses``, most
        recently invalidated first (ties by id), at most ``limit`` (through the
        ``(user_id, status, invalid_at)`` index)."""
        m = self.s.memories.c
        return (sa.select(*self.memory_columns(with_embedding))
                .where(m.user_id == user_id, m.status.in_(list(statuses)))
                .order_by(m.invalid_at.desc(), m.id.desc()).limit(max(0, int(limit))))

    def forgotten_before(self, user_id: str, before: datetime) -> Any:
        """``SELECT id FROM memories WHERE user_id = :u AND status = 'forgotten' AND
        invalid_at < :before FOR UPDATE``: the tombstones past their retention, read with
        a lock (the latest committed rows; a restore racing the purge waits)."""
        m = self.s.memories.c
        return (sa.select(m.id).where(m.user_id == user_id, m.status == "forgotten",
                                      m.invalid_at < before)
                .order_by(m.id).with_for_update())

    def purge(self, user_id: str, ids: list[str]) -> Any:
        """``DELETE FROM memories WHERE user_id = :u AND (id IN (..) OR (superseded_by IN
        (..) AND status = 'superseded'))``: forgotten memories and the versions they
        superseded."""
        m = self.s.memories
        ids = list(ids)
        return sa.delete(m).where(
            m.c.user_id == user_id,
            sa.or_(m.c.id.in_(ids),
                   sa.and_(m.c.superseded_by.in_(ids), m.c.status == "superseded")))

    def turn_history(self, user_id: str, turn_id: str) -> Any:
        """SELECT of ``user_id``'s history events of one turn by ``at``, then id. The
        table has no insertion sequence (TiDB cannot add an AUTO_INCREMENT column to an
        existing table), so events of one turn written with the same ``at`` come back in
        id order, not necessarily in the order written."""
        h = self.s.history.c
        return (sa.select(self.s.history).where(h.user_id == user_id, h.turn_id == turn_id)
                .order_by(h.at, h.id))

    def last_turn(self, user_id: str, events: tuple[str, ...]) -> Any:
        """``SELECT turn_id FROM history WHERE user_id = :u AND turn_id IS NOT NULL AND
        event IN (events) AND turn_id NOT IN (SELECT turn_id FROM history WHERE user_id =
        :u AND event IN ('UNDO', 'RESTORE') AND turn_id IS NOT NULL) ORDER BY at DESC, id
        DESC LIMIT 1``: the latest turn that changed a memory and was not undone (the
        subquery's ``turn_id IS NOT NULL`` keeps ``NOT IN`` from turning NULL)."""
        h = self.s.history.c
        u = self.s.history.alias("u")
        undone = sa.select(u.c.turn_id).where(u.c.user_id == user_id,
                                              u.c.event.in_(["UNDO", "RESTORE"]),
                                              u.c.turn_id.is_not(None))
        return (sa.select(h.turn_id)
                .where(h.user_id == user_id, h.turn_id.is_not(None), h.event.in_(list(events)),
                       h.turn_id.not_in(undone))
                .order_by(h.at.desc(), h.id.desc()).limit(1))
