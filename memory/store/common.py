"""Store logic both stores share: field and vector validation, the update preamble, the embedder policy, and row → dataclass mappers.

Values here are *logical* (aware UTC datetimes, Python lists/dicts); each store encodes
them for its database afterwards (SQLite: integer microseconds and JSON text; TiDB:
DATETIME(6) and JSON columns).
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from memory.store.base import EmbedderMismatchError
from memory.store.base import require_text as _text
from memory.store.base import require_user as _user
from memory.types import (MEMORY_STATUSES, HistoryEvent, MemoryRecord, Message, Thread, as_utc,
                          utcnow)

__all__ = [
    "UPDATABLE_FIELDS", "VALIDITY_FIELDS", "validity_values", "ORDERS", "MEMORY_FIELDS", "HISTORY_FIELDS", "THREAD_FIELDS",
    "MESSAGE_FIELDS", "check_order", "check_paging", "jsonable", "required_time",
    "field_value", "prepare_update", "unique_records", "conversation_of", "memory_values", "history_values",
    "thread_values", "message_values", "profile_values",
    "vector_values", "check_embedder", "embedder_policy", "json_value", "memory_from_row",
    "event_from_row", "thread_from_row", "message_from_row",
]

#: Fields ``update_memory(fields=…)`` may change (both stores).
UPDATABLE_FIELDS = ("type", "importance", "tags", "metadata", "expires_at", "updated_at",
                    "created_at", "last_accessed_at", "access_count", "thread_id", "source")

#: ``list_memories(order=…)`` values: newest first, oldest first, most recalled first
#: (access_count, then last_accessed_at, then newest).
ORDERS = ("created_desc", "created_asc", "accessed_desc")

#: Logical column names of the four row kinds (the order the mappers read them in).
MEMORY_FIELDS = ("id", "user_id", "text", "type", "thread_id", "importance", "tags", "source",
                 "metadata", "created_at", "updated_at", "last_accessed_at", "expires_at",
                 "access_count", "conversation_id", "status", "valid_from", "invalid_at",
                 "superseded_by", "invalid_reason")
HISTORY_FIELDS = ("id", "memory_id", "user_id", "event", "old_text", "new_text", "actor", "at",
                  "turn_id")

#: The validity columns (``MemoryRecord.status`` …): written by ``insert_memories`` (an
#: import keeps a past memory past), then only by ``invalidate_memory`` /
#: ``restore_memory``, never by ``update_memory``.
VALIDITY_FIELDS = ("status", "valid_from", "invalid_at", "superseded_by", "invalid_reason")
THREAD_FIELDS = ("id", "user_id", "title", "created_at", "updated_at", "summary",
                 "summarized_upto")
MESSAGE_FIELDS = ("id", "thread_id", "user_id", "role", "content", "seq", "created_at",
                  "metadata")

Decode = Callable[[Any], "datetime | None"]


# ---- validation and conversion of written values ------------------------------------------
def check_order(order: str) -> str:
    """Return ``order`` if it is one of :data:`ORDERS`; ValueError otherwise."""
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; use one of {', '.join(ORDERS)}")
    return order


def check_paging(limit: int, offset: int) -> tuple[int, int]:
    """Return ``(limit, offset)`` as ints; ValueError when either is negative."""
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must be >= 0")
    return int(limit), int(offset)


def jsonable(value: Any, what: str) -> Any:
    """Return ``value`` if it serialises to strict JSON (no NaN/infinity), else raise
    ValueError naming ``what``."""
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from None
    return value


def required_time(value: Any, what: str) -> datetime:
    """``value`` (datetime or ISO text) as an aware UTC datetime; ValueError if None."""
    if value is None:
        raise ValueError(f"{what} cannot be None")
    return as_utc(value)  # type: ignore[return-value]


def _optional_text(value: Any, what: str) -> str | None:
    return None if value is None else _text(value, what)


def field_value(key: str, value: Any) -> Any:
    """Convert one ``update_memory(fields=…)`` value of field ``key`` (one of
    :data:`UPDATABLE_FIELDS`) to its logical value: tags → list, metadata → dict (both
    JSON-checked), times → aware UTC (``updated_at``/``created_at`` required), counts →
    int, type/source → text, thread_id → text or None. Raises ValueError if unusable."""
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
    if key == "thread_id":
        return _optional_text(value, key)
    raise ValueError(f"cannot update field(s): {key}")


def prepare_update(user_id: Any, text: str | None, embedding: Any,
                   fields: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The ``update_memory`` preamble of both stores: validate the user, refuse unknown
    fields and a new text without its embedding, convert every field
    (:func:`field_value`), add ``text`` and default ``updated_at`` to now.

    Returns ``(user_id, values)`` (logical values by column name; the embedding is left
    to the store). Raises ValueError before anything is written."""
    user_id = _user(user_id)
    fields = dict(fields or {})
    unknown = set(fields) - set(UPDATABLE_FIELDS)
    if unknown:
        raise ValueError(f"cannot update field(s): {', '.join(sorted(unknown))}")
    if text is not None and embedding is None:
        raise ValueError("a new text needs its new embedding")
    values = {key: field_value(key, value) for key, value in fields.items()}
    if text is not None:
        values["text"] = _text(text, "text")
    values.setdefault("updated_at", utcnow())
    return user_id, values


def unique_records(records: Iterable[MemoryRecord]) -> dict[str, MemoryRecord]:
    """The duplicate check of ``insert_memories``: ``{id: record}`` keeping the last
    record of a repeated id (in the order of last appearance). Raises ValueError when an
    id appears twice with different users."""
    out: dict[str, MemoryRecord] = {}
    for rec in records:
        old = out.pop(getattr(rec, "id", None), None)
        if old is not None and old.user_id != rec.user_id:
            raise ValueError(f"memory id {rec.id} appears twice with different users")
        out[rec.id] = rec
    return out


def conversation_of(rec: MemoryRecord) -> str | None:
    """The conversation ``rec`` is stored under: its ``conversation_id``, else its
    ``thread_id`` when it is a verbatim message (``source="raw"``), else None — the rule
    the stores' migrations (SQLite ``0007_conversations``, TiDB ``0003_conversations``)
    apply to rows written before the column existed."""
    if rec.conversation_id is not None:
        return rec.conversation_id
    return rec.thread_id if rec.source == "raw" and rec.thread_id else None


def memory_values(rec: Any) -> dict[str, Any]:
    """Validate a MemoryRecord and return its logical column values
    (:data:`MEMORY_FIELDS`, no embedding; ``conversation_id`` by
    :func:`conversation_of`). Raises ValueError (not a record, missing id or user,
    invalid text, non-JSON tags/metadata, missing created/updated time)."""
    if not isinstance(rec, MemoryRecord):
        raise ValueError(f"expected a MemoryRecord, got {type(rec).__name__}")
    return {
        "id": _id(rec.id, "memory id"), "user_id": _user(rec.user_id), "text": _text(rec.text, "text"),
        "type": _text(rec.type, "type"), "thread_id": _optional_text(rec.thread_id, "thread_id"),
        "importance": int(rec.importance), "tags": jsonable(list(rec.tags or []), "tags"),
        "source": _text(rec.source or "chat", "source"),
        "metadata": jsonable(dict(rec.metadata or {}), "metadata"),
        "created_at": required_time(rec.created_at, "created_at"),
        "updated_at": required_time(rec.updated_at, "updated_at"),
        "last_accessed_at": as_utc(rec.last_accessed_at), "expires_at": as_utc(rec.expires_at),
        "access_count": int(rec.access_count or 0),
        "conversation_id": _optional_text(conversation_of(rec), "conversation_id"),
        **validity_values(rec.status, rec.invalid_at, rec.superseded_by, rec.invalid_reason,
                          rec.valid_from),
    }


def validity_values(status: Any, invalid_at: Any = None, superseded_by: Any = None,
                    reason: Any = None, valid_from: Any = None) -> dict[str, Any]:
    """The validity columns (:data:`VALIDITY_FIELDS`) checked: ``status`` one of
    :data:`memory.types.MEMORY_STATUSES`; a ``current`` memory has no ``invalid_at``,
    ``superseded_by`` or reason; any other status needs ``invalid_at`` (aware UTC).
    Raises ValueError otherwise."""
    status = _text(status or "current", "status")
    if status not in MEMORY_STATUSES:
        raise ValueError(f"status must be one of {', '.join(MEMORY_STATUSES)}, got {status!r}")
    if status == "current":
        invalid_at, superseded_by, reason = None, None, None
    elif invalid_at is None:
        raise ValueError(f"a {status} memory needs invalid_at")
    return {"status": status, "valid_from": as_utc(valid_from),
            "invalid_at": as_utc(invalid_at),
            "superseded_by": _optional_text(superseded_by, "superseded_by"),
            "invalid_reason": _optional_text(reason, "invalid_reason")}


def history_values(ev: Any) -> dict[str, Any]:
    """Validate a HistoryEvent and return its logical column values
    (:data:`HISTORY_FIELDS`). Raises ValueError if malformed."""
    if not isinstance(ev, HistoryEvent):
        raise ValueError(f"expected a HistoryEvent, got {type(ev).__name__}")
    return {"id": _text(ev.id, "history id"), "memory_id": _text(ev.memory_id, "memory_id"),
            "user_id": _user(ev.user_id), "event": _text(ev.event, "event"),
            "old_text": _optional_text(ev.old_text, "old_text"),
            "new_text": _optional_text(ev.new_text, "new_text"),
            "actor": _text(ev.actor, "actor"), "at": required_time(ev.at, "history time"),
            "turn_id": _optional_text(ev.turn_id, "turn_id")}


def thread_values(thread: Any) -> dict[str, Any]:
    """Validate a Thread and return its logical column values (:data:`THREAD_FIELDS`;
    a missing summary is ""). Raises ValueError (not a Thread, empty id or user, invalid
    text, missing created/updated time)."""
    if not isinstance(thread, Thread):
        raise ValueError(f"expected a Thread, got {type(thread).__name__}")
    return {"id": _id(thread.id, "thread id"), "user_id": _user(thread.user_id),
            "title": _text(thread.title, "title"),
            "created_at": required_time(thread.created_at, "created_at"),
            "updated_at": required_time(thread.updated_at, "updated_at"),
            "summary": _text(thread.summary or "", "summary"),
            "summarized_upto": int(thread.summarized_upto or 0)}


def message_values(message: Any) -> dict[str, Any]:
    """Validate a Message and return its logical column values (:data:`MESSAGE_FIELDS`;
    ``seq`` is left to the store, which assigns it). Raises ValueError (not a Message,
    empty id/thread/user, invalid text, missing time, non-JSON metadata)."""
    if not isinstance(message, Message):
        raise ValueError(f"expected a Message, got {type(message).__name__}")
    return {"id": _id(message.id, "message id"), "thread_id": _id(message.thread_id, "thread id"),
            "user_id": _user(message.user_id), "role": _text(message.role, "role"),
            "content": _text(message.content, "content"), "seq": int(message.seq or 0),
            "created_at": required_time(message.created_at, "created_at"),
            "metadata": jsonable(dict(message.metadata or {}), "metadata")}


def profile_values(user_id: Any, text: Any, at: Any) -> dict[str, Any]:
    """Validated ``{"user_id", "text", "updated_at"}`` of ``set_profile``; ValueError for
    an empty user, invalid text or a missing time."""
    return {"user_id": _user(user_id), "text": _text(text, "profile"),
            "updated_at": required_time(at, "profile time")}


def _id(value: Any, what: str) -> str:
    """``value`` if it is a non-empty valid string; ValueError naming ``what`` otherwise."""
    if not _text(value, what):
        raise ValueError(f"{what} must be a non-empty string")
    return value


# ---- vectors -----------------------------------------------------------------------------------
def vector_values(embedding: Any, dim: int, what: str = "embedding") -> np.ndarray:
    """Validate a vector for either store and return it as a float64 array of shape
    ``(dim,)``.

    Raises ValueError (before anything is written or searched) when it is None, not a
    flat list of numbers, of another length than ``dim``, contains NaN/infinity, or is a
    zero vector; both checks are on the float32 values both stores keep. Zero vectors are refused by both stores, stored and query vectors alike:
    cosine distance divides by both norms, so it is undefined for them (TiDB's
    ``VEC_COSINE_DISTANCE`` returns NULL, the SQLite matrix would rank them by an
    arbitrary 1.0); a vector whose components all underflow float32 counts as zero. The product's embedders never
    emit one (``memory.embed.embedder`` maps an all-zero row to a unit vector)."""
    if embedding is None:
        raise ValueError(f"{what} is missing")
    try:
        arr = np.asarray(embedding, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a list of numbers") from None
    if arr.ndim != 1 or arr.shape[0] != dim:
        got = arr.shape[0] if arr.ndim == 1 else f"shape {arr.shape}"
        raise ValueError(f"{what} has dimension {got}, the store expects {dim}")
    with np.errstate(over="ignore"):
        kept = arr.astype(np.float32)
    if not np.isfinite(kept).all():
        raise ValueError(f"{what} contains NaN or infinity (or a value beyond float32)")
    if not kept.any():
        raise ValueError(f"{what} is a zero vector (cosine distance is undefined)")
    return arr


# ---- the embedder policy of open() -----------------------------------------------------------
def check_embedder(embedder_id: Any, dim: Any) -> tuple[str, int]:
    """Return ``(embedder_id, dim)``; ValueError for an empty id or a dim that is not a
    positive int."""
    if not isinstance(embedder_id, str) or not embedder_id:
        raise ValueError("embedder_id must be a non-empty string")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError("dim must be a positive integer")
    return embedder_id, dim


def embedder_policy(where: str, stored_id: str | None, stored_dim: int | None,
                    embedder_id: str, dim: int, has_memories: bool) -> bool:
    """What ``open(embedder_id, dim)`` does with a store whose vector index was built by
    ``stored_id`` (None: not recorded) with dimension ``stored_dim`` (None: no index).

    Returns True when the vector index must be (re)created for ``dim`` (no index yet, or
    another embedder's index holding no memories), False when it can be used as is.
    Raises EmbedderMismatchError (one message for both stores, naming ``where``) when
    memories exist that another embedder or dimension produced.
    """
    same = stored_id in (None, embedder_id) and stored_dim in (None, dim)
    if has_memories and not same:
        raise EmbedderMismatchError(
            f"the memories in {where} were embedded with '{stored_id or 'another embedder'}' "
            f"(dim {stored_dim}) but the configured embedder is '{embedder_id}' (dim {dim}); "
            "run `python main.py reembed` (or configure the old embedder)")
    return stored_dim != dim or not same


# ---- row → dataclass mappers -----------------------------------------------------------------
_EMPTY_JSON: dict[Any, Any] = {"{}": dict, "[]": list, b"{}": dict, b"[]": list}


def json_value(value: Any, default: Any) -> Any:
    """A JSON column's value: text/bytes are parsed (unparseable → ``default``), None →
    ``default``, anything else (a driver that already decoded it) is returned as is."""
    if value is None:
        return default
    if isinstance(value, (str, bytes)):
        if value in _EMPTY_JSON:  # most tags and metadata: no parser call
            return _EMPTY_JSON[value]()
        try:
            return json.loads(value)
        except ValueError:
            return default
    return value


def memory_from_row(r: Mapping[str, Any], when: Decode = as_utc) -> MemoryRecord:
    """A MemoryRecord from a mapping with the :data:`MEMORY_FIELDS` keys (plus an
    optional ``embedding``); ``when`` decodes the store's time values."""
    emb = r.get("embedding")
    return MemoryRecord(
        id=r["id"], user_id=r["user_id"], text=r["text"], type=r["type"],
        thread_id=r["thread_id"], importance=int(r["importance"]),
        tags=list(json_value(r["tags"], [])), source=r["source"],
        metadata=dict(json_value(r["metadata"], {})), created_at=when(r["created_at"]),  # type: ignore[arg-type]
        updated_at=when(r["updated_at"]),  # type: ignore[arg-type]
        last_accessed_at=when(r["last_accessed_at"]), expires_at=when(r["expires_at"]),
        access_count=int(r["access_count"] or 0),
        embedding=[float(x) for x in emb] if emb is not None else None,
        conversation_id=r.get("conversation_id"), status=r.get("status") or "current",
        valid_from=when(r.get("valid_from")), invalid_at=when(r.get("invalid_at")),
        superseded_by=r.get("superseded_by"), invalid_reason=r.get("invalid_reason"))


def event_from_row(r: Mapping[str, Any], when: Decode = as_utc) -> HistoryEvent:
    """A HistoryEvent from a mapping with the :data:`HISTORY_FIELDS` keys."""
    return HistoryEvent(id=r["id"], memory_id=r["memory_id"], user_id=r["user_id"],
                        event=r["event"], old_text=r["old_text"], new_text=r["new_text"],
                        actor=r["actor"], at=when(r["at"]),  # type: ignore[arg-type]
                        turn_id=r.get("turn_id"))


def thread_from_row(r: Mapping[str, Any], when: Decode = as_utc) -> Thread:
    """A Thread from a mapping with the :data:`THREAD_FIELDS` keys."""
    return Thread(id=r["id"], user_id=r["user_id"], title=r["title"],
                  created_at=when(r["created_at"]), updated_at=when(r["updated_at"]),  # type: ignore[arg-type]
                  summary=r["summary"] or "", summarized_upto=int(r["summarized_upto"] or 0))


def message_from_row(r: Mapping[str, Any], when: Decode = as_utc) -> Message:
    """A Message from a mapping with the :data:`MESSAGE_FIELDS` keys."""
    return Message(id=r["id"], thread_id=r["thread_id"], user_id=r["user_id"], role=r["role"],
                   content=r["content"], seq=int(r["seq"]), created_at=when(r["created_at"]),  # type: ignore[arg-type]
                   metadata=dict(json_value(r["metadata"], {})))
