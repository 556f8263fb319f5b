"""The ``Memory`` the end-to-end tests share: the REAL local model (llama.cpp on
127.0.0.1), the real embedder, a real SQLite file."""
from __future__ import annotations

from typing import Iterator

import pytest

from memory import Memory, load_config


def local_memory(tmp_path_factory, name: str) -> Iterator[Memory]:
    """Yield a ``Memory`` in a fresh folder ``name`` on the default local model at
    temperature 0 (greedy decoding: a CI run sees the same replies as a local one), and
    stop the model server afterwards unless it was already running. Skips the test when
    llama-cpp-python is not installed. Use from a fixture with ``yield from``."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python[server] is not installed (./test.sh installs it)")
    from memory.llm import local_server

    data = tmp_path_factory.mktemp(name)
    m = Memory(load_config(env_file=None, memory_data_dir=data, llm_temperature=0))
    assert m.config.uses_local_llm
    already_running = local_server.served_models(m.config) is not None
    yield m
    m.close()
    if not already_running:  # leave the machine as we found it
        local_server.stop_all(m.config)
