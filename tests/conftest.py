"""Shared fixtures: a scripted OpenAI-compatible server, a Config pointed at it, the
default embedder, an open SQLite store and the Streamlit app's environment.

``scripted_llm``: a started ``tests.fake_llm.ScriptedLLM`` (stopped after the test).
``embedder``: the default embedder (USE-multilingual), loaded and warmed once per session.
``make_config``: a factory; ``make_config(**overrides)`` or
``make_config(tmp_path, scripted_llm, **overrides)`` returns a ``Config`` with its data in
``tmp_path`` and its LLM at ``scripted_llm`` (see ``tests.fake_llm.scripted_config``).
``db_path`` / ``store``: ``tmp_path/memory.db`` and an open ``SQLiteStore`` on it
(``tests.sqlite_helpers.EMB``, ``DIM``), shared by the tests/test_sqlite_*.py modules
that do not define their own ``store``.
``app_env``: the environment of the Streamlit app for AppTest (tests/test_app*.py,
tests/test_pages.py): temp data dir, ``scripted_llm`` answering with
``tests.app_helpers.memory_responder``; yields ``SimpleNamespace(llm, data_dir, tmp)``.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

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
    from memory.embed.embedder import make_embedder

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


@pytest.fixture
def app_env(tmp_path, scripted_llm, monkeypatch):
    """Environment for ``Memory.from_env()`` inside the app: temp data dir, the scripted
    model, the default embedder, no retries; cwd moved so no stray .env is read.
    (Streamlit is imported here: sessions without app tests do not load it.)"""
    from tests.app_helpers import memory_responder, reset_streamlit_caches

    scripted_llm.responder = memory_responder
    data = tmp_path / "data"
    env = {"MEMORY_DATA_DIR": str(data), "MEMORY_STORE": "sqlite",
           "OPENAI_BASE_URL": scripted_llm.base_url, "OPENAI_API_KEY": "test-key-123",
           "LLM_MODEL": scripted_llm.model, "EMBEDDER": "use-multilingual", "LLM_TIMEOUT": "10",
           "LLM_MAX_RETRIES": "0", "VISION_MODEL": ""}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("TIDB_HOST", "DATABASE_URL", "EMBEDDING_MODEL", "EMBEDDING_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    reset_streamlit_caches()
    yield SimpleNamespace(llm=scripted_llm, data_dir=data, tmp=tmp_path)
    reset_streamlit_caches()

