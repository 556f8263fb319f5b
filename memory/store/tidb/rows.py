"""Row conversion and input validation of the TiDB store (TiDB's copies of the pieces the SQLite store duplicates; to be swapped for ``memory/store/common.py``)."""
from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from memory.store.base import require_text as _text
from memory.store.base import require_user as _user
from memory.types import HistoryEvent, MemoryRecord, Message, Thread, as_utc

#: fields ``update_memory(fields=...)`` may change (same list as the SQLite store)
UPDATABLE_FIELDS = frozenset({"type", "importance", "tags", "metadata", "expires_at",
                              "updated_at", "created_at", "last_accessed_at",
                              "access_count", "thread_id", "source"})
#: ``list_memories(order=...)`` values (same as the SQLite store)
ORDERS = ("created_desc", "created_asc", "accessed_desc")


def vector_literal(embedding: Any, dim: int) -> list[float]:
    """Validate and convert an embedding to ``list[float]`` of length ``dim``.

    Raises ValueError for None, a wrong length, a non-finite component, or a zero
    vector: TiDB's ``VEC_COSINE_DISTANCE`` returns NULL for a zero-norm operand (cosine
    distance divides by both norms), so such a vector could never be ranked."""
    if embedding is None:
        raise ValueError("embedding is required")
    values = [float(x) for x in embedding]
    if len(values) != dim:
        raise ValueError(f"embedding has {len(values)} dimensions, the store expects {dim}")
    if not all(math.isfinite(x) for x in values):
        raise ValueError("embedding contains NaN or infinite values")
    if not any(values):
        raise ValueError("embedding is a zero vector (cosine distance is undefined)")
    return values


def _json(value: Any, default: Any) -> Any:
    if value is None:
        return default
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError:
            return default
    return value


def record_from_row(row: Any) -> MemoryRecord:
    """A ``memories`` result row (embedding optional) as a MemoryRecord."""
    r = row._mapping
    emb = r.get("embedding")
    return MemoryRecord(
        id=r["id"], user_id=r["user_id"], text=r["text"], type=r["type"],
        thread_id=r["thread_id"], importance=int(r["importance"]),
        tags=list(_json(r["tags"], [])), source=r["source"],
        metadata=dict(_json(r["metadata"], {})), created_at=r["created_at"],
        updated_at=r["updated_at"], last_accessed_at=r["last_accessed_at"],
        expires_at=r["expires_at"], access_count=int(r["access_count"] or 0),
        embedding=[float(x) for x in emb] if emb is not None else None,
    )


def jsonable(value: Any, what: str) -> Any:
    """``value`` if it serialises to strict JSON (no NaN), else ValueError."""
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from None
    return value


def required_time(value: Any, what: str) -> datetime:
    """``value`` as an aware UTC datetime; ValueError naming ``what`` if it is None."""
    if value is None:
        raise ValueError(f"{what} cannot be None")
    return as_utc(value)  # type: ignore[return-value]


def memory_row(rec: MemoryRecord, dim: int) -> dict[str, Any]:
    """Validate ``rec`` and return its column values. Raises ValueError (missing id or
    user, bad text, non-JSON tags/metadata, missing or wrong-sized embedding)."""
    if not isinstance(rec, MemoryRecord):
        raise ValueError(f"expected a MemoryRecord, got {type(rec).__name__}")
    if not isinstance(rec.id, str) or not rec.id:
        raise ValueError("memory id must be a non-empty string")
    return {
        "id": rec.id, "user_id": _user(rec.user_id), "text": _text(rec.text, "text"),
        "type": _text(rec.type, "type"), "thread_id": rec.thread_id,
        "importance": int(rec.importance),
        "tags": jsonable(list(rec.tags or []), "tags"), "source": _text(rec.source or "chat", "source"),
        "metadata": jsonable(dict(rec.metadata or {}), "metadata"),
        "created_at": required_time(rec.created_at, "created_at"),
        "updated_at": required_time(rec.updated_at, "updated_at"),
        "last_accessed_at": as_utc(rec.last_accessed_at),
        "expires_at": as_utc(rec.expires_at), "access_count": int(rec.access_count or 0),
        "embedding": vector_literal(rec.embedding, dim),
    }


def history_row(ev: HistoryEvent) -> dict[str, Any]:
    """Validate a history event and return its column values (ValueError if malformed)."""
    if not isinstance(ev, HistoryEvent):
        raise ValueError(f"expected a HistoryEvent, got {type(ev).__name__}")
    return {"id": ev.id, "memory_id": ev.memory_id, "user_id": _user(ev.user_id),
            "event": ev.event,
            "old_text": None if ev.old_text is None else _text(ev.old_text, "old_text"),
            "new_text": None if ev.new_text is None else _text(ev.new_text, "new_text"),
            "actor": ev.actor, "at": required_time(ev.at, "history time")}


def field_value(key: str, value: Any) -> Any:
    """Convert one ``update_memory(fields=...)`` value (ValueError if unusable); ``key`` is one of ``UPDATABLE_FIELDS``."""
    if key == "tags":
        return jsonable(list(value or []), key)
    if key == "metadata":
        return jsonable(dict(value or {}), key)
    if key in ("expires_at", "last_accessed_at"):
        return as_utc(value)
    if key in ("updated_at", "created_at"):
        return required_time(value, key)
    if key in ("importance", "access_count"):
        return int(value)
    if key in ("type", "source"):
        return _text(value, key)
    return None if value is None else _text(value, key)  # thread_id


def event_from_row(row: Any) -> HistoryEvent:
    """A ``memory_history`` row as a HistoryEvent."""
    r = row._mapping
    return HistoryEvent(id=r["id"], memory_id=r["memory_id"], user_id=r["user_id"],
                        event=r["event"], old_text=r["old_text"], new_text=r["new_text"],
                        actor=r["actor"], at=r["at"])


def thread_from_row(row: Any) -> Thread:
    """A ``threads`` row as a Thread."""
    r = row._mapping
    return Thread(id=r["id"], user_id=r["user_id"], title=r["title"],
                  created_at=r["created_at"], updated_at=r["updated_at"],
                  summary=r["summary"] or "", summarized_upto=int(r["summarized_upto"] or 0))


def message_from_row(row: Any) -> Message:
    """A ``messages`` row as a Message."""
    r = row._mapping
    return Message(id=r["id"], thread_id=r["thread_id"], user_id=r["user_id"], role=r["role"],
                   content=r["content"], seq=int(r["seq"]), created_at=r["created_at"],
                   metadata=dict(_json(r["metadata"], {})))
