"""Who is learning from a ``pending`` resource, and when another upload of the same file may take it over.

An ingest writes its owner into the row's ``detail["ingest"]`` (a hash of the host name,
so the row does not show the server's name to its user; the process id; a token drawn
once per process) and renews ``updated_at`` after every extraction batch
(:func:`renew`). A ``pending`` row is abandoned (:func:`abandoned`), so the same upload
again starts afresh instead of answering "already known" with no memories, when

* its owner ran on this host and that process is gone (a killed CLI, a crashed
  server: taken over at once), or is this very process but a different instance of it
  (the token differs: the id was reused after a restart), or is this process and
  instance but no ingest of that resource runs in it;
* or nothing renewed it for :data:`LEASE` (an owner on another host, or a row
  written before owners were recorded).

Two uploads taking over the same abandoned (or failed) row at the same moment: the
takeover is a compare-and-set on ``updated_at`` (``Store.claim_resource``), so exactly one
learns from it and the other answers the row as a ``pending`` duplicate.
"""
from __future__ import annotations

import hashlib
import os
import socket
import threading
import uuid
from contextlib import contextmanager
from datetime import timedelta
from typing import Iterator

from memory.types import utcnow

#: A ``pending`` row not renewed for this long is abandoned whoever owns it. An ingest
#: renews it after every extraction batch; one batch is one LLM call (at most
#: ``LLM_TIMEOUT`` × (1 + ``LLM_MAX_RETRIES``), 6 minutes with the defaults).
LEASE = timedelta(minutes=10)

_TOKEN = uuid.uuid4().hex
_HOST = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:16]
_running: set[str] = set()
_lock = threading.Lock()


def owner() -> dict:
    """This process as the owner of an ingest: ``{"host", "pid", "token"}`` (``host``
    a 16-hex hash of the host name), stored as ``detail["ingest"]`` of the ``pending``
    row."""
    return {"host": _HOST, "pid": os.getpid(), "token": _TOKEN}


@contextmanager
def holding(resource_id: str) -> Iterator[None]:
    """Mark ``resource_id`` as being learned from in this process while the block
    runs (see :func:`abandoned`)."""
    with _lock:
        _running.add(resource_id)
    try:
        yield
    finally:
        with _lock:
            _running.discard(resource_id)


def abandoned(res) -> bool:
    """True when the ``pending`` Resource ``res`` is no longer being learned from (see
    the module docstring); False for any other status or a live owner."""
    if res.status != "pending":
        return False
    if utcnow() - res.updated_at > LEASE:
        return True
    who = (res.detail or {}).get("ingest")
    if not isinstance(who, dict) or who.get("host") != _HOST:
        return False
    pid = who.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        if who.get("token") != _TOKEN:
            return True
        with _lock:
            return res.id not in _running
    return not _alive(pid)


def renew(store, res) -> None:
    """Record that the ingest of ``res`` is still running (``updated_at`` = now)."""
    store.update_resource(res.user_id, res.id, updated_at=utcnow())


def _alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this host (signal 0 checks, sends nothing;
    on Windows, where ``os.kill`` would end the process, always True: the lease decides)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:
        return True
    return True
