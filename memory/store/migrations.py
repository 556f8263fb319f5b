"""Named, ordered schema migrations: the record type and the runner rules both stores share.

Each store keeps a list of ``Migration`` objects (id like ``"0001_initial"``, a one-line
docstring-like ``doc``, and ``apply(conn)``) and a table of applied ids
(``schema_migrations(id, applied_at)``). The store reads the applied ids, asks
``pending()`` what is left, applies each in order inside its own transaction and records
it; ``status()`` is what ``python main.py migrate --status`` prints.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

_ID = re.compile(r"^\d{4}_[a-z0-9_]+$")


@dataclass(frozen=True)
class Migration:
    """One schema step. ``id`` is ``NNNN_snake_name`` (ordered by its number), ``doc``
    says in one line what it changes, ``apply`` takes the store's open connection (or
    SQLAlchemy connection) and performs the change; the caller wraps it in a transaction
    and records the id."""

    id: str
    doc: str
    apply: Callable[[Any], None]


@dataclass(frozen=True)
class MigrationStatus:
    """One row of ``migrate --status``: the migration's id and doc, and ``applied_at``
    (ISO-8601 UTC text from the store) or ``None`` when still pending."""

    id: str
    doc: str
    applied_at: str | None


def check(migrations: Sequence[Migration]) -> Sequence[Migration]:
    """Return ``migrations`` unchanged after checking the ids are well-formed, unique
    and strictly increasing. Raises ``ValueError`` naming the first bad id."""
    last = ""
    for m in migrations:
        if not _ID.match(m.id):
            raise ValueError(f"migration id {m.id!r} is not NNNN_snake_name")
        if m.id <= last:
            raise ValueError(f"migration {m.id!r} is out of order or repeated (after {last!r})")
        last = m.id
    return migrations


def pending(migrations: Sequence[Migration], applied: Iterable[str]) -> list[Migration]:
    """The migrations not yet in ``applied`` (ids), in order. Raises ``ValueError`` when
    the store has an applied id this code does not know (a database written by newer
    code), because running older code on it could lose data."""
    done = set(applied)
    known = {m.id for m in check(migrations)}
    unknown = sorted(done - known)
    if unknown:
        raise ValueError(f"the database has migrations this version does not know "
                         f"({', '.join(unknown)}); upgrade Memory Chat")
    return [m for m in migrations if m.id not in done]


def status(migrations: Sequence[Migration], applied: Mapping[str, str]) -> list[MigrationStatus]:
    """``migrate --status`` rows: every known migration with its ``applied_at`` from
    ``applied`` (id → time text) or ``None``."""
    return [MigrationStatus(m.id, m.doc, applied.get(m.id)) for m in check(migrations)]
