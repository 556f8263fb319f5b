"""Users: the one user-id rule, used by the engine, the CLI and the web app (API.md:
"User ids"), and ``UserLocks``, the per-user write locks of one ``Memory``."""
from __future__ import annotations

import threading
import unicodedata
from collections import defaultdict
from typing import Any

#: longest accepted user id, in characters (after NFC normalisation)
MAX_USER_ID = 128

# Characters that reorder how text is displayed (LRE, RLE, PDF, LRO, RLO and the isolates
# LRI, RLI, FSI, PDI): an id holding one can look like another user's id.
_BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def check_user_id(user_id: Any) -> str:
    """Return ``user_id`` NFC-normalised if it is an acceptable user id.

    Accepted: any text of 1..128 characters, spaces inside included (``"John Smith"``,
    ``"张三"``, ``"a.b+c@d"``). Rejected with a ValueError whose one-line message says
    why: not a string, empty, over 128 characters, ``.`` or ``..`` (ids name image
    folders), leading or trailing whitespace (``" bob"`` is refused, never silently
    turned into ``"bob"``), control characters (C0, DEL, C1), bidi override/isolate
    characters (U+202A–U+202E, U+2066–U+2069) and lone surrogates.
    """
    if not isinstance(user_id, str) or not user_id:
        raise ValueError("user_id must be a non-empty string")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in user_id):
        raise ValueError("user_id contains invalid Unicode (a lone surrogate)")
    uid = unicodedata.normalize("NFC", user_id)
    if uid != uid.strip():
        raise ValueError("user_id must not start or end with whitespace")
    if len(uid) > MAX_USER_ID:
        raise ValueError(f"user_id is too long ({len(uid)} characters; at most {MAX_USER_ID})")
    if uid in (".", ".."):
        raise ValueError("user_id cannot be '.' or '..'")
    for ch in uid:
        if unicodedata.category(ch) == "Cc":
            raise ValueError(f"user_id contains a control character (U+{ord(ch):04X})")
        if ch in _BIDI_CONTROLS:
            raise ValueError(f"user_id contains a text-direction control (U+{ord(ch):04X})")
    return uid


class UserLocks:
    """One re-entrant lock (``threading.RLock``) per user id: the lock provider of a ``Memory``
    (``Memory.user_locks``), passed with it to the write path so one user's writes
    (learning from a turn, a forget request, learning from or deleting a file) run one
    at a time in this process while other users' run in parallel. Re-entrant, so a step
    that holds it may call another that takes it (a bare forget request undoes the last
    turn, ``memory.write.undo``). Thread-safe."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.RLock] = defaultdict(threading.RLock)
        self._guard = threading.Lock()

    def for_user(self, uid: str) -> threading.RLock:
        """Return ``uid``'s lock, not acquired (``with locks.for_user(uid): ...``): the
        same object on every call, created on first use. ``uid`` is an already-checked
        user id (``check_user_id``)."""
        with self._guard:
            return self._locks[uid]
