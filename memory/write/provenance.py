"""Provenance: which sources support a memory, so that deleting one source removes a memory only when nothing else says it.

A memory has an *origin* and may have more *supporting sources*:

- its origin is the file it was learned from (``metadata.resource_id`` → the key
  ``resource:<id>``) or else where it was said (the record's ``source``: ``chat``,
  ``api``, ``import`` …);
- ``metadata.also_from`` lists the keys of every other source that later said the same
  thing (a second CV restating it, a chat message repeating a CV line: a NONE of
  reconciliation) or changed it (an UPDATE by a file or a chat turn).

Deleting a file (``memory.resources.ingest.delete_resource``) drops its key: a memory
with another source left stays (its origin moves to the next file, or to the chat),
one without is deleted. Keys are plain strings so both stores can find a file's
memories inside the JSON column (SQLite ``json_each``, TiDB ``JSON_CONTAINS``).
"""
from __future__ import annotations

from typing import Any

#: the metadata key listing the further sources of a memory
ALSO_FROM = "also_from"
#: metadata keys that describe the origin file (dropped when that file is deleted)
_ORIGIN_KEYS = ("resource_id", "resource", "chunk", "page")
_RESOURCE = "resource:"


def resource_key(resource_id: str) -> str:
    """The source key of the resource (uploaded file) ``resource_id``: ``resource:<id>``."""
    return f"{_RESOURCE}{resource_id}"


def source_key(source: str, metadata: dict | None) -> str:
    """The key of the source a write comes from: ``resource:<id>`` when ``metadata``
    names a resource, else ``source`` (``chat``, ``api`` …)."""
    rid = (metadata or {}).get("resource_id")
    return resource_key(str(rid)) if rid else str(source or "chat")


def sources(rec: Any) -> list[str]:
    """Every source key supporting memory ``rec`` (a ``MemoryRecord``), origin first,
    each once: ``["resource:ab…", "chat"]``. A record whose origin file was deleted
    and that has no ``resource_id`` any more starts with its further sources."""
    meta = rec.metadata or {}
    rid = meta.get("resource_id")
    if rid:
        out = [resource_key(str(rid))]
    else:
        out = [] if rec.source == "resource" else [str(rec.source or "chat")]
    for key in meta.get(ALSO_FROM) or []:
        if isinstance(key, str) and key and key not in out:
            out.append(key)
    return out


def with_source(rec: Any, key: str) -> dict | None:
    """The metadata of ``rec`` with source ``key`` added to ``also_from``, or None when
    ``key`` already supports it (nothing to write)."""
    if key in sources(rec):
        return None
    meta = dict(rec.metadata or {})
    meta[ALSO_FROM] = [k for k in meta.get(ALSO_FROM) or [] if isinstance(k, str)] + [key]
    return meta


def without_resource(rec: Any, resource_id: str) -> dict | None:
    """The metadata of ``rec`` once the file ``resource_id`` no longer supports it, or
    None when no other source is left (the memory goes with the file).

    When the file was the origin, the next file of ``also_from`` becomes the origin
    (its chunk and page are not known, so they are dropped); when only a chat or API
    source is left, the memory keeps no ``resource_id``."""
    key = resource_key(resource_id)
    rest = [k for k in sources(rec) if k != key]
    if not rest:
        return None
    meta = dict(rec.metadata or {})
    if str(meta.get("resource_id") or "") == str(resource_id):
        for k in _ORIGIN_KEYS:
            meta.pop(k, None)
        files = [k for k in rest if k.startswith(_RESOURCE)]
        if files:
            meta["resource_id"] = files[0][len(_RESOURCE):]
    rid = meta.get("resource_id")
    origin = resource_key(str(rid)) if rid else rec.source if rec.source != "resource" else None
    also = [k for k in rest if k != origin]
    if also:
        meta[ALSO_FROM] = also
    else:
        meta.pop(ALSO_FROM, None)
    return meta
