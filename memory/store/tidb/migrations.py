"""TiDB's named, ordered schema migrations and the statements of its ``schema_migrations`` table."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.schema import CreateIndex, CreateTable

from memory.store.migrations import Migration, check
from memory.store.tidb.schema import (ID_LEN, VALIDITY_COLUMNS, TiDBSchema,
                                      conversation_index_name, later_index_names, schema_ddl,
                                      turn_index_name, validity_index_name)

#: Rows per transaction when ``0003_conversations`` fills ``conversation_id``: far below
#: TiDB's default 100 MB transaction size (``txn-total-size-limit``) at ~3 KB per row.
BACKFILL_ROWS = 5000

#: A step: (id, one-line doc, apply(conn, schema)). The schema is bound by
#: ``migrations_for`` because the tables depend on the store's prefix and dimension.
Step = tuple[str, str, Callable[[Any, TiDBSchema], None]]


def _m0001_initial(conn: Any, schema: TiDBSchema) -> None:
    """Create the tables and B-tree indexes (``CREATE … IF NOT EXISTS``). The indexes on
    columns that later migrations add (``schema.later_index_names``) are left to those
    migrations: on a database created before named migrations, whose tables lack those
    columns, ``CREATE INDEX`` would fail here (a new table has them from the start, and
    the later migrations, which always run after this one, create the indexes)."""
    later = later_index_names(schema.prefix)
    for ddl in schema_ddl(schema):
        if not (isinstance(ddl, CreateIndex) and ddl.element.name in later):
            conn.execute(ddl)



def _m0002_resources(conn: Any, schema: TiDBSchema) -> None:
    """Create the resources table and its indexes (IF NOT EXISTS: re-runnable)."""
    from memory.store.tidb.resources import resources_ddl, resources_table

    for ddl in resources_ddl(resources_table(schema.prefix)):
        conn.execute(ddl)

def _m0003_conversations(conn: Any, schema: TiDBSchema) -> None:
    """Add memories.conversation_id and its (user_id, conversation_id, created_at) index,
    then fill it with thread_id for the raw messages of a thread, committing every
    :data:`BACKFILL_ROWS` rows (re-runnable: only rows still without one are filled)."""
    m = schema.memories
    conn.execute(sa.text(f"ALTER TABLE {m.name} ADD COLUMN IF NOT EXISTS conversation_id "
                         f"VARCHAR({ID_LEN}) NULL"))  # name: prefix checked by build_schema
    index = next(ix for ix in m.indexes if ix.name == conversation_index_name(schema.prefix))
    conn.execute(CreateIndex(index, if_not_exists=True))
    fill = (sa.update(m).where(m.c.source == "raw", m.c.thread_id != "",
                               m.c.conversation_id.is_(None))
            .values(conversation_id=m.c.thread_id).with_dialect_options(mysql_limit=BACKFILL_ROWS))
    while conn.execute(fill).rowcount:
        conn.commit()


def validity_ddl(schema: TiDBSchema) -> list[Any]:
    """The DDL of ``0004_validity``, in order: one ``ALTER TABLE … ADD COLUMN IF NOT
    EXISTS`` per column of :data:`memory.store.tidb.schema.VALIDITY_COLUMNS` (one change
    per statement: older TiDB releases refuse or only experimentally allow several
    changes in one ALTER TABLE, and ``IF NOT EXISTS`` skips a column an interrupted run
    already added), then ``CREATE INDEX IF
    NOT EXISTS`` of ``(user_id, status, invalid_at)`` on memories and ``(user_id,
    turn_id)`` on the history. ``status`` is ``NOT NULL DEFAULT 'current'``: TiDB gives
    the existing rows the default, so every memory stored before is current."""
    tables = {"memories": schema.memories, "history": schema.history}
    # table names: the prefix is checked by build_schema (letters, digits, _)
    out: list[Any] = [sa.text(f"ALTER TABLE {tables[key].name} ADD COLUMN IF NOT EXISTS "
                              f"{column} {decl}") for key, column, decl in VALIDITY_COLUMNS]
    wanted = (validity_index_name(schema.prefix), turn_index_name(schema.prefix))
    for table, name in zip((schema.memories, schema.history), wanted):
        index = next(ix for ix in table.indexes if ix.name == name)
        out.append(CreateIndex(index, if_not_exists=True))
    return out


def _m0004_validity(conn: Any, schema: TiDBSchema) -> None:
    """Add the validity columns of memories (status, valid_from, invalid_at,
    superseded_by, invalid_reason), history.turn_id and their two indexes
    (:func:`validity_ddl`; every statement re-runnable)."""
    for ddl in validity_ddl(schema):
        conn.execute(ddl)


#: Every migration, in order. Add a step with the next number; never edit or renumber
#: an applied one. DDL in TiDB commits statement by statement, so a step must be
#: idempotent (``IF NOT EXISTS`` / ``IF EXISTS``): a crash between its DDL and the
#: ``schema_migrations`` record is then repaired by running it again.
STEPS: list[Step] = [
    ("0001_initial",
     "tables and B-tree indexes of the first release (CREATE ... IF NOT EXISTS, so a "
     "database created before named migrations is adopted unchanged)",
     _m0001_initial),
    ("0002_resources",
     "resources table (uploaded files; one live row per user and sha256 through a stored "
     "generated column with a unique index)",
     _m0002_resources),
    ("0003_conversations",
     "memories.conversation_id (a raw message's thread, or the Memory.add call that stored "
     "it), filled from thread_id for the raw messages of a thread, and its index",
     _m0003_conversations),
    ("0004_validity",
     "memories.status (current, superseded, ended, forgotten; existing memories are "
     "current), valid_from, invalid_at, superseded_by, invalid_reason; "
     "memory_history.turn_id; indexes (user_id, status, invalid_at) and (user_id, turn_id)",
     _m0004_validity),
]


def migrations_for(schema: TiDBSchema | None) -> list[Migration]:
    """The ``Migration`` list of a store with ``schema`` (checked for order). With
    ``schema=None`` the list is for reading ids and docs only (``migrate --status``
    before ``open``); applying one then raises ValueError."""
    def bind(fn: Callable[[Any, TiDBSchema], None]) -> Callable[[Any], None]:
        def apply(conn: Any) -> None:
            if schema is None:
                raise ValueError("open() the store before applying migrations")
            fn(conn, schema)
        return apply

    return list(check([Migration(mid, doc, bind(fn)) for mid, doc, fn in STEPS]))


def create_migrations_table(table: sa.Table) -> Any:
    """``CREATE TABLE IF NOT EXISTS schema_migrations (id VARCHAR(64) PRIMARY KEY,
    applied_at DATETIME(6) NOT NULL)``."""
    return CreateTable(table, if_not_exists=True)


def applied_migrations(table: sa.Table) -> Any:
    """``SELECT id, applied_at FROM schema_migrations ORDER BY id``."""
    return sa.select(table.c.id, table.c.applied_at).order_by(table.c.id)


def record_migration(table: sa.Table, migration_id: str, at: datetime) -> Any:
    """``INSERT INTO schema_migrations (id, applied_at) VALUES (..) ON DUPLICATE KEY
    UPDATE id = id``: records ``migration_id`` as applied at ``at`` (a second record of
    the same id keeps the first time)."""
    stmt = mysql_insert(table).values(id=migration_id, applied_at=at)
    return stmt.on_duplicate_key_update(id=table.c.id)
