"""Helpers of the reliability suite: a Memory on a real SQLite file in a tmp dir whose
LLM and embedder are the scripted server, the environment for ``main.py`` and the
worker subprocesses, and raw read-only reads of the SQLite tables (what is on disk).

Everything under test goes through public APIs (``memory.Memory``, ``main.py``); only the
checks read the database file, with the stdlib ``sqlite3``.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.fake_llm import is_json_request, scripted_config

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("writer.py")


def default_brain(req):
    """Extraction finds nothing; a chat reply is 'ok'."""
    return {"memories": []} if is_json_request(req) else "ok"


def config_for(data_dir, server, **overrides):
    """A Config on ``data_dir`` whose LLM *and* embedder are ``server`` (16-dim
    deterministic vectors: no model is loaded, subprocesses start fast)."""
    settings = dict(embedder="openai", embedding_model="scripted-embed",
                    embedding_base_url=server.base_url, llm_max_retries=0)
    settings.update(overrides)
    return scripted_config(data_dir, server, **settings)


def open_memory(data_dir, server, **overrides):
    """A ``memory.Memory`` on a real SQLite file in ``data_dir``."""
    from memory import Memory
    return Memory(config_for(data_dir, server, **overrides))


def child_env(data_dir, server) -> dict:
    """Environment for ``python main.py …`` and ``writer.py`` with the same settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "TIDB_", "MEMORY_", "EMBEDD", "LLM_"))}
    env.update(MEMORY_DATA_DIR=str(data_dir), MEMORY_STORE="sqlite",
               OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="test", LLM_MODEL="scripted",
               LLM_MAX_RETRIES="0", LLM_TIMEOUT="10", DATABASE_URL="",
               EMBEDDER="openai", EMBEDDING_MODEL="scripted-embed",
               EMBEDDING_BASE_URL=server.base_url, PYTHONPATH=str(ROOT))
    return env


def run_cli(data_dir, server, *args, timeout=120):
    """Run ``python main.py *args`` as a subprocess; returns CompletedProcess (text)."""
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT,
                          env=child_env(data_dir, server), capture_output=True, text=True,
                          timeout=timeout)


def db_path(data_dir) -> Path:
    return Path(data_dir) / "memory.db"


def raw(data_dir, sql, params=()):
    """Rows of ``sql`` on the store's file, read-only (stdlib sqlite3, no extensions)."""
    conn = sqlite3.connect(f"file:{db_path(data_dir)}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def snapshot(data_dir) -> dict:
    """Everything a write could change, as comparable values: every row of memories,
    history, threads, messages and profiles, and the FTS and vector row counts."""
    out = {}
    for table, cols in (("memories", "id, user_id, text, type, importance, tags, metadata"),
                        ("history", "id, memory_id, user_id, event, old_text, new_text"),
                        ("threads", "id, user_id, title, summary"),
                        ("messages", "id, thread_id, user_id, role, content, metadata"),
                        ("profiles", "user_id, text")):
        out[table] = sorted(raw(data_dir, f"SELECT {cols} FROM {table}"))
    out["fts"] = raw(data_dir, "SELECT count(*) FROM memories_fts")[0][0]
    out["vec"] = vec_rows(data_dir)
    return out


def vec_rows(data_dir) -> int:
    """Rows of the sqlite-vec table, counted through its rowids shadow table (readable
    without loading the extension)."""
    return raw(data_dir, "SELECT count(*) FROM vec_memories_rowids")[0][0]


def consistency(data_dir) -> tuple[str, int, int, int]:
    """``(integrity_check, memories, fts rows, vector rows)``."""
    ok = raw(data_dir, "PRAGMA integrity_check")[0][0]
    mems = raw(data_dir, "SELECT count(*) FROM memories")[0][0]
    return ok, mems, raw(data_dir, "SELECT count(*) FROM memories_fts")[0][0], vec_rows(data_dir)
