"""TiDB's row adapters over ``memory/store/common.py``: column values with the vector literal, and SQLAlchemy result rows as dataclasses."""
from __future__ import annotations

from typing import Any

import numpy as np

from memory.store import common
from memory.types import HistoryEvent, MemoryRecord, Message, Thread


def vector_literal(embedding: Any, dim: int, what: str = "embedding") -> list[float]:
    """``embedding`` as the ``list[float]`` bound to a ``VECTOR(dim)`` column, after
    :func:`memory.store.common.vector_values` (ValueError for None, a wrong length,
    NaN/infinity or a zero vector: ``VEC_COSINE_DISTANCE`` is NULL for a zero vector)
    and :func:`check_float32_norm`."""
    arr = common.vector_values(embedding, dim, what)
    check_float32_norm(arr, what)
    return arr.tolist()


def check_float32_norm(arr: np.ndarray, what: str = "embedding") -> None:
    """Raise ValueError when the float32 sum of squares of ``arr`` is 0 or infinite.

    TiDB stores ``VECTOR`` components as float32 and ``VEC_COSINE_DISTANCE`` divides by
    the norms it computes from them; tiny components (e.g. 1e-30, a valid float32) square
    to 0 in float32 and give a NULL distance, which breaks the ordering of a vector
    search; huge ones (e.g. 1e20) overflow the same way. A sum of non-negative float32
    squares is 0 exactly when every square is, so the check does not depend on the
    order TiDB adds them in. Normalised embeddings (norm 1) are never refused."""
    kept = np.asarray(arr, dtype=np.float32)
    with np.errstate(under="ignore", over="ignore"):
        squares = kept * kept
        total = np.sum(squares, dtype=np.float32)
    if not squares.any():
        raise ValueError(f"{what} is too close to a zero vector: its float32 sum of squares "
                         "is 0, so TiDB's cosine distance would be NULL (normalise it)")
    if not np.isfinite(total):
        raise ValueError(f"{what} is too large: its float32 sum of squares overflows, so "
                         "TiDB's cosine distance would be NULL (normalise it)")


def memory_row(rec: MemoryRecord, dim: int) -> dict[str, Any]:
    """Column values of ``memories`` for ``rec``: :func:`common.memory_values` plus the
    ``embedding`` literal. Raises ValueError (nothing written) for a malformed record or
    a missing, wrong-sized, non-finite or zero embedding."""
    return {**common.memory_values(rec),
            "embedding": vector_literal(rec.embedding, dim, f"embedding of memory {rec.id}")}


def history_row(ev: HistoryEvent) -> dict[str, Any]:
    """Column values of ``memory_history`` for ``ev`` (:func:`common.history_values`)."""
    return common.history_values(ev)


def record_from_row(row: Any) -> MemoryRecord:
    """A ``memories`` result row (embedding column optional) as a MemoryRecord."""
    return common.memory_from_row(row._mapping)


def event_from_row(row: Any) -> HistoryEvent:
    """A ``memory_history`` result row as a HistoryEvent."""
    return common.event_from_row(row._mapping)


def thread_from_row(row: Any) -> Thread:
    """A ``threads`` result row as a Thread."""
    return common.thread_from_row(row._mapping)


def message_from_row(row: Any) -> Message:
    """A ``messages`` result row as a Message."""
    return common.message_from_row(row._mapping)
