"""Plain data types shared by the engine, the stores, the UI and the benchmarks.

All timestamps are timezone-aware UTC ``datetime`` objects. Ids are opaque strings
(UUID4 hex, 32 chars), never autoincrement integers, so they stay stable across stores
and migrations.
"""
from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

MemoryType = Literal["profile", "preference", "fact", "task", "summary", "episode"]
MEMORY_TYPES: tuple[str, ...] = ("profile", "preference", "fact", "task", "summary", "episode")

EventType = Literal["ADD", "UPDATE", "END", "FORGET", "RESTORE", "UNDO", "DELETE", "NONE"]

#: Where a memory stands (``MemoryRecord.status``). Only ``current`` memories are found
#: by search, listed and given to the model. ``superseded``: a newer memory replaced its
#: value (``superseded_by`` names it); ``ended``: it stopped holding without a successor
#: (a habit given up, a job left); both are kept as the user's past, with the time they
#: stopped (``invalid_at``) and what decided it (``invalid_reason``), and can be restored
#: by undo. ``forgotten``: the user asked to forget it: a tombstone, never used again,
#: restorable by undo until it is purged (``memory.write.retention``).
MemoryStatus = Literal["current", "superseded", "ended", "forgotten"]
MEMORY_STATUSES: tuple[str, ...] = ("current", "superseded", "ended", "forgotten")
PAST_STATUSES: tuple[str, ...] = ("superseded", "ended")

#: The Change/HistoryEvent events of the write path, and what each means:
#: ADD a new memory; UPDATE a memory's value replaced (the earlier value is kept as a
#: ``superseded`` row); END a memory no longer current (kept as past); FORGET a memory the
#: user asked to forget (tombstone); RESTORE a memory brought back by undo; UNDO an ADD
#: or UPDATE taken back; DELETE a memory erased for good (an explicit delete); NONE nothing.
WRITE_EVENTS: tuple[str, ...] = ("ADD", "UPDATE", "END", "FORGET")


#: The turn whose changes are being written in this thread of execution (set by
#: :func:`memory.write.turn_scope.turn`); history events default their ``turn_id`` to it.
_CURRENT_TURN: ContextVar[str | None] = ContextVar("memory_turn", default=None)


def utcnow() -> datetime:
    """Return the current time as a timezone-aware UTC datetime."""
    return datetime.now(timezone.utc)


def new_id() -> str:
    """Return a new random memory/thread id: a 32-char lowercase hex UUID4."""
    return uuid.uuid4().hex


def as_utc(value: datetime | str | None) -> datetime | None:
    """Normalise ``value`` to an aware UTC datetime.

    Takes a datetime (naive ones are taken as UTC), an ISO-8601 string, or None.
    Returns None for None. Raises ValueError for a string that is not ISO-8601.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


@dataclass
class MemoryRecord:
    """One durable memory of one user, as stored.

    ``embedding`` is a list of floats of the store's dimension (L2-normalised by the
    embedder) or None when a record is read back without it. ``importance`` is 1 (trivia)
    to 5 (identity-level). ``expires_at``: rows past it are never returned by a store.
    ``access_count`` counts how often the memory was given to the model (for insights).
    ``conversation_id``: the conversation a verbatim message (``source="raw"``) belongs
    to, whose messages search treats as ordered neighbours (``memory.search.neighbours``): its
    ``thread_id``, or, for the messages of one ``Memory.add(..., infer=False)`` call of
    several messages without a thread, one id that call made; None otherwise. A raw record
    written with a thread and no conversation gets its thread (``memory.store.common``).

    Validity (bi-temporal in the manner of Graphiti's ``valid_at``/``invalid_at``):
    ``status`` is one of :data:`MEMORY_STATUSES`; ``valid_from`` when the memory began to
    hold (None: since ``created_at``); ``invalid_at`` when it stopped being current (None
    while ``current``); ``superseded_by`` the id of the memory that replaced it;
    ``invalid_reason`` what decided it: ``llm``, ``rule:<name>``, ``user``,
    ``resource:<file name>``.
    """

    id: str
    user_id: str
    text: str
    type: str = "fact"
    thread_id: str | None = None
    importance: int = 3
    tags: list[str] = field(default_factory=list)
    source: str = "chat"
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    last_accessed_at: datetime | None = None
    expires_at: datetime | None = None
    access_count: int = 0
    embedding: list[float] | None = None
    conversation_id: str | None = None
    status: str = "current"
    valid_from: datetime | None = None
    invalid_at: datetime | None = None
    superseded_by: str | None = None
    invalid_reason: str | None = None

    @property
    def current(self) -> bool:
        """True while the memory holds (``status == "current"``)."""
        return self.status == "current"

    def to_dict(self, with_embedding: bool = False) -> dict[str, Any]:
        """Return a JSON-ready dict (datetimes as ISO-8601 strings)."""
        out = {
            "id": self.id,
            "user_id": self.user_id,
            "text": self.text,
            "type": self.type,
            "thread_id": self.thread_id,
            "importance": self.importance,
            "tags": list(self.tags),
            "source": self.source,
            "metadata": dict(self.metadata),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "last_accessed_at": _iso(self.last_accessed_at),
            "expires_at": _iso(self.expires_at),
            "access_count": self.access_count,
            "conversation_id": self.conversation_id,
            "status": self.status,
            "valid_from": _iso(self.valid_from),
            "invalid_at": _iso(self.invalid_at),
            "superseded_by": self.superseded_by,
            "invalid_reason": self.invalid_reason,
        }
        if with_embedding and self.embedding is not None:
            out["embedding"] = [float(x) for x in self.embedding]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], user_id: str | None = None) -> "MemoryRecord":
        """Build a record from ``to_dict`` output; ``user_id`` overrides the stored one.

        Raises KeyError if ``text`` is missing and ValueError on a malformed date.
        """
        now = utcnow()
        return cls(
            id=str(data.get("id") or new_id()),
            user_id=user_id or str(data["user_id"]),
            text=str(data["text"]),
            type=str(data.get("type") or "fact"),
            thread_id=data.get("thread_id"),
            importance=int(data.get("importance") or 3),
            tags=[str(t) for t in (data.get("tags") or [])],
            source=str(data.get("source") or "import"),
            metadata=dict(data.get("metadata") or {}),
            created_at=as_utc(data.get("created_at")) or now,
            updated_at=as_utc(data.get("updated_at")) or now,
            last_accessed_at=as_utc(data.get("last_accessed_at")),
            expires_at=as_utc(data.get("expires_at")),
            access_count=int(data.get("access_count") or 0),
            embedding=data.get("embedding"),
            conversation_id=data.get("conversation_id"),
            status=str(data.get("status") or "current"),
            valid_from=as_utc(data.get("valid_from")),
            invalid_at=as_utc(data.get("invalid_at")),
            superseded_by=data.get("superseded_by"),
            invalid_reason=data.get("invalid_reason"),
        )


@dataclass
class HistoryEvent:
    """One change to one memory: an event of :data:`EventType` (see
    :data:`WRITE_EVENTS`), who did it (``actor``: ``llm``, ``rule:<name>``, ``user``,
    ``import``, ``system``, ``resource:<id8>`` for a file and ``resource-deleted:<id8>``
    for its deletion) and when. ``turn_id``: the turn (one ``Memory.add`` call or chat
    turn) whose changes undo takes back together; by default the turn being learned in
    this thread of execution (:func:`memory.write.turn_scope.current_turn`), else None.
    ``resource``: the file name of that resource, filled when history is read
    (``Memory.history``), not stored."""

    memory_id: str
    user_id: str
    event: str
    old_text: str | None
    new_text: str | None
    actor: str
    at: datetime = field(default_factory=utcnow)
    id: str = field(default_factory=new_id)
    resource: str | None = None
    turn_id: str | None = field(default_factory=lambda: _CURRENT_TURN.get())

    @property
    def who(self) -> str:
        """Who made the change, for people: ``file cv.pdf`` (``file cv.pdf, deleted``
        for its deletion) when ``resource`` is known, else ``actor``."""
        if not self.resource:
            return self.actor
        gone = ", deleted" if self.actor.startswith("resource-deleted:") else ""
        return f"file {self.resource}{gone}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (with ``resource`` only when it is known)."""
        out = {
            "id": self.id,
            "memory_id": self.memory_id,
            "user_id": self.user_id,
            "event": self.event,
            "old_text": self.old_text,
            "new_text": self.new_text,
            "actor": self.actor,
            "at": _iso(self.at),
            "turn_id": self.turn_id,
        }
        if self.resource:
            out["resource"] = self.resource
        return out


@dataclass
class Thread:
    """A chat thread (short-term memory). ``summary`` condenses messages that no longer
    fit the prompt; ``summarized_upto`` is how many of its messages the summary covers."""

    id: str
    user_id: str
    title: str
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    summary: str = ""
    summarized_upto: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "title": self.title,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "summary": self.summary,
            "summarized_upto": self.summarized_upto,
        }


@dataclass
class Message:
    """One chat message in a thread. ``seq`` is its 0-based position in the thread."""

    id: str
    thread_id: str
    user_id: str
    role: str
    content: str
    seq: int = 0
    created_at: datetime = field(default_factory=utcnow)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "id": self.id,
            "thread_id": self.thread_id,
            "user_id": self.user_id,
            "role": self.role,
            "content": self.content,
            "seq": self.seq,
            "created_at": _iso(self.created_at),
            "metadata": dict(self.metadata),
        }


@dataclass
class ScoredMemory:
    """A search hit: the record plus its final ``score`` (higher is better) and the ranks
    it had in each retriever (``vector_rank``/``text_rank``, 1-based, None if absent)."""

    record: MemoryRecord
    score: float
    vector_rank: int | None = None
    text_rank: int | None = None

    # Convenience accessors so callers can write ``hit.text`` etc.
    @property
    def id(self) -> str:
        """The memory id."""
        return self.record.id

    @property
    def text(self) -> str:
        """The memory text."""
        return self.record.text

    @property
    def type(self) -> str:
        """The memory type."""
        return self.record.type

    @property
    def metadata(self) -> dict[str, Any]:
        """The memory's metadata dict."""
        return self.record.metadata

    @property
    def created_at(self) -> datetime:
        """When the memory was created (aware UTC)."""
        return self.record.created_at

    @property
    def importance(self) -> int:
        """Importance 1-5."""
        return self.record.importance

    def to_dict(self) -> dict[str, Any]:
        """Return the record's dict plus ``score``."""
        out = self.record.to_dict()
        out["score"] = self.score
        return out


@dataclass
class SearchResult:
    """What ``Memory.search`` returns: ranked ``memories`` (best first) and the user's
    ``profile`` text ("" when none is known yet). ``past``: memories that are no longer
    current (superseded or ended; ``memory.search.past``), nearest first, filled for a chat
    turn whose message asks about the user's past; [] otherwise."""

    memories: list[ScoredMemory]
    profile: str = ""
    past: list[ScoredMemory] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``past`` only when there is some)."""
        out: dict[str, Any] = {"profile": self.profile,
                               "memories": [m.to_dict() for m in self.memories]}
        if self.past:
            out["past"] = [m.to_dict() for m in self.past]
        return out


@dataclass
class Change:
    """One outcome of ``Memory.add``: ``event`` is ADD/UPDATE/END/FORGET/NONE (see
    :data:`WRITE_EVENTS`; DELETE only from older callers), ``id`` the memory concerned,
    ``text`` its new text (its last text for END/FORGET), ``old_text`` the text before an
    UPDATE; ``reason`` is None, or one line saying why the change may be wrong (a
    reconcile fallback to ADD, KNOWN memories that could not be searched) or what ended
    it (``rule:ceased``)."""

    event: str
    id: str | None
    text: str
    old_text: str | None = None
    type: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"event": self.event, "id": self.id, "text": self.text,
                "old_text": self.old_text, "type": self.type, "reason": self.reason}


class Changes(list):
    """``list[Change]`` returned by ``Memory.add``; ``error`` is this call's one-line
    reason when extraction failed (then the list is empty and nothing was written);
    ``turn_id`` the id its history events carry, which ``Memory.undo`` takes to take the
    whole turn back (None when nothing was written).
    ``Changes(items=(), error=None, turn_id=None)``."""

    error: str | None = None
    turn_id: str | None = None

    def __init__(self, items=(), error: str | None = None, turn_id: str | None = None):
        super().__init__(items)
        self.error = error
        self.turn_id = turn_id


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
