"""Offline checks of how the TiDB store fails: write conflicts retried on the documented
error codes then given up, transient cluster errors and lost connections retried only
before COMMIT, an unreachable server and a missing full-text index reported clearly, bad
input refused before any SQL."""
from __future__ import annotations

import socket

import pymysql
import pytest
import sqlalchemy as sa

from memory.store import tidb
from memory.store.base import StoreError
from memory.store.tidb import (NO_FULLTEXT_NOTE, TiDBSQL, TiDBStore, build_schema,
                               connection_settings, is_retryable, run_with_retry)
from memory.store.tidb.retry import CommitFailed
from memory.types import MemoryRecord, Message
from tests.tidb_helpers import cfg


# ---- retry and errors ---------------------------------------------------------------
def _db_error(code: int) -> sa.exc.OperationalError:
    return sa.exc.OperationalError("COMMIT", {}, pymysql.err.OperationalError(code, "boom"))


def test_write_conflicts_are_retried_then_succeed():
    calls = []

    def tx():
        calls.append(1)
        if len(calls) < 3:
            raise _db_error(9007)
        return "done"

    assert run_with_retry(tx, max_wait=0.01) == "done"
    assert len(calls) == 3


@pytest.mark.parametrize("code, attempts", [(9007, 4), (8002, 4), (1062, 1), (1146, 1)])
def test_retry_gives_up_and_only_on_conflicts(code, attempts):
    calls = []

    def tx():
        calls.append(1)
        raise _db_error(code)

    with pytest.raises(sa.exc.OperationalError):
        run_with_retry(tx, attempts=4, max_wait=0.01)
    assert len(calls) == attempts


def test_unreachable_server_is_a_clear_store_error():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = TiDBStore.from_config(cfg(tidb_host="127.0.0.1", tidb_port=port))
    health = store.health()
    assert health["ok"] is False and "not open" in health["detail"]
    with pytest.raises(StoreError, match=rf"cannot connect to TiDB at 127\.0\.0\.1:{port}"):
        store.open("test-embedder", 8)
    with pytest.raises(StoreError, match="not open"):
        store.count_memories("u1")
    store.close()
    store.close()


def test_text_search_unavailable_note():
    store = TiDBStore(connection_settings(cfg(tidb_host="127.0.0.1")))
    assert store.fulltext_available is False
    assert store.text_search("u1", "anything", 5) == []
    assert "vector search only" in NO_FULLTEXT_NOTE and "full-text search not supported" in NO_FULLTEXT_NOTE


def test_store_rejects_bad_input_before_any_sql():
    """Validation happens before the database is touched (here there is none: any SQL
    would raise StoreError, so each ValueError proves the check came first)."""
    store = TiDBStore(connection_settings(cfg(tidb_host="127.0.0.1")))
    store._sql = TiDBSQL(build_schema(4))  # the state open() leaves, without a server
    ok = [0.5] * 4

    def rec(**kw):
        base = dict(id="a" * 32, user_id="u1", text="fine", embedding=ok)
        base.update(kw)
        return MemoryRecord(**base)

    bad = [
        (dict(embedding=None), "embedding of memory a+ is missing"),
        (dict(embedding=[0.5] * 5), "expects 4"),
        (dict(text="broken \ud800 text"), "lone surrogate"),
        (dict(metadata={"x": float("nan")}), "JSON"),
        (dict(user_id=""), "user_id"),
    ]
    for kw, message in bad:
        with pytest.raises(ValueError, match=message):
            store.insert_memories([rec(**kw)])
    with pytest.raises(ValueError, match="different users"):
        store.insert_memories([rec(), rec(user_id="u2")])
    with pytest.raises(ValueError, match="cannot update"):
        store.update_memory("u1", "a" * 32, fields={"user_id": "u2"})
    with pytest.raises(ValueError, match="needs its new embedding"):
        store.update_memory("u1", "a" * 32, text="new text")
    with pytest.raises(ValueError, match="user_id"):
        store.add_message(Message(id="m", thread_id="t", user_id="", role="user", content="x"))
    with pytest.raises(ValueError, match="order"):
        store.list_memories("u1", order="random")
    with pytest.raises(ValueError, match=">= 0"):
        store.list_memories("u1", limit=-1)
    with pytest.raises(StoreError, match="not open"):  # a valid call does reach the database
        store.insert_memories([rec()])


# ---- issue 8: the TiDB fixes, each checked offline --------------------------------
@pytest.mark.parametrize("code", [8002, 8005, 8022, 8028, 9007, 1213])
def test_every_documented_retryable_code_is_retried(code):
    calls = []

    def tx():
        calls.append(1)
        if len(calls) < 2:
            raise _db_error(code)
        return "ok"

    assert run_with_retry(tx, max_wait=0.01) == "ok" and len(calls) == 2
    assert tidb.RETRYABLE_ERROR_CODES == {8002, 8005, 8022, 8028, 9007, 1213}


# ---- issue 25, point 7: transient errors and lost connections ---------------------------
@pytest.mark.parametrize("code", [9001, 9002, 9005, 2006, 2013])
def test_transient_errors_and_lost_connections_are_retried(code):
    """TiDB 9001 (PD timeout), 9002 (TiKV timeout), 9005 (Region unavailable) and a lost
    connection (2006/2013) raised by a statement: nothing was committed, so the whole
    transaction runs again."""
    calls = []

    def tx():
        calls.append(1)
        if len(calls) < 2:
            raise _db_error(code)
        return "ok"

    assert run_with_retry(tx, max_wait=0.01) == "ok" and len(calls) == 2
    assert code in tidb.TRANSIENT_ERROR_CODES | tidb.LOST_CONNECTION_CODES


def test_a_connection_sqlalchemy_invalidated_counts_as_lost():
    exc = _db_error(0)
    assert not is_retryable(exc)
    exc.connection_invalidated = True  # SQLAlchemy's dialect recognised a disconnect
    assert is_retryable(exc)


@pytest.mark.parametrize("code, retried", [(9007, True), (8022, True), (8028, True),
                                           (9005, False), (9002, False), (2013, False)])
def test_after_a_failed_commit_only_definite_rollbacks_are_retried(code, retried):
    """COMMIT that failed with a timeout or a lost connection may have committed: the
    transaction is not run a second time (its outcome is reported as unknown)."""
    assert is_retryable(CommitFailed(_db_error(code))) is retried
    assert is_retryable(_db_error(code))  # raised by a statement before COMMIT: retried
