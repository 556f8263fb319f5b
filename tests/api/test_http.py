"""The HTTP API on the FastAPI TestClient: every resource, SSE chat, and bad input (401,
404, 413, 415, 422, 503) in the one error shape, never a traceback."""
from __future__ import annotations

import json

from tests.api.conftest import is_error
from tests.fake_llm import HTTPError


def _sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name = next((ln[7:] for ln in block.splitlines() if ln.startswith("event: ")), None)
        data = next((ln[6:] for ln in block.splitlines() if ln.startswith("data: ")), None)
        if name and data is not None:
            events.append((name, json.loads(data)))
    return events


def test_memory_lifecycle(api):
    h = api.user("seven")
    c = api.client
    r = c.post("/v1/memories", json={"messages": "Hi, I'm Seven and I love green tea"}, headers=h)
    assert r.status_code == 201
    added = {ch["text"]: ch["id"] for ch in r.json()["changes"] if ch["event"] == "ADD"}
    assert set(added) == {"Name is Seven", "Likes green tea"}
    raw = c.post("/v1/memories", json={"messages": [{"role": "user", "content": "Plays chess on Sundays"}],
                                       "infer": False, "memory_type": "preference", "tags": ["hobby"]},
                 headers=h).json()["changes"][0]
    hits = c.post("/v1/memories/search", json={"query": "chess", "limit": 3}, headers=h).json()
    assert hits["memories"][0]["id"] == raw["id"] and "Plays chess" in hits["profile"]
    page = c.get("/v1/memories", params={"limit": 1, "types": ["preference"]}, headers=h).json()
    assert page["total"] == 2 and [m["id"] for m in page["memories"]] == [raw["id"]]  # newest
    assert {m["type"] for m in c.get("/v1/memories", params={"types": ["preference"]},
                                     headers=h).json()["memories"]} == {"preference"}
    assert c.get("/v1/memories", headers=h).json()["total"] == 3
    got = c.get(f"/v1/memories/{raw['id']}", headers=h).json()
    assert got["tags"] == ["hobby"] and got["type"] == "preference"
    upd = c.patch(f"/v1/memories/{raw['id']}", json={"text": "Plays chess on Saturdays",
                                                     "importance": 5}, headers=h)
    assert upd.status_code == 200 and upd.json()["importance"] == 5
    assert "Saturdays" in c.get("/v1/profile", headers=h).json()["profile"]
    assert c.delete(f"/v1/memories/{raw['id']}", headers=h).status_code == 204
    is_error(c.get(f"/v1/memories/{raw['id']}", headers=h), 404, "not_found")
    events = c.get(f"/v1/memories/{raw['id']}/history", headers=h).json()["events"]
    assert [e["event"] for e in events] == ["ADD", "UPDATE", "DELETE"]
    assert events[1]["old_text"] == "Plays chess on Sundays" and events[1]["actor"] == "api"
    is_error(c.delete("/v1/memories", headers=h), 400)
    assert c.delete("/v1/memories", params={"confirm": "true"}, headers=h).json() == {"deleted": 2}
    assert c.get("/v1/memories", headers=h).json()["total"] == 0


def test_threads_chat_stream_and_learning(api):
    h = api.user("seven")
    c = api.client
    r = c.post("/v1/chat", json={"message": "Hello, I'm Seven"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _sse(r.text)
    names = [n for n, _ in events]
    assert names[0] == "start" and names[-2:] == ["memory", "done"] and "token" in names
    reply = "".join(d["text"] for n, d in events if n == "token")
    assert reply.split() == "Hello friend, nice to talk".split()
    thread_id = events[-1][1]["thread_id"]
    assert [ch["text"] for ch in dict(events)["memory"]["changes"]] == ["Name is Seven"]
    # the second turn in the same thread is given the learned memory
    r2 = c.post("/v1/chat", json={"message": "What is my name?", "thread_id": thread_id,
                                  "learn": False}, headers=h)
    ev2 = _sse(r2.text)
    assert [m["text"] for m in ev2[0][1]["used"]] == ["Name is Seven"]
    assert "memory" not in [n for n, _ in ev2]
    threads = c.get("/v1/threads", headers=h).json()["threads"]
    assert [t["id"] for t in threads] == [thread_id]
    msgs = c.get(f"/v1/threads/{thread_id}/messages", headers=h).json()["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert c.patch(f"/v1/threads/{thread_id}", json={"title": "Names"}, headers=h).status_code == 204
    new = c.post("/v1/threads", json={"title": "Empty"}, headers=h).json()
    assert {t["title"] for t in c.get("/v1/threads", headers=h).json()["threads"]} == {"Names", "Empty"}
    assert c.delete(f"/v1/threads/{new['id']}", headers=h).status_code == 204
    is_error(c.post("/v1/chat", json={"message": "hi", "thread_id": new["id"]}, headers=h), 404)


def test_export_import_round_trip(api):
    a, b = api.user("a"), api.user("b")
    c = api.client
    assert c.post("/v1/memories", json={"messages": ["Owns a cat", "Lives in Nantes"], "infer": False},
                  headers=a).status_code == 201
    dump = c.get("/v1/export", headers=a).json()
    assert dump["user_id"] == "a" and len(dump["memories"]) == 2
    r = c.post("/v1/import", json=dump, headers=b)
    assert r.status_code == 200 and r.json()["imported"] == 2
    assert c.post("/v1/import", json=dump, headers=b).json() == {"imported": 0, "skipped": 2, "threads": 0}
    assert {m["text"] for m in c.get("/v1/memories", headers=b).json()["memories"]} == {"Owns a cat", "Lives in Nantes"}
    is_error(c.post("/v1/import", json={"memories": [{"text": 5}]}, headers=b), 400)


def test_auth_errors(api):
    c = api.client
    is_error(c.get("/v1/memories"), 401, "unauthorized")
    assert c.get("/v1/memories").headers["www-authenticate"] == "Bearer"
    is_error(c.get("/v1/memories", headers={"Authorization": "Bearer nope"}), 401)
    h = api.user("x")
    forged = h["Authorization"][:-4] + "AAAA"
    is_error(c.get("/v1/memories", headers={"Authorization": forged}), 401)
    is_error(c.get("/v1/memories", headers={"Authorization": h["Authorization"].replace("Bearer", "Basic")}), 401)
    assert c.get("/v1/me", headers=h).json()["user_id"] == "x"


def test_bad_input_shapes(api):
    h = api.user("seven")
    c = api.client
    j = {**h, "content-type": "application/json"}
    err = is_error(c.post("/v1/memories/search", content=b'{"query": "tea",', headers=j), 422)
    assert "malformed JSON" in err["message"]
    assert "query" in is_error(c.post("/v1/memories/search", json={"limit": 2}, headers=h), 422)["message"]
    assert "limit" in is_error(c.post("/v1/memories/search", json={"query": "x", "limit": 0}, headers=h), 422)["message"]
    # the user never comes from the body
    err = is_error(c.post("/v1/memories", json={"messages": "hi", "user_id": "other"}, headers=h), 422)
    assert "user_id" in err["message"]
    is_error(c.post("/v1/memories/search", content=b"query=tea",
                     headers={**h, "content-type": "application/x-www-form-urlencoded"}), 415)
    is_error(c.get("/v1/nothing-here", headers=h), 404)
    is_error(c.patch("/v1/memories/abc", json={}, headers=h), 422)


def test_oversized_body_is_refused_before_it_is_read(api):
    h = {**api.user("seven"), "content-type": "application/json"}
    big = b'{"query": "' + b"x" * (80 * 1024) + b'"}'
    err = is_error(api.client.post("/v1/memories/search", content=big, headers=h), 413)
    assert "65,536" in err["message"]

    def chunks():  # no Content-Length: counted as it arrives
        yield b'{"query": "'
        for _ in range(100):
            yield b"y" * 1024
        yield b'"}'
    is_error(api.client.post("/v1/memories/search", content=chunks(), headers=h), 413)


def test_llm_down_on_write_path_stores_nothing(api):
    h = api.user("seven")
    c = api.client
    api.llm.responder = lambda req: HTTPError(500, "boom")
    err = is_error(c.post("/v1/memories", json={"messages": "I'm Seven and I love tea"}, headers=h), 503)
    assert "extraction" in err["message"].lower()
    assert c.get("/v1/memories", headers=h).json()["total"] == 0
    is_error(c.post("/v1/chat", json={"message": "Hello"}, headers=h), 503)
    # raw adds need no LLM and still work
    assert c.post("/v1/memories", json={"messages": "tea", "infer": False}, headers=h).status_code == 201


def test_health_ok_then_degraded(api):
    h = api.user("seven")
    ok = api.client.get("/v1/health", headers=h)
    assert ok.status_code == 200 and ok.json()["status"] == "ok"
    assert set(ok.json()["parts"]) == {"llm", "embedder", "store"}
    assert all(p["latency_ms"] is not None and p["detail"] for p in ok.json()["parts"].values())
    public = api.client.get("/v1/health").json()
    assert "detail" not in public["parts"]["llm"]
    api.llm.stop()
    bad = api.client.get("/v1/health", headers=h)
    assert bad.status_code == 503
    assert bad.json()["status"] == "degraded" and bad.json()["degraded"] == ["llm"]


def test_openapi_docs_list_the_routes(api):
    spec = api.client.get("/openapi.json").json()
    for path in ("/v1/memories", "/v1/memories/search", "/v1/memories/{memory_id}/history",
                 "/v1/chat", "/v1/health", "/v1/admin/users", "/v1/resources",
                 "/v1/resources/{resource_id}/memories"):
        assert path in spec["paths"]
    assert api.client.get("/docs").status_code == 200


def test_changes_carry_the_engines_reason(api, monkeypatch):
    """A change that may be wrong says why (Change.reason): here the KNOWN memories
    could not be searched, so the extraction could not compare against them."""
    from memory.store.base import StoreError

    h = api.user("seven")

    def down(*a, **k):
        raise StoreError("database is locked")
    monkeypatch.setattr(api.engine.memory, "search", down)
    r = api.client.post("/v1/memories", json={"messages": "Hi, I'm Seven"}, headers=h)
    assert r.status_code == 201, r.text
    [change] = r.json()["changes"]
    assert change["event"] == "ADD" and "known memories could not be searched" in change["reason"]
    monkeypatch.undo()
    raw = api.client.post("/v1/memories", json={"messages": "tea", "infer": False}, headers=h)
    assert raw.json()["changes"][0]["reason"] is None


def test_undo_and_past_routes(api):
    """An add answers its turn_id; POST /v1/memories/undo takes the turn back (an added
    memory is erased); a forget request is a tombstone listed by /past?forgotten=true
    and undo restores it; another user cannot undo it (409, nothing changed)."""
    h, other = api.user("seven"), api.user("eight")
    c = api.client
    added = c.post("/v1/memories", json={"messages": "I love green tea"}, headers=h).json()
    assert added["turn_id"] and [ch["event"] for ch in added["changes"]] == ["ADD"]
    undone = c.post("/v1/memories/undo", json={"turn_id": added["turn_id"]}, headers=h)
    assert undone.status_code == 200
    assert [ch["event"] for ch in undone.json()["changes"]] == ["UNDO"]
    assert c.get("/v1/memories", headers=h).json()["total"] == 0
    is_error(c.post("/v1/memories/undo", json={"turn_id": added["turn_id"]}, headers=h), 409)
    c.post("/v1/memories", json={"messages": "I love green tea"}, headers=h)
    forgot = c.post("/v1/memories", json={"messages": "Please forget that I love green tea"},
                    headers=h).json()
    assert [ch["event"] for ch in forgot["changes"]] == ["FORGET"]
    assert c.get("/v1/memories", headers=h).json()["total"] == 0
    gone = c.get("/v1/memories/past", params={"forgotten": "true"}, headers=h).json()["memories"]
    assert [(m["text"], m["status"]) for m in gone] == [("Likes green tea", "forgotten")]
    assert c.get("/v1/memories/past", headers=h).json()["memories"] == []
    is_error(c.post("/v1/memories/undo", json={"turn_id": forgot["turn_id"]}, headers=other), 409)
    assert c.post("/v1/memories/undo", json={}, headers=h).status_code == 200  # latest turn
    assert [m["text"] for m in c.get("/v1/memories", headers=h).json()["memories"]] == ["Likes green tea"]
    assert c.post("/v1/memories/undo", json={"turn_id": "x" * 65}, headers=h).status_code == 422
