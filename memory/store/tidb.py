"""TiDB store: the ``Store`` interface on TiDB (TiDB Cloud Starter or self-managed) via
pytidb, SQLAlchemy and PyMySQL.

Layout of this module, so that everything except the network round trip can be checked
offline (``tests/test_tidb_sql.py`` compiles it against SQLAlchemy's MySQL dialect):

* ``connection_settings(config)`` turns ``TIDB_*`` / ``DATABASE_URL`` into a SQLAlchemy
  URL plus PyMySQL ``connect_args`` (TLS on for ``*.tidbcloud.com``).
* ``build_schema(dim)`` declares the tables with pytidb's ``TableModel`` (one private
  SQLAlchemy registry per schema, so stores of different dimensions can coexist in one
  process). ``schema_ddl(schema)`` lists the ``CREATE TABLE/INDEX IF NOT EXISTS``
  statements; the HNSW vector index and the FULLTEXT index are separate objects created
  only when the cluster supports them.
* ``TiDBSQL`` builds every query and write statement (pure: no connection needed). Every
  statement touching user data carries ``user_id = :u`` in its WHERE clause; vector
  search filters by user *before* ``ORDER BY VEC_COSINE_DISTANCE(...) LIMIT k``.
* ``TiDBStore`` executes them, one transaction per store call, retried (tenacity) on
  TiDB write conflicts (errors 9007, 8005, 8002, 8022, 1213).

Embeddings are computed on the client by the product's own embedder; the store receives
finished vectors and never relies on TiDB Cloud's server-side ``EMBED_TEXT``.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.mysql import DATETIME, insert as mysql_insert
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import registry as sa_registry
from sqlalchemy.schema import CreateIndex, CreateTable
from tenacity import (Retrying, retry_if_exception, stop_after_attempt,
                      wait_random_exponential)

from pytidb import TiDBClient
from pytidb.databases import create_database
from pytidb.datatype import INTEGER, JSON, MEDIUMTEXT, TEXT, VARCHAR
from pytidb.orm.functions import fts_match_word, vec_cosine_distance
from pytidb.orm.indexes import FullTextIndex, VectorIndex
from pytidb.orm.vector import MAX_DIM, VECTOR
from pytidb.schema import Field, FullTextField, TableModel, VectorField
from pytidb.utils import create_engine_without_db
from sqlmodel.main import Undefined

from memory.config import Config, ConfigError
from memory.store.base import EmbedderMismatchError, Store, StoreError
from memory.store.base import require_text as _text
from memory.store.base import require_user as _user
from memory.textsearch import query_terms
from memory.types import HistoryEvent, MemoryRecord, Message, Thread, as_utc, new_id, utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")

#: TiDB error codes worth retrying the whole transaction for: 9007 write conflict in
#: TiKV and 8005 "Write Conflict, txnStartTS is stale" (optimistic commit), 8002 a
#: transaction with SELECT ... FOR UPDATE hit a commit conflict ("the application can
#: safely retry the whole transaction"), 1213 deadlock (pessimistic mode, MySQL's
#: code). Source: TiDB "Error Codes and Troubleshooting" and "Troubleshoot Write
#: Conflicts in Optimistic Transactions". 8022 (a failed transaction commit) is retried
#: too, from memory of TiDB's error list, not verified against its documentation.
RETRYABLE_ERROR_CODES = frozenset({9007, 8005, 8002, 8022, 1213})
#: attempts per store call (first try included) before giving up with StoreError
RETRY_ATTEMPTS = 5

#: Shown by ``health()`` when the cluster cannot build a FULLTEXT index.
NO_FULLTEXT_NOTE = "full-text search not supported by this cluster: vector search only"

TIDB_CLOUD_SUFFIX = ".tidbcloud.com"
DEFAULT_DATABASE = "memory_chat"

ID_LEN = 64
USER_LEN = 255

#: fields ``update_memory(fields=...)`` may change (same list as the SQLite store)
_UPDATABLE_FIELDS = frozenset({"type", "importance", "tags", "metadata", "expires_at",
                               "updated_at", "created_at", "last_accessed_at",
                               "access_count", "thread_id", "source"})
#: binary collation: user ids and ids compare byte for byte ('Alice' is not 'alice');
#: a case-insensitive default collation would let one user's filter match another's rows
_TABLE_OPTS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
_ORDERS = ("created_desc", "created_asc", "accessed_desc")


# =====================================================================================
# connection settings
# =====================================================================================
@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to connect: ``url`` (SQLAlchemy URL, driver ``mysql+pymysql``),
    ``connect_args`` for PyMySQL (TLS options), ``tls`` (bool) and ``masked`` (the URL
    with the password replaced by ``***``, safe to print)."""

    url: URL
    connect_args: dict[str, Any]
    tls: bool

    @property
    def masked(self) -> str:
        """The URL as a string with the password hidden (``***``)."""
        return mask_url(self.url)

    @property
    def database(self) -> str:
        """Database (schema) name the store uses."""
        return self.url.database or DEFAULT_DATABASE


def mask_url(url: URL | str) -> str:
    """Return ``url`` rendered with its password replaced by ``***``.

    Takes a SQLAlchemy URL or a string; a string that is not a URL is returned unchanged.
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except sa.exc.ArgumentError:
        return str(url)
    return parsed.render_as_string(hide_password=True)


def is_tidb_cloud_host(host: str | None) -> bool:
    """True for TiDB Cloud endpoints (``*.tidbcloud.com``), which require TLS."""
    return bool(host) and host.lower().rstrip(".").endswith(TIDB_CLOUD_SUFFIX)


def default_ca_bundle() -> str:
    """Path of the CA bundle to verify TiDB Cloud's certificate: the system bundle
    (OpenSSL's default ``cafile``) when it exists, else certifi's bundle."""
    cafile = ssl.get_default_verify_paths().cafile
    if cafile and os.path.exists(cafile):
        return cafile
    import certifi

    return certifi.where()


_TRUE = {"1", "true", "yes", "on", "required", "verify_identity"}


def connection_settings(config: Config) -> ConnectionSettings:
    """Build the connection settings from ``config``.

    ``DATABASE_URL`` (``mysql://``, ``mysql+pymysql://`` or ``tidb://``) wins over the
    ``TIDB_HOST/PORT/USERNAME/PASSWORD/DATABASE`` fields; a URL without a database gets
    ``TIDB_DATABASE``. TLS with certificate and host-name verification is switched on for
    ``*.tidbcloud.com`` hosts, when ``TIDB_SSL_CA`` is set, or when the URL asks for it
    (``ssl_ca``/``ssl_verify_cert``/``ssl_verify_identity`` query parameters). The CA is
    ``TIDB_SSL_CA`` if set, else the URL's ``ssl_ca`` if that file exists, else the
    system bundle (certifi as fallback).

    Raises ConfigError (naming the variable) when neither a host nor a URL is configured,
    or the URL is malformed or of another database.
    """
    if config.database_url:
        try:
            url = make_url(config.database_url.strip())
        except sa.exc.ArgumentError:
            raise ConfigError("DATABASE_URL: not a valid URL "
                              "(expected mysql://user:password@host:4000/database)") from None
        backend = url.drivername.split("+", 1)[0].lower()
        if backend not in ("mysql", "tidb"):
            raise ConfigError(f"DATABASE_URL: unsupported scheme {url.drivername!r}; "
                              "use mysql://user:password@host:4000/database")
        if not url.host:
            raise ConfigError("DATABASE_URL: the URL has no host")
        url = url.set(drivername="mysql+pymysql")
        if not url.database:
            url = url.set(database=config.tidb_database or DEFAULT_DATABASE)
    elif config.tidb_host:
        url = URL.create("mysql+pymysql", username=config.tidb_username or "root",
                         password=config.tidb_password or None, host=config.tidb_host,
                         port=config.tidb_port,
                         database=config.tidb_database or DEFAULT_DATABASE)
    else:
        raise ConfigError("TIDB_HOST: not set (set TIDB_HOST/TIDB_USERNAME/TIDB_PASSWORD "
                          "or DATABASE_URL to use TiDB)")

    # TLS options from the URL's query string become explicit connect_args (PyMySQL's own
    # keyword names), so booleans are real booleans and the CA path can be checked.
    query = dict(url.query)
    url_ca = query.pop("ssl_ca", None)
    url_verify = {k: query.pop(k) for k in ("ssl_verify_cert", "ssl_verify_identity",
                                             "ssl_check_hostname", "ssl_mode")
                  if k in query}
    url = url.set(query=query)
    if isinstance(url_ca, tuple):
        url_ca = url_ca[-1]
    wants_tls = (is_tidb_cloud_host(url.host) or bool(config.tidb_ssl_ca) or bool(url_ca)
                 or any(str(v).lower() in _TRUE for v in url_verify.values()))
    connect_args: dict[str, Any] = {}
    if wants_tls:
        if config.tidb_ssl_ca:
            if not os.path.exists(config.tidb_ssl_ca):
                raise ConfigError(f"TIDB_SSL_CA: file not found: {config.tidb_ssl_ca}")
            ca = config.tidb_ssl_ca
        elif url_ca and os.path.exists(str(url_ca)):
            ca = str(url_ca)
        else:
            ca = default_ca_bundle()
        connect_args = {"ssl_ca": ca, "ssl_verify_cert": True, "ssl_verify_identity": True}
    return ConnectionSettings(url=url, connect_args=connect_args, tls=wants_tls)


# =====================================================================================
# schema (pytidb TableModel)
# =====================================================================================
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
        __table_args__ = (sa.Index(f"ix_{p}memories_user_created", "user_id", "created_at"),
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

    class HistoryRow(_Base):
        __tablename__ = f"{p}memory_history"
        __table_args__ = (sa.Index(f"ix_{p}history_user_memory", "user_id", "memory_id"),
                          _TABLE_OPTS)
        id: str = _col(VARCHAR(ID_LEN), primary_key=True)
        memory_id: str = _col(VARCHAR(ID_LEN), nullable=False)
        user_id: str = _col(VARCHAR(USER_LEN), nullable=False)
        event: str = _col(VARCHAR(16), nullable=False)
        old_text: str | None = _col(MEDIUMTEXT, nullable=True)
        new_text: str | None = _col(MEDIUMTEXT, nullable=True)
        actor: str = _col(VARCHAR(32), nullable=False)
        at: datetime = _col(UTCDateTime, nullable=False)

    class ProfileRow(_Base):
        __tablename__ = f"{p}profiles"
        __table_args__ = _TABLE_OPTS
        user_id: str = _col(VARCHAR(USER_LEN), primary_key=True)
        text: str = _col(MEDIUMTEXT, nullable=False)
        updated_at: datetime = _col(UTCDateTime, nullable=False)

    class ThreadRow(_Base):
        __tablename__ = f"{p}threads"
        __table_args__ = (sa.Index(f"ix_{p}threads_user_updated", "user_id", "updated_at"),
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
        __table_args__ = (sa.Index(f"ux_{p}messages_user_thread_seq", "user_id", "thread_id",
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
    vector_index = VectorIndex(f"vec_idx_{p}memories_embedding_cosine", memories.c.embedding,
                               distance_metric="COSINE", algorithm="HNSW")
    fulltext_index = FullTextIndex(f"fts_idx_{p}memories_text", memories.c.text,
                                   fts_parser="MULTILINGUAL")
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


# =====================================================================================
# statements
# =====================================================================================
def fulltext_terms(query: str) -> str:
    """Reduce a raw user query to plain words for ``FTS_MATCH_WORD``: the terms of
    ``memory.textsearch.query_terms`` (the same analysis as the SQLite store: NFKC,
    jieba for Chinese, stop-words dropped, operator characters never form a term) joined
    by spaces; TiDB's MULTILINGUAL parser then tokenises them. Returns "" when nothing
    searchable remains."""
    return " ".join(query_terms(query or ""))


def vector_literal(embedding: Any, dim: int) -> list[float]:
    """Validate and convert an embedding to ``list[float]`` of length ``dim``.

    Raises ValueError for None, a wrong length or a non-finite component."""
    if embedding is None:
        raise ValueError("embedding is required")
    values = [float(x) for x in embedding]
    if len(values) != dim:
        raise ValueError(f"embedding has {len(values)} dimensions, the store expects {dim}")
    if not all(math.isfinite(x) for x in values):
        raise ValueError("embedding contains NaN or infinite values")
    return values


class TiDBSQL:
    """Builds every statement of the store for one ``TiDBSchema``. Pure: methods return
    SQLAlchemy statements (compile them with the MySQL dialect to see the SQL). Each
    statement on user data has ``user_id = :user_id`` inside its WHERE clause."""

    def __init__(self, schema: TiDBSchema):
        self.s = schema

    # ---- helpers --------------------------------------------------------------------
    def _live(self, user_id: str, now: datetime) -> list[Any]:
        m = self.s.memories.c
        return [m.user_id == user_id, sa.or_(m.expires_at.is_(None), m.expires_at > now)]

    def _types(self, types: list[str] | None) -> list[Any]:
        return [self.s.memories.c.type.in_(list(types))] if types else []

    def memory_columns(self, with_embedding: bool = False) -> list[Any]:
        """Columns selected for a MemoryRecord (embedding only on request)."""
        cols = [c for c in self.s.memories.c if c.name != "embedding"]
        return cols + [self.s.memories.c.embedding] if with_embedding else cols

    def _owned_upsert(self, table: sa.Table, rows: list[dict[str, Any]] | dict[str, Any],
                      update_cols: list[str]) -> Any:
        """INSERT ... ON DUPLICATE KEY UPDATE that changes an existing row only when it
        belongs to the same user: ``col = IF(t.user_id = VALUES(user_id), VALUES(col), col)``."""
        stmt = mysql_insert(table).values(rows) if isinstance(rows, dict) else mysql_insert(table)
        same_user = table.c.user_id == stmt.inserted.user_id
        return stmt.on_duplicate_key_update(
            {c: sa.func.IF(same_user, stmt.inserted[c], table.c[c]) for c in update_cols})

    # ---- memories -------------------------------------------------------------------
    def upsert_memories(self) -> Any:
        """Executemany-able upsert of memory rows (replace only rows of the same user)."""
        cols = [c.name for c in self.s.memories.c if c.name not in ("id", "user_id")]
        return self._owned_upsert(self.s.memories, [], cols)

    def insert_history_ignore(self) -> Any:
        """Executemany-able insert of history rows; an existing id is left as it is
        (stable ids make copies idempotent)."""
        t = self.s.history
        stmt = mysql_insert(t)
        return stmt.on_duplicate_key_update(id=t.c.id)

    def count_owned(self, user_id: str, ids: list[str]) -> Any:
        """``SELECT COUNT(*) FROM memories WHERE user_id = :u AND id IN (...)``: how many
        of ``ids`` belong to ``user_id`` (expired rows included)."""
        m = self.s.memories.c
        return (sa.select(sa.func.count()).select_from(self.s.memories)
                .where(m.user_id == user_id, m.id.in_(list(ids))))

    def update_memory(self, user_id: str, memory_id: str, values: dict[str, Any]) -> Any:
        """``UPDATE memories SET … WHERE user_id = :u AND id = :id`` with ``values``."""
        m = self.s.memories
        return (sa.update(m).where(m.c.user_id == user_id, m.c.id == memory_id)
                .values(**values))

    def delete_memory(self, user_id: str, memory_id: str) -> Any:
        """``DELETE FROM memories WHERE user_id = :u AND id = :id``."""
        m = self.s.memories
        return sa.delete(m).where(m.c.user_id == user_id, m.c.id == memory_id)

    def delete_user(self, user_id: str) -> list[Any]:
        """Deletes of one user's memories, history and profile (in that order)."""
        return [sa.delete(t).where(t.c.user_id == user_id)
                for t in (self.s.memories, self.s.history, self.s.profiles)]

    def get_memories(self, user_id: str, ids: list[str], now: datetime,
                     with_embedding: bool = False) -> Any:
        """SELECT of ``user_id``'s live memories among ``ids`` (embedding column optional)."""
        m = self.s.memories
        return (sa.select(*self.memory_columns(with_embedding))
                .where(*self._live(user_id, now), m.c.id.in_(list(ids))))

    def list_memories(self, user_id: str, now: datetime, *, limit: int, offset: int,
                      types: list[str] | None, since: datetime | None,
                      until: datetime | None, order: str, with_embedding: bool) -> Any:
        """SELECT of ``user_id``'s live memories, filtered, ordered and paged as in
        ``Store.list_memories``."""
        m = self.s.memories.c
        if order not in _ORDERS:
            raise ValueError(f"order must be one of {', '.join(_ORDERS)}, got {order!r}")
        cond = self._live(user_id, now) + self._types(types)
        if since is not None:
            cond.append(m.created_at >= since)
        if until is not None:
            cond.append(m.created_at <= until)
        order_by = {
            "created_desc": [m.created_at.desc(), m.id.desc()],
            "created_asc": [m.created_at.asc(), m.id.asc()],
            # NULL sorts lowest in MySQL, so never-recalled rows come last in DESC order.
            "accessed_desc": [m.access_count.desc(), m.last_accessed_at.desc(),
                              m.created_at.desc(), m.id.desc()],
        }[order]
        return (sa.select(*self.memory_columns(with_embedding)).where(*cond)
                .order_by(*order_by).limit(max(0, int(limit))).offset(max(0, int(offset))))

    def count_memories(self, user_id: str, now: datetime, types: list[str] | None) -> Any:
        """``SELECT COUNT(*)`` of ``user_id``'s live memories, optionally of some types."""
        return (sa.select(sa.func.count()).select_from(self.s.memories)
                .where(*self._live(user_id, now), *self._types(types)))

    def vector_search(self, user_id: str, embedding: list[float], k: int, now: datetime,
                      types: list[str] | None = None) -> Any:
        """``SELECT id, VEC_COSINE_DISTANCE(embedding, :q) AS distance FROM memories
        WHERE user_id = :u AND (expires_at IS NULL OR expires_at > :now) [AND type IN ..]
        ORDER BY distance LIMIT :k`` -- the user filter is applied before the limit (a
        pre-filter), unlike pytidb's default post-filtered ANN search which can return
        fewer than k rows for one user among many."""
        m = self.s.memories.c
        q = sa.bindparam("query_vector", vector_literal(embedding, self.s.dim),
                         type_=VECTOR(self.s.dim))
        distance = vec_cosine_distance(m.embedding, q).label("distance")
        return (sa.select(m.id, distance)
                .where(*self._live(user_id, now), m.embedding.is_not(None), *self._types(types))
                .order_by(sa.asc(distance), m.id).limit(max(0, int(k))))

    def text_search(self, user_id: str, terms: str, k: int, now: datetime,
                    types: list[str] | None = None) -> Any:
        """``SELECT id, FTS_MATCH_WORD(:terms, text) AS score ... WHERE FTS_MATCH_WORD(..)
        AND user_id = :u AND <live> ORDER BY score DESC LIMIT :k`` (BM25, higher is better)."""
        m = self.s.memories.c
        score = fts_match_word(sa.bindparam("terms", terms, type_=sa.String), m.text)
        return (sa.select(m.id, score.label("score"))
                .where(score, *self._live(user_id, now), *self._types(types))
                .order_by(sa.desc("score"), m.id).limit(max(0, int(k))))

    def touch(self, user_id: str, ids: list[str], at: datetime) -> Any:
        """UPDATE that records a recall: ``access_count + 1`` and ``last_accessed_at = at``."""
        m = self.s.memories
        return (sa.update(m).where(m.c.user_id == user_id, m.c.id.in_(list(ids)))
                .values(access_count=m.c.access_count + 1, last_accessed_at=at))

    def set_embedding(self) -> Any:
        """Executemany-able ``UPDATE memories SET embedding = :embedding WHERE user_id =
        :b_user AND id = :b_id``."""
        m = self.s.memories
        return (sa.update(m).where(m.c.user_id == sa.bindparam("b_user"),
                                   m.c.id == sa.bindparam("b_id"))
                .values(embedding=sa.bindparam("b_embedding", type_=VECTOR(self.s.dim))))

    def iter_page(self, user_id: str, after_id: str, batch: int, with_embedding: bool) -> Any:
        """Keyset page of ``user_id``'s memories (expired too): ``id > after_id`` by id."""
        m = self.s.memories.c
        return (sa.select(*self.memory_columns(with_embedding))
                .where(m.user_id == user_id, m.id > after_id).order_by(m.id).limit(batch))

    def any_memory(self) -> Any:
        """``SELECT 1 FROM memories LIMIT 1``: whether the store holds any vectors at all
        (admin check before rebuilding the vector column; reads no user data)."""
        return sa.select(sa.literal(1)).select_from(self.s.memories).limit(1)

    # ---- history --------------------------------------------------------------------
    def history(self, user_id: str, memory_id: str | None = None) -> Any:
        """SELECT of ``user_id``'s history events (of one memory if given), oldest first."""
        h = self.s.history.c
        cond = [h.user_id == user_id]
        if memory_id is not None:
            cond.append(h.memory_id == memory_id)
        return sa.select(self.s.history).where(*cond).order_by(h.at, h.id)

    # ---- profile --------------------------------------------------------------------
    def get_profile(self, user_id: str) -> Any:
        """SELECT of ``user_id``'s profile text and its update time."""
        p = self.s.profiles.c
        return sa.select(p.text, p.updated_at).where(p.user_id == user_id)

    def set_profile(self, user_id: str, text: str, at: datetime) -> Any:
        """Upsert of ``user_id``'s profile (never overwrites another user's row)."""
        return self._owned_upsert(self.s.profiles,
                                  {"user_id": user_id, "text": text, "updated_at": at},
                                  ["text", "updated_at"])

    # ---- threads --------------------------------------------------------------------
    def upsert_thread(self, thread: Thread) -> Any:
        """Upsert of a thread (an id owned by another user is left unchanged)."""
        return self._owned_upsert(self.s.threads, {
            "id": thread.id, "user_id": thread.user_id, "title": thread.title,
            "created_at": thread.created_at, "updated_at": thread.updated_at,
            "summary": thread.summary or "", "summarized_upto": int(thread.summarized_upto),
        }, ["title", "updated_at", "summary", "summarized_upto"])

    def get_thread(self, user_id: str, thread_id: str, for_update: bool = False) -> Any:
        """SELECT of one thread of ``user_id`` (``FOR UPDATE`` to serialise appends)."""
        t = self.s.threads
        stmt = sa.select(t).where(t.c.user_id == user_id, t.c.id == thread_id)
        return stmt.with_for_update() if for_update else stmt

    def list_threads(self, user_id: str, limit: int) -> Any:
        """SELECT of ``user_id``'s threads, most recently updated first."""
        t = self.s.threads.c
        return (sa.select(self.s.threads).where(t.user_id == user_id)
                .order_by(t.updated_at.desc(), t.created_at.desc(), t.id)
                .limit(max(0, int(limit))))

    def delete_thread(self, user_id: str, thread_id: str) -> list[Any]:
        """Deletes of one thread's messages, then of the thread, both scoped by user."""
        msg, thr = self.s.messages, self.s.threads
        return [sa.delete(msg).where(msg.c.user_id == user_id, msg.c.thread_id == thread_id),
                sa.delete(thr).where(thr.c.user_id == user_id, thr.c.id == thread_id)]

    def get_message(self, user_id: str, message_id: str) -> Any:
        """The message row (locking read: ``FOR UPDATE`` reads the latest committed data
        in TiDB's pessimistic mode, not the transaction's start snapshot)."""
        m = self.s.messages
        return sa.select(m).where(m.c.user_id == user_id, m.c.id == message_id).with_for_update()

    def last_seq(self, user_id: str, thread_id: str) -> Any:
        """``SELECT seq ... ORDER BY seq DESC LIMIT 1 FOR UPDATE``: the thread's last
        position, read with a lock (a plain SELECT in a pessimistic TiDB transaction
        reads the start snapshot and could miss a message committed meanwhile)."""
        m = self.s.messages.c
        return (sa.select(m.seq).where(m.user_id == user_id, m.thread_id == thread_id)
                .order_by(m.seq.desc()).limit(1).with_for_update())

    def insert_message(self, message: Message) -> Any:
        """INSERT of one message (``seq`` already assigned by the caller)."""
        return sa.insert(self.s.messages).values(
            id=message.id, thread_id=message.thread_id, user_id=message.user_id,
            role=message.role, content=message.content, seq=message.seq,
            created_at=message.created_at, metadata=dict(message.metadata or {}))

    def bump_thread(self, user_id: str, thread_id: str, at: datetime) -> Any:
        """UPDATE of a thread's ``updated_at`` to ``at`` (never backwards)."""
        t = self.s.threads
        return (sa.update(t).where(t.c.user_id == user_id, t.c.id == thread_id)
                .values(updated_at=sa.func.GREATEST(t.c.updated_at, at)))

    def get_messages(self, user_id: str, thread_id: str, after_seq: int,
                     limit: int | None) -> Any:
        """SELECT of one thread's messages with ``seq > after_seq`` (the last ``limit``)."""
        m = self.s.messages
        stmt = sa.select(m).where(m.c.user_id == user_id, m.c.thread_id == thread_id,
                                  m.c.seq > after_seq)
        if limit is None:
            return stmt.order_by(m.c.seq)
        return stmt.order_by(m.c.seq.desc()).limit(max(0, int(limit)))

    # ---- admin ----------------------------------------------------------------------
    def user_ids(self) -> Any:
        """Every user id present in any table (UNION, so each appears once)."""
        s = self.s
        return sa.union(*(sa.select(t.c.user_id) for t in
                          (s.memories, s.history, s.profiles, s.threads)))

    def get_meta(self, name: str) -> Any:
        """SELECT of one store-wide setting."""
        return sa.select(self.s.meta.c.value).where(self.s.meta.c.name == name)

    def set_meta(self, name: str, value: str) -> Any:
        """Upsert of one store-wide setting."""
        stmt = mysql_insert(self.s.meta).values(name=name, value=value)
        return stmt.on_duplicate_key_update(value=stmt.inserted.value)


# =====================================================================================
# row conversion
# =====================================================================================
def _json(value: Any, default: Any) -> Any:
    if value is None:
        return default
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError:
            return default
    return value


def _record(row: Any) -> MemoryRecord:
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






def _jsonable(value: Any, what: str) -> Any:
    """``value`` if it serialises to strict JSON (no NaN), else ValueError."""
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from None
    return value


def _required_time(value: Any, what: str) -> datetime:
    if value is None:
        raise ValueError(f"{what} cannot be None")
    return as_utc(value)  # type: ignore[return-value]


def _memory_row(rec: MemoryRecord, dim: int) -> dict[str, Any]:
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
        "tags": _jsonable(list(rec.tags or []), "tags"), "source": _text(rec.source or "chat", "source"),
        "metadata": _jsonable(dict(rec.metadata or {}), "metadata"),
        "created_at": _required_time(rec.created_at, "created_at"),
        "updated_at": _required_time(rec.updated_at, "updated_at"),
        "last_accessed_at": as_utc(rec.last_accessed_at),
        "expires_at": as_utc(rec.expires_at), "access_count": int(rec.access_count or 0),
        "embedding": vector_literal(rec.embedding, dim),
    }


def _history_row(ev: HistoryEvent) -> dict[str, Any]:
    """Validate a history event and return its column values (ValueError if malformed)."""
    if not isinstance(ev, HistoryEvent):
        raise ValueError(f"expected a HistoryEvent, got {type(ev).__name__}")
    return {"id": ev.id, "memory_id": ev.memory_id, "user_id": _user(ev.user_id),
            "event": ev.event,
            "old_text": None if ev.old_text is None else _text(ev.old_text, "old_text"),
            "new_text": None if ev.new_text is None else _text(ev.new_text, "new_text"),
            "actor": ev.actor, "at": _required_time(ev.at, "history time")}


def _field_value(key: str, value: Any) -> Any:
    """Convert one ``update_memory(fields=...)`` value (ValueError if unusable)."""
    if key == "tags":
        return _jsonable(list(value or []), key)
    if key == "metadata":
        return _jsonable(dict(value or {}), key)
    if key in ("expires_at", "last_accessed_at"):
        return as_utc(value)
    if key in ("updated_at", "created_at"):
        return _required_time(value, key)
    if key in ("importance", "access_count"):
        return int(value)
    if key in ("type", "source"):
        return _text(value, key)
    return None if value is None else _text(value, key)  # thread_id


def _event(row: Any) -> HistoryEvent:
    r = row._mapping
    return HistoryEvent(id=r["id"], memory_id=r["memory_id"], user_id=r["user_id"],
                        event=r["event"], old_text=r["old_text"], new_text=r["new_text"],
                        actor=r["actor"], at=r["at"])


def _thread(row: Any) -> Thread:
    r = row._mapping
    return Thread(id=r["id"], user_id=r["user_id"], title=r["title"],
                  created_at=r["created_at"], updated_at=r["updated_at"],
                  summary=r["summary"] or "", summarized_upto=int(r["summarized_upto"] or 0))


def _message(row: Any) -> Message:
    r = row._mapping
    return Message(id=r["id"], thread_id=r["thread_id"], user_id=r["user_id"], role=r["role"],
                   content=r["content"], seq=int(r["seq"]), created_at=r["created_at"],
                   metadata=dict(_json(r["metadata"], {})))


# =====================================================================================
# retries and errors
# =====================================================================================
def error_code(exc: BaseException) -> int | None:
    """The MySQL/TiDB error number inside a SQLAlchemy or PyMySQL exception, or None."""
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_write_conflict(exc: BaseException) -> bool:
    """True when ``exc`` is a TiDB write conflict / deadlock worth retrying the whole
    transaction for (codes in ``RETRYABLE_ERROR_CODES``)."""
    return error_code(exc) in RETRYABLE_ERROR_CODES


def run_with_retry(fn: Callable[[], T], attempts: int = RETRY_ATTEMPTS,
                   max_wait: float = 1.0) -> T:
    """Call ``fn`` (one whole transaction) and call it again, after a short randomised
    exponential back-off (tenacity), while it fails with a write conflict; at most
    ``attempts`` calls. Other errors, and the last conflict, propagate unchanged."""
    retrying = Retrying(retry=retry_if_exception(is_write_conflict),
                        stop=stop_after_attempt(attempts),
                        wait=wait_random_exponential(multiplier=0.05, max=max_wait),
                        reraise=True)
    return retrying(fn)


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0][:300] if text else type(orig).__name__


# =====================================================================================
# the store
# =====================================================================================
@dataclass
class _Features:
    serverless: bool = False
    tiflash: bool = False
    vector_index: bool = False
    fulltext: bool = False
    notes: list[str] = field(default_factory=list)


class TiDBStore(Store):
    """``Store`` on TiDB. Build it with ``TiDBStore.from_config(config)`` (no connection
    yet), then ``open(embedder_id, dim)`` connects, creates the database and tables if
    needed, checks the recorded embedder and detects TiFlash (vector index) and full-text
    support. Every call runs in one transaction, retried on write conflicts; database
    failures surface as ``StoreError`` with a one-line message."""

    name = "tidb"

    def __init__(self, settings: ConnectionSettings, *, table_prefix: str = ""):
        """``settings`` from ``connection_settings(config)``; ``table_prefix`` is put in
        front of every table name (lets tests share one database)."""
        self.settings = settings
        self.table_prefix = table_prefix
        self._client: TiDBClient | None = None
        self._sql: TiDBSQL | None = None
        self._features = _Features()

    @classmethod
    def from_config(cls, config: Config, *, table_prefix: str = "") -> "TiDBStore":
        """Return an unopened store for ``config`` (``TIDB_*`` or ``DATABASE_URL``).
        Raises ConfigError when TiDB is not configured."""
        return cls(connection_settings(config), table_prefix=table_prefix)

    def __repr__(self) -> str:
        return f"TiDBStore({self.settings.masked})"

    # ---- plumbing -------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (raises StoreError before ``open``)."""
        if self._client is None:
            raise StoreError("TiDB store is not open: call open() first")
        return self._client.db_engine

    @property
    def sql(self) -> TiDBSQL:
        """Statement builder for the current schema (raises StoreError before ``open``)."""
        if self._sql is None:
            raise StoreError("TiDB store is not open: call open() first")
        return self._sql

    def _tx(self, what: str, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in one transaction, retried on write conflicts; map database
        errors to StoreError (the transaction is rolled back: nothing half-written)."""
        engine = self.engine

        def attempt() -> T:
            with engine.begin() as conn:
                return fn(conn)

        try:
            return run_with_retry(attempt)
        except sa.exc.DBAPIError as exc:
            if is_write_conflict(exc):
                raise StoreError(f"TiDB {what}: write conflict persisted after "
                                 f"{RETRY_ATTEMPTS} attempts; try again") from exc
            raise StoreError(f"TiDB {what} failed: {_one_line(exc)}") from exc
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"TiDB {what} failed: {_one_line(exc)}") from exc

    # ---- lifecycle ------------------------------------------------------------------
    def _connect(self) -> None:
        if self._client is not None:
            return
        s = self.settings
        try:
            server = create_engine_without_db(s.url, connect_args=s.connect_args,
                                              pool_pre_ping=True)
            try:
                create_database(server, s.database, if_exists="skip")
            finally:
                server.dispose()
            self._client = TiDBClient.connect(
                url=s.url.render_as_string(hide_password=False), connect_args=s.connect_args,
                pool_pre_ping=True, pool_recycle=300, pool_timeout=10)
        except sa.exc.SQLAlchemyError as exc:
            self._client = None
            raise StoreError(f"cannot connect to TiDB at {s.url.host}:{s.url.port or 4000}: "
                             f"{_one_line(exc)}") from exc

    def open(self, embedder_id: str, dim: int) -> None:
        """Connect, create database/tables if needed and check the recorded embedder.

        Raises EmbedderMismatchError if memories exist with another embedder or
        dimension; StoreError if TiDB is unreachable; ValueError for a bad ``dim``."""
        schema = build_schema(dim, self.table_prefix)
        self._connect()
        self._sql = TiDBSQL(schema)
        self._features = self._detect_features()
        # CREATE ... IF NOT EXISTS: an existing memories table keeps its vector column.
        self._tx("create tables", lambda c: [c.execute(d) for d in schema_ddl(schema)])
        stored_id, stored_dim = self.get_meta("embedder_id"), self._column_dim()
        if (stored_dim is not None and stored_dim != dim) or (stored_id and stored_id != embedder_id):
            if self._tx("check memories", lambda c: c.execute(self.sql.any_memory()).first()):
                message = (f"the TiDB store holds vectors of {stored_id or 'another embedder'} "
                           f"({self.get_meta('dim') or stored_dim} dimensions), not "
                           f"{embedder_id} ({dim}); run `python main.py reembed` or "
                           "configure the old embedder")
                self.close()
                raise EmbedderMismatchError(message)
            self.reset_vector_index(embedder_id, dim)
        self._ensure_search_indexes()
        self.set_meta("embedder_id", embedder_id)
        self.set_meta("dim", str(dim))
        if self.get_meta("store_id") is None:
            self.set_meta("store_id", new_id())

    def _column_dim(self) -> int | None:
        """Dimension of the existing ``embedding`` column (``vector(384)``), or None
        when the memories table has no such column."""
        col = self._tx("read schema", lambda c: c.execute(sa.text(
            "SELECT COLUMN_TYPE FROM information_schema.columns WHERE table_schema = DATABASE()"
            " AND table_name = :t AND column_name = 'embedding'"),
            {"t": self.sql.s.memories.name}).scalar())
        if col is None:
            return None
        found = re.search(r"\((\d+)\)", str(col))
        return int(found.group(1)) if found else 0

    def _detect_features(self) -> _Features:
        """TiFlash present (``information_schema.cluster_info``; TiDB Cloud Starter adds
        columnar replicas on demand, so it counts as present)."""
        f = _Features(serverless=bool(self._client and self._client.is_serverless)
                      or is_tidb_cloud_host(self.settings.url.host))
        try:
            with self.engine.connect() as conn:
                n = conn.execute(sa.text("SELECT COUNT(*) FROM information_schema.cluster_info "
                                         "WHERE type = 'tiflash'")).scalar()
            f.tiflash = bool(n) or f.serverless
        except sa.exc.SQLAlchemyError:
            f.tiflash = f.serverless
        return f

    def _index_exists(self, index_name: str) -> bool:
        return bool(self._tx("read schema", lambda c: c.execute(sa.text(
            "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE()"
            " AND table_name = :t AND index_name = :i"),
            {"t": self.sql.s.memories.name, "i": index_name}).scalar()))

    def _create_index(self, index: Any) -> str | None:
        """Create ``index`` via pytidb (which adds the TiFlash replica it needs). Returns
        None on success, else the one-line reason."""
        if self._index_exists(index.name):
            return None
        try:
            index.create(self.engine)
            return None
        except sa.exc.SQLAlchemyError as exc:
            return _one_line(exc)

    def _ensure_search_indexes(self) -> None:
        f, s = self._features, self.sql.s
        f.notes = []
        if f.tiflash:
            err = self._create_index(s.vector_index)
            f.vector_index = err is None
            if err:
                f.notes.append(f"no HNSW vector index ({err}): exact vector scan per user")
        else:
            f.vector_index = False
            f.notes.append("no TiFlash: exact vector scan per user (no HNSW index)")
        # Self-managed TiDB parses FULLTEXT DDL but cannot use it, so creating the index
        # is not proof enough: a probe query with FTS_MATCH_WORD must run too.
        err = self._create_index(s.fulltext_index) or self._probe_fulltext()
        f.fulltext = err is None
        if err:
            log.info("TiDB full-text search unavailable: %s", err)
            f.notes.append(NO_FULLTEXT_NOTE)

    def _probe_fulltext(self) -> str | None:
        """Run a full-text query for a user id that cannot exist (""); None if it runs,
        else the one-line error."""
        stmt = self.sql.text_search("", "probe", 1, utcnow())
        try:
            with self.engine.connect() as conn:
                conn.execute(stmt).fetchall()
            return None
        except sa.exc.SQLAlchemyError as exc:
            return _one_line(exc)

    @property
    def fulltext_available(self) -> bool:
        """Whether ``text_search`` can run on this cluster (known after ``open``)."""
        return self._features.fulltext

    def close(self) -> None:
        """Dispose of the connection pool. Safe to call twice."""
        if self._client is not None:
            self._client.disconnect()
        self._client = None
        self._sql = None

    def health(self) -> dict[str, Any]:
        """``{"ok", "detail", "vector_index", "fulltext", "tls", "notes"}``; ``detail``
        names host/database (no password) followed by the notes on what this cluster
        lacks (e.g. NO_FULLTEXT_NOTE). Never raises."""
        f = self._features
        base = {"vector_index": f.vector_index, "fulltext": f.fulltext,
                "tls": self.settings.tls, "notes": list(f.notes)}
        where = f"tidb {self.settings.url.host}/{self.settings.database}"
        try:
            self._tx("health check", lambda c: c.execute(sa.text("SELECT 1")).scalar())
        except Exception as exc:  # noqa: BLE001 - health must not raise
            return {"ok": False, "detail": f"{where}: {exc}", **base}
        # notes name what is missing (no FULLTEXT -> NO_FULLTEXT_NOTE, no HNSW index)
        detail = "; ".join([where, *f.notes]) if f.notes else f"{where}; HNSW index, full-text search"
        return {"ok": True, "detail": detail, **base}

    def get_meta(self, key: str) -> str | None:
        """Return a store-wide setting or None."""
        return self._tx("read meta", lambda c: c.execute(self.sql.get_meta(key)).scalar())

    def set_meta(self, key: str, value: str) -> None:
        """Set a store-wide setting (upsert)."""
        self._tx("write meta", lambda c: c.execute(self.sql.set_meta(key, str(value))))

    # ---- memories -------------------------------------------------------------------
    def insert_memories(self, records: list[MemoryRecord],
                        history: list[HistoryEvent] | None = None) -> None:
        """Insert ``records`` and ``history`` events in one transaction. A same-id row
        of the same user is replaced; an id that exists for another user, a record without
        embedding or of the wrong dimension raise ValueError and nothing is written (the
        upsert never overwrites another user's row, and a count of the user's rows among
        the ids, inside the transaction, detects the clash and rolls back). A repeated id
        within the batch keeps the last record. StoreError on database failure."""
        records, events = list(records or []), [_history_row(e) for e in history or []]
        if not records and not events:
            return
        dim = self.sql.s.dim
        prepared: dict[str, dict[str, Any]] = {}
        for rec in records:
            row = _memory_row(rec, dim)
            if rec.id in prepared and prepared[rec.id]["user_id"] != row["user_id"]:
                raise ValueError(f"memory id {rec.id} appears twice with different users")
            prepared.pop(rec.id, None)
            prepared[rec.id] = row
        by_user: dict[str, list[str]] = {}
        for mid, row in prepared.items():
            by_user.setdefault(row["user_id"], []).append(mid)

        def work(c: Connection) -> None:
            if prepared:
                c.execute(self.sql.upsert_memories(), list(prepared.values()))
                for user_id, ids in by_user.items():
                    owned = c.execute(self.sql.count_owned(user_id, ids)).scalar()
                    if owned != len(ids):
                        raise ValueError("a memory id in this batch already belongs to "
                                         "another user; nothing was written")
            if events:
                c.execute(self.sql.insert_history_ignore(), events)

        self._tx("insert memories", work)

    def update_memory(self, user_id: str, memory_id: str, *, text: str | None = None,
                      embedding: list[float] | None = None,
                      fields: dict[str, Any] | None = None,
                      history: HistoryEvent | None = None) -> bool:
        """Change one memory of ``user_id`` (expired ones too, so an expiry can be
        lifted) and write ``history`` in the same transaction. ``text`` requires
        ``embedding``; ``fields`` may set the keys of ``_UPDATABLE_FIELDS``; updated_at
        defaults to now. Returns False (nothing written) if ``user_id`` has no such
        memory. Raises ValueError for unknown fields or bad values."""
        user_id = _user(user_id)
        fields = dict(fields or {})
        unknown = set(fields) - _UPDATABLE_FIELDS
        if unknown:
            raise ValueError(f"cannot update field(s): {', '.join(sorted(unknown))}")
        if text is not None and embedding is None:
            raise ValueError("a new text needs its new embedding")
        values = {key: _field_value(key, value) for key, value in fields.items()}
        if text is not None:
            values["text"] = _text(text, "text")
        if embedding is not None:
            values["embedding"] = vector_literal(embedding, self.sql.s.dim)
        values.setdefault("updated_at", utcnow())

        def work(c: Connection) -> bool:
            if not c.execute(self.sql.update_memory(user_id, memory_id, values)).rowcount:
                return False
            if history is not None:
                c.execute(self.sql.insert_history_ignore(), [_history_row(history)])
            return True

        return self._tx("update memory", work)

    def delete_memory(self, user_id: str, memory_id: str,
                      history: HistoryEvent | None = None) -> bool:
        """Delete one memory of ``user_id`` and record ``history``; False if absent."""
        def work(c: Connection) -> bool:
            if not c.execute(self.sql.delete_memory(user_id, memory_id)).rowcount:
                return False
            if history is not None:
                c.execute(self.sql.insert_history_ignore(), [_history_row(history)])
            return True

        return self._tx("delete memory", work)

    def delete_user_memories(self, user_id: str) -> int:
        """Delete the memories, history and profile of ``user_id`` only (one
        transaction). Returns the number of memories deleted."""
        def work(c: Connection) -> int:
            counts = [c.execute(stmt).rowcount for stmt in self.sql.delete_user(user_id)]
            return int(counts[0])

        return self._tx("delete user memories", work)

    def get_memory(self, user_id: str, memory_id: str,
                   with_embedding: bool = False) -> MemoryRecord | None:
        """Return one live memory of ``user_id`` or None."""
        found = self._get(user_id, [memory_id], with_embedding)
        return found[0] if found else None

    def get_memories(self, user_id: str, ids: list[str]) -> list[MemoryRecord]:
        """Return the live memories of ``user_id`` among ``ids``."""
        ids = list(dict.fromkeys(ids or []))
        return self._get(user_id, ids, False) if ids else []

    def _get(self, user_id: str, ids: list[str], with_embedding: bool) -> list[MemoryRecord]:
        stmt = self.sql.get_memories(user_id, ids, utcnow(), with_embedding)
        return self._tx("read memories", lambda c: [_record(r) for r in c.execute(stmt)])

    def list_memories(self, user_id: str, *, limit: int = 100, offset: int = 0,
                      types: list[str] | None = None,
                      since: datetime | None = None, until: datetime | None = None,
                      order: str = "created_desc",
                      with_embedding: bool = False) -> list[MemoryRecord]:
        """Return live memories of ``user_id`` (see ``Store.list_memories``). Raises
        ValueError for an unknown ``order``."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must be >= 0")
        stmt = self.sql.list_memories(user_id, utcnow(), limit=limit, offset=offset,
                                      types=types, since=as_utc(since), until=as_utc(until),
                                      order=order, with_embedding=with_embedding)
        return self._tx("list memories", lambda c: [_record(r) for r in c.execute(stmt)])

    def count_memories(self, user_id: str, types: list[str] | None = None) -> int:
        """Return how many live memories ``user_id`` has."""
        stmt = self.sql.count_memories(user_id, utcnow(), types)
        return int(self._tx("count memories", lambda c: c.execute(stmt).scalar() or 0))

    def vector_search(self, user_id: str, embedding: list[float], k: int,
                      types: list[str] | None = None) -> list[tuple[str, float]]:
        """Exact cosine KNN over ``user_id``'s live memories (user filter before LIMIT).
        Returns ``[(memory_id, cosine_distance)]`` nearest first."""
        if k <= 0:
            return []
        stmt = self.sql.vector_search(user_id, embedding, k, utcnow(), types)
        return self._tx("vector search",
                        lambda c: [(r[0], float(r[1])) for r in c.execute(stmt)])

    def text_search(self, user_id: str, query: str, k: int,
                    types: list[str] | None = None) -> list[tuple[str, float]]:
        """BM25 full-text search with ``FTS_MATCH_WORD`` over ``user_id``'s live
        memories, best first. Returns [] when the cluster has no full-text support (see
        ``health()``) or the query has no word."""
        terms = fulltext_terms(query)
        if not terms or k <= 0 or not self._features.fulltext:
            return []
        stmt = self.sql.text_search(user_id, terms, k, utcnow(), types)
        return self._tx("text search", lambda c: [(r[0], float(r[1])) for r in c.execute(stmt)])

    def touch_memories(self, user_id: str, ids: list[str], at: datetime) -> None:
        """Increment access_count (in SQL, so concurrent touches add up) and set
        last_accessed_at for these memories of ``user_id``."""
        ids = list(dict.fromkeys(ids or []))  # once per distinct id
        if ids:
            self._tx("touch memories",
                     lambda c: c.execute(self.sql.touch(user_id, ids, as_utc(at))))

    def history(self, user_id: str, memory_id: str) -> list[HistoryEvent]:
        """History of one memory of ``user_id``, oldest first."""
        stmt = self.sql.history(user_id, memory_id)
        return self._tx("read history", lambda c: [_event(r) for r in c.execute(stmt)])

    def add_history(self, events: list[HistoryEvent]) -> None:
        """Append history events; an event whose id is already stored is skipped."""
        rows = [_history_row(e) for e in events]
        if rows:
            self._tx("add history", lambda c: c.execute(self.sql.insert_history_ignore(), rows))

    # ---- profile --------------------------------------------------------------------
    def get_profile(self, user_id: str) -> tuple[str, datetime | None]:
        """Return ``(profile_text, updated_at)`` or ``("", None)``."""
        row = self._tx("read profile", lambda c: c.execute(self.sql.get_profile(user_id)).first())
        return (row[0], row[1]) if row else ("", None)

    def set_profile(self, user_id: str, text: str, at: datetime) -> None:
        """Store (replace) the profile text of ``user_id``."""
        stmt = self.sql.set_profile(_user(user_id), _text(text, "profile"),
                                    _required_time(at, "profile time"))
        self._tx("write profile", lambda c: c.execute(stmt))

    # ---- threads --------------------------------------------------------------------
    def upsert_thread(self, thread: Thread) -> None:
        """Insert a thread or update its title, updated_at, summary and
        summarized_upto. Raises ValueError (nothing written) if the id belongs to another
        user's thread."""
        _user(thread.user_id)
        _text(thread.title, "title")
        _text(thread.summary or "", "summary")

        def work(c: Connection) -> None:
            c.execute(self.sql.upsert_thread(thread))
            if c.execute(self.sql.get_thread(thread.user_id, thread.id)).first() is None:
                raise ValueError(f"thread id {thread.id} belongs to another user")

        self._tx("save thread", work)

    def get_thread(self, user_id: str, thread_id: str) -> Thread | None:
        """Return one thread of ``user_id`` or None."""
        row = self._tx("read thread",
                       lambda c: c.execute(self.sql.get_thread(user_id, thread_id)).first())
        return _thread(row) if row else None

    def list_threads(self, user_id: str, limit: int = 100) -> list[Thread]:
        """Threads of ``user_id``, most recently updated first."""
        stmt = self.sql.list_threads(user_id, limit)
        return self._tx("list threads", lambda c: [_thread(r) for r in c.execute(stmt)])

    def delete_thread(self, user_id: str, thread_id: str) -> bool:
        """Delete a thread of ``user_id`` and its messages; False if absent."""
        def work(c: Connection) -> bool:
            msgs, thread = self.sql.delete_thread(user_id, thread_id)
            c.execute(msgs)
            return bool(c.execute(thread).rowcount)

        return self._tx("delete thread", work)

    def add_message(self, message: Message) -> Message:
        """Append ``message`` to its thread: locks the thread row (``SELECT ... FOR
        UPDATE``), assigns ``seq`` = previous max + 1 (0 first) and raises the thread's
        updated_at to the message's created_at, in one transaction. Re-adding an id
        already stored in the same thread returns the stored message (idempotent). Raises
        ValueError if the thread is not ``message.user_id``'s or the id is used elsewhere."""
        sql = self.sql
        user_id = _user(message.user_id)
        stored = Message(id=_text(message.id, "message id"), thread_id=message.thread_id,
                         user_id=user_id, role=_text(message.role, "role"),
                         content=_text(message.content, "content"), seq=0,
                         created_at=_required_time(message.created_at, "created_at"),
                         metadata=_jsonable(dict(message.metadata or {}), "metadata"))

        def work(c: Connection) -> Message:
            if not c.execute(sql.get_thread(user_id, message.thread_id, for_update=True)).first():
                raise ValueError(f"thread {message.thread_id} does not exist for this user")
            old = c.execute(sql.get_message(user_id, message.id)).first()
            if old is not None:
                if old._mapping["thread_id"] == message.thread_id:
                    return _message(old)
                raise ValueError(f"message id {message.id} is already used")
            last = c.execute(sql.last_seq(user_id, message.thread_id)).scalar()
            stored.seq = 0 if last is None else int(last) + 1
            try:
                c.execute(sql.insert_message(stored))
            except sa.exc.IntegrityError as exc:
                if error_code(exc) == 1062 and "PRIMARY" in str(exc.orig):
                    raise ValueError(f"message id {message.id} is already used") from None
                raise
            c.execute(sql.bump_thread(user_id, message.thread_id, stored.created_at))
            return stored

        return self._tx("add message", work)

    def get_messages(self, user_id: str, thread_id: str, *, after_seq: int = -1,
                     limit: int | None = None) -> list[Message]:
        """Messages of one thread of ``user_id`` with seq > after_seq, in order; with
        ``limit`` the last ``limit`` of them."""
        stmt = self.sql.get_messages(user_id, thread_id, after_seq, limit)
        out = self._tx("read messages", lambda c: [_message(r) for r in c.execute(stmt)])
        return out if limit is None else out[::-1]

    # ---- admin ----------------------------------------------------------------------
    def reset_vector_index(self, embedder_id: str, dim: int) -> None:
        """Drop every vector: drop the HNSW index, drop and re-add the ``embedding``
        column as ``VECTOR(dim)`` (TiDB cannot change a vector column's type in place),
        recreate the index where supported, record embedder/dim. Text and history are
        kept. Raises StoreError on failure."""
        old = self.sql.s
        new = build_schema(dim, self.table_prefix)
        prep = self.engine.dialect.identifier_preparer
        table = prep.format_table(old.memories)
        statements = []
        if self._index_exists(old.vector_index.name):
            statements.append(f"ALTER TABLE {table} DROP INDEX {prep.quote(old.vector_index.name)}")
        if self._column_dim() is not None:
            statements.append(f"ALTER TABLE {table} DROP COLUMN embedding")
        statements.append(f"ALTER TABLE {table} ADD COLUMN embedding VECTOR({int(dim)}) NULL")
        for stmt in statements:  # DDL: TiDB commits each statement on its own
            self._tx("rebuild vector column", lambda c, s=stmt: c.execute(sa.text(s)))
        self._sql = TiDBSQL(new)
        self._ensure_search_indexes()
        self.set_meta("embedder_id", embedder_id)
        self.set_meta("dim", str(dim))

    def set_embeddings(self, user_id: str, items: list[tuple[str, list[float]]]) -> None:
        """Write new embeddings for memories of ``user_id`` in one transaction; unknown
        ids are ignored. Raises ValueError for a vector of the wrong dimension."""
        dim = self.sql.s.dim
        rows = [{"b_user": user_id, "b_id": mid, "b_embedding": vector_literal(vec, dim)}
                for mid, vec in items]
        if rows:
            self._tx("set embeddings", lambda c: c.execute(self.sql.set_embedding(), rows))

    def user_ids(self) -> list[str]:
        """Every user id with memories, history, a profile or threads (sorted)."""
        return sorted(self._tx("list users",
                               lambda c: [r[0] for r in c.execute(self.sql.user_ids())]))

    def iter_memories(self, user_id: str, batch: int = 500,
                      with_embedding: bool = True) -> Iterator[list[MemoryRecord]]:
        """Yield all memories of ``user_id`` (expired too) in batches ordered by id
        (keyset pagination: each batch is its own short read)."""
        if batch <= 0:
            raise ValueError("batch must be positive")
        after = ""
        while True:
            stmt = self.sql.iter_page(user_id, after, batch, with_embedding)
            page = self._tx("read memories", lambda c: [_record(r) for r in c.execute(stmt)])
            if not page:
                return
            yield page
            if len(page) < batch:
                return
            after = page[-1].id

    def all_history(self, user_id: str) -> list[HistoryEvent]:
        """Every history event of ``user_id``, oldest first."""
        stmt = self.sql.history(user_id)
        return self._tx("read history", lambda c: [_event(r) for r in c.execute(stmt)])
