"""Key isolation: five users with their own keys each try every endpoint on the others'
memory and thread ids and get 404 (never 403, never data); the others' data is intact."""
from __future__ import annotations

USERS = ["u1", "u2", "u3", "u4", "u5"]


def test_five_users_cannot_touch_each_other(api):
    c = api.client
    heads, mem_ids, thread_ids, texts = {}, {}, {}, {}
    for u in USERS:
        heads[u] = api.user(u)
        texts[u] = f"Secret note of {u}: the locker code is {USERS.index(u)}417"
        mem_ids[u] = c.post("/v1/memories", json={"messages": texts[u], "infer": False,
                                                  "memory_type": "preference"},
                            headers=heads[u]).json()["changes"][0]["id"]
        thread_ids[u] = c.post("/v1/threads", json={"title": f"t-{u}"}, headers=heads[u]).json()["id"]
    for me in USERS:
        h = heads[me]
        for other in (o for o in USERS if o != me):
            m, t = mem_ids[other], thread_ids[other]
            attempts = [
                c.get(f"/v1/memories/{m}", headers=h),
                c.patch(f"/v1/memories/{m}", json={"text": "hijacked"}, headers=h),
                c.delete(f"/v1/memories/{m}", headers=h),
                c.get(f"/v1/memories/{m}/history", headers=h),
                c.get(f"/v1/threads/{t}/messages", headers=h),
                c.patch(f"/v1/threads/{t}", json={"title": "hijacked"}, headers=h),
                c.delete(f"/v1/threads/{t}", headers=h),
                c.post("/v1/chat", json={"message": "hi", "thread_id": t, "learn": False}, headers=h),
            ]
            for r in attempts:
                assert r.status_code == 404, (me, other, r.request.method, r.request.url, r.text)
                assert other not in r.text and texts[other] not in r.text
        # the collection endpoints show only the caller's own data
        seen = [
            c.post("/v1/memories/search", json={"query": "secret locker code", "limit": 50}, headers=h),
            c.get("/v1/memories", params={"limit": 1000}, headers=h),
            c.get("/v1/profile", headers=h),
            c.get("/v1/export", headers=h),
            c.get("/v1/threads", headers=h),
        ]
        for r in seen:
            assert r.status_code == 200
            for other in (o for o in USERS if o != me):
                assert texts[other] not in r.text and mem_ids[other] not in r.text
                assert thread_ids[other] not in r.text
    # every user still has exactly their own note, untouched
    for u in USERS:
        mine = c.get("/v1/memories", headers=heads[u]).json()["memories"]
        assert [m["text"] for m in mine] == [texts[u]]
        assert [t["title"] for t in c.get("/v1/threads", headers=heads[u]).json()["threads"]] == [f"t-{u}"]
        assert c.get(f"/v1/memories/{mem_ids[u]}", headers=heads[u]).status_code == 200
    # "delete all mine" deletes only mine
    assert c.delete("/v1/memories", params={"confirm": "true"}, headers=heads["u1"]).json() == {"deleted": 1}
    assert [c.get("/v1/memories", headers=heads[u]).json()["total"] for u in USERS] == [0, 1, 1, 1, 1]
    # MCP tools over HTTP are scoped the same way (checked in test_server.py)
