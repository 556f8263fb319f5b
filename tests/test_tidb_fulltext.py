"""Offline checks of the TiDB store's full-text set-up (issue 25, points 5 and 7): the
FULLTEXT index is created only on TiDB Cloud Starter/Essential and never with a TiFlash
replica as a side effect, ``open`` waits for the columnar replica before the first
probe, and ``TIDB_REQUIRE_FULLTEXT=1`` turns "not supported" into an error.

No server: every statement the store would send is compiled with the MySQL dialect by a
recording connection; the replica status, probe and clock are fakes."""
from __future__ import annotations

import pytest
from sqlalchemy.dialects import mysql

from memory.store.base import StoreError
from memory.store.tidb import NO_FULLTEXT_NOTE, TiDBSQL, TiDBStore, build_schema
from memory.store.tidb.indexes import (FULLTEXT_REPLICA_POLL_SECONDS,
                                       FULLTEXT_REPLICA_WAIT_SECONDS, NOT_OFFERED, Features)
from memory.store.tidb.settings import connection_settings
from tests.tidb_helpers import cfg

DIALECT = mysql.dialect()
STARTER = "gateway01.eu-central-1.prod.aws.tidbcloud.com"
#: a Starter private endpoint: ours by name, but not pytidb's host pattern, with which
#: pytidb's FullTextIndex.create would run SET TIFLASH REPLICA 1
STARTER_PRIVATE = "gateway01-privatelink.eu-central-1.prod.aws.tidbcloud.com"
DEDICATED = "tidb.a1b2c3d4.clusters.tidb-cloud.com"


class RecordingConn:
    """Compiles each statement (MySQL dialect); the index-existence query answers
    ``exists``; everything else is recorded and answers nothing."""

    def __init__(self, exists: bool = False):
        self.sql: list[str] = []
        self.exists = exists

    def execute(self, stmt, *args):
        text = " ".join(str(stmt.compile(dialect=DIALECT)).split())
        self.sql.append(text)
        answer = int(self.exists) if "information_schema.statistics" in text else None
        return type("Result", (), {"scalar": lambda self_: answer,
                                   "first": lambda self_: None})()


def _store(host: str, conn: RecordingConn, **settings) -> TiDBStore:
    store = TiDBStore(connection_settings(cfg(tidb_host=host, **settings)))
    store._sql = TiDBSQL(build_schema(4))
    store._tx = lambda what, fn: fn(conn)
    store._features = Features(serverless=host.endswith(".tidbcloud.com"))
    store._replica_progress = lambda: {"replica_count": 0, "available": False, "progress": 0.0}
    store.probes = []
    store._probe_fulltext = lambda: store.probes.append(1)
    return store


def _ddl(conn: RecordingConn) -> list[str]:
    return [s for s in conn.sql if "information_schema" not in s]


@pytest.mark.parametrize("host", ["10.0.0.5", DEDICATED, "127.0.0.1"])
def test_no_fulltext_ddl_and_no_replica_where_fulltext_is_not_offered(host):
    """Dedicated and self-managed TiDB do not serve full-text search: before the fix the
    store ran pytidb's FullTextIndex.create there, which adds a TiFlash replica, at every
    open and every 300 s from text_search."""
    conn = RecordingConn(exists=False)
    store = _store(host, conn)
    store._ensure_fulltext(wait=True)
    assert _ddl(conn) == [] and store.probes == []
    assert not store.fulltext_available and store._features.fulltext_error == NOT_OFFERED
    assert NO_FULLTEXT_NOTE in store._features.notes


def test_an_existing_index_is_probed_on_any_deployment():
    conn = RecordingConn(exists=True)  # e.g. created by an operator
    store = _store("10.0.0.5", conn)
    store._ensure_fulltext(wait=True)
    assert _ddl(conn) == [] and store.probes == [1] and store.fulltext_available


@pytest.mark.parametrize("host", [STARTER, STARTER_PRIVATE])
def test_starter_creates_the_index_with_the_replica_on_demand_only(host):
    conn = RecordingConn(exists=False)
    store = _store(host, conn)
    store._ensure_fulltext(wait=True)
    assert _ddl(conn) == ["CREATE FULLTEXT INDEX fts_idx_memories_text ON memories (text) "
                          "WITH PARSER MULTILINGUAL ADD_COLUMNAR_REPLICA_ON_DEMAND"]
    assert not any("TIFLASH REPLICA" in s for s in conn.sql)
    assert store.probes == [1] and store.fulltext_available


def _replica(states):
    """A fake ``_replica_progress`` returning ``states`` in turn (the last one forever)."""
    calls = []

    def progress():
        calls.append(1)
        available, pct = states[min(len(calls), len(states)) - 1]
        return {"replica_count": 1, "available": available, "progress": pct}

    return progress, calls


def test_open_waits_for_the_columnar_replica_before_the_first_probe():
    store = _store(STARTER, RecordingConn(exists=True))
    store._replica_progress, calls = _replica([(False, 0.1), (False, 0.5), (False, 0.9),
                                               (True, 1.0)])
    slept: list[float] = []
    store._sleep = slept.append  # a fake clock: nothing really sleeps
    store._ensure_fulltext(wait=True)
    assert len(calls) == 4 and slept == [FULLTEXT_REPLICA_POLL_SECONDS] * 3
    assert store.probes == [1] and store.fulltext_available


def test_the_replica_wait_is_bounded_and_the_reprobe_never_waits():
    store = _store(STARTER, RecordingConn(exists=True))
    store._replica_progress, calls = _replica([(False, 0.4)])
    slept: list[float] = []
    store._sleep = slept.append
    store._ensure_fulltext(wait=True)
    assert 0 < sum(slept) <= FULLTEXT_REPLICA_WAIT_SECONDS
    assert store.probes == [] and not store.fulltext_available
    assert "columnar replica not available yet (40% replicated)" in store._features.fulltext_error
    slept.clear()
    store._ensure_fulltext(wait=False)  # what text_search's re-probe calls
    assert slept == [] and store.probes == []


def test_require_fulltext_turns_the_skip_into_an_error():
    assert connection_settings(cfg(tidb_host="127.0.0.1")).require_fulltext is False
    store = _store("10.0.0.5", RecordingConn(), tidb_require_fulltext=True)
    assert store.settings.require_fulltext is True
    store._ensure_fulltext(wait=True)
    with pytest.raises(StoreError, match="TIDB_REQUIRE_FULLTEXT=1.*only on TiDB Cloud"):
        store._require_fulltext()
    _store("10.0.0.5", RecordingConn())._require_fulltext()  # off: a note, no error


def test_open_fails_when_fulltext_is_required_but_missing():
    """``open`` itself raises, so a contract test against such a cluster errors instead
    of skipping its full-text tests."""
    conn = RecordingConn()
    store = _store("10.0.0.5", conn, tidb_require_fulltext=True)
    store._connect = lambda: None
    store._detect_features = lambda: Features(serverless=False)
    store.migrate = lambda: []
    meta: dict[str, str] = {}
    store.get_meta, store.set_meta = meta.get, meta.__setitem__
    store._column_dim = lambda: 4
    with pytest.raises(StoreError, match="full-text search is required"):
        store.open("e", 4)
    store = _store("10.0.0.5", RecordingConn())
    store._connect, store.migrate, store._column_dim = (lambda: None), (lambda: []), (lambda: 4)
    store._detect_features = lambda: Features(serverless=False)
    store.get_meta, store.set_meta = meta.get, meta.__setitem__
    store.open("e", 4)  # without the setting the same cluster opens, vector search only
    assert NO_FULLTEXT_NOTE in store.health()["notes"]
