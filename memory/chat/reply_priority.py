"""Replies first: on the offline model, memory work never delays a reply (issue 23).

The local model runs as two llama.cpp processes (``memory.llm.local_server.memory_config``):
one answers the chat, the other does the memory work of earlier turns (extraction,
reconciliation, thread summaries). On a 2-core machine both at once would halve the
reply's speed, and one shared process made a quick follow-up wait ~45 s for the previous
turn's extraction. So while at least one reply streams in this process, the memory
server is paused (SIGSTOP: its generation stops where it is, nothing is lost) and it is
resumed (SIGCONT) when the last reply ends — the memory work continues after the reply
instead of before it. Requests to the paused server simply take longer; the client gives
them ``MEMORY_WORK_TIMEOUT`` seconds.

Only a server this data dir started (its pid file, ``llama_cpp.server`` in its command
line) is ever signalled; a remote endpoint or a single shared server is left alone.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from typing import Iterator

from memory.config import Config

log = logging.getLogger(__name__)

#: seconds a memory-work request may take, pauses included (it waits for replies)
MEMORY_WORK_TIMEOUT = 900.0

_lock = threading.Lock()
_active: dict[int, int] = {}  # memory-server pid → replies streaming now


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
        return True
    except OSError as exc:  # gone (it crashed: the restart logic deals with it)
        log.debug("could not signal the memory server %s: %s", pid, exc)
        return False


@contextlib.contextmanager
def replying(config: Config) -> Iterator[None]:
    """Pause the memory-work server for the duration of the ``with`` block (one reply).

    ``config`` is the chat server's Config; nothing happens when the memory work shares
    that server (``LOCAL_LLM_MEMORY_SERVER=false``) or no server of ours runs for it.
    Nested and concurrent replies are counted: the server resumes after the last one,
    also when the block raises or a reply generator is closed early."""
    from memory.llm import local_server as local_llm

    memory = local_llm.memory_config(config)
    pid = local_llm.server_pid(memory) if memory is not config else None
    if pid is None:
        yield
        return
    with _lock:
        _active[pid] = _active.get(pid, 0) + 1
        if _active[pid] == 1:
            _signal(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with _lock:
            _active[pid] -= 1
            if _active[pid] == 0:
                del _active[pid]
                _signal(pid, signal.SIGCONT)


def resume(config: Config) -> None:
    """Make sure the memory-work server of ``config`` is not left paused (a process that
    paused it died mid-reply): send SIGCONT unless a reply of this process streams."""
    from memory.llm import local_server as local_llm

    memory = local_llm.memory_config(config)
    pid = local_llm.server_pid(memory) if memory is not config else None
    with _lock:
        if pid is not None and pid not in _active:
            _signal(pid, signal.SIGCONT)
