"""The resource record: one uploaded file of one user (document, web page, image, audio) and what became of it."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from memory.types import as_utc, utcnow

#: ``pending`` while the file is read and its facts extracted; ``ready`` when done
#: (possibly with no memory: nothing in it was about the user); ``failed`` with a
#: one-line ``error`` (corrupt, empty, no text layer, no vision model, LLM down …).
STATUSES = ("pending", "ready", "failed")

#: Longest stored file name (characters); longer names are cut (the extension kept).
MAX_FILENAME = 200

#: Memories learned from a resource carry ``source`` = this and, in their metadata,
#: ``resource_id`` (the resource), ``resource`` (its file name) and ``chunk`` (0-based
#: position of the chunk they came from; ``page`` too for a PDF).
SOURCE = "resource"


@dataclass
class Resource:
    """One file a user gave the assistant.

    ``id``: 32-hex id; ``user_id``: the owner; ``filename``: as uploaded (display only);
    ``mime``: the type detected from the content (never from the name); ``size``:
    bytes; ``sha256``: hex digest of the content (the same file twice for one user is
    one resource); ``status``: one of :data:`STATUSES`, ``error`` its one-line reason
    when ``failed``; ``detail``: JSON-ready facts about the ingest (``chunks``,
    ``chunks_used``, ``llm_calls``, ``pages``, ``seconds``, ``changes``; while
    ``pending`` its owner ``ingest``, once ``failed`` its ``failure``: ``input`` or
    ``service``);
    ``deleted_at``: set by a soft delete (the row stays, its memories are gone).
    ``memory_count`` is filled by listings (live memories linked to it), else None.
    ``duplicate`` marks a repeated upload answered with the existing resource.
    """

    id: str
    user_id: str
    filename: str
    mime: str
    size: int
    sha256: str
    status: str = "pending"
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    deleted_at: datetime | None = None
    memory_count: int | None = None
    #: True when ``add_resource`` returned this existing resource for a repeated upload
    #: (nothing was learned again); not stored
    duplicate: bool = False

    @property
    def bad_input(self) -> bool:
        """True for a ``failed`` resource whose file itself was the reason (corrupt,
        empty, encrypted, scanned, a ZIP bomb: ``detail["failure"] == "input"``); False
        when a service failed (the LLM down) and for any other status."""
        return self.status == "failed" and (self.detail or {}).get("failure") == "input"

    @property
    def scope(self) -> str:
        """The search scope of this resource's memories: ``"resource:<id>"``."""
        return f"resource:{self.id}"

    @property
    def actor(self) -> str:
        """The history actor of changes this resource made: ``resource:<8-hex id>``
        (fits the 32-character actor column of both stores)."""
        return f"resource:{self.id[:8]}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (datetimes as ISO-8601 strings)."""
        return {
            "id": self.id, "user_id": self.user_id, "filename": self.filename,
            "mime": self.mime, "size": self.size, "sha256": self.sha256,
            "status": self.status, "error": self.error, "detail": dict(self.detail),
            "created_at": _iso(self.created_at), "updated_at": _iso(self.updated_at),
            "deleted_at": _iso(self.deleted_at), "memory_count": self.memory_count,
            "duplicate": self.duplicate,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Resource":
        """Build a Resource from a store row dict (column name → value; ``detail`` a
        dict, times aware or naive UTC datetimes or ISO text)."""
        return cls(id=str(row["id"]), user_id=str(row["user_id"]), filename=str(row["filename"]),
                   mime=str(row["mime"]), size=int(row["size"]), sha256=str(row["sha256"]),
                   status=str(row["status"]), error=row.get("error"),
                   detail=dict(row.get("detail") or {}),
                   created_at=as_utc(row["created_at"]),  # type: ignore[arg-type]
                   updated_at=as_utc(row["updated_at"]),  # type: ignore[arg-type]
                   deleted_at=as_utc(row.get("deleted_at")))


#: Columns of a resource row, in the order both stores read and write them.
RESOURCE_FIELDS = ("id", "user_id", "filename", "mime", "size", "sha256", "status", "error",
                   "detail", "created_at", "updated_at", "deleted_at")

#: Fields ``Store.update_resource(fields=…)`` may change.
RESOURCE_UPDATABLE = ("status", "error", "detail", "updated_at", "deleted_at")


def resource_values(res: Resource) -> dict[str, Any]:
    """The logical column values of ``res`` (:data:`RESOURCE_FIELDS`), validated:
    raises ValueError for an unknown status, a negative size or a sha256 that is not 64
    hex characters."""
    check_status(res.status)
    if int(res.size) < 0:
        raise ValueError("resource size must be >= 0")
    if len(res.sha256) != 64 or any(c not in "0123456789abcdef" for c in res.sha256):
        raise ValueError("resource sha256 must be 64 lowercase hex characters")
    return {"id": res.id, "user_id": res.user_id, "filename": res.filename[:MAX_FILENAME],
            "mime": res.mime, "size": int(res.size), "sha256": res.sha256,
            "status": res.status, "error": res.error, "detail": dict(res.detail),
            "created_at": as_utc(res.created_at), "updated_at": as_utc(res.updated_at),
            "deleted_at": as_utc(res.deleted_at)}


def check_status(status: str) -> str:
    """Return ``status`` if it is one of :data:`STATUSES`; ValueError otherwise."""
    if status not in STATUSES:
        raise ValueError(f"unknown resource status {status!r}; use one of {', '.join(STATUSES)}")
    return status


def update_values(fields: dict[str, Any]) -> dict[str, Any]:
    """Validate ``Store.update_resource`` fields (keys of :data:`RESOURCE_UPDATABLE`):
    status checked, times made aware UTC, ``updated_at`` defaulted to now. Raises
    ValueError for an unknown field or status."""
    unknown = set(fields) - set(RESOURCE_UPDATABLE)
    if unknown:
        raise ValueError(f"cannot update resource field(s): {', '.join(sorted(unknown))}")
    out = dict(fields)
    if "status" in out:
        check_status(out["status"])
    if "detail" in out:
        out["detail"] = dict(out["detail"] or {})
    for key in ("updated_at", "deleted_at"):
        if key in out:
            out[key] = as_utc(out[key])
    out.setdefault("updated_at", utcnow())
    return out


#: The actor of a history event a resource made (``Resource.actor``) or its deletion
#: made: ``resource:<8 hex>`` / ``resource-deleted:<8 hex>``.
_ACTOR = re.compile(r"^resource(?:-deleted)?:([0-9a-f]{8})$")


def name_history(store, user_id: str, events: list) -> list:
    """Fill ``resource`` (the file name) of the HistoryEvents in ``events`` made by one
    of ``user_id``'s resources, deleted ones included, from ``store``'s resource rows
    (one listing, only when some event names a resource). Returns ``events``."""
    prefixes = {m.group(1) for e in events if (m := _ACTOR.match(e.actor or ""))}
    if not prefixes:
        return events
    names: dict[str, str | None] = {}
    for res in store.list_resources(user_id, include_deleted=True, limit=100_000):
        key = res.id[:8]
        if key in prefixes:  # two files with one prefix: name neither
            names[key] = None if key in names else res.filename
    for e in events:
        m = _ACTOR.match(e.actor or "")
        if m and names.get(m.group(1)):
            e.resource = names[m.group(1)]
    return events


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
