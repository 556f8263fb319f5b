"""TiDB error codes: which failures mean "retry the whole transaction", and the tenacity retry around one transaction."""
from __future__ import annotations

from typing import Callable, TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

T = TypeVar("T")

#: TiDB error codes after which the application can safely retry the whole transaction
#: (TiDB "Error Codes and Troubleshooting" and "Troubleshoot Write Conflicts in
#: Optimistic Transactions"; the transaction has been rolled back in every case):
#:
#: * 8002: a transaction with ``SELECT ... FOR UPDATE`` hit a commit conflict;
#: * 8005: ``Write Conflict, txnStartTS is stale`` (optimistic commit);
#: * 8022: the transaction commit failed and was rolled back;
#: * 8028: the schema of a table used by the transaction changed while it ran;
#: * 9007: write conflict in TiKV;
#: * 1213: deadlock found (pessimistic mode, MySQL's code; TiDB aborts one side).
RETRYABLE_ERROR_CODES = frozenset({8002, 8005, 8022, 8028, 9007, 1213})
#: attempts per store call (first try included) before giving up with StoreError
RETRY_ATTEMPTS = 5


def error_code(exc: BaseException) -> int | None:
    """The MySQL/TiDB error number inside a SQLAlchemy or PyMySQL exception, or None."""
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_write_conflict(exc: BaseException) -> bool:
    """True when ``exc`` carries one of ``RETRYABLE_ERROR_CODES`` (a conflict, deadlock,
    failed commit or concurrent schema change: re-running the transaction is safe)."""
    return error_code(exc) in RETRYABLE_ERROR_CODES


def run_with_retry(fn: Callable[[], T], attempts: int = RETRY_ATTEMPTS,
                   max_wait: float = 1.0) -> T:
    """Call ``fn`` (one whole transaction) and call it again, after a randomised
    exponential back-off (tenacity: 50 ms and up, at most ``max_wait`` seconds), while it
    fails with a retryable error; at most ``attempts`` calls. Other errors, and the last
    retryable one, propagate unchanged."""
    retrying = Retrying(retry=retry_if_exception(is_write_conflict),
                        stop=stop_after_attempt(attempts),
                        wait=wait_random_exponential(multiplier=0.05, max=max_wait),
                        reraise=True)
    return retrying(fn)
