"""Shared fixtures: a scripted OpenAI-compatible server, a Config pointed at it, the
default embedder and an open SQLite store.

``scripted_llm``: a started ``tests.fake_llm.ScriptedLLM`` (stopped after the test).
``embedder``: the default embedder (USE-multilingual), loaded and warmed once per session.
``make_config``: a factory; ``make_config(**overrides)`` or
``make_config(tmp_path, scripted_llm, **overrides)`` returns a ``Config`` with its data in
``tmp_path`` and its LLM at ``scripted_llm`` (see ``tests.fake_llm.scripted_config``).
``db_path`` / ``store``: ``tmp_path/memory.db`` and an open ``SQLiteStore`` on it
(``tests.sqlite_helpers.EMB``, ``DIM``), shared by the tests/test_sqlite_*.py modules
that do not define their own ``store``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_llm import ScriptedLLM, scripted_config


@pytest.fixture
def scripted_llm():
    """A ScriptedLLM serving on 127.0.0.1 for the duration of one test."""
    server = ScriptedLLM().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_config(tmp_path, scripted_llm):
    """Factory for a Config using ``tmp_path`` and ``scripted_llm`` (overridable)."""
    def factory(data_dir=None, llm=None, **overrides):
        return scripted_config(data_dir or tmp_path, llm or scripted_llm, **overrides)
    return factory


@pytest.fixture(scope="session")
def embedder():
    """The product's default embedder, built from a default Config and warmed up once for
    the whole run (loading it costs seconds; it holds no per-test state)."""
    from memory.config import load_config
    from memory.embedder import make_embedder

    emb = make_embedder(load_config(env_file=None))
    emb.embed_query("warm up")
    return emb


@pytest.fixture
def db_path(tmp_path) -> Path:
    """``tmp_path / "memory.db"`` (not created)."""
    return tmp_path / "memory.db"


@pytest.fixture
def store(db_path):
    """A SQLiteStore on ``db_path``, opened for ``EMB``/``DIM`` of tests.sqlite_helpers
    (imported here: sessions without SQLite store tests do not load the store)."""
    from memory.store.sqlite import SQLiteStore
    from tests.sqlite_helpers import DIM, EMB

    s = SQLiteStore(db_path)
    s.open(EMB, DIM)
    yield s
    s.close()
