"""Resources of the SQLite store: uploaded files' rows (``resources`` table) and the lookup of memories by ``metadata.resource_id``.

Layout (migration ``0005_resources``): ``resources`` with times as integer µs UTC like
every table here and ``detail`` as JSON text; a partial unique index on
``(user_id, sha256) WHERE deleted_at IS NULL`` makes "the same file twice is one
resource" hold even for two processes uploading at once; an expression index on
``memories(user_id, json_extract(metadata, '$.resource_id'))`` serves the per-resource
memory lookups and counts.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from memory.write.provenance import ALSO_FROM, resource_key
from memory.resources.model import (RESOURCE_FIELDS, Resource, resource_values,
                                    update_values)
from memory.store.base import require_text as _text
from memory.store.base import require_user as _user
from memory.store.sqlite import rows
from memory.store.sqlite.connection import Connections
from memory.store.sqlite.memories import live

#: DDL of migration 0005_resources.
RESOURCES_DDL = """
CREATE TABLE IF NOT EXISTS resources (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    filename   TEXT NOT NULL,
    mime       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    status     TEXT NOT NULL,
    error      TEXT,
    detail     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE INDEX IF NOT EXISTS resources_user_created ON resources(user_id, created_at);
CREATE UNIQUE INDEX IF NOT EXISTS resources_user_sha256_live ON resources(user_id, sha256)
    WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS memories_user_resource
    ON memories(user_id, json_extract(metadata, '$.resource_id'))
"""

_COLS = ", ".join(RESOURCE_FIELDS)
_RID = "json_extract(metadata, '$.resource_id')"


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    out = rows.encode({k: v for k, v in values.items() if k != "detail"})
    if "detail" in values:
        out["detail"] = rows.to_json(values["detail"], "detail")
    return out


def _resource(row: tuple) -> Resource:
    data = dict(zip(RESOURCE_FIELDS, row))
    data["detail"] = json.loads(data["detail"] or "{}")
    for key in ("created_at", "updated_at", "deleted_at"):
        data[key] = rows.dt(data[key])
    return Resource.from_row(data)


class Resources(Connections):
    """The resources half of ``SQLiteStore``."""

    def insert_resource(self, resource: Resource) -> Resource:
        """Insert ``resource`` unless its user already has a live one with the same
        sha256 (returned instead). Raises ValueError for an invalid row."""
        _user(resource.user_id)
        values = _encode(resource_values(resource))
        with self._write() as conn:
            found = conn.execute(f"SELECT {_COLS} FROM resources WHERE user_id = ? AND sha256 = ? "
                                 "AND deleted_at IS NULL", (resource.user_id, resource.sha256)).fetchone()
            if found is not None:
                return _resource(found)
            conn.execute(f"INSERT INTO resources({_COLS}) VALUES ({', '.join('?' * len(RESOURCE_FIELDS))})",
                         tuple(values[k] for k in RESOURCE_FIELDS))
        return resource

    def update_resource(self, user_id: str, resource_id: str, **fields: Any) -> bool:
        """Set ``fields`` (status, error, detail, updated_at, deleted_at) of one
        resource of ``user_id``; False if none. ValueError for an unknown field."""
        return self._update_resource(user_id, resource_id, fields, None)

    def claim_resource(self, user_id: str, resource_id: str, seen_updated_at: datetime,
                       **fields: Any) -> bool:
        """``update_resource`` only while ``updated_at`` is still ``seen_updated_at``
        (one UPDATE … WHERE: SQLite serialises writers, so one of two claims wins)."""
        return self._update_resource(user_id, resource_id, fields, seen_updated_at)

    def _update_resource(self, user_id: str, resource_id: str, fields: dict[str, Any],
                         seen_updated_at: datetime | None) -> bool:
        sets = _encode(update_values(fields))
        where, args = "user_id = ? AND id = ?", [_user(user_id), _text(resource_id, "resource id")]
        if seen_updated_at is not None:
            where, args = where + " AND updated_at = ?", args + [rows.ts(seen_updated_at)]
        assignments = ", ".join(f"{k} = ?" for k in sets)
        with self._write() as conn:
            cur = conn.execute(f"UPDATE resources SET {assignments} WHERE {where}",
                               (*sets.values(), *args))
            return cur.rowcount > 0

    def get_resource(self, user_id: str, resource_id: str,
                     include_deleted: bool = False) -> Resource | None:
        """One resource of ``user_id`` (deleted ones only with ``include_deleted``)."""
        gone = "" if include_deleted else " AND deleted_at IS NULL"
        with self._read() as conn:
            row = conn.execute(f"SELECT {_COLS} FROM resources WHERE user_id = ? AND id = ?{gone}",
                               (_user(user_id), _text(resource_id, "resource id"))).fetchone()
        return None if row is None else _resource(row)

    def find_resource(self, user_id: str, sha256: str) -> Resource | None:
        """The live resource of ``user_id`` with content digest ``sha256``, or None."""
        with self._read() as conn:
            row = conn.execute(f"SELECT {_COLS} FROM resources WHERE user_id = ? AND sha256 = ? "
                               "AND deleted_at IS NULL", (_user(user_id), _text(sha256, "sha256"))).fetchone()
        return None if row is None else _resource(row)

    def list_resources(self, user_id: str, *, include_deleted: bool = False,
                       limit: int = 200, offset: int = 0) -> list[Resource]:
        """``user_id``'s resources, newest first."""
        gone = "" if include_deleted else " AND deleted_at IS NULL"
        with self._read() as conn:
            found = conn.execute(f"SELECT {_COLS} FROM resources WHERE user_id = ?{gone} "
                                 "ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
                                 (_user(user_id), int(limit), int(offset))).fetchall()
        return [_resource(r) for r in found]

    def resource_memory_ids(self, user_id: str, resource_id: str) -> list[str]:
        """Ids of ``user_id``'s live memories the resource supports: learned from it
        (``metadata.resource_id``) or also said by it (``metadata.also_from``,
        ``memory.write.provenance``), oldest first."""
        rid = _text(resource_id, "resource id")
        with self._read() as conn:
            found = conn.execute(
                f"SELECT id FROM memories WHERE user_id = ? AND {live()} AND ({_RID} = ? OR "
                f"EXISTS (SELECT 1 FROM json_each(memories.metadata, '$.{ALSO_FROM}') AS j "
                "WHERE j.value = ?)) ORDER BY created_at, rid",
                (_user(user_id), self._now(), rid, resource_key(rid)))
            return [r[0] for r in found]

    def resource_memory_counts(self, user_id: str) -> dict[str, int]:
        """``{resource_id: live memories it supports}`` of ``user_id`` (origin or
        ``also_from``; a memory counts once per resource)."""
        prefix = resource_key("")
        with self._read() as conn:
            found = conn.execute(
                f"SELECT r, COUNT(*) FROM (SELECT rid, {_RID} AS r FROM memories "
                f"WHERE user_id = ? AND {_RID} IS NOT NULL AND {live()} "
                f"UNION SELECT m.rid, substr(j.value, {len(prefix) + 1}) FROM "
                f"(SELECT rid, metadata FROM memories WHERE user_id = ? AND {live()} "
                f"AND json_extract(metadata, '$.{ALSO_FROM}') IS NOT NULL) AS m, "
                f"json_each(m.metadata, '$.{ALSO_FROM}') AS j WHERE j.value LIKE '{prefix}%') "
                "GROUP BY r",
                (_user(user_id), self._now(), user_id, self._now()))
            return {str(r): int(n) for r, n in found}
