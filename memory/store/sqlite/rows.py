"""Row conversion of the SQLite store: datetimes as integer microseconds, JSON text, and the tuples written to / read from each table."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import numpy as np

from memory.store import common
from memory.types import HistoryEvent, MemoryRecord, Message, Thread, as_utc

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)

#: Rows per ``IN (…)`` list: stays below SQLite's historical 999-variable limit.
IN_CHUNK = 500

#: Columns of ``memories`` in the order :func:`record` reads them (``rid`` first).
MEM_COLS = "rid, " + ", ".join(common.MEMORY_FIELDS)
HIST_COLS = ", ".join(common.HISTORY_FIELDS)
THREAD_COLS = ", ".join(common.THREAD_FIELDS)
MSG_COLS = ", ".join(common.MESSAGE_FIELDS)


def ts(value: datetime | str | None) -> int | None:
    """Aware/naive(UTC) datetime or ISO string -> integer microseconds since the epoch."""
    dt = as_utc(value)
    if dt is None:
        return None
    return (dt - _EPOCH) // _US


def dt(value: int | None) -> datetime | None:
    """Integer microseconds since the epoch -> aware UTC datetime."""
    if value is None:
        return None
    return _EPOCH + timedelta(0, 0, int(value))  # positional: ~30% faster than keywords


def to_json(value: Any, what: str) -> str:
    """Strict JSON text of ``value``; ValueError naming ``what`` when not serialisable."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from None


def encode(values: dict[str, Any]) -> dict[str, Any]:
    """Logical column values (see :mod:`memory.store.common`) -> SQLite values:
    datetimes to microseconds, tags/metadata to JSON text."""
    out = {}
    for key, value in values.items():
        if isinstance(value, datetime):
            value = ts(value)
        elif key in ("tags", "metadata"):
            value = to_json(value, key)
        out[key] = value
    return out


def chunks(items: list, size: int = IN_CHUNK) -> Iterator[list]:
    """``items`` in consecutive slices of at most ``size``."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


def memory_row(rec: MemoryRecord) -> tuple:
    """Validated ``memories`` values of ``rec`` in :data:`MEM_COLS` order without rid."""
    values = encode(common.memory_values(rec))
    return tuple(values[k] for k in common.MEMORY_FIELDS)


def history_row(ev: HistoryEvent) -> tuple:
    """Validated ``history`` values of ``ev`` in :data:`HIST_COLS` order."""
    values = encode(common.history_values(ev))
    return tuple(values[k] for k in common.HISTORY_FIELDS)


assert common.MEMORY_FIELDS == (
    "id", "user_id", "text", "type", "thread_id", "importance", "tags", "source", "metadata",
    "created_at", "updated_at", "last_accessed_at", "expires_at", "access_count",
    "conversation_id", "status", "valid_from", "invalid_at", "superseded_by", "invalid_reason")


def record(row: tuple, embeddings: dict[int, list[float]] | None = None) -> MemoryRecord:
    """A ``SELECT MEM_COLS`` row -> MemoryRecord (its vector from ``embeddings[rid]``).

    The same record as :func:`memory.store.common.memory_from_row`, built from the
    tuple's positions without an intermediate dict (search builds ~90 per query)."""
    (rid, mid, user, text, mtype, thread, importance, tags, source, metadata, created,
     updated, accessed, expires, count, conversation, status, valid_from, invalid_at,
     superseded_by, reason) = row
    return MemoryRecord(
        id=mid, user_id=user, text=text, type=mtype, thread_id=thread,
        importance=int(importance), tags=list(common.json_value(tags, [])), source=source,
        metadata=dict(common.json_value(metadata, {})), created_at=dt(created),  # type: ignore[arg-type]
        updated_at=dt(updated), last_accessed_at=dt(accessed),  # type: ignore[arg-type]
        expires_at=dt(expires), access_count=int(count or 0),
        embedding=None if embeddings is None else embeddings.get(rid),
        conversation_id=conversation, status=status or "current", valid_from=dt(valid_from),
        invalid_at=dt(invalid_at), superseded_by=superseded_by, invalid_reason=reason)


def event(row: tuple) -> HistoryEvent:
    """A ``SELECT HIST_COLS`` row -> HistoryEvent."""
    return common.event_from_row(dict(zip(common.HISTORY_FIELDS, row)), dt)


def thread(row: tuple) -> Thread:
    """A ``SELECT THREAD_COLS`` row -> Thread."""
    return common.thread_from_row(dict(zip(common.THREAD_FIELDS, row)), dt)


def message(row: tuple) -> Message:
    """A ``SELECT MSG_COLS`` row -> Message."""
    return common.message_from_row(dict(zip(common.MESSAGE_FIELDS, row)), dt)


def blob(embedding: Any, dim: int, what: str = "embedding") -> bytes:
    """A vector as float32 little-endian bytes for vec0, after
    :func:`memory.store.common.vector_values` (ValueError when missing, not numeric, of
    another dimension than ``dim``, with NaN/infinity, or a zero vector)."""
    return common.vector_values(embedding, dim, what).astype("<f4").tobytes()


def floats(data: bytes) -> list[float]:
    """float32 vector bytes -> list of Python floats."""
    return np.frombuffer(data, dtype="<f4").astype(float).tolist()
