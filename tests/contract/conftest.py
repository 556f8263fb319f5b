"""Fixtures of the store contract suite: every test runs against every store.

``store`` is parametrised over store factories:

* ``sqlite`` — a real ``SQLiteStore`` file in ``tmp_path``.
* ``tidb`` — ``TiDBStore.from_config(load_config(env_file=None), table_prefix=…)`` with a
  unique table prefix per test, only when ``TIDB_HOST`` or ``DATABASE_URL`` is set in
  the environment (otherwise the test is skipped with a visible reason). Its tables are
  dropped afterwards, the FULLTEXT index first (TiDB refuses to drop such a table).
  ``TIDB_REQUIRE_FULLTEXT=1`` makes ``open`` fail on a cluster without full-text search,
  so the ``fulltext`` tests fail there instead of skipping.

Markers: ``fulltext`` tests skip on a store whose ``fulltext_available`` is False;
``stemming`` tests run on SQLite only.

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
    try:
        store.open(EMBEDDER, DIM)  # may fail after creating tables (TIDB_REQUIRE_FULLTEXT=1)
        yield store
    finally:
        try:
            if store._client is not None:  # connected: drop whatever open() created
                _drop_tidb_tables(store, prefix)
        finally:
            store.close()


def _drop_tidb_tables(store, prefix: str) -> None:
    """Drop this test's own tables (names starting with ``prefix``), the FULLTEXT index
    first, by its known name: TiDB refuses DROP TABLE on a table with a full-text index,
    and may report that index as BTREE in information_schema (``teardown_ddl``)."""
    import sqlalchemy as sa

    from memory.store.tidb.schema import build_schema, teardown_ddl

    engine = store.engine
    quote = engine.dialect.identifier_preparer.quote
    names = [n for n in sa.inspect(engine).get_table_names() if n.startswith(prefix)]
    with engine.connect() as conn:
        for ddl in teardown_ddl(build_schema(DIM, prefix), names, quote):  # DDL commits itself
            conn.execute(sa.text(ddl))


FACTORIES: dict[str, Callable] = {"sqlite": _sqlite_store, "tidb": _tidb_store}


@pytest.fixture(params=sorted(FACTORIES))
def store(request, tmp_path) -> Iterator[Store]:
    """An opened, empty store (dim :data:`DIM`) of each kind."""
    yield from FACTORIES[request.param](tmp_path)


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "fulltext: needs full-text search; skipped on a "
                            "TiDB store that reports none (self-managed, most regions)")
    config.addinivalue_line("markers", "stemming: expects English stemming, which only the "
                            "SQLite store does (TiDB's full-text parsers do not stem)")


@pytest.fixture(autouse=True)
def _store_capabilities(request) -> None:
    """Skip ``fulltext`` tests on a store without full-text support and ``stemming``
    tests on any store but SQLite (the reason is shown)."""
    if "store" not in request.fixturenames:
        return
    store = request.getfixturevalue("store")
    if request.node.get_closest_marker("fulltext") and not getattr(store, "fulltext_available", True):
        pytest.skip(f"{store.name}: full-text search not supported by this cluster")
    if request.node.get_closest_marker("stemming") and store.name != "sqlite":
        pytest.skip(f"{store.name}: its full-text parsers do not stem (SQLite-only expectation)")


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
