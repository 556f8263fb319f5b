"""Fixtures of the API tests: a real app (real SQLite, real embedder, real keys.db) on the
FastAPI TestClient, the scripted LLM server on 127.0.0.1, and helpers to make users.

``api``: an ``ApiHarness`` (``client``, ``engine``, ``keys``, ``llm``, ``log`` (a
StringIO with the request-log lines), ``user(name) -> headers``, ``admin`` headers).
``embedder``: one warm embedder per module. ``brain``: the scripted model's answers.
``free_port()`` / ``subprocess_env(data_dir, llm)`` / ``wait_ready(proc, url)``: for the
real-server tests.
"""
from __future__ import annotations

import io
import json
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fake_llm import ScriptedLLM, is_json_request, scripted_config, system_text

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "test-admin-key-0123456789"
EXTRACT = "You extract memories"


def brain(req: dict):
    """Extraction: 'Seven' → Name is Seven, 'tea' → Likes green tea (topic like); chat:
    a fixed reply naming what it was told about the user."""
    system = system_text(req)
    if EXTRACT in system:
        said = next(m["content"] for m in req["messages"] if m["role"] == "user").split("User: ")[-1]
        out = []
        if "Seven" in said:
            out.append({"text": "Name is Seven", "topic": "name"})
        if "tea" in said:
            out.append({"text": "Likes green tea", "topic": "like"})
        return {"memories": out}
    if is_json_request(req):
        return {"action": "ADD", "id": "none"}
    return "Hello friend, nice to talk"


def is_error(resp, status: int, code: str | None = None) -> dict:
    """Assert ``resp`` is the API's one error shape with ``status`` (and ``code`` when
    given): ``{"error": {"code", "message"}}``, a one-line message, no traceback.
    Returns the ``error`` object."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert "Traceback" not in resp.text and "\n" not in body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc, url: str, deadline_s: float = 120) -> None:
    """Poll ``url`` until the server subprocess ``proc`` answers (200 or 503); fail with
    its stderr if it exits, or when ``deadline_s`` passes."""
    import time

    import httpx
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: {proc.stderr.read()}")
        try:
            if httpx.get(url, timeout=2).status_code in (200, 503):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # polling a port that is not open yet; not synchronisation
    raise AssertionError("server did not answer in time")


def subprocess_env(data_dir: Path, llm: ScriptedLLM, **extra: str) -> dict[str, str]:
    """Environment for a server/REPL subprocess: data in ``data_dir``, LLM = ``llm``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIDB_", "MEMORY_", "OPENAI_"))}
    env.update(MEMORY_DATA_DIR=str(data_dir), MEMORY_STORE="sqlite", OPENAI_BASE_URL=llm.base_url,
               OPENAI_API_KEY="test", LLM_MODEL=llm.model, LLM_TIMEOUT="10", LLM_MAX_RETRIES="1",
               PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env.pop("DATABASE_URL", None)
    env.update(extra)
    return env


@dataclass
class ApiHarness:
    client: object
    engine: object
    keys: object
    llm: ScriptedLLM
    log: io.StringIO
    admin: dict = field(default_factory=lambda: {"Authorization": f"Bearer {ADMIN_KEY}"})

    def user(self, name: str) -> dict:
        """Create ``name`` with a key; return the request headers for it."""
        self.keys.create_user(name)
        key, _ = self.keys.create_key(name)
        return {"Authorization": f"Bearer {key}"}

    def log_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line]




@pytest.fixture()
def llm():
    with ScriptedLLM(brain) as server:
        yield server


@pytest.fixture()
def api(tmp_path, llm, embedder):
    from fastapi.testclient import TestClient

    from memory import Memory
    from memory.api.app import create_app
    from memory.api.engine import Engine
    from memory.api.keys import open_keystore
    from memory.api.requestlog import RequestLog

    engine = Engine(Memory(scripted_config(tmp_path, llm), embedder=embedder))
    keys = open_keystore(tmp_path)
    log = io.StringIO()
    app = create_app(engine, keys=keys, admin_key=ADMIN_KEY, request_log=RequestLog(stream=log),
                     max_body=64 * 1024)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield ApiHarness(client, engine, keys, llm, log)
    keys.close()
    engine.close()


PY = sys.executable
