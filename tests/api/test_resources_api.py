"""``/v1/resources`` on the TestClient with the scripted LLM: upload (multipart), list with
status and memory counts, get, the resource's memories, soft delete, search scopes (also
through MCP), the upload limit (413 before the body is read), refused and disguised types
(415), and key isolation."""
from __future__ import annotations

import io

import anyio
import pytest

from tests.api.conftest import ADMIN_KEY, is_error
from tests.fake_llm import HTTPError, scripted_config

ABOUT = b"Hi, my name is Seven.\n\nI love green tea in the morning.\n"


def _upload(client, headers, data: bytes = ABOUT, name: str = "about.txt",
            mime: str = "text/plain"):
    return client.post("/v1/resources", files={"file": (name, data, mime)}, headers=headers)


def _search(client, headers, scope: str, query: str = "green tea Seven", limit: int = 10):
    r = client.post("/v1/memories/search", json={"query": query, "limit": limit, "scope": scope},
                    headers=headers)
    assert r.status_code == 200, r.text
    return [m["text"] for m in r.json()["memories"]]


def test_upload_list_get_scope_and_soft_delete(api):
    h = api.user("seven")
    c = api.client
    r = _upload(c, h)
    assert r.status_code == 201, r.text
    res = r.json()
    assert res["status"] == "ready" and res["error"] is None and res["duplicate"] is False
    assert res["mime"] == "text/plain" and res["filename"] == "about.txt" and res["size"] == len(ABOUT)
    assert res["memory_count"] == 2 and res["detail"]["llm_calls"] >= 1
    assert {ch["text"] for ch in res["detail"]["changes"]} == {"Name is Seven", "Likes green tea"}
    rid = res["id"]
    # list and get carry status and memory counts
    [listed] = c.get("/v1/resources", headers=h).json()["resources"]
    assert (listed["id"], listed["status"], listed["memory_count"]) == (rid, "ready", 2)
    got = c.get(f"/v1/resources/{rid}", headers=h).json()
    assert got["sha256"] == res["sha256"] and got["memory_count"] == 2
    mems = c.get(f"/v1/resources/{rid}/memories", headers=h).json()["memories"]
    assert sorted(m["text"] for m in mems) == ["Likes green tea", "Name is Seven"]
    assert all(m["source"] == "resource" and m["metadata"]["resource_id"] == rid for m in mems)
    # the same file again: the same resource, nothing learned again
    again = _upload(c, h, name="copy.txt")
    assert again.status_code == 200 and again.json()["id"] == rid and again.json()["duplicate"] is True
    assert c.get("/v1/memories", headers=h).json()["total"] == 2
    # scopes: a chat memory next to the file's
    c.post("/v1/memories", json={"messages": "Drinks black tea at night", "infer": False}, headers=h)
    assert sorted(_search(c, h, f"resource:{rid}")) == ["Likes green tea", "Name is Seven"]
    assert _search(c, h, "chat") == ["Drinks black tea at night"]
    assert len(_search(c, h, "all")) == 3
    # soft delete: its memories leave search and lists, the row stays with include_deleted
    assert c.delete(f"/v1/resources/{rid}", headers=h).status_code == 204
    is_error(c.get(f"/v1/resources/{rid}", headers=h), 404, "not_found")
    is_error(c.get(f"/v1/resources/{rid}/memories", headers=h), 404)
    is_error(c.delete(f"/v1/resources/{rid}", headers=h), 404)
    assert c.get("/v1/resources", headers=h).json()["resources"] == []
    [gone] = c.get("/v1/resources", params={"include_deleted": "true"}, headers=h).json()["resources"]
    assert gone["id"] == rid and gone["deleted_at"] is not None
    assert _search(c, h, "all") == ["Drinks black tea at night"]
    history = c.get(f"/v1/memories/{mems[0]['id']}/history", headers=h).json()["events"]
    assert history[-1]["event"] == "DELETE" and history[-1]["actor"] == f"resource-deleted:{rid[:8]}"


def test_bad_scope_is_422_naming_the_field(api):
    h = api.user("seven")
    for scope in ("everything", "resource:", "resource: ", "CHAT"):
        err = is_error(api.client.post("/v1/memories/search", json={"query": "tea", "scope": scope},
                                        headers=h), 422, "invalid_request")
        assert err["message"].startswith("scope:") and "resource:<id>" in err["message"]
    # an unknown (or another user's) resource id is a valid scope with no hits
    assert _search(api.client, h, "resource:" + "0" * 32) == []


def test_refused_and_disguised_types_store_nothing(api):
    h = api.user("seven")
    c = api.client
    program = b"MZ\x90\x00" + b"\x00" * 400
    err = is_error(_upload(c, h, program, "cv.pdf", "application/pdf"), 415, "unsupported_media_type")
    assert "refused" in err["message"] and "cv.pdf" in err["message"]
    err = is_error(_upload(c, h, b"I love green tea.", "notes.txt", "application/pdf"), 415)
    assert "declared type" in err["message"]
    err = is_error(_upload(c, h, b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64, "voice.wav",
                            "audio/wav"), 415)
    assert "TRANSCRIPTION_MODEL" in err["message"]
    # not a form at all, or a form without the file field
    err = is_error(c.post("/v1/resources", json={"file": "about.txt"}, headers=h), 415)
    assert "multipart/form-data" in err["message"]
    assert "file" in is_error(c.post("/v1/resources", data={"name": "x"},
                                      files={"other": ("a.txt", b"x")}, headers=h), 422)["message"]
    is_error(c.post("/v1/resources", files={"file": ("a.txt", ABOUT)}), 401)
    assert c.get("/v1/resources", params={"include_deleted": "true"}, headers=h).json()["resources"] == []
    assert c.get("/v1/memories", headers=h).json()["total"] == 0


def test_failed_file_and_llm_down_are_a_failed_resource_with_nothing_stored(api):
    h = api.user("seven")
    c = api.client
    empty = _upload(c, h, b"", "empty.txt")
    assert empty.status_code == 201 and empty.json()["status"] == "failed"
    assert "empty" in empty.json()["error"]
    api.llm.responder = lambda req: HTTPError(500, "boom")
    down = _upload(c, h).json()
    assert down["status"] == "failed" and down["memory_count"] == 0 and "\n" not in down["error"]
    assert c.get("/v1/memories", headers=h).json()["total"] == 0
    statuses = {r["filename"]: r["status"] for r in c.get("/v1/resources", headers=h).json()["resources"]}
    assert statuses == {"empty.txt": "failed", "about.txt": "failed"}


@pytest.fixture()
def small(tmp_path, llm, embedder):
    """An app whose upload limit is 0.05 MB (52,428 bytes) and JSON limit 64 KiB."""
    from fastapi.testclient import TestClient

    from memory import Memory
    from memory.api.app import create_app
    from memory.api.engine import Engine
    from memory.api.keys import open_keystore
    from memory.api.requestlog import RequestLog

    engine = Engine(Memory(scripted_config(tmp_path, llm, memory_max_upload_mb=0.05),
                           embedder=embedder))
    keys = open_keystore(tmp_path)
    app = create_app(engine, keys=keys, admin_key=ADMIN_KEY, request_log=RequestLog(stream=io.StringIO()),
                     max_body=64 * 1024)
    keys.create_user("seven")
    key, _ = keys.create_key("seven")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, {"Authorization": f"Bearer {key}"}, engine
    keys.close()
    engine.close()


def test_upload_over_the_limit_is_413(small, llm):
    client, h, engine = small
    limit = engine.max_upload_bytes
    assert limit == 52428
    # a body far over the limit: refused on its declared Content-Length
    big = b"I love green tea. " * 10000  # 180,000 bytes
    err = is_error(_upload(client, h, big), 413, "payload_too_large")
    assert "MEMORY_MAX_UPLOAD_MB" in err["message"]
    # just over the file limit but within the form's framing slack: the route refuses it
    err = is_error(_upload(client, h, b"x" * (limit + 10)), 413)
    assert "too large" in err["message"] and "MEMORY_MAX_UPLOAD_MB" in err["message"]

    def chunks():  # no Content-Length: counted as it arrives
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\n"
        for _ in range(200):
            yield b"y" * 1024
        yield b"\r\n--b--\r\n"
    err = is_error(client.post("/v1/resources", content=chunks(),
                                headers={**h, "content-type": "multipart/form-data; boundary=b"}), 413)
    assert client.get("/v1/resources", params={"include_deleted": "true"},
                      headers=h).json()["resources"] == []
    assert [r for r in llm.chat_requests()] == []
    # at the limit it is taken
    ok = _upload(client, h, (b"I love green tea. " * 3000)[:limit])
    assert ok.status_code == 201 and ok.json()["size"] == limit


def test_the_guard_answers_413_without_reading_the_body():
    """The middleware refuses a declared oversized upload before calling ``receive``."""
    from memory.api.limits import BodyGuardMiddleware

    reached, sent = [], []

    async def app(scope, receive, send):
        reached.append(scope["path"])

    async def receive():
        raise AssertionError("the body was read")

    async def send(message):
        sent.append(message)

    guard = BodyGuardMiddleware(app, max_body=100, uploads={"/v1/resources": 1000})
    scope = {"type": "http", "method": "POST", "path": "/v1/resources",
             "headers": [(b"content-length", b"1001"),
                         (b"content-type", b"multipart/form-data; boundary=x")]}
    anyio.run(guard, scope, receive, send)
    assert reached == [] and sent[0]["status"] == 413
    # within the upload limit (but over the JSON limit) it passes to the route
    scope["headers"][0] = (b"content-length", b"1000")
    anyio.run(guard, scope, receive, send)
    assert reached == ["/v1/resources"]
    # a JSON route keeps its own limit
    scope.update(path="/v1/memories", headers=[(b"content-length", b"101"),
                                               (b"content-type", b"application/json")])
    anyio.run(guard, scope, receive, send)
    assert sent[-2]["status"] == 413 and reached == ["/v1/resources"]


def test_users_cannot_touch_each_others_resources(api):
    c = api.client
    heads = {u: api.user(u) for u in ("u1", "u2", "u3")}
    rids = {}
    for n, (u, h) in enumerate(heads.items()):
        body = f"My name is Seven.\n\nI love green tea, note {u}-{n}.\n".encode()
        rids[u] = _upload(c, h, body, f"secret-{u}.txt").json()["id"]
    for me, h in heads.items():
        for other, rid in rids.items():
            if other == me:
                continue
            attempts = [c.get(f"/v1/resources/{rid}", headers=h),
                        c.get(f"/v1/resources/{rid}/memories", headers=h),
                        c.delete(f"/v1/resources/{rid}", headers=h)]
            for r in attempts:
                assert r.status_code == 404, (me, other, r.request.method, r.request.url, r.text)
                assert f"secret-{other}" not in r.text
            assert _search(c, h, f"resource:{rid}") == []
        listed = c.get("/v1/resources", params={"include_deleted": "true"}, headers=h).json()
        assert [r["id"] for r in listed["resources"]] == [rids[me]]
    # the same file content for another user is that user's own resource
    again = _upload(c, heads["u2"], f"My name is Seven.\n\nI love green tea, note u1-0.\n".encode())
    assert again.status_code == 201 and again.json()["id"] != rids["u1"]
    for u, h in heads.items():
        r = c.get(f"/v1/resources/{rids[u]}", headers=h)
        assert r.status_code == 200 and r.json()["memory_count"] == 2 and r.json()["deleted_at"] is None


def test_mcp_search_takes_a_scope(api):
    from mcp import Client

    from memory.api.mcp_server import build_mcp

    h = api.user("seven")
    rid = _upload(api.client, h).json()["id"]
    api.client.post("/v1/memories", json={"messages": "Drinks black tea at night", "infer": False},
                    headers=h)
    server = build_mcp(api.engine, user_id="seven")

    async def run():
        async with Client(server) as client:
            out = {}
            for scope in ("chat", f"resource:{rid}", "all"):
                res = await client.call_tool("search_memories", {"query": "tea", "limit": 10,
                                                                 "scope": scope})
                assert not res.is_error, res
                out[scope] = sorted(m["text"] for m in res.structured_content["memories"])
            bad = await client.call_tool("search_memories", {"query": "tea", "scope": "nope"})
            return out, bad

    out, bad = anyio.run(run)
    assert out["chat"] == ["Drinks black tea at night"]
    assert out[f"resource:{rid}"] == ["Likes green tea", "Name is Seven"]
    assert len(out["all"]) == 3
    assert bad.is_error and "unknown search scope" in bad.content[0].text
