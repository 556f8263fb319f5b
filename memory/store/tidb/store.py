"""``TiDBStore``: connection, transactions, open/migrate, health, store-wide settings and the admin calls (memories and threads live in mixins)."""
from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

import sqlalchemy as sa
from pytidb import TiDBClient
from pytidb.databases import create_database
from pytidb.utils import create_engine_without_db
from sqlalchemy.engine import Connection, Engine

from memory.config import Config
from memory.llm.errors import one_line
from memory.store.base import EmbedderMismatchError, Store, StoreError
from memory.store.base import require_user as _user
from memory.store.common import check_embedder, embedder_policy
from memory.store.migrations import MigrationStatus, pending, status
from memory.store.tidb.indexes import Features, SearchIndexesMixin
from memory.store.tidb.memories import MemoriesMixin
from memory.store.tidb.resources import ResourcesMixin
from memory.store.tidb.migrations import (applied_migrations, create_migrations_table,
                                          migrations_for, record_migration)
from memory.store.tidb.retry import (RETRY_ATTEMPTS, CommitFailed, is_retryable, one_transaction,
                                     retrying, run_with_retry, store_error)
from memory.store.tidb.rows import event_from_row, record_from_row, vector_literal
from memory.store.tidb.schema import build_migrations_table, build_schema
from memory.store.tidb.settings import (ConnectionSettings, connection_settings, tls_hint,
                                        tls_verification_failed)
from memory.store.tidb.statements import TiDBSQL
from memory.store.tidb.threads import ThreadsMixin
from memory.store.tidb.validity import ValidityMixin
from memory.types import HistoryEvent, MemoryRecord, new_id, utcnow

T = TypeVar("T")


class TiDBStore(MemoriesMixin, ValidityMixin, ThreadsMixin, SearchIndexesMixin,
                ResourcesMixin, Store):
    """``Store`` on TiDB. Build it with ``TiDBStore.from_config(config)`` (no connection
    yet), then ``open(embedder_id, dim)`` connects, creates the database, applies the
    named migrations, checks the recorded embedder and sets up the search indexes. Every
    call is one transaction, retried on TiDB's retryable errors, unless it runs inside
    ``transaction()``; database failures surface as ``StoreError`` with a one-line
    message."""

    name = "tidb"

    def __init__(self, settings: ConnectionSettings, *, table_prefix: str = ""):
        """``settings`` from ``connection_settings(config)``; ``table_prefix`` is put in
        front of every table name (lets tests share one database)."""
        self.settings = settings
        self.table_prefix = table_prefix
        self._client: TiDBClient | None = None
        self._sql: TiDBSQL | None = None
        self._features = Features()
        self._migrations_table = build_migrations_table(table_prefix)
        self._local = threading.local()  # .conn: this thread's open transaction()

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

    def _in_transaction(self) -> bool:
        """Whether this thread is inside ``transaction()`` on this store."""
        return getattr(self._local, "conn", None) is not None

    def _tx(self, what: str, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` as one unit and map database errors to StoreError (one line,
        ``retry.store_error``).

        Outside ``transaction()``: its own transaction, run again whole (tenacity
        back-off, ``RETRY_ATTEMPTS`` calls) on a write conflict or deadlock, and on a
        transient cluster error or lost connection raised before COMMIT
        (``retry.is_retryable``). Inside: on this thread's transaction connection, in a
        SAVEPOINT (TiDB v6.2+), so a call that fails, ValueError included, leaves none
        of its own rows even when the caller catches the error and goes on; no retry
        there (only the whole block can be re-run: a retryable failure raises
        ``RetryableStoreError``, see ``run_in_transaction``)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                with conn.begin_nested():
                    return fn(conn)
            except sa.exc.SQLAlchemyError as exc:
                raise store_error(what, exc) from exc

        engine = self.engine
        try:
            return run_with_retry(lambda: one_transaction(engine, fn))
        except CommitFailed as exc:
            attempts = RETRY_ATTEMPTS if is_retryable(exc) else 1
            raise store_error(what, exc, attempts=attempts) from exc.error
        except sa.exc.SQLAlchemyError as exc:
            attempts = RETRY_ATTEMPTS if is_retryable(exc) else 1
            raise store_error(what, exc, attempts=attempts) from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Join every store call made by this thread inside the block into ONE TiDB
        transaction: a normal exit commits, an exception rolls all of it back and
        re-raises. Re-entrant (an inner block joins the outer one); other threads and
        calls outside the block are unaffected. A failure after which the block may be
        run again (write conflict, deadlock, lost connection before COMMIT, TiDB 9001/
        9002/9005) raises ``RetryableStoreError`` with everything rolled back; the store
        cannot re-run a ``with`` block itself: use ``run_in_transaction(fn)`` for that.
        DDL (``open``, ``migrate``, ``reset_vector_index``) is refused inside, because
        TiDB commits DDL implicitly."""
        if self._in_transaction():
            yield
            return
        engine = self.engine
        try:
            with engine.connect() as conn:
                self._local.conn = conn
                try:
                    yield
                finally:
                    self._local.conn = None
                try:
                    conn.commit()
                except sa.exc.DBAPIError as exc:
                    raise CommitFailed(exc) from exc
        except CommitFailed as exc:
            raise store_error("transaction", exc) from exc.error
        except sa.exc.SQLAlchemyError as exc:
            raise store_error("transaction (rolled back)", exc) from exc

    def run_in_transaction(self, fn: Callable[[], T], attempts: int = RETRY_ATTEMPTS) -> T:
        """Call ``fn()`` inside ``transaction()`` and return its result; when the block
        fails with ``RetryableStoreError`` (everything rolled back), run the whole block
        again, at most ``attempts`` times in all, with the store's back-off
        (``retry.retrying``). ``fn`` must be safe to repeat: it runs from the start on a
        new transaction each time. Inside an outer ``transaction()`` it runs once (only
        the outer block could be re-run). Other errors propagate at once."""
        if self._in_transaction():
            return fn()

        def block() -> T:
            with self.transaction():
                return fn()

        return retrying(attempts)(block)

    def _no_transaction(self, what: str) -> None:
        if self._in_transaction():
            raise StoreError(f"TiDB {what} runs DDL and cannot run inside transaction()")

    # ---- lifecycle ------------------------------------------------------------------
    def _connect(self) -> None:
        """Create the database if missing and the connection pool (once). Raises
        StoreError naming host and port; when TLS verification failed, the message says
        which CA bundle was used and names ``TIDB_SSL_CA`` (``settings.tls_hint``)."""
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
            hint = f"; {tls_hint(s)}" if s.tls and tls_verification_failed(exc) else ""
            raise StoreError(f"cannot connect to TiDB at {s.url.host}:{s.url.port or 4000}: "
                             f"{one_line(exc)}{hint}") from exc

    def open(self, embedder_id: str, dim: int) -> None:
        """Connect, create the database, apply pending migrations and check the recorded
        embedder; then set up the search indexes.

        Raises EmbedderMismatchError if memories exist with another embedder or
        dimension; StoreError if TiDB is unreachable, or when ``TIDB_REQUIRE_FULLTEXT=1``
        and the cluster has no full-text search; ValueError for a bad ``dim``."""
        self._no_transaction("open")
        embedder_id, dim = check_embedder(embedder_id, dim)
        schema = build_schema(dim, self.table_prefix)
        self._connect()
        self._sql = TiDBSQL(schema)
        self._features = self._detect_features()
        self.migrate()  # 0001 is CREATE ... IF NOT EXISTS: an existing table keeps its vectors
        stored_id, stored_dim = self.get_meta("embedder_id"), self._column_dim()
        has_memories = bool(self._tx("check memories",
                                     lambda c: c.execute(self.sql.any_memory()).first()))
        where = f"TiDB {self.settings.url.host}/{self.settings.database}"
        try:
            rebuild = embedder_policy(where, stored_id, stored_dim, embedder_id, dim,
                                      has_memories)
        except EmbedderMismatchError:
            if stored_dim:  # keep the statements in line with the column that exists
                self._sql = TiDBSQL(build_schema(stored_dim, self.table_prefix))
            raise
        if rebuild:
            self.reset_vector_index(embedder_id, dim)
        self._ensure_search_indexes()
        self.set_meta("embedder_id", embedder_id)
        self.set_meta("dim", str(dim))
        if self.get_meta("store_id") is None:
            self.set_meta("store_id", new_id())
        self._require_fulltext()

    def _applied(self) -> dict[str, str]:
        """Applied migration ids → ISO-8601 UTC time (creates the table if missing)."""
        table = self._migrations_table
        self._tx("create schema_migrations", lambda c: c.execute(create_migrations_table(table)))
        rows = self._tx("read schema_migrations",
                        lambda c: c.execute(applied_migrations(table)).all())
        return {r[0]: r[1].isoformat() for r in rows}

    def migrate(self) -> list[str]:
        """Apply the pending named migrations in order (``migrations.STEPS``), each
        recorded in ``schema_migrations`` after its DDL ran (TiDB commits DDL statement
        by statement; the steps are idempotent, so an interrupted one is simply re-run).
        Returns the ids applied ([] when up to date). Called by ``open``. Raises
        StoreError before ``open``, inside ``transaction()`` or on a database error, and
        ValueError when the database has migrations this code does not know."""
        self._no_transaction("migrate")
        todo = pending(migrations_for(self.sql.s), self._applied())
        for migration in todo:
            self._tx(f"migration {migration.id}", migration.apply)
            self._tx("record migration", lambda c, m=migration.id: c.execute(
                record_migration(self._migrations_table, m, utcnow())))
        return [m.id for m in todo]

    def migration_status(self) -> list[MigrationStatus]:
        """Every known migration with its ``applied_at`` (ISO-8601 UTC) or None while
        pending. Connects if needed (``open`` is not required). StoreError if TiDB is
        unreachable."""
        self._connect()
        return status(migrations_for(self._sql.s if self._sql else None), self._applied())

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
        if f.notes:
            return {"ok": True, "detail": "; ".join([where, *f.notes]), **base}
        vectors = "HNSW index" if f.vector_index else "exact vector search per user"
        return {"ok": True, "detail": f"{where}; {vectors}, full-text search", **base}

    def get_meta(self, key: str) -> str | None:
        """Return a store-wide setting or None."""
        return self._tx("read meta", lambda c: c.execute(self.sql.get_meta(key)).scalar())

    def set_meta(self, key: str, value: str) -> None:
        """Set a store-wide setting (upsert)."""
        self._tx("write meta", lambda c: c.execute(self.sql.set_meta(key, str(value))))

    # ---- admin ----------------------------------------------------------------------
    def reset_vector_index(self, embedder_id: str, dim: int) -> None:
        """Drop every vector: drop the HNSW index (if any), drop and re-add the
        ``embedding`` column as ``VECTOR(dim)`` (TiDB cannot change a vector column's
        type in place, nor drop a column with a vector index), recreate the HNSW index
        when opted in, record embedder/dim. Text and history are kept. Raises StoreError
        on failure or inside ``transaction()``."""
        self._no_transaction("rebuild of the vector column")
        embedder_id, dim = check_embedder(embedder_id, dim)
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
        ids are ignored. Raises ValueError for a vector of the wrong dimension or zero."""
        user_id, dim = _user(user_id), self.sql.s.dim
        rows = [{"b_user": user_id, "b_id": mid,
                 "b_embedding": vector_literal(vec, dim, f"embedding of memory {mid}")}
                for mid, vec in items or []]
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
            page = self._tx("read memories",
                            lambda c: [record_from_row(r) for r in c.execute(stmt)])
            if not page:
                return
            yield page
            if len(page) < batch:
                return
            after = page[-1].id

    def all_history(self, user_id: str) -> list[HistoryEvent]:
        """Every history event of ``user_id``, oldest first."""
        stmt = self.sql.history(user_id)
        return self._tx("read history", lambda c: [event_from_row(r) for r in c.execute(stmt)])
