"""Fixtures of the store contract suite: every test runs against every store.

``store`` is parametrised over store factories:

* ``sqlite`` — a real ``SQLiteStore`` file in ``tmp_path``.
* ``tidb`` — ``TiDBStore.from_config(load_config(env_file=None), table_prefix=…)`` with a
  unique table prefix per test, only when ``TIDB_HOST`` or ``DATABASE_URL`` is set in
  the environment (otherwise the test is skipped with a visible reason). Its tables are
  dropped afterwards.

Stores are opened with :data:`EMBEDDER` / :data:`DIM` (8). Vectors come from
``vec(seed)``: a seeded numpy RNG vector, L2-normalised, so every run is identical.
"""
from __future__ import annotations

import os
import uuid
import zlib
from datetime import timedelta
from typing import Callable, Iterator

import numpy as np
import pytest

from memory.store.base import Store
from memory.types import HistoryEvent, MemoryRecord, new_id, utcnow

EMBEDDER = "contract-test-embedder"
DIM = 8


def _sqlite_store(tmp_path) -> Iterator[Store]:
    from memory.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "contract.db")
    store.open(EMBEDDER, DIM)
    try:
        yield store
    finally:
        store.close()


def _tidb_store(tmp_path) -> Iterator[Store]:
    if not (os.environ.get("TIDB_HOST") or os.environ.get("DATABASE_URL")):
        pytest.skip("TiDB settings not present (set TIDB_HOST… or DATABASE_URL to run the "
                    "contract suite against TiDB)")
    from memory.config import load_config
    from memory.store.tidb import TiDBStore

    prefix = "t" + uuid.uuid4().hex[:12] + "_"  # unique tables per test, same database
    store = TiDBStore.from_config(load_config(env_file=None), table_prefix=prefix)
    store.open(EMBEDDER, DIM)
    try:
        yield store
    finally:
        try:
            import sqlalchemy as sa

            engine = store.engine
            names = [n for n in sa.inspect(engine).get_table_names() if n.startswith(prefix)]
            with engine.begin() as conn:
                for name in names:  # only this test's own tables
                    conn.execute(sa.text(f"DROP TABLE IF EXISTS `{name}`"))
        finally:
            store.close()


FACTORIES: dict[str, Callable] = {"sqlite": _sqlite_store, "tidb": _tidb_store}


@pytest.fixture(params=sorted(FACTORIES))
def store(request, tmp_path) -> Iterator[Store]:
    """An opened, empty store (dim :data:`DIM`) of each kind."""
    yield from FACTORIES[request.param](tmp_path)


@pytest.fixture
def embedder() -> tuple[str, int]:
    """``(embedder_id, dim)`` the ``store`` fixture was opened with."""
    return EMBEDDER, DIM


@pytest.fixture
def vec() -> Callable[..., list[float]]:
    """``vec(seed)`` -> a deterministic unit vector of DIM floats; ``vec(seed, near=v,
    noise=0.05)`` -> a unit vector close to ``v``."""
    def make(seed: int, near: list[float] | None = None, noise: float = 0.05) -> list[float]:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=DIM)
        if near is not None:
            x = np.asarray(near) + noise * x
        return (x / np.linalg.norm(x)).tolist()
    return make


@pytest.fixture
def mk(vec) -> Callable[..., MemoryRecord]:
    """``mk(user_id, text, seed=…, **fields)`` -> a MemoryRecord with an embedding
    (``vec(seed)``; the seed defaults to the CRC-32 of the text) and whole-second UTC times."""
    counter = iter(range(10_000))

    def make(user_id: str, text: str, seed: int | None = None, **fields) -> MemoryRecord:
        n = next(counter)
        base = utcnow().replace(microsecond=0) - timedelta(days=1)
        fields.setdefault("created_at", base + timedelta(seconds=n))
        fields.setdefault("updated_at", fields["created_at"])
        embedding = fields.pop("embedding", None)
        if embedding is None:
            embedding = vec(seed if seed is not None else zlib.crc32(text.encode()))
        return MemoryRecord(id=fields.pop("id", new_id()), user_id=user_id, text=text,
                            embedding=embedding, **fields)
    return make


@pytest.fixture
def event() -> Callable[..., HistoryEvent]:
    """``event(record, "ADD", at=…)`` -> a HistoryEvent for ``record``."""
    def make(record: MemoryRecord, kind: str = "ADD", old: str | None = None,
             new: str | None = None, actor: str = "llm", at=None) -> HistoryEvent:
        return HistoryEvent(memory_id=record.id, user_id=record.user_id, event=kind,
                            old_text=old, new_text=record.text if new is None else new,
                            actor=actor, at=at or utcnow())
    return make
