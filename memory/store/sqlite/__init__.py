"""The embedded store: one SQLite file with sqlite-vec (vectors) and FTS5 (BM25 text search).

Modules: ``driver`` (sqlite3 module with sqlite-vec, connections, private files),
``schema`` (DDL, layout), ``migrations`` (named steps), ``rows`` (row conversion),
``cache`` (in-process matrix for large users), ``connection`` (per-thread connections,
transactions), ``memories``, ``search``, ``threads`` (threads, messages, profiles),
``admin`` (vector index reset, re-embedding, iteration), ``resources`` (uploaded files' rows) and
``store`` (``SQLiteStore``).
"""
from __future__ import annotations

from memory.store.sqlite.driver import load_sqlite_module
from memory.store.sqlite.schema import CONTEXT_WEIGHT, MAX_K, NEVER, context_of, user_token
from memory.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore", "NEVER", "MAX_K", "CONTEXT_WEIGHT", "load_sqlite_module",
           "context_of", "user_token"]
