"""Retention of forgotten memories: a memory forgotten in chat is a tombstone
(``memory.write.versions.tombstone``) that undo can restore for ``MEMORY_FORGET_RETENTION_HOURS``
(default 24 h), then it is erased for good, with the versions it superseded.

The purge runs for a user before each of their writes (``memory.write.pipeline``) and for every
user with ``python main.py purge``; an explicit delete (Memories page, CLI, API) never
waits for it.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from memory.types import utcnow

log = logging.getLogger(__name__)


def purge_user(store, uid: str, hours: float, now: datetime | None = None) -> int:
    """Erase ``uid``'s memories forgotten more than ``hours`` hours before ``now``
    (default: the current time). Returns how many rows were erased; a store failure is
    logged and counts 0 (the tombstones stay out of every view and are purged next time)."""
    cutoff = (now or utcnow()) - timedelta(hours=hours)
    try:
        return store.purge_forgotten(uid, cutoff)
    except Exception as exc:  # noqa: BLE001 - a purge must never fail a chat turn
        log.warning("purge of forgotten memories failed for a user: %s", exc)
        return 0


def purge_all(store, hours: float, now: datetime | None = None) -> int:
    """:func:`purge_user` for every user of ``store``; returns the rows erased."""
    return sum(purge_user(store, uid, hours, now) for uid in store.user_ids())
