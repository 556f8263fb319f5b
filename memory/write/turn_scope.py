"""The turn being written: one id shared by every history event of one ``Memory.add``
call or chat turn, so undo can take the turn back as a whole (``memory.write.undo``).

    with turn_scope.turn() as turn_id:
        ...  # every HistoryEvent built here carries turn_id

The id lives in a ``contextvars.ContextVar`` (:data:`memory.types._CURRENT_TURN`), so
turns learned at the same time in other threads (the app's background memory work, the
API's workers) never share it.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from memory.types import _CURRENT_TURN, new_id


def current_turn() -> str | None:
    """The id of the turn being written in this thread of execution, or None."""
    return _CURRENT_TURN.get()


@contextmanager
def turn(turn_id: str | None = None) -> Iterator[str]:
    """Make ``turn_id`` (default: the enclosing turn's id, else a new 32-hex id) the
    current turn for the block and yield it. Nested blocks join the outer turn."""
    tid = turn_id or _CURRENT_TURN.get() or new_id()
    token = _CURRENT_TURN.set(tid)
    try:
        yield tid
    finally:
        _CURRENT_TURN.reset(token)
