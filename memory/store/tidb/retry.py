"""TiDB error codes and transactions: which failures mean "run the whole transaction again", one transaction with its COMMIT told apart, the tenacity retry, and the one-line StoreError of each failure."""
from __future__ import annotations

from typing import Callable, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from tenacity import (Retrying, retry_if_exception, stop_after_attempt,
                      wait_random_exponential)

from memory.llm.errors import one_line
from memory.store.base import StoreError

T = TypeVar("T")

#: TiDB error codes after which the transaction has been rolled back and the application
#: can safely retry the whole of it, whether the error came from a statement or from
#: COMMIT (TiDB "Error Codes and Troubleshooting" and "Troubleshoot Write Conflicts in
#: Optimistic Transactions"):
#:
#: * 8002: a transaction with ``SELECT ... FOR UPDATE`` hit a commit conflict;
#: * 8005: ``Write Conflict, txnStartTS is stale`` (optimistic commit);
#: * 8022: the transaction commit failed and was rolled back;
#: * 8028: the schema of a table used by the transaction changed while it ran;
#: * 9007: write conflict in TiKV;
#: * 1213: deadlock found (pessimistic mode, MySQL's code; TiDB aborts one side).
RETRYABLE_ERROR_CODES = frozenset({8002, 8005, 8022, 8028, 9007, 1213})
#: Transient cluster errors (same guide): 9001 "PD Server Timeout", 9002 "TiKV Server
#: Timeout", 9005 "Region is unavailable" (a Raft group without a leader for a while,
#: e.g. a TiKV node restarting). Retried only when raised by a statement *before* COMMIT:
#: nothing is committed then. Raised by COMMIT itself the outcome is unknown (the commit
#: may have reached TiKV), so it is reported, not repeated.
TRANSIENT_ERROR_CODES = frozenset({9001, 9002, 9005})
#: The client lost the connection: 2006 "MySQL server has gone away" and 2013 "Lost
#: connection to MySQL server during query" (MySQL client error codes, raised by
#: PyMySQL). Before COMMIT the server rolls the transaction back when the session ends,
#: so it is retried on a fresh connection; during COMMIT the outcome is unknown.
LOST_CONNECTION_CODES = frozenset({2006, 2013})
#: The transaction or one row is too big for the cluster: 8004 "Transaction is too
#: large", 8025 "entry too large" (one row over ``txn-entry-size-limit``, 6 MiB by
#: default), 8175/8176 the statement or the tidb-server ran over its memory quota
#: (``tidb_mem_quota_query``, 1 GiB by default; since v6.5.0 a transaction's memory
#: counts towards it, TiDB configuration file, ``txn-total-size-limit``). Never retried.
TOO_LARGE_ERROR_CODES = frozenset({8004, 8025, 8175, 8176})
#: attempts per store call (first try included) before giving up with StoreError
RETRY_ATTEMPTS = 5


class RetryableStoreError(StoreError):
    """A StoreError after which running the same work again is safe and may succeed:
    the transaction was rolled back (write conflict, deadlock, lost connection or
    transient cluster error before COMMIT). ``code`` is the TiDB/MySQL error number
    (None for a connection SQLAlchemy marked as invalidated). ``TiDBStore.
    run_in_transaction`` re-runs a whole ``transaction()`` block on it."""

    retryable = True

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class CommitFailed(Exception):
    """COMMIT (not a statement before it) failed with ``error`` (a DBAPIError). Kept
    apart because only definite rollbacks (``RETRYABLE_ERROR_CODES``) may be retried
    after a failed COMMIT."""

    def __init__(self, error: sa.exc.DBAPIError):
        super().__init__(str(error))
        self.error = error


def error_code(exc: BaseException) -> int | None:
    """The MySQL/TiDB error number inside a SQLAlchemy or PyMySQL exception, or None."""
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_write_conflict(exc: BaseException) -> bool:
    """True when ``exc`` carries one of ``RETRYABLE_ERROR_CODES`` (a conflict, deadlock,
    failed commit or concurrent schema change: re-running the transaction is safe)."""
    return error_code(exc) in RETRYABLE_ERROR_CODES


def is_lost_connection(exc: BaseException) -> bool:
    """True when the connection dropped: SQLAlchemy invalidated it (its dialect's
    ``is_disconnect``) or the code is in ``LOST_CONNECTION_CODES``."""
    return bool(getattr(exc, "connection_invalidated", False)) or \
        error_code(exc) in LOST_CONNECTION_CODES


def is_retryable(exc: BaseException) -> bool:
    """Whether the transaction that raised ``exc`` may be run again: after a failed
    COMMIT (``CommitFailed``) only for ``RETRYABLE_ERROR_CODES``; before COMMIT also for
    ``TRANSIENT_ERROR_CODES`` and lost connections."""
    if isinstance(exc, CommitFailed):
        return is_write_conflict(exc.error)
    if isinstance(exc, RetryableStoreError):
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    return (is_write_conflict(exc) or error_code(exc) in TRANSIENT_ERROR_CODES
            or is_lost_connection(exc))


def retrying(attempts: int = RETRY_ATTEMPTS, max_wait: float = 1.0) -> Retrying:
    """The tenacity policy of every retry here: retry while ``is_retryable``, at most
    ``attempts`` calls, a randomised exponential back-off of 50 ms and up (at most
    ``max_wait`` seconds between calls); the last error is re-raised unchanged."""
    return Retrying(retry=retry_if_exception(is_retryable),
                    stop=stop_after_attempt(attempts),
                    wait=wait_random_exponential(multiplier=0.05, max=max_wait),
                    reraise=True)


def run_with_retry(fn: Callable[[], T], attempts: int = RETRY_ATTEMPTS,
                   max_wait: float = 1.0) -> T:
    """Call ``fn`` (one whole transaction) and call it again while it fails with a
    retryable error (``is_retryable``), through :func:`retrying`. Other errors, and the
    last retryable one, propagate unchanged."""
    return retrying(attempts, max_wait)(fn)


def one_transaction(engine: Engine, fn: Callable[[Connection], T]) -> T:
    """Run ``fn(conn)`` in one transaction on a pooled connection and COMMIT it.
    An error of ``fn`` propagates as is (the connection is rolled back when it returns
    to the pool); an error of COMMIT is raised as :class:`CommitFailed`."""
    with engine.connect() as conn:
        result = fn(conn)  # SQLAlchemy begins the transaction at the first statement
        try:
            conn.commit()
        except sa.exc.DBAPIError as exc:
            raise CommitFailed(exc) from exc
        return result


def store_error(what: str, exc: BaseException, *, attempts: int = 1) -> StoreError:
    """The one-line StoreError for the database error ``exc`` (a SQLAlchemy error or
    :class:`CommitFailed`) of ``what`` after ``attempts`` tries. Retryable failures give
    :class:`RetryableStoreError`; a lost connection or transient error during COMMIT
    says the outcome is unknown; a too-large transaction says how to make it smaller."""
    at_commit = isinstance(exc, CommitFailed)
    err = exc.error if isinstance(exc, CommitFailed) else exc
    code, line = error_code(err), one_line(err)
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if is_write_conflict(err):
        conflict = f"write conflict persisted{tries}" if tries else "write conflict"
        return RetryableStoreError(f"TiDB {what}: {conflict}, rolled back; try again "
                                   f"({line})", code)
    if code in TOO_LARGE_ERROR_CODES:
        return StoreError(
            f"TiDB {what}: the transaction is too large for this cluster ({line}); write "
            "fewer rows at a time (split a large import into smaller files) or raise "
            "the cluster's tidb_mem_quota_query")
    if at_commit and (is_lost_connection(err) or code in TRANSIENT_ERROR_CODES):
        return StoreError(f"TiDB {what}: COMMIT failed and its outcome is unknown "
                          f"(the changes may or may not be saved): {line}")
    if is_retryable(err):
        return RetryableStoreError(f"TiDB {what} failed{tries}: {line}", code)
    return StoreError(f"TiDB {what} failed: {line}")
