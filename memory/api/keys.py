"""API users and their keys: ``keys.db`` (SQLite, 0600) with argon2id hashes only.

A key looks like ``mk_<key_id>_<secret>``: ``key_id`` (12 hex chars) finds the row,
``secret`` (43 url-safe chars, 256 bits from ``secrets``) is checked against the stored
argon2id hash (argon2-cffi, OWASP's minimum profile m=19 MiB, t=2, p=1). The full key
is returned once, when it is created or rotated, and never stored. A key verified once
is remembered in this process by its SHA-256 (so a request costs one indexed lookup,
not an argon2 run), but revocation is read from the database on every request, so a
key revoked by another process stops working at once. An unknown or revoked key id
costs one argon2 verification against a dummy hash, like a wrong secret does, so the
answer time does not tell whether a key id exists.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from memory.store.migrations import Migration, pending

KEY_PREFIX = "mk_"
_KEY_RE = re.compile(r"^mk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def _m0001(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE users (user_id TEXT PRIMARY KEY, created_at TEXT NOT NULL)")
    conn.execute("""CREATE TABLE api_keys (
        key_id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(user_id),
        hash TEXT NOT NULL, label TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
        revoked_at TEXT, last_used_at TEXT)""")
    conn.execute("CREATE INDEX api_keys_user ON api_keys(user_id)")


MIGRATIONS = [Migration("0001_users_and_keys", "users and their hashed API keys", _m0001)]


class KeyStoreError(ValueError):
    """A user/key operation was refused (unknown user, duplicate user, unknown key);
    the message is one line for the caller."""


@dataclass(frozen=True)
class KeyInfo:
    """One API key as listed (never the secret): ``key_id``, ``user_id``, ``label``,
    ``created_at`` / ``revoked_at`` / ``last_used_at`` (ISO-8601 UTC text or None)."""

    key_id: str
    user_id: str
    label: str
    created_at: str
    revoked_at: str | None
    last_used_at: str | None


@dataclass(frozen=True)
class Principal:
    """Who a verified key belongs to: ``user_id`` and the ``key_id`` used."""

    user_id: str
    key_id: str


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class KeyStore:
    """Users and API keys in the SQLite file ``path`` (created 0600, parent 0700 if new).

    Thread-safe (one connection, one lock). Methods raise ``KeyStoreError`` for refused
    operations and ``ValueError`` for malformed ids.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new data dir: private
        fresh = not self.path.exists()
        if fresh:  # create it private before SQLite writes anything into it
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(self.path, 0o600)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute("PRAGMA foreign_keys = ON")
        self._verified: dict[bytes, Principal] = {}
        _dummy_hash()  # made now, so the first unknown key id costs what later ones do
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            self._db.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                             "(id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            done = [r[0] for r in self._db.execute("SELECT id FROM schema_migrations")]
            for m in pending(MIGRATIONS, done):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    m.apply(self._db)
                    self._db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (m.id, _now()))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise

    def close(self) -> None:
        """Close the database. Safe to call twice."""
        with self._lock:
            self._db.close()

    # ---- users ---------------------------------------------------------------------------
    def create_user(self, user_id: str) -> str:
        """Create ``user_id`` (checked like the engine's ids). Returns the stripped id;
        raises KeyStoreError if it exists."""
        from memory.core import check_user_id
        uid = check_user_id(user_id)
        with self._lock:
            try:
                self._db.execute("INSERT INTO users VALUES (?, ?)", (uid, _now()))
            except sqlite3.IntegrityError:
                raise KeyStoreError(f"user {uid!r} already exists") from None
        return uid

    def users(self) -> list[dict]:
        """Return ``[{"user_id", "created_at", "active_keys"}]`` sorted by id."""
        with self._lock:
            rows = self._db.execute(
                "SELECT u.user_id, u.created_at, COUNT(k.key_id) FROM users u LEFT JOIN "
                "api_keys k ON k.user_id = u.user_id AND k.revoked_at IS NULL "
                "GROUP BY u.user_id ORDER BY u.user_id").fetchall()
        return [{"user_id": r[0], "created_at": r[1], "active_keys": r[2]} for r in rows]

    def has_user(self, user_id: str) -> bool:
        """True if ``user_id`` exists."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM users WHERE user_id = ?",
                                    (user_id,)).fetchone() is not None

    # ---- keys ----------------------------------------------------------------------------
    def create_key(self, user_id: str, label: str = "") -> tuple[str, KeyInfo]:
        """Issue a new key for an existing user. Returns ``(key, info)``; ``key`` is the
        only copy of the secret. Raises KeyStoreError for an unknown user."""
        if not self.has_user(user_id):
            raise KeyStoreError(f"no user {user_id!r}; create the user first")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = f"{KEY_PREFIX}{key_id}_{secret}"
        now = _now()
        with self._lock:
            self._db.execute("INSERT INTO api_keys (key_id, user_id, hash, label, created_at) "
                             "VALUES (?, ?, ?, ?, ?)",
                             (key_id, user_id, _HASHER.hash(secret), label[:100], now))
        return key, KeyInfo(key_id, user_id, label[:100], now, None, None)

    def keys(self, user_id: str | None = None) -> list[KeyInfo]:
        """List keys (all, or one user's), newest first; never the secret."""
        sql = ("SELECT key_id, user_id, label, created_at, revoked_at, last_used_at "
               "FROM api_keys")
        args: tuple = ()
        if user_id is not None:
            sql, args = sql + " WHERE user_id = ?", (user_id,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created_at DESC, key_id", args).fetchall()
        return [KeyInfo(*r) for r in rows]

    def revoke(self, key_id: str, user_id: str | None = None) -> bool:
        """Revoke ``key_id`` (only if it belongs to ``user_id`` when given). Returns False
        for an unknown or already revoked key."""
        sql = "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL"
        args: tuple = (_now(), key_id)
        if user_id is not None:
            sql, args = sql + " AND user_id = ?", args + (user_id,)
        with self._lock:
            changed = self._db.execute(sql, args).rowcount
            self._verified = {d: p for d, p in self._verified.items() if p.key_id != key_id}
        return changed == 1

    def rotate(self, key_id: str, user_id: str | None = None) -> tuple[str, KeyInfo]:
        """Revoke ``key_id`` and issue a new key for its user with the same label, in one
        transaction. Returns ``(new_key, info)``. Raises KeyStoreError if there is no such
        active key (of ``user_id`` when given), also when a concurrent rotation or
        revocation (this process or another on the same file) got there first: of
        several rotations of one key exactly one succeeds."""
        new_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        digest = _HASHER.hash(secret)  # slow: before the write lock is taken
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT user_id, label FROM api_keys WHERE key_id = ? AND revoked_at IS NULL",
                    (key_id,)).fetchone()
                if row is None or (user_id is not None and row[0] != user_id):
                    raise KeyStoreError(f"no active key {key_id!r}")
                now = _now()
                changed = self._db.execute(
                    "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                    (now, key_id)).rowcount
                if changed != 1:  # cannot happen under BEGIN IMMEDIATE; never issue two keys
                    raise KeyStoreError(f"no active key {key_id!r}")
                self._db.execute("INSERT INTO api_keys (key_id, user_id, hash, label, created_at) "
                                 "VALUES (?, ?, ?, ?, ?)", (new_id, row[0], digest, row[1], now))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._verified = {d: p for d, p in self._verified.items() if p.key_id != key_id}
        return f"{KEY_PREFIX}{new_id}_{secret}", KeyInfo(new_id, row[0], row[1], now, None, None)

    def active_owner(self, key_id: str) -> str | None:
        """The user id of ``key_id`` if it is an active (unrevoked) key, else None. One
        indexed lookup, no argon2: for sessions that verified the key once (the web
        login) to see a revocation at once."""
        with self._lock:
            row = self._db.execute("SELECT user_id FROM api_keys WHERE key_id = ? "
                                   "AND revoked_at IS NULL", (key_id,)).fetchone()
        return row[0] if row else None

    def verify(self, key: str) -> Principal | None:
        """Return the Principal of a valid, unrevoked ``key``, else None (malformed,
        unknown, revoked or wrong secret: the caller cannot tell which)."""
        match = _KEY_RE.match(key or "")
        if not match:
            return None
        key_id, secret = match.groups()
        with self._lock:
            row = self._db.execute("SELECT user_id, hash FROM api_keys WHERE key_id = ? "
                                   "AND revoked_at IS NULL", (key_id,)).fetchone()
        if row is None:
            _check_dummy(secret)  # same argon2 cost as a known id: no key-id oracle
            return None
        digest = hashlib.sha256(key.encode()).digest()
        known = self._verified.get(digest)
        if known is not None and known.key_id == key_id:
            return known
        try:
            _HASHER.verify(row[1], secret)
        except (VerificationError, InvalidHashError):
            return None
        principal = Principal(row[0], key_id)
        with self._lock:
            self._verified[digest] = principal
            self._db.execute("UPDATE api_keys SET last_used_at = ? WHERE key_id = ?",
                             (_now(), key_id))
        return principal


@functools.cache
def _dummy_hash() -> str:
    """An argon2id hash of a random secret nobody knows, made once per process."""
    return _HASHER.hash(secrets.token_urlsafe(32))


def _check_dummy(secret: str) -> None:
    """Spend one argon2 verification on ``secret`` against :func:`_dummy_hash` (it
    always fails), so an unknown or revoked key id costs what a wrong secret does."""
    try:
        _HASHER.verify(_dummy_hash(), secret)
    except (VerificationError, InvalidHashError):
        pass


def open_keystore(data_dir: str | Path) -> KeyStore:
    """The KeyStore at ``<data_dir>/keys.db``."""
    return KeyStore(Path(data_dir) / "keys.db")
