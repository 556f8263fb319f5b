"""Which failures the TiDB store retries, and when (issue 25, point 7), without a TiDB
server: the store's pool is an SQLite file engine; TiDB's error codes come from fake
statement bodies (before COMMIT) and from an SQLAlchemy ``commit`` event (at COMMIT).
Covers the retry of one store call, ``RetryableStoreError`` out of ``transaction()``,
``run_in_transaction`` re-running a whole block, and too-large transactions."""
from __future__ import annotations

import pymysql
import pytest
import sqlalchemy as sa

from memory.store.base import StoreError
from memory.store.tidb import RetryableStoreError
from tests.tidb_helpers import put, rows, sqlite_store


@pytest.fixture
def store(tmp_path):
    s = sqlite_store(tmp_path)
    yield s
    s.close()


def _db_error(code: int, message: str = "boom") -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SQL", {}, pymysql.err.OperationalError(code, message))


def _fail_first_commits(store, code: int, times: int = 1) -> list[int]:
    """Make the next ``times`` COMMITs on the store's engine fail with ``code``: the
    listener runs just before the DBAPI commit and rolls the transaction back, as TiDB
    does when it refuses a COMMIT (for a lost connection the server ends the session)."""
    failed: list[int] = []

    @sa.event.listens_for(store.engine, "commit")
    def _commit(conn):
        if len(failed) < times:
            failed.append(code)
            conn.connection.dbapi_connection.execute("ROLLBACK")
            raise _db_error(code, "commit failed")

    return failed


def _flaky_put(x: int, code: int, failures: int = 1):
    """A ``_tx`` body that inserts ``x`` and then fails with ``code`` the first
    ``failures`` times (its insert rolled back with it)."""
    calls: list[int] = []

    def fn(c):
        calls.append(1)
        c.execute(sa.text("INSERT INTO t (x) VALUES (:x)"), {"x": x})
        if len(calls) <= failures:
            raise _db_error(code)

    return fn, calls


@pytest.mark.parametrize("code", [2013, 2006, 9001, 9002, 9005, 9007, 1213])
def test_failures_before_commit_are_retried_on_a_fresh_transaction(store, code):
    fn, calls = _flaky_put(1, code)
    store._tx("put", fn)
    assert len(calls) == 2 and rows(store) == [1]  # the first attempt left nothing


@pytest.mark.parametrize("code", [2013, 9002, 9005])
def test_a_lost_connection_or_timeout_during_commit_is_not_repeated(store, code):
    fn, calls = _flaky_put(1, code, failures=0)
    _fail_first_commits(store, code)
    with pytest.raises(StoreError, match="COMMIT failed and its outcome is unknown") as info:
        store._tx("put", fn)
    assert not isinstance(info.value, RetryableStoreError)
    assert len(calls) == 1


def test_a_write_conflict_at_commit_is_retried(store):
    fn, calls = _flaky_put(1, 9007, failures=0)
    assert _fail_first_commits(store, 9007) is not None
    store._tx("put", fn)
    assert len(calls) == 2 and rows(store) == [1]


def test_a_conflict_inside_a_block_rolls_it_back_as_retryable(store):
    fn, _ = _flaky_put(2, 9007)
    with pytest.raises(RetryableStoreError) as info:
        with store.transaction():
            put(store, 1)
            store._tx("put", fn)  # no retry inside: only the whole block can be re-run
    assert info.value.code == 9007 and rows(store) == []


def test_run_in_transaction_reruns_the_whole_block(store):
    fn, calls = _flaky_put(2, 1213)
    runs: list[int] = []

    def block():
        runs.append(1)
        put(store, 1)
        store._tx("put", fn)
        return "done"

    assert store.run_in_transaction(block) == "done"
    assert len(runs) == 2 and len(calls) == 2 and rows(store) == [1, 2]  # each row once


def test_run_in_transaction_reruns_a_block_whose_commit_conflicted(store):
    failed = _fail_first_commits(store, 9007)
    runs: list[int] = []

    def block():
        runs.append(1)
        put(store, len(runs) * 10)

    store.run_in_transaction(block)
    assert failed == [9007] and len(runs) == 2 and rows(store) == [20]


def test_run_in_transaction_gives_up_and_does_not_retry_other_errors(store):
    runs: list[int] = []

    def conflicting():
        runs.append(1)
        store._tx("put", _flaky_put(1, 9007, failures=99)[0])

    with pytest.raises(RetryableStoreError):
        store.run_in_transaction(conflicting, attempts=3)
    assert len(runs) == 3
    runs.clear()

    def broken():
        runs.append(1)
        raise ValueError("not a database error")

    with pytest.raises(ValueError):
        store.run_in_transaction(broken)
    assert len(runs) == 1 and rows(store) == []


@pytest.mark.parametrize("code", [8004, 8025, 8175, 8176])
def test_a_transaction_too_large_fails_with_a_clear_message(store, code):
    fn, calls = _flaky_put(1, code, failures=99)
    with pytest.raises(StoreError, match="too large for this cluster.*split a large import"):
        with store.transaction():
            store._tx("insert memories", fn)
    with pytest.raises(StoreError, match="too large") as info:
        store._tx("insert memories", fn)
    assert not isinstance(info.value, RetryableStoreError)
    assert len(calls) == 2 and rows(store) == []  # never retried


def test_a_conflict_that_persists_is_reported_as_retryable(store):
    fn, calls = _flaky_put(1, 9007, failures=99)
    with pytest.raises(RetryableStoreError, match="write conflict persisted after 5 attempts"):
        store._tx("put", fn)
    assert len(calls) == 5 and rows(store) == []
