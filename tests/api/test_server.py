"""The real thing: ``python -m memory.api serve`` under uvicorn on 127.0.0.1 driven over
HTTP (httpx) and by the MCP SDK's own client over streamable HTTP with a user key; the
MCP stdio server as a subprocess of the SDK's stdio client; a memory added through MCP
is found by the REPL's CLI (main.py) in another process on the same data."""
from __future__ import annotations

import subprocess
import sys

import anyio
import httpx
import pytest

from memory.api.keys import open_keystore
from tests.api.conftest import ROOT, free_port, subprocess_env, wait_ready

PY = sys.executable


@pytest.fixture()
def server(tmp_path, llm):
    ks = open_keystore(tmp_path)
    keys = {}
    for user in ("alice", "bob"):
        ks.create_user(user)
        keys[user] = ks.create_key(user)[0]
    ks.close()
    port = free_port()
    proc = subprocess.Popen([PY, "-m", "memory.api", "serve", "--port", str(port)], cwd=tmp_path,
                            env=subprocess_env(tmp_path, llm), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base + "/v1/health")
        yield base, keys, tmp_path
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _mcp_http(base: str, key: str):
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    return Client(streamable_http_client(base + "/mcp", http_client=http))


def test_real_server_http_and_mcp(server, llm):
    base, keys, data_dir = server
    alice = {"Authorization": f"Bearer {keys['alice']}"}
    with httpx.Client(base_url=base, timeout=30) as c:
        assert c.get("/v1/health").json()["status"] == "ok"
        r = c.post("/v1/memories", json={"messages": "Grows tomatoes on the balcony", "infer": False},
                   headers=alice)
        assert r.status_code == 201
        assert c.get("/v1/memories").status_code == 401
        mcp_401 = c.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert mcp_401.status_code == 401 and mcp_401.json()["error"]["code"] == "unauthorized"
        with c.stream("POST", "/v1/chat", json={"message": "Hello there", "learn": False},
                      headers=alice) as s:
            assert s.status_code == 200
            body = "".join(s.iter_text())
        assert "event: token" in body and "event: done" in body

    async def via_mcp():
        async with _mcp_http(base, keys["alice"]) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools == {"add_memory", "search_memories", "list_memories", "update_memory",
                             "delete_memory", "get_profile"}
            added = await client.call_tool("add_memory", {"text": "Cycles to work every day",
                                                          "infer": False})
            assert not added.is_error
            found = await client.call_tool("search_memories", {"query": "tomatoes", "limit": 2})
            mems = found.structured_content["memories"]
            assert mems[0]["text"] == "Grows tomatoes on the balcony"
            listed = await client.call_tool("list_memories", {})
            return mems[0]["id"], listed.structured_content["total"]

    tomato_id, total = anyio.run(via_mcp)
    assert total == 2

    async def bob_tries():
        async with _mcp_http(base, keys["bob"]) as client:
            upd = await client.call_tool("update_memory", {"memory_id": tomato_id, "text": "x"})
            dele = await client.call_tool("delete_memory", {"memory_id": tomato_id})
            found = await client.call_tool("search_memories", {"query": "tomatoes"})
            return upd.is_error, dele.is_error, found.structured_content["memories"]

    assert anyio.run(bob_tries) == (True, True, [])

    async def no_key():
        async with _mcp_http(base, "mk_000000000000_" + "A" * 43) as client:
            await client.list_tools()
    with pytest.raises(Exception):
        anyio.run(no_key)

    # the REPL's CLI, another process on the same data, finds what MCP added
    out = subprocess.run([PY, "main.py", "memories", "search", "cycling to work", "--user", "alice",
                          "--json"], cwd=ROOT, env=subprocess_env(data_dir, llm),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Cycles to work every day" in out.stdout


def test_mcp_stdio_subprocess(tmp_path, llm):
    from mcp import Client, StdioServerParameters
    params = StdioServerParameters(command=PY, args=["-m", "memory.api", "mcp", "--user", "seven"],
                                   env=subprocess_env(tmp_path, llm), cwd=str(tmp_path))

    async def run():
        async with Client(params, read_timeout_seconds=120) as client:
            added = await client.call_tool("add_memory", {"text": "Hi, I'm Seven"})
            assert not added.is_error, added
            changes = added.structured_content["changes"]
            profile = await client.call_tool("get_profile", {})
            bad = await client.call_tool("update_memory", {"memory_id": "nope", "text": "x"})
            return changes, profile.structured_content["profile"], bad.is_error

    changes, profile, bad = anyio.run(run)
    assert [c["text"] for c in changes] == ["Name is Seven"]
    assert bad is True
    # the web app and the REPL read the same store: the engine finds it for "seven"
    from memory import Memory
    from tests.fake_llm import scripted_config
    mem = Memory(scripted_config(tmp_path, llm))
    try:
        assert [m.text for m in mem.list("seven")] == ["Name is Seven"]
        assert mem.list("other") == []
    finally:
        mem.close()


def test_refuses_public_bind_without_admin_key(tmp_path, llm):
    env = subprocess_env(tmp_path, llm)
    env.pop("MEMORY_ADMIN_KEY", None)
    out = subprocess.run([PY, "-m", "memory.api", "serve", "--host", "0.0.0.0", "--port",
                          str(free_port())], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2
    assert "MEMORY_ADMIN_KEY" in out.stderr and "127.0.0.1" in out.stderr
    assert "Traceback" not in out.stderr
