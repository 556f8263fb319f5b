"""Embedded store: one SQLite file with sqlite-vec (vectors) and FTS5 (BM25 text search).

Layout (all in one database file, WAL mode):

* ``meta(key, value)`` — store-wide settings: ``embedder_id``, ``dim``, ``schema_version``.
* ``memories`` — one row per memory; ``rid`` (integer rowid) links the row to its vector
  and full-text rows; ``id`` is the public 32-hex id. ``tags``/``metadata`` are JSON text.
  Datetimes are **integer microseconds since the Unix epoch, UTC** (exact round trip to
  aware UTC datetimes, cheap range comparisons).
* ``vec_memories`` — sqlite-vec ``vec0`` table, ``rowid = memories.rid``, with ``user_id``
  as a *partition key* (a KNN query only scans that user's vector chunks),
  ``distance_metric=cosine`` and two metadata columns, ``type`` and ``expires_at``
  (:data:`NEVER` when the memory does not expire), so the type filter and the expiry
  filter are applied inside the KNN scan and a user gets exactly k live rows.
* ``memories_fts`` — FTS5 table ``(user_tok, body, context)`` with ``rowid = memories.rid``.
  ``body`` holds :func:`memory.textsearch.index_text` of the memory (jieba-segmented
  Chinese), ``context`` that of its conversational context ``metadata["context"]`` (e.g.
  the chat turn an imported message replies to; "" for most memories); ``user_tok`` holds
  a per-user token (``"u" + sha1(user_id) + "0"``), so a search is
  ``user_tok : "u…" AND {body context} : ("term" OR …)``: FTS5 intersects the user's
  doclist with the terms' doclists instead of ranking every user's rows. BM25 weights are
  ``(0, 1, CONTEXT_WEIGHT)``: ``user_tok`` does not score, the context counts less than
  the body. Schema version 3 added ``context`` (older files get their FTS rows rebuilt
  when opened).
* ``history``, ``profiles``, ``threads``, ``messages``.
* ``vec_versions(user_id, version)`` — bumped in every write transaction that changes a
  user's vectors, types or expiries; ``meta.vec_epoch`` is bumped when the vector index is
  recreated (``reset_vector_index``, ``open`` with a new dim). Schema version 2 added it.

Vector search of large users (≥ :data:`MATRIX_MIN_ROWS` memories) runs on an in-process
float32 matrix per user (:class:`_MatrixCache`, LRU within :data:`MATRIX_BUDGET_BYTES`),
keyed by ``(vec_epoch, version)``: writes of this process patch it after their commit
(append/mask rows, no rebuild); a write by another process or store object changes the
version, and the next search rebuilds the matrix from the database (~1 s at 100k).

Concurrency: a connection per thread (``threading.local``; Streamlit and the background
extraction threads share one store object) and per process (a forked child opens its
own). Every write runs in ``BEGIN IMMEDIATE`` … ``COMMIT``, so several processes may write
the same file: a writer waits up to ``busy_timeout_ms`` for the lock and then gets
``StoreError("database is locked …")``; nothing is half-written (SQLite's journal makes
each transaction atomic; ``synchronous=NORMAL`` in WAL mode never corrupts the file).

Measured (random unit 512-dim vectors, one user, k=40, realistic 4-word queries, CPU time
per query on the shared 2-core dev box; wall time there was 5-10x higher under load):
10k memories: KNN p95 6 ms, BM25 p95 2 ms, hybrid p95 8 ms; 100k memories: vec0 KNN p95
51 ms (the sqlite-vec 0.1.9 wheel has no SIMD: exact KNN is ~0.5 µs per 512-dim vector),
cached-matrix KNN p95 ~7 ms, BM25 p95 7 ms. Batched insert: 10k rows in ~1.8 s CPU.

sqlite-vec is a loadable extension. Debian's stdlib ``sqlite3`` is built without
extension loading, so the ``pysqlite3`` module (``pysqlite3-binary`` wheel, bundling a
recent SQLite) is tried first and the stdlib module second.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import weakref
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from memory.store.base import EmbedderMismatchError, Store, StoreError
from memory.store.base import require_text as _text
from memory.store.base import require_user as _user
from memory.textsearch import FTS5_TOKENIZE, index_text, match_query
from memory.types import HistoryEvent, MemoryRecord, Message, Thread, as_utc, utcnow

__all__ = ["SQLiteStore", "NEVER", "MAX_K", "load_sqlite_module"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)

#: ``expires_at`` value stored in the vector index for memories that never expire
#: (microseconds; about year 148,000, beyond any datetime).
NEVER = 2**62

#: sqlite-vec refuses KNN queries with k > 4096; larger k are clamped to this.
MAX_K = 4096

#: Rows per ``IN (…)`` list: stays below SQLite's historical 999-variable limit.
_IN_CHUNK = 500

SCHEMA_VERSION = "3"

#: BM25 weight of the ``context`` FTS column relative to ``body`` (1.0): the conversational
#: context of a raw memory (``metadata["context"]``, e.g. the chat turn it replies to)
#: helps a search find the memory but is not what the memory says. LoCoMo R@5 / R@10
#: (``bench/locomo.py --format context-meta``, whole previous turn as context) for weight
#: 0.1 / 0.2 / 0.3 / 0.5 / 0.8: .641/.718, .639/.722, .636/.721, .630/.715, .618/.706.
CONTEXT_WEIGHT = 0.2


def context_of(metadata: Any) -> str:
    """The conversational context of a memory: ``metadata["context"]`` when it is a
    non-empty string, else ``""``."""
    ctx = metadata.get("context") if isinstance(metadata, dict) else None
    return ctx.strip() if isinstance(ctx, str) else ""

#: A user with at least this many memories is vector-searched from an in-process float32
#: matrix (see :class:`_MatrixCache`) instead of the vec0 scan. Measured on the 2-core dev
#: box (512-dim random vectors, k=40, OPENBLAS_NUM_THREADS=1), p50 vec0 / cached matrix /
#: first search with a rebuild: 2k 1.0 / 0.09 / 15 ms, 5k 2.5 / 0.18 / 31 ms, 10k 5.2 /
#: 0.7 / 60 ms, 20k 10.2 / 1.6 / 165 ms, 100k 47 / 6.5 / ~1,000-1,500 ms. The matrix is
#: always faster once built; below 10k vec0 stays under ~5 ms, so small users cost no
#: process memory (20 MB per 10k 512-dim vectors) and no rebuild after foreign writes.
MATRIX_MIN_ROWS = 10_000

#: Total bytes of cached matrices per store object (all users, least recently used
#: evicted first); a user whose matrix alone exceeds it (≈ 260k 512-dim vectors) is
#: searched by vec0.
MATRIX_BUDGET_BYTES = 512 * 2**20

#: Longest a search waits for a write of this process to patch the cached matrix before
#: rebuilding it itself (seconds).
_PATCH_WAIT_S = 2.0

#: ``expires_at`` of a deleted/replaced row in a cached matrix: never live.
_DEAD = np.iinfo(np.int64).min

_INSTALL_HINT = ("SQLite store unavailable: sqlite-vec cannot be loaded "
                 "(run: pip install pysqlite3-binary sqlite-vec)")

#: Columns of ``memories`` in the order ``_record`` reads them.
_MEM_COLS = ("rid, id, user_id, text, type, thread_id, importance, tags, source, metadata, "
             "created_at, updated_at, last_accessed_at, expires_at, access_count")

#: Fields ``update_memory(fields=…)`` may change, and how each is converted to a column.
_UPDATABLE = ("type", "importance", "tags", "metadata", "expires_at", "updated_at",
              "created_at", "last_accessed_at", "access_count", "thread_id", "source")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS memories (
    rid              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    user_id          TEXT NOT NULL,
    text             TEXT NOT NULL,
    type             TEXT NOT NULL,
    thread_id        TEXT,
    importance       INTEGER NOT NULL,
    tags             TEXT NOT NULL,
    source           TEXT NOT NULL,
    metadata         TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    last_accessed_at INTEGER,
    expires_at       INTEGER,
    access_count     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS memories_user_created ON memories(user_id, created_at);
CREATE INDEX IF NOT EXISTS memories_user_type ON memories(user_id, type);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(
    user_tok, body, context, tokenize = '{tokenize}'
);
CREATE TABLE IF NOT EXISTS history (
    seq       INTEGER PRIMARY KEY,
    id        TEXT NOT NULL,
    memory_id TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    event     TEXT NOT NULL,
    old_text  TEXT,
    new_text  TEXT,
    actor     TEXT NOT NULL,
    at        INTEGER NOT NULL,
    UNIQUE (user_id, id)
);
CREATE INDEX IF NOT EXISTS history_user_memory ON history(user_id, memory_id, at);
CREATE TABLE IF NOT EXISTS profiles (
    user_id    TEXT PRIMARY KEY,
    text       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS threads (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    title           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    summary         TEXT NOT NULL DEFAULT '',
    summarized_upto INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS threads_user_updated ON threads(user_id, updated_at);
CREATE TABLE IF NOT EXISTS messages (
    id         TEXT PRIMARY KEY,
    thread_id  TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    role       TEXT NOT NULL,
    content    TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    metadata   TEXT NOT NULL,
    UNIQUE (thread_id, seq)
);
CREATE INDEX IF NOT EXISTS messages_user_thread ON messages(user_id, thread_id, seq);
CREATE TABLE IF NOT EXISTS vec_versions (
    user_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL
) WITHOUT ROWID;
""".format(tokenize=FTS5_TOKENIZE)


# ---- module loading -------------------------------------------------------------------
_sqlite_module: Any = None
_sqlite_lock = threading.Lock()


def load_sqlite_module() -> Any:
    """Return a DB-API ``sqlite3`` module whose connections can load sqlite-vec.

    Tries ``pysqlite3.dbapi2`` first, then the stdlib ``sqlite3``; each candidate is
    checked by loading sqlite-vec into an in-memory connection. Raises StoreError with
    an install hint when neither works.
    """
    global _sqlite_module
    if _sqlite_module is not None:
        return _sqlite_module
    with _sqlite_lock:
        if _sqlite_module is not None:
            return _sqlite_module
        try:
            import sqlite_vec
        except ImportError:
            raise StoreError(_INSTALL_HINT) from None
        candidates = []
        try:
            import pysqlite3.dbapi2 as pysqlite3_dbapi2
            candidates.append(pysqlite3_dbapi2)
        except ImportError:
            pass
        import sqlite3 as stdlib_sqlite3
        candidates.append(stdlib_sqlite3)
        for module in candidates:
            try:
                conn = module.connect(":memory:")
                try:
                    conn.enable_load_extension(True)
                    sqlite_vec.load(conn)
                    conn.execute("SELECT vec_version()")
                finally:
                    conn.close()
            except Exception:  # noqa: BLE001 - try the next loader
                continue
            _sqlite_module = module
            return module
        raise StoreError(_INSTALL_HINT)


# ---- conversions ----------------------------------------------------------------------
def _ts(value: datetime | str | None) -> int | None:
    """Aware/naive(UTC) datetime or ISO string -> integer microseconds since the epoch."""
    dt = as_utc(value)
    if dt is None:
        return None
    return (dt - _EPOCH) // _US


def _dt(value: int | None) -> datetime | None:
    """Integer microseconds since the epoch -> aware UTC datetime."""
    if value is None:
        return None
    return _EPOCH + timedelta(microseconds=int(value))


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from None






def user_token(user_id: str) -> str:
    """Return the FTS token that marks ``user_id``'s rows: ``"u" + sha1 hex + "0"``.

    Letters+digits only, so unicode61 keeps it as one token; it ends with a digit, so
    the Porter stemmer leaves it unchanged.
    """
    return "u" + hashlib.sha1(user_id.encode("utf-8")).hexdigest() + "0"


def _chunks(items: list, size: int = _IN_CHUNK) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class _Conn:
    """Holds one thread's connection; closing happens when the thread's local storage
    is released (thread exit) or when the store is closed."""

    __slots__ = ("conn", "pid", "__weakref__")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.pid = os.getpid()

    def close(self) -> None:
        conn, self.conn = self.conn, None
        try:
            # never close a connection inherited from the parent across fork()
            if conn is not None and self.pid == os.getpid():
                conn.close()
        except Exception:  # noqa: BLE001 - closing (also at interpreter exit) must not raise
            pass

    def __del__(self) -> None:
        self.close()


class _Matrix:
    """One user's cached vectors (see :class:`_MatrixCache`).

    ``buf`` is float32 ``(capacity, dim)``, rows ``[0, n)`` L2-normalised vectors; rows
    below ``n`` are never written again (an update kills the old row and appends), so a
    reader holding ``(buf, n, …)`` sees a fixed matrix while a writer appends. ``ids``
    (object, memory ids), ``tcodes`` (int32 codes of ``vocab`` types) and ``exp`` (int64
    µs, :data:`NEVER` for no expiry, :data:`_DEAD` for removed rows) have length ``n`` and
    are replaced, never mutated. ``pos`` (id -> row) and ``vocab`` are writer-only.
    """

    __slots__ = ("key", "buf", "n", "ids", "tcodes", "exp", "pos", "vocab", "dead")

    def __init__(self, key: tuple[int, int], buf: np.ndarray, n: int, ids: np.ndarray,
                 types: list[str], exp: np.ndarray) -> None:
        self.key = key
        self.buf, self.n, self.ids, self.exp = buf, n, ids, exp
        self.vocab: dict[str, int] = {}
        self.tcodes = np.fromiter((self.vocab.setdefault(t, len(self.vocab)) for t in types),
                                  dtype=np.int32, count=n)
        self.pos = {mid: i for i, mid in enumerate(ids.tolist())}
        self.dead = 0

    @property
    def nbytes(self) -> int:
        return self.buf.nbytes + self.exp.nbytes * 3

    def apply(self, ops: list[tuple]) -> bool:
        """Apply one committed transaction's changes: ``("kill", id)``,
        ``("add", id, unit_vector, type, exp)``, ``("set", id, type|None, exp|None)``.
        Returns False if the entry should be dropped instead (over budget)."""
        exp, tcodes, ids = self.exp.copy(), self.tcodes.copy(), self.ids
        adds: list[tuple] = []
        for op in ops:
            i = self.pos.get(op[1])
            if op[0] == "kill":
                if i is not None:
                    del self.pos[op[1]]
                    exp[i] = _DEAD
                    self.dead += 1
            elif op[0] == "set":
                if i is not None:
                    if op[2] is not None:
                        tcodes[i] = self.vocab.setdefault(op[2], len(self.vocab))
                    if op[3] is not None:
                        exp[i] = op[3]
            else:
                adds.append(op)
        if adds:
            n, m = self.n, len(adds)
            if n + m > self.buf.shape[0]:
                live = np.flatnonzero(exp != _DEAD)
                cap = max(len(live) + m, int(len(live) * 1.125) + 256)
                if cap * self.buf.shape[1] * 4 > MATRIX_BUDGET_BYTES:
                    return False
                buf = np.empty((cap, self.buf.shape[1]), dtype=np.float32)
                buf[:len(live)] = self.buf[live]
                ids, tcodes, exp, n = ids[live], tcodes[live], exp[live], len(live)
                self.pos = {mid: j for j, mid in enumerate(ids.tolist())}
                self.buf, self.dead = buf, 0
            new_ids = np.empty(m, dtype=object)
            for j, (_, mid, vec, mtype, mexp) in enumerate(adds):
                old = self.pos.get(mid)
                if old is not None and old < len(exp):  # replaced: the new row wins
                    exp[old] = _DEAD
                    self.dead += 1
                self.buf[n + j] = vec
                new_ids[j] = mid
                self.pos[mid] = n + j
            ids = np.concatenate([ids, new_ids])
            tcodes = np.concatenate([tcodes, np.array(
                [self.vocab.setdefault(a[3], len(self.vocab)) for a in adds], dtype=np.int32)])
            exp = np.concatenate([exp, np.array([a[4] for a in adds], dtype=np.int64)])
            self.n = n + m
        self.ids, self.tcodes, self.exp = ids, tcodes, exp
        return True


class _MatrixCache:
    """Process-local LRU of :class:`_Matrix` per user, keyed by the user's vector
    version ``(epoch, version)`` (``meta.vec_epoch``, ``vec_versions.version``), with a
    total budget of :data:`MATRIX_BUDGET_BYTES`. Every access holds ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.entries: "OrderedDict[str, _Matrix]" = OrderedDict()
        self.pending: dict[str, int] = {}
        self.pid = os.getpid()

    def _check_pid(self) -> None:
        if self.pid != os.getpid():  # forked child: start empty (the lock was copied too)
            self.lock = threading.Lock()
            self.cond = threading.Condition(self.lock)
            self.entries = OrderedDict()
            self.pending = {}
            self.pid = os.getpid()

    def begin(self, user_id: str) -> None:
        """A write transaction of this process bumped ``user_id``'s version."""
        self._check_pid()
        with self.lock:
            self.pending[user_id] = self.pending.get(user_id, 0) + 1

    def finish(self, patches: list[tuple], committed: bool) -> None:
        """After commit (``committed``) or rollback of the transaction that recorded
        ``patches``: patch or drop the entries and wake searches waiting for them."""
        self._check_pid()
        with self.lock:
            for user_id, key, ops in patches:
                left = self.pending.get(user_id, 1) - 1
                if left > 0:
                    self.pending[user_id] = left
                else:
                    self.pending.pop(user_id, None)
                self.patch(user_id, key, ops if committed else None)
            self.cond.notify_all()

    def get(self, user_id: str, key: tuple[int, int]) -> _Matrix | None:
        """The entry of ``user_id`` at ``key`` or newer (a newer entry only holds
        committed changes), else None; the caller holds ``lock``."""
        entry = self.entries.get(user_id)
        if entry is None or entry.key[0] != key[0] or entry.key[1] < key[1]:
            return None
        self.entries.move_to_end(user_id)
        return entry

    def install(self, user_id: str, entry: _Matrix) -> None:
        old = self.entries.get(user_id)
        if old is not None and old.key >= entry.key:
            return
        self.entries[user_id] = entry
        self.entries.move_to_end(user_id)
        self._evict()

    def clear(self) -> None:
        self._check_pid()
        with self.lock:
            self.entries.clear()

    def _evict(self) -> None:
        total = sum(e.nbytes for e in self.entries.values())
        while total > MATRIX_BUDGET_BYTES and self.entries:
            _, gone = self.entries.popitem(last=False)
            total -= gone.nbytes

    def patch(self, user_id: str, key: tuple[int, int], ops: list[tuple] | None) -> None:
        """After a commit that moved ``user_id`` to ``key``: apply ``ops`` when the entry
        was at the previous version, else drop it (``ops=None`` always drops)."""
        entry = self.entries.get(user_id)
        if entry is None or (ops is not None and entry.key >= key):
            return  # absent, or already rebuilt at this version or later
        try:
            ok = ops is not None and entry.key == (key[0], key[1] - 1) and entry.apply(ops)
        except Exception:  # noqa: BLE001 - the write is committed; a rebuild fixes the cache
            ok = False
        if not ok:
            del self.entries[user_id]
            return
        entry.key = key
        self._evict()


def _unit_rows(mat: np.ndarray) -> np.ndarray:
    """L2-normalise the rows of a float32 matrix in place (zero rows stay zero)."""
    norms = np.sqrt(np.einsum("ij,ij->i", mat, mat))
    norms[norms == 0] = 1.0
    mat /= norms[:, None]
    return mat


def _unit(blob: bytes) -> np.ndarray:
    """float32 little-endian vector bytes -> L2-normalised float32 vector."""
    return _unit_rows(np.frombuffer(blob, dtype="<f4").astype(np.float32).reshape(1, -1))[0]


class SQLiteStore(Store):
    """The embedded store: ``SQLiteStore(path)`` opens/creates the SQLite file ``path``.

    ``busy_timeout_ms``: how long a write waits for another writer's lock before raising
    ``StoreError("database is locked …")``. ``vec_chunk_size``: vectors per sqlite-vec
    chunk (a multiple of 8). Every user owns at least one chunk of
    ``vec_chunk_size * dim * 4`` bytes, so the default 256 keeps a one-memory user at
    0.5 MB with 512-dim vectors while a 100k-memory user still scans few, large chunks
    (measured: KNN CPU time is the same for chunk sizes 64…1024). ``mmap_bytes``: SQLite
    ``mmap_size`` (address space only; 0 disables memory-mapped reads).

    Raises StoreError if sqlite-vec cannot be loaded or the file cannot be opened.
    The base tables are created here; ``open(embedder_id, dim)`` creates the vector
    index and must be called before writing or searching memories.
    """

    name = "sqlite"

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 5000,
                 vec_chunk_size: int = 256, mmap_bytes: int = 1 << 30) -> None:
        if vec_chunk_size <= 0 or vec_chunk_size % 8:
            raise ValueError("vec_chunk_size must be a positive multiple of 8")
        self.path = Path(path)
        self.busy_timeout_ms = int(busy_timeout_ms)
        self.vec_chunk_size = int(vec_chunk_size)
        self.mmap_bytes = max(0, int(mmap_bytes))
        self._db = load_sqlite_module()
        self._local = threading.local()
        self._conns: "weakref.WeakSet[_Conn]" = weakref.WeakSet()
        self._conns_lock = threading.Lock()
        self._closed = False
        self._dim: int | None = None
        self._matrices = _MatrixCache()
        #: how many user matrices this store object has (re)built from the database
        self.matrix_rebuilds = 0
        self._init_schema()

    # ---- connections & transactions ---------------------------------------------------
    def _connect(self) -> Any:
        import sqlite_vec

        try:
            conn = self._db.connect(str(self.path), timeout=self.busy_timeout_ms / 1000.0,
                                    isolation_level=None, check_same_thread=False)
        except self._db.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {_one_line(exc)}") from None
        try:
            conn.enable_load_extension(True)
            sqlite_vec.load(conn)
            conn.enable_load_extension(False)
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            conn.execute("PRAGMA foreign_keys = ON")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"cannot switch {self.path} to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            # Memory-mapped reads: a KNN query scans every vector chunk of the user, and
            # mmap saves the pread+copy per page (measured: -35% CPU at 100k x 512-dim).
            conn.execute(f"PRAGMA mmap_size = {self.mmap_bytes}")
        except self._db.Error as exc:
            conn.close()
            raise self._error(exc) from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _conn(self) -> Any:
        if self._closed:
            raise StoreError("the SQLite store is closed")
        holder = getattr(self._local, "holder", None)
        if holder is None or holder.conn is None or holder.pid != os.getpid():
            holder = _Conn(self._connect())
            self._local.holder = holder
            with self._conns_lock:
                self._conns.add(holder)
        return holder.conn

    def _error(self, exc: BaseException) -> StoreError:
        msg = _one_line(exc)
        if "locked" in msg or "busy" in msg:
            return StoreError(f"database is locked: another writer held {self.path} longer "
                              f"than {self.busy_timeout_ms} ms; try again")
        return StoreError(f"SQLite error on {self.path}: {msg}")

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; rollback on any error. SQLite errors become
        StoreError; other exceptions (ValueError…) propagate unchanged."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except self._db.Error as exc:
            raise self._error(exc) from None
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except self._db.Error:
                    pass
            if isinstance(exc, self._db.Error):
                raise self._error(exc) from None
            raise

    @contextmanager
    def _read(self) -> Iterator[Any]:
        """A deferred read transaction (one consistent snapshot); errors -> StoreError."""
        conn = self._conn()
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        except self._db.Error as exc:
            raise self._error(exc) from None

    def _init_schema(self) -> None:
        with self._write() as conn:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            # schema 1 -> 2 only added vec_versions (created above for old files too);
            # 2 -> 3 added the FTS column ``context``: rebuild the FTS rows of old files
            cols = [r[1] for r in conn.execute("PRAGMA table_info(memories_fts)")]
            if "context" not in cols:
                self._rebuild_fts(conn)
            conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value "
                         "WHERE CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER)",
                         (SCHEMA_VERSION,))

    def _rebuild_fts(self, conn: Any) -> None:
        """Recreate ``memories_fts`` with the current columns and refill it from
        ``memories`` (schema 2 -> 3 migration; runs inside the caller's transaction)."""
        conn.execute("DROP TABLE IF EXISTS memories_fts")
        conn.execute("CREATE VIRTUAL TABLE memories_fts USING fts5(user_tok, body, context, "
                     f"tokenize = '{FTS5_TOKENIZE}')")
        cur = conn.execute("SELECT rid, user_id, text, metadata FROM memories")
        while True:
            rows = cur.fetchmany(1000)
            if not rows:
                break
            fts = []
            for rid, uid, text, meta in rows:
                try:
                    ctx = context_of(json.loads(meta))
                except ValueError:
                    ctx = ""
                fts.append((rid, user_token(uid), index_text(text), index_text(ctx)))
            conn.executemany("INSERT INTO memories_fts(rowid, user_tok, body, context) "
                             "VALUES (?, ?, ?, ?)", fts)

    # ---- lifecycle / metadata -----------------------------------------------------------
    def open(self, embedder_id: str, dim: int) -> None:
        """Create the vector index if needed and check the recorded embedder.

        Raises EmbedderMismatchError when memories exist that were embedded by another
        embedder id or dimension; with no memories the vector index is silently rebuilt
        for ``dim``. Raises ValueError for an empty id or a dim < 1.
        """
        embedder_id, dim = self._check_embedder(embedder_id, dim)
        with self._write() as conn:
            stored_id = self._meta(conn, "embedder_id")
            stored_dim = self._meta(conn, "dim")
            table_dim = self._vec_table_dim(conn)
            has_memories = conn.execute("SELECT EXISTS(SELECT 1 FROM memories)").fetchone()[0]
            same = stored_id == embedder_id and stored_dim == str(dim)
            if same and table_dim == dim:
                pass
            elif has_memories and (stored_id is not None or table_dim is not None) and not (
                    stored_id is None and table_dim == dim):
                old = f"'{stored_id}' (dim {stored_dim or table_dim})"
                raise EmbedderMismatchError(
                    f"the memories in {self.path} were embedded with {old} but the configured "
                    f"embedder is '{embedder_id}' (dim {dim}); run `python main.py reembed` "
                    "(or configure the old embedder)")
            else:
                if table_dim != dim or not has_memories:
                    self._create_vec_table(conn, dim)
                self._set_meta(conn, "embedder_id", embedder_id)
                self._set_meta(conn, "dim", str(dim))
        self._dim = dim
        self._matrices.clear()

    @staticmethod
    def _check_embedder(embedder_id: str, dim: int) -> tuple[str, int]:
        if not isinstance(embedder_id, str) or not embedder_id:
            raise ValueError("embedder_id must be a non-empty string")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError("dim must be a positive integer")
        return embedder_id, dim

    def _create_vec_table(self, conn: Any, dim: int) -> None:
        """(Re)create the vec0 table and bump ``meta.vec_epoch``: every cached matrix of
        every process is stale from then on."""
        epoch = int(self._meta(conn, "vec_epoch") or 0) + 1
        self._set_meta(conn, "vec_epoch", str(epoch))
        conn.execute("DROP TABLE IF EXISTS vec_memories")
        conn.execute(
            "CREATE VIRTUAL TABLE vec_memories USING vec0("
            "user_id text partition key, "
            f"embedding float[{dim}] distance_metric=cosine, "
            "type text, expires_at integer, "
            f"chunk_size={self.vec_chunk_size})")

    @staticmethod
    def _vec_table_dim(conn: Any) -> int | None:
        row = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'vec_memories'").fetchone()
        if row is None:
            return None
        match = re.search(r"float\[(\d+)\]", row[0] or "")
        return int(match.group(1)) if match else None

    @staticmethod
    def _meta(conn: Any, key: str) -> str | None:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @staticmethod
    def _set_meta(conn: Any, key: str, value: str) -> None:
        conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def close(self) -> None:
        """Close every connection this store opened (all threads). Safe to call twice;
        later calls on the store raise StoreError."""
        self._closed = True
        with self._conns_lock:
            holders = list(self._conns)
            self._conns = weakref.WeakSet()
        for holder in holders:
            holder.close()

    def get_meta(self, key: str) -> str | None:
        """Return a store-wide setting or None."""
        with self._read() as conn:
            return self._meta(conn, key)

    def set_meta(self, key: str, value: str) -> None:
        """Set a store-wide setting (both strings)."""
        with self._write() as conn:
            self._set_meta(conn, _text(key, "key"), _text(value, "value"))

    def health(self) -> dict[str, Any]:
        """Return ``{"ok", "detail", "path", "sqlite_version", "memories"}``; never raises."""
        try:
            with self._read() as conn:
                count = conn.execute("SELECT COUNT(*) FROM memories").fetchone()[0]
                version = conn.execute("SELECT sqlite_version() || ' / sqlite-vec ' "
                                       "|| vec_version()").fetchone()[0]
            return {"ok": True, "detail": f"sqlite {self.path}", "path": str(self.path),
                    "sqlite_version": version, "memories": count}
        except Exception as exc:  # noqa: BLE001 - health must not raise
            return {"ok": False, "detail": f"sqlite: {_one_line(exc)}", "path": str(self.path)}

    # ---- helpers ------------------------------------------------------------------------
    def _require_dim(self, conn: Any | None = None) -> int:
        if self._dim is None:
            if conn is None:
                with self._read() as c:
                    table_dim = self._vec_table_dim(c)
            else:
                table_dim = self._vec_table_dim(conn)
            if table_dim is None:
                raise StoreError("the vector index does not exist yet: call open(embedder_id, dim)")
            self._dim = table_dim
        return self._dim

    def _blob(self, embedding: Any, dim: int, what: str = "embedding") -> bytes:
        if embedding is None:
            raise ValueError(f"{what} is missing")
        try:
            arr = np.asarray(embedding, dtype=np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"{what} must be a list of numbers") from None
        if arr.ndim != 1 or arr.shape[0] != dim:
            got = arr.shape[0] if arr.ndim == 1 else f"shape {arr.shape}"
            raise ValueError(f"{what} has dimension {got}, the store expects {dim}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{what} contains NaN or infinity")
        return arr.astype("<f4", copy=False).tobytes()

    @staticmethod
    def _now() -> int:
        return _ts(utcnow())  # type: ignore[return-value]

    def _record(self, row: tuple, embeddings: dict[int, list[float]] | None = None
                ) -> MemoryRecord:
        (rid, mid, user_id, text, mtype, thread_id, importance, tags, source, metadata,
         created_at, updated_at, last_accessed_at, expires_at, access_count) = row
        rec = MemoryRecord(
            id=mid, user_id=user_id, text=text, type=mtype, thread_id=thread_id,
            importance=int(importance), tags=json.loads(tags), source=source,
            metadata=json.loads(metadata), created_at=_dt(created_at),  # type: ignore[arg-type]
            updated_at=_dt(updated_at),  # type: ignore[arg-type]
            last_accessed_at=_dt(last_accessed_at), expires_at=_dt(expires_at),
            access_count=int(access_count))
        if embeddings is not None:
            rec.embedding = embeddings.get(rid)
        return rec

    def _records(self, conn: Any, rows: list[tuple], with_embedding: bool) -> list[MemoryRecord]:
        """Rows of ``_MEM_COLS`` -> records; with vectors read by point lookups (vec0
        has no fast plan for ``rowid IN (…)``)."""
        embeddings: dict[int, list[float]] | None = None
        if with_embedding:
            embeddings = {}
            if rows and self._vec_table_dim(conn) is not None:
                for row in rows:
                    got = conn.execute("SELECT embedding FROM vec_memories WHERE rowid = ?",
                                       (row[0],)).fetchone()
                    if got is not None:
                        embeddings[row[0]] = np.frombuffer(got[0], dtype="<f4").astype(float).tolist()
        return [self._record(r, embeddings) for r in rows]

    def _memory_row(self, rec: MemoryRecord) -> tuple:
        if not isinstance(rec, MemoryRecord):
            raise ValueError(f"expected a MemoryRecord, got {type(rec).__name__}")
        if not isinstance(rec.id, str) or not rec.id:
            raise ValueError("memory id must be a non-empty string")
        created = _ts(rec.created_at)
        updated = _ts(rec.updated_at)
        if created is None or updated is None:
            raise ValueError("created_at and updated_at are required")
        return (rec.id, _user(rec.user_id), _text(rec.text, "text"), _text(rec.type, "type"),
                rec.thread_id, int(rec.importance), _json(list(rec.tags), "tags"),
                _text(rec.source, "source"), _json(dict(rec.metadata), "metadata"), created,
                updated, _ts(rec.last_accessed_at), _ts(rec.expires_at), int(rec.access_count))

    @staticmethod
    def _history_row(ev: HistoryEvent) -> tuple:
        if not isinstance(ev, HistoryEvent):
            raise ValueError(f"expected a HistoryEvent, got {type(ev).__name__}")
        at = _ts(ev.at)
        if at is None:
            raise ValueError("history event needs a timestamp")
        return (_text(ev.id, "history id"), _text(ev.memory_id, "memory_id"), _user(ev.user_id),
                _text(ev.event, "event"),
                None if ev.old_text is None else _text(ev.old_text, "old_text"),
                None if ev.new_text is None else _text(ev.new_text, "new_text"),
                _text(ev.actor, "actor"), at)

    @staticmethod
    def _insert_history(conn: Any, rows: list[tuple]) -> None:
        if rows:
            conn.executemany(
                "INSERT INTO history(id, memory_id, user_id, event, old_text, new_text, actor, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(user_id, id) DO NOTHING", rows)

    @staticmethod
    def _delete_rows(conn: Any, rids: list[int]) -> None:
        """Delete base, vector and text rows by rid (point deletes: each WHERE names one
        rowid, which is also the fast path of vec0 and FTS5)."""
        if not rids:
            return
        params = [(rid,) for rid in rids]
        if SQLiteStore._vec_table_dim(conn) is not None:
            conn.executemany("DELETE FROM vec_memories WHERE rowid = ?", params)
        conn.executemany("DELETE FROM memories_fts WHERE rowid = ?", params)
        conn.executemany("DELETE FROM memories WHERE rid = ?", params)

    @staticmethod
    def _live(alias: str = "") -> str:
        p = f"{alias}." if alias else ""
        return f"({p}expires_at IS NULL OR {p}expires_at > ?)"

    @staticmethod
    def _types_clause(types: list[str] | None, column: str) -> tuple[str, list[str]]:
        if not types:
            return "", []
        types = [_text(t, "type") for t in types]
        return f" AND {column} IN ({', '.join('?' * len(types))})", types

    # ---- vector versions and the matrix cache ----------------------------------------
    @staticmethod
    def _vec_key(conn: Any, user_id: str) -> tuple[int, int]:
        """``(meta.vec_epoch, vec_versions.version)`` of ``user_id`` (0 when absent)."""
        row = conn.execute("SELECT (SELECT value FROM meta WHERE key = 'vec_epoch'), "
                           "(SELECT version FROM vec_versions WHERE user_id = ?)",
                           (user_id,)).fetchone()
        return int(row[0] or 0), int(row[1] or 0)

    @contextmanager
    def _vec_write(self) -> Iterator[tuple[Any, list[tuple]]]:
        """:meth:`_write` for transactions that change vectors: yields ``(conn,
        patches)``; :meth:`_bump` records each user's change, and after the commit the
        cached matrices are patched (after a rollback the touched users' entries are
        dropped)."""
        patches: list[tuple] = []
        ok = False
        try:
            with self._write() as conn:
                yield conn, patches
            ok = True
        finally:
            if patches:
                self._matrices.finish(patches, ok)

    def _bump(self, conn: Any, patches: list[tuple], user_id: str,
              ops: list[tuple] | None) -> None:
        """Inside a :meth:`_vec_write` transaction: increment ``user_id``'s vector
        version and record ``ops`` (see :meth:`_Matrix.apply`; None = drop the cached
        matrix) for the patch after the commit. Until then searches of this process wait
        for the patch instead of rebuilding (``pending``)."""
        version = conn.execute(
            "INSERT INTO vec_versions(user_id, version) VALUES (?, 1) ON CONFLICT(user_id) "
            "DO UPDATE SET version = version + 1 RETURNING version", (user_id,)).fetchall()[0][0]
        key = (int(self._meta(conn, "vec_epoch") or 0), int(version))
        self._matrices.begin(user_id)
        patches.append((user_id, key, ops))

    @staticmethod
    def _snapshot(entry: _Matrix, types: list[str]) -> tuple:
        codes = None
        if types:
            codes = np.array([entry.vocab[t] for t in types if t in entry.vocab], dtype=np.int32)
        return entry.buf, entry.n, entry.ids, entry.tcodes, entry.exp, codes

    def _matrix_snapshot(self, conn: Any, user_id: str, dim: int,
                         types: list[str]) -> tuple | None:
        """Inside a read transaction: the user's cached matrix at the current version
        (rebuilt if stale or missing), or None when the user is below
        :data:`MATRIX_MIN_ROWS` memories or over :data:`MATRIX_BUDGET_BYTES`."""
        key = self._vec_key(conn, user_id)
        cache = self._matrices
        cache._check_pid()
        with cache.lock:
            deadline = time.monotonic() + _PATCH_WAIT_S
            while True:
                entry = cache.get(user_id, key)
                if entry is not None and entry.buf.shape[1] == dim:
                    return self._snapshot(entry, types)
                # a write of this process has committed (or is about to) and will patch
                # the entry: waiting costs less than a rebuild
                left = deadline - time.monotonic()
                if user_id not in cache.entries or not cache.pending.get(user_id) or left <= 0:
                    break
                cache.cond.wait(left)
        count = conn.execute("SELECT COUNT(*) FROM (SELECT 1 FROM memories WHERE user_id = ? "
                             "LIMIT ?)", (user_id, MATRIX_MIN_ROWS)).fetchone()[0]
        if count < MATRIX_MIN_ROWS:
            return None
        total = conn.execute("SELECT COUNT(*) FROM memories WHERE user_id = ?",
                             (user_id,)).fetchone()[0]
        if (int(total * 1.125) + 256) * dim * 4 > MATRIX_BUDGET_BYTES:
            return None
        entry = self._build_matrix(conn, user_id, key, dim, total)
        with cache.lock:
            self.matrix_rebuilds += 1
            cache.install(user_id, entry)
            return self._snapshot(entry, types)

    def _build_matrix(self, conn: Any, user_id: str, key: tuple[int, int], dim: int,
                      total: int) -> _Matrix:
        """Read ``user_id``'s vectors into a new :class:`_Matrix` with 12.5% spare rows.

        Vectors come from vec0 by rowid point lookups (~4 µs each): a vec0 scan filtered by
        the partition key is not pushed down and reads every user's chunks (measured
        0.26 s for a 100-row user next to a 100k-row one). Measured ~1.0 s for 100k
        512-dim vectors: 0.37 s lookups, ~0.4 s first-touch copy of the 230 MB matrix.
        """
        cap = int(total * 1.125) + 256
        buf = np.empty((cap, dim), dtype=np.float32)
        ids: list[str] = []
        types: list[str] = []
        exp: list[int] = []
        rows = conn.execute("SELECT rid, id, type, expires_at FROM memories WHERE user_id = ? "
                            "ORDER BY rid", (user_id,)).fetchall()
        n = 0
        blobs: list[bytes] = []

        def flush() -> None:  # copy + normalise a block of rows (no 200 MB temporaries)
            nonlocal n
            if blobs:
                block = buf[n:n + len(blobs)]
                block[:] = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(-1, dim)
                _unit_rows(block)
                n += len(blobs)
                blobs.clear()

        for rid, mid, mtype, mexp in rows[:cap]:
            got = conn.execute("SELECT embedding FROM vec_memories WHERE rowid = ?",
                               (rid,)).fetchone()
            if got is None:
                continue
            blobs.append(got[0])
            ids.append(mid)
            types.append(mtype)
            exp.append(NEVER if mexp is None else mexp)
            if len(blobs) == 4096:
                flush()
        flush()
        id_arr = np.empty(n, dtype=object)
        id_arr[:] = ids
        return _Matrix(key, buf, n, id_arr, types, np.array(exp, dtype=np.int64))

    @staticmethod
    def _matrix_topk(snap: tuple, query: np.ndarray, k: int, now: int) -> list[tuple[str, float]]:
        """Exact cosine top-k over a matrix snapshot; live/type masks before top-k."""
        buf, n, ids, tcodes, exp, codes = snap
        live = exp > now
        if codes is not None:
            live &= np.isin(tcodes, codes)
        count = int(np.count_nonzero(live))
        if count == 0:
            return []
        sims = buf[:n] @ query
        if count <= k:
            sel = np.flatnonzero(live)
        else:
            sel = np.argpartition(np.where(live, -sims, np.inf), k - 1)[:k]
        dist = np.float32(1.0) - sims[sel]
        order = np.lexsort((sel, dist))
        return [(ids[i], float(d)) for i, d in zip(sel[order].tolist(), dist[order].tolist())]

    # ---- memories -----------------------------------------------------------------------
    def insert_memories(self, records: list[MemoryRecord],
                        history: list[HistoryEvent] | None = None) -> None:
        """Insert ``records`` (each with an embedding of the store's dimension) and
        ``history`` in one transaction: base, vector and FTS rows together.

        An id that exists for the same user is replaced (its old rows are deleted first);
        an id that exists for another user, a record without embedding, of the wrong
        dimension, with non-JSON metadata or invalid text raises ValueError and nothing is
        written. A repeated id within the batch keeps the last record. Raises StoreError
        (nothing written) when SQLite fails, e.g. the database stays locked.
        """
        records = list(records or [])
        history_rows = [self._history_row(ev) for ev in (history or [])]
        if not records and not history_rows:
            return
        dim = self._require_dim() if records else 0
        prepared: dict[str, tuple] = {}
        for rec in records:
            row = self._memory_row(rec)
            blob = self._blob(rec.embedding, dim, f"embedding of memory {rec.id}")
            if rec.id in prepared and prepared[rec.id][0][1] != row[1]:
                raise ValueError(f"memory id {rec.id} appears twice with different users")
            prepared.pop(rec.id, None)
            prepared[rec.id] = (row, blob, (index_text(row[2]),
                                            index_text(context_of(rec.metadata))))
        with self._vec_write() as (conn, patches):
            if prepared:
                ids = list(prepared)
                old_rids: list[int] = []
                for chunk in _chunks(ids):
                    q = f"SELECT id, user_id, rid FROM memories WHERE id IN ({', '.join('?' * len(chunk))})"
                    for mid, owner, rid in conn.execute(q, chunk):
                        if owner != prepared[mid][0][1]:
                            raise ValueError(f"memory id {mid} already belongs to another user")
                        old_rids.append(rid)
                self._delete_rows(conn, old_rids)
                start = conn.execute("SELECT COALESCE(MAX(rid), 0) FROM memories").fetchone()[0] + 1
                base, vec, fts = [], [], []
                for offset, (row, blob, body) in enumerate(prepared.values()):
                    rid = start + offset
                    base.append((rid, *row))
                    expires = row[12] if row[12] is not None else NEVER
                    vec.append((rid, row[1], blob, row[3], expires))
                    fts.append((rid, user_token(row[1]), *body))
                conn.executemany(f"INSERT INTO memories({_MEM_COLS}) VALUES "
                                 f"({', '.join('?' * 15)})", base)
                conn.executemany("INSERT INTO vec_memories(rowid, user_id, embedding, type, "
                                 "expires_at) VALUES (?, ?, ?, ?, ?)", vec)
                conn.executemany("INSERT INTO memories_fts(rowid, user_tok, body, context) "
                                 "VALUES (?, ?, ?, ?)", fts)
                for user in dict.fromkeys(row[1] for row, _, _ in prepared.values()):
                    ops = [("add", row[0], _unit(blob), row[3],
                            NEVER if row[12] is None else row[12])
                           for row, blob, _ in prepared.values() if row[1] == user]
                    self._bump(conn, patches, user, ops)
            self._insert_history(conn, history_rows)

    def update_memory(self, user_id: str, memory_id: str, *, text: str | None = None,
                      embedding: list[float] | None = None,
                      fields: dict[str, Any] | None = None,
                      history: HistoryEvent | None = None) -> bool:
        """Change one memory of ``user_id`` (expired ones included, so an expiry can be
        lifted); base, vector, FTS rows and the history event in one transaction.

        ``text`` requires ``embedding``; ``embedding`` alone re-embeds. ``fields`` may set
        type, importance, tags, metadata, expires_at, updated_at, created_at,
        last_accessed_at, access_count, thread_id, source; ``updated_at`` defaults to now
        whenever something changes. Returns False (nothing written) if ``user_id`` has no
        such memory. Raises ValueError for unknown fields or bad values.
        """
        user_id = _user(user_id)
        fields = dict(fields or {})
        unknown = set(fields) - set(_UPDATABLE)
        if unknown:
            raise ValueError(f"cannot update field(s): {', '.join(sorted(unknown))}")
        if text is not None and embedding is None:
            raise ValueError("a new text needs its new embedding")
        sets: dict[str, Any] = {}
        for key, value in fields.items():
            if key in ("tags",):
                sets[key] = _json(list(value or []), key)
            elif key == "metadata":
                sets[key] = _json(dict(value or {}), key)
            elif key in ("expires_at", "last_accessed_at"):
                sets[key] = _ts(value)
            elif key in ("updated_at", "created_at"):
                if value is None:
                    raise ValueError(f"{key} cannot be None")
                sets[key] = _ts(value)
            elif key in ("importance", "access_count"):
                sets[key] = int(value)
            elif key == "type":
                sets[key] = _text(value, key)
            elif key == "source":
                sets[key] = _text(value, key)
            else:  # thread_id
                sets[key] = None if value is None else _text(value, key)
        body = None
        if text is not None:
            sets["text"] = _text(text, "text")
            body = index_text(text)
        blob = self._blob(embedding, self._require_dim()) if embedding is not None else None
        sets.setdefault("updated_at", self._now())
        history_rows = [self._history_row(history)] if history is not None else []
        with self._vec_write() as (conn, patches):
            row = conn.execute("SELECT rid, type, expires_at FROM memories "
                               "WHERE user_id = ? AND id = ?", (user_id, memory_id)).fetchone()
            if row is None:
                return False
            rid = row[0]
            assignments = ", ".join(f"{k} = ?" for k in sets)
            conn.execute(f"UPDATE memories SET {assignments} WHERE rid = ? AND user_id = ?",
                         (*sets.values(), rid, user_id))
            if body is not None:
                conn.execute("UPDATE memories_fts SET body = ? WHERE rowid = ?", (body, rid))
            if "metadata" in fields:
                conn.execute("UPDATE memories_fts SET context = ? WHERE rowid = ?",
                             (index_text(context_of(dict(fields["metadata"] or {}))), rid))
            new_type = sets.get("type", row[1])
            new_expires = sets.get("expires_at", row[2])
            vec_expires = NEVER if new_expires is None else new_expires
            ops: list[tuple] = []
            if self._vec_table_dim(conn) is not None:
                exists = conn.execute("SELECT rowid FROM vec_memories WHERE rowid = ?",
                                      (rid,)).fetchone() is not None
                if blob is not None and not exists:
                    conn.execute("INSERT INTO vec_memories(rowid, user_id, embedding, type, "
                                 "expires_at) VALUES (?, ?, ?, ?, ?)",
                                 (rid, user_id, blob, new_type, vec_expires))
                elif exists:
                    if blob is not None:
                        conn.execute("UPDATE vec_memories SET embedding = ? WHERE rowid = ?",
                                     (blob, rid))
                    if "type" in sets:
                        conn.execute("UPDATE vec_memories SET type = ? WHERE rowid = ?",
                                     (new_type, rid))
                    if "expires_at" in sets:
                        conn.execute("UPDATE vec_memories SET expires_at = ? WHERE rowid = ?",
                                     (vec_expires, rid))
                if blob is not None:
                    ops.append(("add", memory_id, _unit(blob), new_type, vec_expires))
                elif exists:
                    ops.append(("set", memory_id, new_type if "type" in sets else None,
                                vec_expires if "expires_at" in sets else None))
            if blob is not None or "type" in sets or "expires_at" in sets:
                self._bump(conn, patches, user_id, ops)
            self._insert_history(conn, history_rows)
        return True

    def delete_memory(self, user_id: str, memory_id: str,
                      history: HistoryEvent | None = None) -> bool:
        """Delete one memory of ``user_id`` (base, vector and FTS rows) and record
        ``history`` in the same transaction. Returns False if ``user_id`` has no such
        memory (then no history is written either)."""
        user_id = _user(user_id)
        history_rows = [self._history_row(history)] if history is not None else []
        with self._vec_write() as (conn, patches):
            row = conn.execute("SELECT rid FROM memories WHERE user_id = ? AND id = ?",
                               (user_id, memory_id)).fetchone()
            if row is None:
                return False
            self._delete_rows(conn, [row[0]])
            self._bump(conn, patches, user_id, [("kill", memory_id)])
            self._insert_history(conn, history_rows)
        return True

    def delete_user_memories(self, user_id: str) -> int:
        """Delete every memory (base/vector/FTS rows), history event and the profile of
        ``user_id`` only, in one transaction. Threads are kept. Returns how many memories
        were deleted."""
        user_id = _user(user_id)
        with self._vec_write() as (conn, patches):
            rids = [r[0] for r in conn.execute("SELECT rid FROM memories WHERE user_id = ?",
                                               (user_id,))]
            self._delete_rows(conn, rids)
            conn.execute("DELETE FROM history WHERE user_id = ?", (user_id,))
            conn.execute("DELETE FROM profiles WHERE user_id = ?", (user_id,))
            self._bump(conn, patches, user_id, None)
        return len(rids)

    def get_memory(self, user_id: str, memory_id: str,
                   with_embedding: bool = False) -> MemoryRecord | None:
        """Return one live memory of ``user_id`` or None (absent, expired or another
        user's). With ``with_embedding`` the vector is read back (float32 precision)."""
        with self._read() as conn:
            row = conn.execute(f"SELECT {_MEM_COLS} FROM memories WHERE user_id = ? AND id = ? "
                               f"AND {self._live()}", (user_id, memory_id, self._now())).fetchone()
            return None if row is None else self._records(conn, [row], with_embedding)[0]

    def get_memories(self, user_id: str, ids: list[str]) -> list[MemoryRecord]:
        """Return the live memories of ``user_id`` among ``ids`` (unknown ids and other
        users' ids are skipped), in no particular order."""
        ids = list(dict.fromkeys(ids or []))
        out: list[MemoryRecord] = []
        now = self._now()
        with self._read() as conn:
            for chunk in _chunks(ids):
                # "+user_id": drive the lookup from the UNIQUE id index, not the
                # per-user index (4.6 ms -> 0.08 ms per call at 30k memories/user)
                q = (f"SELECT {_MEM_COLS} FROM memories WHERE +user_id = ? AND "
                     f"id IN ({', '.join('?' * len(chunk))}) AND {self._live()}")
                out.extend(self._record(r) for r in conn.execute(q, (user_id, *chunk, now)))
        return out

    _ORDERS = {
        "created_desc": "created_at DESC, rid DESC",
        "created_asc": "created_at ASC, rid ASC",
        "accessed_desc": ("access_count DESC, last_accessed_at IS NULL, last_accessed_at DESC, "
                          "created_at DESC, rid DESC"),
    }

    def list_memories(self, user_id: str, *, limit: int = 100, offset: int = 0,
                      types: list[str] | None = None,
                      since: datetime | None = None, until: datetime | None = None,
                      order: str = "created_desc",
                      with_embedding: bool = False) -> list[MemoryRecord]:
        """Return live memories of ``user_id``: ``types`` (None or [] = all types),
        ``since <= created_at <= until`` (both inclusive, either optional), ordered by
        ``order`` (``created_desc``, ``created_asc``, ``accessed_desc``), paged by
        ``limit``/``offset``. Raises ValueError for an unknown order or negative paging."""
        if order not in self._ORDERS:
            raise ValueError(f"unknown order {order!r}; use one of {', '.join(self._ORDERS)}")
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must be >= 0")
        type_sql, type_args = self._types_clause(types, "type")
        sql = f"SELECT {_MEM_COLS} FROM memories WHERE user_id = ? AND {self._live()}{type_sql}"
        args: list[Any] = [user_id, self._now(), *type_args]
        if since is not None:
            sql += " AND created_at >= ?"
            args.append(_ts(since))
        if until is not None:
            sql += " AND created_at <= ?"
            args.append(_ts(until))
        sql += f" ORDER BY {self._ORDERS[order]} LIMIT ? OFFSET ?"
        args += [limit, offset]
        with self._read() as conn:
            return self._records(conn, conn.execute(sql, args).fetchall(), with_embedding)

    def count_memories(self, user_id: str, types: list[str] | None = None) -> int:
        """Return how many live memories ``user_id`` has (``types`` None or [] = all)."""
        type_sql, type_args = self._types_clause(types, "type")
        with self._read() as conn:
            return conn.execute(f"SELECT COUNT(*) FROM memories WHERE user_id = ? AND "
                                f"{self._live()}{type_sql}",
                                (user_id, self._now(), *type_args)).fetchone()[0]

    def vector_search(self, user_id: str, embedding: list[float], k: int,
                      types: list[str] | None = None) -> list[tuple[str, float]]:
        """Return up to ``k`` (≤ :data:`MAX_K`) ``(memory_id, cosine_distance)`` of
        ``user_id``'s live memories, nearest first (distance in [0, 2]).

        Users with ≥ :data:`MATRIX_MIN_ROWS` memories: exact cosine over this process's
        cached float32 matrix of the user (``X @ q`` + ``argpartition``; type and expiry
        masks applied before the top-k; ties by storage order), checked against the
        user's vector version in the same read transaction and rebuilt when stale.
        Others: the vec0 KNN scan, where the user (partition key), the type filter and
        the expiry filter are constraints of the scan itself. Either way k live rows come
        back whenever the user owns k, with the same ids and distances (float32, ±1e-6).
        Raises ValueError for an embedding of the wrong dimension.
        """
        if k <= 0:
            return []
        dim = self._require_dim()
        blob = self._blob(embedding, dim, "query embedding")
        type_sql, type_args = self._types_clause(types, "type")
        k, now = min(int(k), MAX_K), self._now()
        with self._read() as conn:
            snap = self._matrix_snapshot(conn, user_id, dim, type_args)
            if snap is None:
                return self._vec0_search(conn, user_id, blob, k, now, type_sql, type_args)
        return self._matrix_topk(snap, _unit(blob), k, now)

    def _vec0_search(self, conn: Any, user_id: str, blob: bytes, k: int, now: int,
                     type_sql: str, type_args: list[str]) -> list[tuple[str, float]]:
        """The vec0 KNN scan (partition key, type and expiry constraints inside it)."""
        sql = ("WITH knn AS (SELECT rowid, distance FROM vec_memories WHERE embedding MATCH ? "
               f"AND k = ? AND user_id = ? AND expires_at > ?{type_sql}) "
               "SELECT m.id, knn.distance FROM knn JOIN memories m ON m.rid = knn.rowid "
               "WHERE m.user_id = ? ORDER BY knn.distance")
        rows = conn.execute(sql, (blob, k, user_id, now, *type_args, user_id)).fetchall()
        return [(mid, float(dist)) for mid, dist in rows]

    def text_search(self, user_id: str, query: str, k: int,
                    types: list[str] | None = None) -> list[tuple[str, float]]:
        """BM25 search of ``user_id``'s live memories: up to ``k`` ``(memory_id, score)``,
        best first; score = ``-bm25`` (higher is better, > 0). ``query`` is raw user text
        (see :func:`memory.textsearch.match_query`); returns [] when it has no term.

        Without a type filter, the best ``2k + 16`` FTS candidates are ranked first and
        only those are joined to ``memories`` for the user/expiry check (about 25% less
        CPU at 10k memories than joining every match); if expired rows leave fewer than
        ``k`` while more candidates exist, the exact full join runs instead. With a type
        filter the full join runs directly. Both give the same result.
        """
        if k <= 0:
            return []
        terms = match_query(query)
        if terms is None:
            return []
        k = int(k)
        expr = f'user_tok : "{user_token(user_id)}" AND {{body context}} : ({terms})'
        now = self._now()
        with self._read() as conn:
            if not types:
                pool = 2 * k + 16
                rows = conn.execute(
                    "SELECT m.id, -f.score, m.expires_at FROM (SELECT rowid, "
                    "bm25(memories_fts, 0.0, 1.0, ?) AS score FROM memories_fts WHERE "
                    "memories_fts MATCH ? ORDER BY score, rowid DESC LIMIT ?) f "
                    "CROSS JOIN memories m ON m.rid = f.rowid WHERE +m.user_id = ? "
                    "ORDER BY f.score, f.rowid DESC", (CONTEXT_WEIGHT, expr, pool, user_id)).fetchall()
                live = [(mid, float(score)) for mid, score, exp in rows if exp is None or exp > now]
                if len(live) >= k or len(rows) < pool:
                    return live[:k]
            type_sql, type_args = self._types_clause(types, "m.type")
            rows = conn.execute(
                "SELECT m.id, -bm25(memories_fts, 0.0, 1.0, ?) AS score FROM memories_fts "
                "CROSS JOIN memories m ON m.rid = memories_fts.rowid "
                f"WHERE memories_fts MATCH ? AND +m.user_id = ? AND {self._live('m')}{type_sql} "
                "ORDER BY score DESC, m.rid DESC LIMIT ?",
                (CONTEXT_WEIGHT, expr, user_id, now, *type_args, k)).fetchall()
        return [(mid, float(score)) for mid, score in rows]

    def touch_memories(self, user_id: str, ids: list[str], at: datetime) -> None:
        """Set ``last_accessed_at = at`` and increment ``access_count`` (once per
        distinct id) of ``user_id``'s memories among ``ids``."""
        ids = list(dict.fromkeys(ids or []))
        if not ids:
            return
        stamp = _ts(at)
        with self._write() as conn:
            conn.executemany("UPDATE memories SET last_accessed_at = ?, "
                             "access_count = access_count + 1 WHERE user_id = ? AND id = ?",
                             [(stamp, user_id, mid) for mid in ids])

    @staticmethod
    def _event(row: tuple) -> HistoryEvent:
        hid, memory_id, user_id, event, old_text, new_text, actor, at = row
        return HistoryEvent(memory_id=memory_id, user_id=user_id, event=event, old_text=old_text,
                            new_text=new_text, actor=actor, at=_dt(at), id=hid)  # type: ignore[arg-type]

    _HIST_COLS = "id, memory_id, user_id, event, old_text, new_text, actor, at"

    def history(self, user_id: str, memory_id: str) -> list[HistoryEvent]:
        """Return the history of one memory of ``user_id``, oldest first (by ``at``,
        then insertion order); [] if none."""
        with self._read() as conn:
            rows = conn.execute(f"SELECT {self._HIST_COLS} FROM history WHERE user_id = ? "
                                "AND memory_id = ? ORDER BY at, seq", (user_id, memory_id))
            return [self._event(r) for r in rows.fetchall()]

    def add_history(self, events: list[HistoryEvent]) -> None:
        """Append history events in one transaction; an event id already stored for the
        same user is skipped (re-imports are idempotent)."""
        rows = [self._history_row(ev) for ev in (events or [])]
        if rows:
            with self._write() as conn:
                self._insert_history(conn, rows)

    # ---- profile ------------------------------------------------------------------------
    def get_profile(self, user_id: str) -> tuple[str, datetime | None]:
        """Return ``(profile_text, updated_at)`` or ``("", None)``."""
        with self._read() as conn:
            row = conn.execute("SELECT text, updated_at FROM profiles WHERE user_id = ?",
                               (user_id,)).fetchone()
        return ("", None) if row is None else (row[0], _dt(row[1]))

    def set_profile(self, user_id: str, text: str, at: datetime) -> None:
        """Store (replace) the profile text of ``user_id``."""
        args = (_user(user_id), _text(text, "profile"), _ts(at))
        with self._write() as conn:
            conn.execute("INSERT INTO profiles(user_id, text, updated_at) VALUES (?, ?, ?) "
                         "ON CONFLICT(user_id) DO UPDATE SET text = excluded.text, "
                         "updated_at = excluded.updated_at", args)

    # ---- threads ------------------------------------------------------------------------
    _THREAD_COLS = "id, user_id, title, created_at, updated_at, summary, summarized_upto"

    @staticmethod
    def _thread(row: tuple) -> Thread:
        tid, user_id, title, created, updated, summary, upto = row
        return Thread(id=tid, user_id=user_id, title=title, created_at=_dt(created),  # type: ignore[arg-type]
                      updated_at=_dt(updated), summary=summary,  # type: ignore[arg-type]
                      summarized_upto=int(upto))

    def upsert_thread(self, thread: Thread) -> None:
        """Insert a thread or update its title, updated_at, summary and summarized_upto.
        Raises ValueError if the id belongs to another user's thread."""
        args = (_text(thread.id, "thread id"), _user(thread.user_id), _text(thread.title, "title"),
                _ts(thread.created_at), _ts(thread.updated_at), _text(thread.summary or "", "summary"),
                int(thread.summarized_upto))
        with self._write() as conn:
            cur = conn.execute(
                f"INSERT INTO threads({self._THREAD_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET title = excluded.title, "
                "updated_at = excluded.updated_at, summary = excluded.summary, "
                "summarized_upto = excluded.summarized_upto "
                "WHERE threads.user_id = excluded.user_id", args)
            if cur.rowcount == 0:
                raise ValueError(f"thread id {thread.id} belongs to another user")

    def get_thread(self, user_id: str, thread_id: str) -> Thread | None:
        """Return one thread of ``user_id`` or None."""
        with self._read() as conn:
            row = conn.execute(f"SELECT {self._THREAD_COLS} FROM threads WHERE user_id = ? "
                               "AND id = ?", (user_id, thread_id)).fetchone()
        return None if row is None else self._thread(row)

    def list_threads(self, user_id: str, limit: int = 100) -> list[Thread]:
        """Return up to ``limit`` threads of ``user_id``, most recently updated first."""
        with self._read() as conn:
            rows = conn.execute(f"SELECT {self._THREAD_COLS} FROM threads WHERE user_id = ? "
                                "ORDER BY updated_at DESC, created_at DESC, rowid DESC LIMIT ?",
                                (user_id, max(0, int(limit)))).fetchall()
        return [self._thread(r) for r in rows]

    def delete_thread(self, user_id: str, thread_id: str) -> bool:
        """Delete one thread of ``user_id`` and its messages (memories are kept).
        Returns False if ``user_id`` has no such thread."""
        with self._write() as conn:
            conn.execute("DELETE FROM messages WHERE user_id = ? AND thread_id = ?",
                         (user_id, thread_id))
            cur = conn.execute("DELETE FROM threads WHERE user_id = ? AND id = ?",
                               (user_id, thread_id))
            return cur.rowcount > 0

    _MSG_COLS = "id, thread_id, user_id, role, content, seq, created_at, metadata"

    @staticmethod
    def _message(row: tuple) -> Message:
        mid, tid, user_id, role, content, seq, created, metadata = row
        return Message(id=mid, thread_id=tid, user_id=user_id, role=role, content=content,
                       seq=int(seq), created_at=_dt(created),  # type: ignore[arg-type]
                       metadata=json.loads(metadata))

    def add_message(self, message: Message) -> Message:
        """Append ``message`` to its thread: ``seq`` = previous max + 1 (0 for the first),
        thread ``updated_at`` raised to the message's ``created_at``. Returns the stored
        message. Re-adding an id already stored in the same thread returns the stored
        message unchanged. Raises ValueError if the thread is not ``message.user_id``'s
        or the id is used elsewhere."""
        user_id = _user(message.user_id)
        created = _ts(message.created_at)
        content = _text(message.content, "content")
        role = _text(message.role, "role")
        metadata = _json(dict(message.metadata or {}), "metadata")
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM threads WHERE user_id = ? AND id = ?",
                            (user_id, message.thread_id)).fetchone() is None:
                raise ValueError(f"thread {message.thread_id} does not exist for this user")
            old = conn.execute(f"SELECT {self._MSG_COLS} FROM messages WHERE id = ?",
                               (message.id,)).fetchone()
            if old is not None:
                if old[1] == message.thread_id and old[2] == user_id:
                    return self._message(old)
                raise ValueError(f"message id {message.id} is already used")
            seq = conn.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM messages WHERE thread_id = ?",
                               (message.thread_id,)).fetchone()[0]
            conn.execute(f"INSERT INTO messages({self._MSG_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (message.id, message.thread_id, user_id, role, content, seq, created,
                          metadata))
            conn.execute("UPDATE threads SET updated_at = MAX(updated_at, ?) "
                         "WHERE user_id = ? AND id = ?", (created, user_id, message.thread_id))
        return replace(message, seq=seq)

    def get_messages(self, user_id: str, thread_id: str, *, after_seq: int = -1,
                     limit: int | None = None) -> list[Message]:
        """Return messages of ``user_id``'s thread with ``seq > after_seq``, oldest first;
        with ``limit``, only the last ``limit`` of them."""
        sql = (f"SELECT {self._MSG_COLS} FROM messages WHERE user_id = ? AND thread_id = ? "
               "AND seq > ? ORDER BY seq DESC")
        args: list[Any] = [user_id, thread_id, int(after_seq)]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(max(0, int(limit)))
        with self._read() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [self._message(r) for r in reversed(rows)]

    # ---- admin --------------------------------------------------------------------------
    def reset_vector_index(self, embedder_id: str, dim: int) -> None:
        """Drop every stored vector and recreate the vector index for ``dim``, recording
        ``embedder_id``/``dim``. Memories, history and FTS rows are kept; vector search
        finds nothing until ``set_embeddings`` has been called."""
        embedder_id, dim = self._check_embedder(embedder_id, dim)
        with self._write() as conn:
            self._create_vec_table(conn, dim)
            self._set_meta(conn, "embedder_id", embedder_id)
            self._set_meta(conn, "dim", str(dim))
        self._dim = dim
        self._matrices.clear()

    def set_embeddings(self, user_id: str, items: list[tuple[str, list[float]]]) -> None:
        """Write new vectors ``(memory_id, vector)`` of ``user_id``'s memories in one
        transaction (expired ones too). Unknown ids and other users' ids are ignored.
        Raises ValueError (nothing written) for a vector of the wrong dimension."""
        user_id = _user(user_id)
        dim = self._require_dim()
        blobs = {mid: self._blob(vec, dim, f"embedding of memory {mid}") for mid, vec in items or []}
        if not blobs:
            return
        with self._vec_write() as (conn, patches):
            rows = []
            for chunk in _chunks(list(blobs)):
                q = (f"SELECT rid, id, type, expires_at FROM memories WHERE user_id = ? "
                     f"AND id IN ({', '.join('?' * len(chunk))})")
                rows.extend(conn.execute(q, (user_id, *chunk)).fetchall())
            conn.executemany("DELETE FROM vec_memories WHERE rowid = ?", [(r[0],) for r in rows])
            conn.executemany(
                "INSERT INTO vec_memories(rowid, user_id, embedding, type, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(rid, user_id, blobs[mid], mtype, NEVER if exp is None else exp)
                 for rid, mid, mtype, exp in rows])
            ops = [("add", mid, _unit(blobs[mid]), mtype, NEVER if exp is None else exp)
                   for _, mid, mtype, exp in rows]
            self._bump(conn, patches, user_id, ops)

    def user_ids(self) -> list[str]:
        """Return every user id with memories, history, a profile or threads (sorted)."""
        with self._read() as conn:
            rows = conn.execute("SELECT user_id FROM memories UNION SELECT user_id FROM history "
                                "UNION SELECT user_id FROM profiles UNION SELECT user_id FROM "
                                "threads ORDER BY 1").fetchall()
        return [r[0] for r in rows]

    def iter_memories(self, user_id: str, batch: int = 500,
                      with_embedding: bool = True) -> Iterator[list[MemoryRecord]]:
        """Yield all memories of ``user_id`` (expired ones included) in lists of at most
        ``batch``, ordered by id (keyset paging, so concurrent inserts do not repeat rows).
        Raises ValueError if ``batch < 1``."""
        if batch < 1:
            raise ValueError("batch must be >= 1")
        last = ""
        while True:
            with self._read() as conn:
                rows = conn.execute(f"SELECT {_MEM_COLS} FROM memories WHERE user_id = ? "
                                    "AND id > ? ORDER BY id LIMIT ?",
                                    (user_id, last, int(batch))).fetchall()
                records = self._records(conn, rows, with_embedding)
            if not records:
                return
            last = records[-1].id
            yield records
            if len(records) < batch:
                return

    def all_history(self, user_id: str) -> list[HistoryEvent]:
        """Return every history event of ``user_id``, oldest first."""
        with self._read() as conn:
            rows = conn.execute(f"SELECT {self._HIST_COLS} FROM history WHERE user_id = ? "
                                "ORDER BY at, seq", (user_id,)).fetchall()
        return [self._event(r) for r in rows]
