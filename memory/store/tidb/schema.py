"""TiDB schema: the tables (pytidb ``TableModel``), their idempotent DDL, index names within TiDB's 64 characters, and test-teardown DDL."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from pytidb.datatype import INTEGER, JSON, MEDIUMTEXT, TEXT, VARCHAR
import pytidb.orm.sql.ddl  # noqa: F401 - registers pytidb's CREATE INDEX compiler
from pytidb.orm.indexes import FullTextIndex, VectorIndex
from pytidb.orm.vector import MAX_DIM
from pytidb.schema import Field, FullTextField, TableModel, VectorField
from sqlalchemy.dialects.mysql import DATETIME
from sqlalchemy.orm import registry as sa_registry
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel.main import Undefined

from memory.types import as_utc

ID_LEN = 64
USER_LEN = 255
#: TiDB (like MySQL) refuses identifiers longer than 64 characters (error 1059)
MAX_NAME_LEN = 64
#: binary collation: user ids and ids compare byte for byte ('Alice' is not 'alice');
#: a case-insensitive default collation would let one user's filter match another's rows
_TABLE_OPTS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def index_name(name: str) -> str:
    """``name`` if it fits TiDB's 64-character identifier limit, else its first 55
    characters, ``_`` and 8 hex digits of its SHA-1 (stable across runs, distinct for
    distinct long names)."""
    if len(name) <= MAX_NAME_LEN:
        return name
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return f"{name[:MAX_NAME_LEN - 9]}_{digest}"


def conversation_index_name(prefix: str = "") -> str:
    """Name of the ``(user_id, conversation_id, created_at)`` index of ``memories``, by
    which a chat message's neighbours in its conversation are found."""
    return index_name(f"ix_{prefix}memories_user_conversation")


def validity_index_name(prefix: str = "") -> str:
    """Name of the ``(user_id, status, invalid_at)`` index of ``memories`` (migration
    ``0004_validity``), by which a user's past and forgotten memories are found."""
    return index_name(f"ix_{prefix}memories_user_status")


def turn_index_name(prefix: str = "") -> str:
    """Name of the ``(user_id, turn_id)`` index of the history table (migration
    ``0004_validity``), by which one turn's events are found."""
    return index_name(f"ix_{prefix}history_user_turn")


def later_index_names(prefix: str = "") -> set[str]:
    """The B-tree indexes on columns added by a migration after ``0001_initial``
    (``0003_conversations``, ``0004_validity``): that migration creates them, after its
    columns, so ``0001_initial`` leaves them out (on a database that predates named
    migrations the columns do not exist yet when 0001 runs)."""
    return {conversation_index_name(prefix), validity_index_name(prefix),
            turn_index_name(prefix)}


#: Migration ``0004_validity``: (table key, column, declaration) of the columns it adds,
#: as ``ALTER TABLE … ADD COLUMN IF NOT EXISTS <column> <declaration>``. The same
#: columns as the table models below (``tests/test_tidb_validity_sql.py`` checks
#: they agree); ``status`` NOT NULL DEFAULT 'current', so every existing memory
#: becomes current.
VALIDITY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("memories", "status", "VARCHAR(16) NOT NULL DEFAULT 'current'"),
    ("memories", "valid_from", "DATETIME(6) NULL"),
    ("memories", "invalid_at", "DATETIME(6) NULL"),
    ("memories", "superseded_by", f"VARCHAR({ID_LEN}) NULL"),
    ("memories", "invalid_reason", "TEXT NULL"),
    ("history", "turn_id", f"VARCHAR({ID_LEN}) NULL"),
)


class UTCDateTime(sa.types.TypeDecorator):
    """``DATETIME(6)`` holding UTC: aware datetimes are stored as naive UTC and read back
    as aware UTC (TiDB's DATETIME has no zone)."""

    impl = DATETIME(fsp=6)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return as_utc(value).replace(tzinfo=None)  # type: ignore[union-attr]

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class TiDBSchema:
    """The tables of one store for vectors of ``dim`` dimensions.

    ``models`` are the pytidb ``TableModel`` classes by short name; the SQLAlchemy tables
    are exposed as attributes. ``vector_index`` (HNSW on ``VEC_COSINE_DISTANCE``) and
    ``fulltext_index`` (``WITH PARSER MULTILINGUAL``) are declared but created only where
    the cluster supports them (see ``TiDBStore.open``).
    """

    dim: int
    prefix: str
    models: dict[str, type]
    memories: sa.Table
    history: sa.Table
    profiles: sa.Table
    threads: sa.Table
    messages: sa.Table
    meta: sa.Table
    vector_index: VectorIndex
    fulltext_index: FullTextIndex

    @property
    def tables(self) -> list[sa.Table]:
        """Every table, meta first."""
        return [self.meta, self.memories, self.history, self.profiles, self.threads,
                self.messages]


def _col(type_: Any, *args: Any, **kw: Any) -> Any:
    """A pytidb/SQLModel ``Field`` backed by an explicit SQLAlchemy column."""
    name = kw.pop("name", None)
    column = sa.Column(name, type_, *args, **kw) if name else sa.Column(type_, *args, **kw)
    return Field(sa_column=column)


def build_schema(dim: int, prefix: str = "") -> TiDBSchema:
    """Declare the store's tables for ``dim``-dimensional vectors with pytidb's
    ``TableModel`` (table names get ``prefix``). Pure: no database is touched.

    Raises ValueError if ``dim`` is outside TiDB's VECTOR limits (1..16000).
    """
    if not isinstance(dim, int) or not 1 <= dim <= MAX_DIM:
        raise ValueError(f"vector dimension must be an integer in 1..{MAX_DIM}, got {dim!r}")
    if prefix and not re.fullmatch(r"[A-Za-z0-9_]{1,32}", prefix):
        raise ValueError(f"table prefix must be letters, digits or _, got {prefix!r}")

    # One private registry per schema: the default SQLModel registry would refuse a
    # second "memories" table (another store / another dimension in the same process).
    # sqlmodel 0.0.x records ``registry`` in model_config as a bool (a bug that breaks
    # subclassing), so reset it: subclasses then inherit _sa_registry/metadata.
    reg = sa_registry()

    class _Base(TableModel, registry=reg, table=False):
        pass

    _Base.model_config["registry"] = Undefined
    p = prefix

    class MemoryRow(_Base):
        __tablename__ = f"{p}memories"
        __table_args__ = (sa.Index(index_name(f"ix_{p}memories_user_created"), "user_id", "created_at"),
                          sa.Index(conversation_index_name(p), "user_id", "conversation_id",
                                   "created_at"),
                          sa.Index(validity_index_name(p), "user_id", "status", "invalid_at"),
                          _TABLE_OPTS)
        id: str = _col(VARCHAR(ID_LEN), primary_key=True)
        user_id: str = _col(VARCHAR(USER_LEN), nullable=False)
        text: str = FullTextField(index=False, sa_column=sa.Column(MEDIUMTEXT, nullable=False))
        type: str = _col(VARCHAR(32), nullable=False)
        thread_id: str | None = _col(VARCHAR(ID_LEN), nullable=True)
        importance: int = _col(INTEGER, nullable=False)
        tags: list = _col(JSON, nullable=False)
        source: str = _col(VARCHAR(64), nullable=False)
        metadata_: dict = _col(JSON, nullable=False, name="metadata")
        created_at: datetime = _col(UTCDateTime, nullable=False)
        updated_at: datetime = _col(UTCDateTime, nullable=False)
        last_accessed_at: datetime | None = _col(UTCDateTime, nullable=True)
        expires_at: datetime | None = _col(UTCDateTime, nullable=True)
        access_count: int = _col(INTEGER, nullable=False, server_default="0")
        # index=False: the HNSW index is created separately, only where TiFlash exists.
        embedding: list[float] | None = VectorField(dimensions=dim, index=False)
        # a raw message's thread or Memory.add call (migration 0003_conversations)
        conversation_id: str | None = _col(VARCHAR(ID_LEN), nullable=True)
        # validity (migration 0004_validity): only 'current' rows are live; the others
        # (superseded, ended, forgotten) keep their row and vector as the user's past
        status: str = _col(VARCHAR(16), nullable=False, server_default="current")
        valid_from: datetime | None = _col(UTCDateTime, nullable=True)
        invalid_at: datetime | None = _col(UTCDateTime, nullable=True)
        superseded_by: str | None = _col(VARCHAR(ID_LEN), nullable=True)
        invalid_reason: str | None = _col(TEXT, nullable=True)

    class HistoryRow(_Base):
        __tablename__ = f"{p}memory_history"
        __table_args__ = (sa.Index(index_name(f"ix_{p}history_user_memory"), "user_id", "memory_id"),
                          sa.Index(turn_index_name(p), "user_id", "turn_id"),
                          _TABLE_OPTS)
        id: str = _col(VARCHAR(ID_LEN), primary_key=True)
        memory_id: str = _col(VARCHAR(ID_LEN), nullable=False)
        user_id: str = _col(VARCHAR(USER_LEN), nullable=False)
        event: str = _col(VARCHAR(16), nullable=False)
        old_text: str | None = _col(MEDIUMTEXT, nullable=True)
        new_text: str | None = _col(MEDIUMTEXT, nullable=True)
        actor: str = _col(VARCHAR(32), nullable=False)
        at: datetime = _col(UTCDateTime, nullable=False)
        # the turn whose changes undo takes back together (migration 0004_validity)
        turn_id: str | None = _col(VARCHAR(ID_LEN), nullable=True)

    class ProfileRow(_Base):
        __tablename__ = f"{p}profiles"
        __table_args__ = _TABLE_OPTS
        user_id: str = _col(VARCHAR(USER_LEN), primary_key=True)
        text: str = _col(MEDIUMTEXT, nullable=False)
        updated_at: datetime = _col(UTCDateTime, nullable=False)

    class ThreadRow(_Base):
        __tablename__ = f"{p}threads"
        __table_args__ = (sa.Index(index_name(f"ix_{p}threads_user_updated"), "user_id", "updated_at"),
                          _TABLE_OPTS)
        id: str = _col(VARCHAR(ID_LEN), primary_key=True)
        user_id: str = _col(VARCHAR(USER_LEN), nullable=False)
        title: str = _col(TEXT, nullable=False)
        created_at: datetime = _col(UTCDateTime, nullable=False)
        updated_at: datetime = _col(UTCDateTime, nullable=False)
        summary: str = _col(MEDIUMTEXT, nullable=False)
        summarized_upto: int = _col(INTEGER, nullable=False, server_default="0")

    class MessageRow(_Base):
        __tablename__ = f"{p}messages"
        __table_args__ = (sa.Index(index_name(f"ux_{p}messages_user_thread_seq"), "user_id", "thread_id",
                                   "seq", unique=True), _TABLE_OPTS)
        id: str = _col(VARCHAR(ID_LEN), primary_key=True)
        thread_id: str = _col(VARCHAR(ID_LEN), nullable=False)
        user_id: str = _col(VARCHAR(USER_LEN), nullable=False)
        role: str = _col(VARCHAR(32), nullable=False)
        content: str = _col(MEDIUMTEXT, nullable=False)
        seq: int = _col(INTEGER, nullable=False)
        created_at: datetime = _col(UTCDateTime, nullable=False)
        metadata_: dict = _col(JSON, nullable=False, name="metadata")

    class MetaRow(_Base):
        __tablename__ = f"{p}store_meta"
        __table_args__ = _TABLE_OPTS
        name: str = _col(VARCHAR(255), primary_key=True)
        value: str = _col(MEDIUMTEXT, nullable=False)

    memories = MemoryRow.__table__  # type: ignore[attr-defined]
    vector_index = VectorIndex(index_name(f"vec_idx_{p}memories_embedding_cosine"), memories.c.embedding,
                               distance_metric="COSINE", algorithm="HNSW")
    fulltext_index = FullTextIndex(index_name(f"fts_idx_{p}memories_text"), memories.c.text,
                                   fts_parser="MULTILINGUAL")
    # Read by pytidb's CREATE INDEX compiler: append ADD_COLUMNAR_REPLICA_ON_DEMAND. The
    # index is created only on TiDB Cloud Starter/Essential, through fulltext_index_ddl,
    # never through FullTextIndex.create (which adds a TiFlash replica elsewhere).
    fulltext_index.is_tidb_serverless = True
    return TiDBSchema(
        dim=dim, prefix=p,
        models={"memories": MemoryRow, "history": HistoryRow, "profiles": ProfileRow,
                "threads": ThreadRow, "messages": MessageRow, "meta": MetaRow},
        memories=memories, history=HistoryRow.__table__,  # type: ignore[attr-defined]
        profiles=ProfileRow.__table__, threads=ThreadRow.__table__,  # type: ignore[attr-defined]
        messages=MessageRow.__table__, meta=MetaRow.__table__,  # type: ignore[attr-defined]
        vector_index=vector_index, fulltext_index=fulltext_index,
    )


def schema_ddl(schema: TiDBSchema) -> list[sa.schema.ExecutableDDLElement]:
    """Return the idempotent DDL of the base schema, in order: ``CREATE TABLE IF NOT
    EXISTS`` for every table, then ``CREATE [UNIQUE] INDEX IF NOT EXISTS`` for its B-tree
    indexes. The HNSW vector index and the FULLTEXT index are not included (they depend on
    cluster features and are created by ``TiDBStore.open``)."""
    out: list[sa.schema.ExecutableDDLElement] = []
    special = (VectorIndex, FullTextIndex)
    for table in schema.tables:
        out.append(CreateTable(table, if_not_exists=True))
        for index in sorted(table.indexes, key=lambda ix: ix.name or ""):
            if not isinstance(index, special):
                out.append(CreateIndex(index, if_not_exists=True))
    return out


def build_migrations_table(prefix: str = "") -> sa.Table:
    """The ``schema_migrations(id PRIMARY KEY, applied_at)`` table (with ``prefix``) that
    records applied named migrations. Independent of the vector dimension, so
    ``migration_status()`` can read it before the store knows its embedder."""
    if prefix and not re.fullmatch(r"[A-Za-z0-9_]{1,32}", prefix):
        raise ValueError(f"table prefix must be letters, digits or _, got {prefix!r}")
    return sa.Table(f"{prefix}schema_migrations", sa.MetaData(),
                    sa.Column("id", VARCHAR(64), primary_key=True),
                    sa.Column("applied_at", UTCDateTime, nullable=False),
                    **_TABLE_OPTS)


def fulltext_index_ddl(schema: TiDBSchema) -> CreateIndex:
    """``CREATE FULLTEXT INDEX fts_idx_memories_text ON memories (text) WITH PARSER
    MULTILINGUAL ADD_COLUMNAR_REPLICA_ON_DEMAND``, compiled by pytidb's CREATE INDEX
    compiler (``pytidb.orm.sql.ddl``), for TiDB Cloud Starter/Essential, the only
    deployments that serve full-text search (TiDB docs: Full-Text Search, Prerequisites).
    The store runs this statement itself rather than pytidb's ``FullTextIndex.create``:
    that method first runs ``ALTER TABLE … SET TIFLASH REPLICA 1`` on every host that does
    not match pytidb's Starter host pattern (pytidb 0.0.14, ``orm/indexes.py``), a
    columnar replica the store never asked for."""
    return CreateIndex(schema.fulltext_index)


def teardown_ddl(schema: TiDBSchema, tables: list[str], quote: Any) -> list[str]:
    """DDL that removes ``tables`` (names of this schema's tables present in the
    database), for test teardown only: ``ALTER TABLE memories DROP INDEX IF EXISTS
    fts_idx_memories_text`` first, by the index's known name (``information_schema.
    statistics`` may report a FULLTEXT index with ``INDEX_TYPE`` BTREE, so asking it for
    FULLTEXT indexes can miss it), then ``drop_table_ddl`` for each table. ``quote`` is
    the dialect's ``identifier_preparer.quote``."""
    out: list[str] = []
    for table in tables:
        if table == schema.memories.name:
            out.append(f"ALTER TABLE {quote(table)} DROP INDEX IF EXISTS "
                       f"{quote(schema.fulltext_index.name)}")
        out += drop_table_ddl(table, [], quote)
    return out


def drop_table_ddl(table: str, fulltext_indexes: list[str], quote: Any) -> list[str]:
    """DDL that removes ``table`` on TiDB, for test teardown only (the store itself never
    drops a table): ``ALTER TABLE t DROP INDEX i`` for each FULLTEXT index first, because
    TiDB refuses ``DROP TABLE`` on a table with a full-text index ("Drop the full-text
    index first", TiDB docs: Full-Text Search Index, DDL restrictions), then ``DROP
    TABLE IF EXISTS t``. ``quote`` quotes an identifier (the dialect's
    ``identifier_preparer.quote``)."""
    out = [f"ALTER TABLE {quote(table)} DROP INDEX {quote(name)}" for name in fulltext_indexes]
    return out + [f"DROP TABLE IF EXISTS {quote(table)}"]
