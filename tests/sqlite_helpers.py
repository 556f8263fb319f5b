"""Shared helpers of the SQLite store tests: the test embedder id and dimension, seeded
unit vectors, one-memory records and a raw connection that bypasses the store code.

The ``db_path`` and ``store`` fixtures built on them are in tests/conftest.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from memory.store.sqlite import load_sqlite_module
from memory.types import MemoryRecord, new_id

DIM = 8
EMB = "test-embedder"


def unit(seed: int) -> list[float]:
    """A deterministic DIM-long unit vector (list of floats, L2 norm 1) from ``seed``."""
    x = np.random.default_rng(seed).normal(size=DIM)
    return (x / np.linalg.norm(x)).tolist()


def rec(user: str, text: str, seed: int = 0) -> MemoryRecord:
    """A new MemoryRecord of ``user`` with ``text`` and the embedding ``unit(seed)``."""
    return MemoryRecord(id=new_id(), user_id=user, text=text, embedding=unit(seed))


def raw_connection(path: Path):
    """A plain connection from another 'process' (same loader, no store code)."""
    return load_sqlite_module().connect(str(path), isolation_level=None, timeout=0.05)
