"""Connections and transactions of the SQLite store: a connection per thread, ``BEGIN IMMEDIATE`` writes, savepoints for nested calls, ``transaction()``.

Concurrency: a connection per thread (``threading.local``; Streamlit and the background
extraction threads share one store object) and per process (a forked child opens its
own). Every write runs in ``BEGIN IMMEDIATE`` … ``COMMIT``, so several processes may write
the same file: a writer waits up to ``busy_timeout_ms`` for the lock and then gets
``StoreError("database is locked …")``; nothing is half-written (SQLite's journal makes
each transaction atomic; ``synchronous=NORMAL`` in WAL mode never corrupts the file).
Readers never wait for writers (WAL).

``transaction()`` opens one write transaction on the calling thread's connection; store
calls of that thread inside it run in savepoints of it (a failing call undoes only its
own rows; an exception leaving the block undoes everything). Other threads keep their
own connections: they read the last committed state and their writes wait for the lock
as writes of another process would.
"""
from __future__ import annotations

import os
import threading
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from memory.llm.errors import one_line
from memory.store.base import Store, StoreError
from memory.store.sqlite import driver
from memory.store.sqlite.cache import MatrixCache
from memory.store.sqlite.rows import ts
from memory.store.sqlite.schema import get_meta, vec_table_dim
from memory.types import utcnow


#: How long ``close`` waits for another thread's running statement (seconds).
CLOSE_WAIT_S = 10.0


class Connections(Store):
    """The connection and transaction half of ``SQLiteStore`` (see its docstring for
    the constructor arguments)."""

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 5000,
                 vec_chunk_size: int = 256, mmap_bytes: int = 1 << 30) -> None:
        if vec_chunk_size <= 0 or vec_chunk_size % 8:
            raise ValueError("vec_chunk_size must be a positive multiple of 8")
        self.path = Path(path)
        self.busy_timeout_ms = int(busy_timeout_ms)
        self.vec_chunk_size = int(vec_chunk_size)
        self.mmap_bytes = max(0, int(mmap_bytes))
        self._db = driver.load_sqlite_module()
        self._local = threading.local()
        self._conns: "weakref.WeakSet[driver.Holder]" = weakref.WeakSet()
        self._conns_lock = threading.Lock()
        self._closed = False
        self._dim: int | None = None
        self._matrices = MatrixCache()
        driver.private_dir(self.path.parent)
        driver.private_file(self.path)

    @property
    def matrix_rebuilds(self) -> int:
        """How many user matrices this store object has (re)built from the database."""
        return self._matrices.rebuilds

    # ---- connections ------------------------------------------------------------------
    def _holder(self) -> driver.Holder:
        if self._closed:
            raise StoreError("the SQLite store is closed")
        holder = getattr(self._local, "holder", None)
        if holder is None or holder.conn is None or holder.pid != os.getpid():
            holder = driver.Holder(driver.connect(self._db, self.path, self.busy_timeout_ms,
                                                  self.mmap_bytes, self._error))
            self._local.holder = holder
            with self._conns_lock:
                self._conns.add(holder)
        return holder

    def _conn(self) -> Any:
        return self._holder().conn

    def _error(self, exc: BaseException) -> StoreError:
        msg = one_line(exc)
        if "locked" in msg or "busy" in msg:
            return StoreError(f"database is locked: another writer held {self.path} longer "
                              f"than {self.busy_timeout_ms} ms; try again")
        return StoreError(f"SQLite error on {self.path}: {msg}")

    def close(self) -> None:
        """Close every connection this store opened (all threads), each once its thread
        has finished the statement it is running (at most ``CLOSE_WAIT_S`` seconds
        each). Safe to call twice; later calls on the store raise StoreError."""
        self._closed = True
        with self._conns_lock:
            holders = list(self._conns)
            self._conns = weakref.WeakSet()
        for holder in holders:
            # wait for a statement another thread is running on it (a background
            # extraction); one still busy after CLOSE_WAIT_S is left to its thread's exit
            if holder.busy.acquire(timeout=CLOSE_WAIT_S):
                try:
                    holder.close()
                finally:
                    holder.busy.release()

    # ---- transactions -----------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction for every store call this thread makes inside the
        block: a normal exit commits, an exception rolls every row back and re-raises.
        Re-entrant (a nested block joins the outer one as a savepoint). Raises
        StoreError when the write lock is not granted within ``busy_timeout_ms``."""
        with self._write():
            yield

    def _in_write(self) -> bool:
        holder = getattr(self._local, "holder", None)
        return holder is not None and holder.depth > 0 and holder.pid == os.getpid()

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (a ``SAVEPOINT`` inside an open write
        transaction of this thread); rollback on any error. SQLite errors become
        StoreError; other exceptions (ValueError…) propagate unchanged."""
        holder = self._holder()
        with holder.busy:
            yield from self._write_body(holder)

    def _write_body(self, holder: driver.Holder) -> Iterator[Any]:
        conn = holder.conn
        outer = holder.depth == 0
        name = f"sp{holder.depth}"
        mark = len(holder.patches)
        try:
            conn.execute("BEGIN IMMEDIATE" if outer else f"SAVEPOINT {name}")
        except self._db.Error as exc:
            raise self._error(exc) from None
        holder.depth += 1
        try:
            yield conn
            conn.execute("COMMIT" if outer else f"RELEASE {name}")
        except BaseException as exc:
            self._undo(holder, outer, name, mark)
            if isinstance(exc, self._db.Error):
                raise self._error(exc) from None
            raise
        else:
            if outer:
                patches, holder.patches = holder.patches, []
                if patches:
                    self._matrices.finish(patches, True)
        finally:
            holder.depth -= 1

    def _undo(self, holder: driver.Holder, outer: bool, name: str, mark: int) -> None:
        """Roll back the transaction (or savepoint ``name``) and drop the cached
        matrices its writes would have patched (from ``mark`` on)."""
        conn = holder.conn
        try:
            if outer:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            else:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
        except self._db.Error:
            pass
        dropped = holder.patches[mark:]
        del holder.patches[mark:]
        if dropped:
            self._matrices.finish(dropped, False)

    @contextmanager
    def _vec_write(self) -> Iterator[tuple[Any, list[tuple]]]:
        """:meth:`_write` for transactions that change vectors: yields ``(conn,
        patches)``; :meth:`_bump` records each user's change, and after the outermost
        commit the cached matrices are patched (after a rollback the touched users'
        entries are dropped)."""
        with self._write() as conn:
            yield conn, self._holder().patches

    def _bump(self, conn: Any, patches: list[tuple], user_id: str,
              ops: list[tuple] | None) -> None:
        """Inside a :meth:`_vec_write` transaction: increment ``user_id``'s vector
        version and record ``ops`` (see :meth:`cache.Matrix.apply`; None = drop the
        cached matrix) for the patch after the commit. Until then searches of this
        process wait for the patch instead of rebuilding (``pending``)."""
        version = conn.execute(
            "INSERT INTO vec_versions(user_id, version) VALUES (?, 1) ON CONFLICT(user_id) "
            "DO UPDATE SET version = version + 1 RETURNING version", (user_id,)).fetchall()[0][0]
        key = (int(get_meta(conn, "vec_epoch") or 0), int(version))
        self._matrices.begin(user_id)
        patches.append((user_id, key, ops))

    @contextmanager
    def _read(self) -> Iterator[Any]:
        """A deferred read transaction (one consistent snapshot), or the open write
        transaction of this thread; errors -> StoreError."""
        holder = self._holder()
        with holder.busy:
            yield from self._read_body(holder.conn)

    def _read_body(self, conn: Any) -> Iterator[Any]:
        if conn.in_transaction:
            try:
                yield conn
            except self._db.Error as exc:
                raise self._error(exc) from None
            return
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        except self._db.Error as exc:
            raise self._error(exc) from None

    # ---- small shared helpers -----------------------------------------------------------
    @staticmethod
    def _now() -> int:
        return ts(utcnow())  # type: ignore[return-value]

    def _require_dim(self, conn: Any | None = None) -> int:
        if self._dim is None:
            if conn is None:
                with self._read() as c:
                    table_dim = vec_table_dim(c)
            else:
                table_dim = vec_table_dim(conn)
            if table_dim is None:
                raise StoreError("the vector index does not exist yet: call open(embedder_id, dim)")
            self._dim = table_dim
        return self._dim
