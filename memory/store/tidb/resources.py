"""TiDB store, resources: the ``resources`` table (uploaded files), its statements, and the lookup of memories by ``metadata.resource_id``.

One live row per user and content: a stored generated column ``live_sha256`` (the
sha256 while ``deleted_at IS NULL``, else NULL) carries a UNIQUE index with
``user_id`` (TiDB indexes stored generated columns; NULLs never collide), and rows are
written with ``INSERT IGNORE``, so two uploads of one file racing each other leave one
row and both get it back (the winner is read with ``FOR UPDATE``: a plain SELECT reads
the transaction's start snapshot and would miss a row committed after it). Memories are
found by
``JSON_UNQUOTE(JSON_EXTRACT(metadata, '$.resource_id'))`` inside the user's rows.
"""
from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa
from pytidb.datatype import BIGINT, JSON, TEXT, VARCHAR
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateIndex, CreateTable

from memory.write.provenance import ALSO_FROM, resource_key
from memory.resources.model import RESOURCE_FIELDS, Resource, resource_values, update_values
from memory.store.base import require_text as _text
from memory.store.base import require_user as _user
from memory.store.tidb.schema import ID_LEN, USER_LEN, _TABLE_OPTS, UTCDateTime, index_name
from memory.store.tidb.validity_statements import live_conditions
from memory.types import utcnow


def resources_table(prefix: str = "") -> sa.Table:
    """The ``resources`` table (with ``prefix``); independent of the vector dimension."""
    if prefix and not re.fullmatch(r"[A-Za-z0-9_]{1,32}", prefix):
        raise ValueError(f"table prefix must be letters, digits or _, got {prefix!r}")
    p = prefix
    return sa.Table(
        f"{p}resources", sa.MetaData(),
        sa.Column("id", VARCHAR(ID_LEN), primary_key=True),
        sa.Column("user_id", VARCHAR(USER_LEN), nullable=False),
        sa.Column("filename", VARCHAR(255), nullable=False),
        sa.Column("mime", VARCHAR(128), nullable=False),
        sa.Column("size", BIGINT, nullable=False),
        sa.Column("sha256", VARCHAR(64), nullable=False),
        sa.Column("status", VARCHAR(16), nullable=False),
        sa.Column("error", TEXT, nullable=True),
        sa.Column("detail", JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("deleted_at", UTCDateTime, nullable=True),
        sa.Column("live_sha256", VARCHAR(64),
                  sa.Computed("IF(deleted_at IS NULL, sha256, NULL)", persisted=True)),
        sa.Index(index_name(f"ix_{p}resources_user_created"), "user_id", "created_at"),
        sa.Index(index_name(f"ux_{p}resources_user_live_sha256"), "user_id", "live_sha256",
                 unique=True),
        **_TABLE_OPTS)


def resources_ddl(table: sa.Table) -> list[Any]:
    """Idempotent DDL of migration 0002_resources: the table, then its indexes."""
    return [CreateTable(table, if_not_exists=True)] + [
        CreateIndex(ix, if_not_exists=True) for ix in sorted(table.indexes, key=lambda i: i.name or "")]


class ResourceSQL:
    """Statements on ``resources`` (and the memories table, for the resource link).
    Pure: each statement on user data has ``user_id = :user_id`` in its WHERE."""

    def __init__(self, table: sa.Table, memories: sa.Table):
        self.t, self.m = table, memories

    def _cols(self) -> list[Any]:
        return [self.t.c[k] for k in RESOURCE_FIELDS]

    def insert_ignore(self, values: dict[str, Any]) -> Any:
        """``INSERT IGNORE``: a second live row of the same user and sha256 is skipped."""
        return mysql_insert(self.t).values(values).prefix_with("IGNORE")

    def live_by_sha(self, user_id: str, sha256: str, for_update: bool = False) -> Any:
        """The live row of ``user_id`` with ``sha256``; ``for_update`` makes it a locking
        read (``FOR UPDATE``), which in TiDB's pessimistic mode reads the latest
        committed row instead of the transaction's start snapshot."""
        t = self.t.c
        stmt = sa.select(*self._cols()).where(t.user_id == user_id, t.sha256 == sha256,
                                              t.deleted_at.is_(None))
        return stmt.with_for_update() if for_update else stmt

    def get(self, user_id: str, resource_id: str, include_deleted: bool) -> Any:
        """One row of ``user_id`` by id (live only unless ``include_deleted``)."""
        t = self.t.c
        stmt = sa.select(*self._cols()).where(t.user_id == user_id, t.id == resource_id)
        return stmt if include_deleted else stmt.where(t.deleted_at.is_(None))

    def list(self, user_id: str, include_deleted: bool, limit: int, offset: int) -> Any:
        """``user_id``'s rows, newest first."""
        t = self.t.c
        stmt = sa.select(*self._cols()).where(t.user_id == user_id)
        if not include_deleted:
            stmt = stmt.where(t.deleted_at.is_(None))
        return stmt.order_by(t.created_at.desc(), t.id).limit(int(limit)).offset(int(offset))

    def update(self, user_id: str, resource_id: str, values: dict[str, Any],
               seen_updated_at: Any = None) -> Any:
        """``UPDATE resources SET … WHERE user_id = :u AND id = :id`` (``AND updated_at
        = :seen`` for a claim: a compare-and-set, one winner of two)."""
        t = self.t.c
        where = [t.user_id == user_id, t.id == resource_id]
        if seen_updated_at is not None:
            where.append(t.updated_at == seen_updated_at)
        return sa.update(self.t).where(*where).values(values)

    def _rid(self) -> Any:
        return sa.func.json_unquote(sa.func.json_extract(self.m.c.metadata, "$.resource_id"))

    def _live(self, user_id: str, now: Any) -> list[Any]:
        """The user's live memories: current (``status``) and not expired."""
        return [self.m.c.user_id == user_id, *live_conditions(self.m, now)]

    def _also_from(self) -> Any:
        return sa.func.json_extract(self.m.c.metadata, f"$.{ALSO_FROM}")

    def memory_ids(self, user_id: str, resource_id: str, now: Any) -> Any:
        """Ids of the user's live memories the resource supports: learned from it
        (``metadata.resource_id``) or also said by it (``JSON_CONTAINS`` on
        ``metadata.also_from``, ``memory.write.provenance``)."""
        also = sa.func.json_contains(self.m.c.metadata,
                                     sa.func.json_quote(resource_key(resource_id)),
                                     f"$.{ALSO_FROM}")
        return (sa.select(self.m.c.id)
                .where(*self._live(user_id, now), sa.or_(self._rid() == resource_id, also == 1))
                .order_by(self.m.c.created_at, self.m.c.id))

    def also_from(self, user_id: str, now: Any) -> Any:
        """``(also_from JSON)`` of the user's live memories that list further sources
        (counted per resource in Python: TiDB has no ``JSON_TABLE``)."""
        return sa.select(self._also_from()).where(*self._live(user_id, now),
                                                  self._also_from().is_not(None))

    def memory_counts(self, user_id: str, now: Any) -> Any:
        """``(resource_id, count)`` over the user's live memories linked to a resource."""
        rid = self._rid().label("resource_id")
        return (sa.select(rid, sa.func.count()).where(*self._live(user_id, now),
                                                      self._rid().is_not(None))
                .group_by(sa.literal_column("resource_id")))


_PREFIX = resource_key("")


def _resource(row: Any) -> Resource:
    return Resource.from_row(dict(zip(RESOURCE_FIELDS, row)))


class ResourcesMixin:
    """The resource methods of ``TiDBStore`` (each one ``_tx``, joining an open
    ``transaction()``). Needs ``sql``, ``_tx`` and ``table_prefix`` from the store."""

    @property
    def _rsql(self) -> ResourceSQL:
        cached = getattr(self, "_resource_sql", None)
        if cached is None or cached.m is not self.sql.s.memories:
            cached = ResourceSQL(resources_table(self.table_prefix), self.sql.s.memories)
            self._resource_sql = cached
        return cached

    def insert_resource(self, resource: Resource) -> Resource:
        """Insert ``resource`` unless its user has a live one with the same sha256
        (returned instead). ValueError for an invalid row."""
        _user(resource.user_id)
        values, q = resource_values(resource), self._rsql

        def work(c: Connection) -> Resource:
            c.execute(q.insert_ignore(values))
            # The winner of a race may have committed after this transaction began: only
            # a locking read sees it (a snapshot read would find no row: NoResultFound).
            return _resource(c.execute(q.live_by_sha(resource.user_id, resource.sha256,
                                                     for_update=True)).one())

        return self._tx("insert resource", work)

    def update_resource(self, user_id: str, resource_id: str, **fields: Any) -> bool:
        """Set ``fields`` of one resource of ``user_id``; False if none."""
        stmt = self._rsql.update(_user(user_id), _text(resource_id, "resource id"),
                                 update_values(fields))
        return bool(self._tx("update resource", lambda c: c.execute(stmt).rowcount))

    def claim_resource(self, user_id: str, resource_id: str, seen_updated_at: Any,
                       **fields: Any) -> bool:
        """``update_resource`` only while ``updated_at`` is still ``seen_updated_at``
        (one UPDATE … WHERE; TiDB's row lock makes the second claim see the first's
        new ``updated_at`` and match nothing)."""
        stmt = self._rsql.update(_user(user_id), _text(resource_id, "resource id"),
                                 update_values(fields), seen_updated_at=seen_updated_at)
        return bool(self._tx("claim resource", lambda c: c.execute(stmt).rowcount))

    def get_resource(self, user_id: str, resource_id: str,
                     include_deleted: bool = False) -> Resource | None:
        """One resource of ``user_id`` or None."""
        stmt = self._rsql.get(_user(user_id), _text(resource_id, "resource id"), include_deleted)
        row = self._tx("read resource", lambda c: c.execute(stmt).first())
        return None if row is None else _resource(row)

    def find_resource(self, user_id: str, sha256: str) -> Resource | None:
        """The live resource of ``user_id`` with this sha256, or None."""
        stmt = self._rsql.live_by_sha(_user(user_id), _text(sha256, "sha256"))
        row = self._tx("read resource", lambda c: c.execute(stmt).first())
        return None if row is None else _resource(row)

    def list_resources(self, user_id: str, *, include_deleted: bool = False,
                       limit: int = 200, offset: int = 0) -> list[Resource]:
        """``user_id``'s resources, newest first."""
        stmt = self._rsql.list(_user(user_id), include_deleted, limit, offset)
        return self._tx("list resources", lambda c: [_resource(r) for r in c.execute(stmt)])

    def resource_memory_ids(self, user_id: str, resource_id: str) -> list[str]:
        """Ids of ``user_id``'s live memories learned from ``resource_id``."""
        stmt = self._rsql.memory_ids(_user(user_id), _text(resource_id, "resource id"), utcnow())
        return self._tx("read resource memories", lambda c: [r[0] for r in c.execute(stmt)])

    def resource_memory_counts(self, user_id: str) -> dict[str, int]:
        """``{resource_id: live memories}`` of ``user_id``."""
        uid, now = _user(user_id), utcnow()
        q = self._rsql

        def work(c: Connection) -> dict[str, int]:
            counts = {str(r): int(n) for r, n in c.execute(q.memory_counts(uid, now))}
            for (also,) in c.execute(q.also_from(uid, now)):
                keys = json.loads(also) if isinstance(also, (str, bytes)) else also or []
                for rid in {k[len(_PREFIX):] for k in keys
                            if isinstance(k, str) and k.startswith(_PREFIX)}:
                    counts[rid] = counts.get(rid, 0) + 1
            return counts

        return self._tx("count resource memories", work)
