"""Shared helpers of the offline TiDB store tests: a Config with the TiDB settings given
(everything else unset, no .env file read), and a TiDBStore whose connection pool is an
SQLite file engine (real transactions and SAVEPOINTs, no TiDB server) with a table
``t (x INTEGER PRIMARY KEY)`` to write to."""
from __future__ import annotations

import sqlalchemy as sa

from memory.config import load_config


def cfg(**kw):
    """A ``memory.config.Config`` whose TiDB settings are the defaults below (no host,
    no URL, no CA, no user or password, port 4000, database memory_chat) updated by
    ``kw``; ``.env`` is not read. Raises ConfigError for invalid values."""
    base = dict(tidb_host=None, database_url=None, tidb_ssl_ca=None, tidb_username=None,
                tidb_password=None, tidb_port=4000, tidb_database="memory_chat")
    base.update(kw)
    return load_config(env_file=None, **base)


class FakeClient:
    """What TiDBStore uses of pytidb's TiDBClient: ``db_engine``, ``is_serverless``,
    ``disconnect()``."""

    def __init__(self, engine):
        self.db_engine = engine
        self.is_serverless = False

    def disconnect(self):
        self.db_engine.dispose()


def sqlite_engine(path):
    """A file SQLite engine with real SAVEPOINT support (pysqlite's own transaction
    handling is switched off, as SQLAlchemy's pysqlite docs describe)."""
    engine = sa.create_engine(f"sqlite:///{path}")

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN")

    return engine


def sqlite_store(tmp_path):
    """An "open" TiDBStore (local host, dim 4) on ``sqlite_engine(tmp_path / "tx.db")``
    with the table ``t``; close it when done."""
    from memory.store.tidb import TiDBSQL, TiDBStore, build_schema, connection_settings

    engine = sqlite_engine(tmp_path / "tx.db")
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    s = TiDBStore(connection_settings(cfg(tidb_host="127.0.0.1")))
    s._client = FakeClient(engine)
    s._sql = TiDBSQL(build_schema(4))
    return s


def put(store, x):
    store._tx("put", lambda c: c.execute(sa.text("INSERT INTO t (x) VALUES (:x)"), {"x": x}))


def rows(store):
    """Committed rows, read on a fresh connection (outside any transaction)."""
    with store.engine.connect() as c:
        return sorted(r[0] for r in c.execute(sa.text("SELECT x FROM t")))


def put(store, x):
    """Insert ``x`` into ``t`` through the store's ``_tx`` (one store call)."""
    store._tx("put", lambda c: c.execute(sa.text("INSERT INTO t (x) VALUES (:x)"), {"x": x}))


def rows(store):
    """Committed rows of ``t``, read on a fresh connection (outside any transaction)."""
    with store.engine.connect() as c:
        return sorted(r[0] for r in c.execute(sa.text("SELECT x FROM t")))
