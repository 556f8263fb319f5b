"""Request rules of issue 25: an unauthenticated upload is a 401 before its body is read,
``DELETE /v1/memories`` needs exactly ``confirm=true``, a boolean is not an importance,
``/v1/health`` shows server paths to the admin only, and bidi / zero-width / C1
characters never reach the store (texts, tags, titles, file names)."""
from __future__ import annotations

import anyio
import pytest

from tests.api.conftest import is_error

BIDI = "\u202e\u2066"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
C1 = "\x85\x9b"


def test_the_guard_refuses_an_upload_without_a_valid_key_before_reading_it():
    from memory.api.errors import ApiError
    from memory.api.limits import BodyGuardMiddleware

    reached, sent, seen = [], [], []

    async def app(scope, receive, send):
        reached.append(scope["path"])

    async def receive():
        raise AssertionError("the body was read")

    async def send(message):
        sent.append(message)

    def authenticate(header):
        seen.append(header)
        if header != "Bearer good":
            raise ApiError(401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})

    guard = BodyGuardMiddleware(app, max_body=100, uploads={"/v1/resources": 10_000},
                                authenticate=authenticate)
    scope = {"type": "http", "method": "POST", "path": "/v1/resources",
             "headers": [(b"content-length", b"5000"),
                         (b"content-type", b"multipart/form-data; boundary=x")]}
    anyio.run(guard, scope, receive, send)  # no Authorization header
    assert reached == [] and sent[0]["status"] == 401 and seen == [None]
    assert (b"www-authenticate", b"Bearer") in sent[0]["headers"]
    scope["headers"].append((b"authorization", b"Bearer bad"))
    anyio.run(guard, scope, receive, send)
    assert reached == [] and sent[-2]["status"] == 401
    scope["headers"][-1] = (b"authorization", b"Bearer good")
    anyio.run(guard, scope, receive, send)
    assert reached == ["/v1/resources"]
    # JSON routes are not authenticated by the guard (their routes do it)
    scope.update(path="/v1/memories", headers=[(b"content-length", b"10"),
                                               (b"content-type", b"application/json")])
    anyio.run(guard, scope, receive, send)
    assert reached == ["/v1/resources", "/v1/memories"] and len(seen) == 3


def test_unauthenticated_upload_is_401_with_nothing_read_or_stored(api):
    c = api.client
    files = {"file": ("about.txt", b"I love green tea. " * 2000, "text/plain")}
    err = is_error(c.post("/v1/resources", files=files), 401, "unauthorized")
    assert "API key" in err["message"]
    is_error(c.post("/v1/resources", files=files,
                    headers={"Authorization": "Bearer mk_000000000000_" + "x" * 43}), 401)
    lines = api.log_lines()
    assert [ln["status"] for ln in lines] == [401, 401]
    assert [ln["request_bytes"] for ln in lines] == [0, 0]  # the body was never received
    h = api.user("seven")
    assert c.get("/v1/resources", params={"include_deleted": "true"}, headers=h).json() == {
        "resources": []}
    assert api.llm.chat_requests() == []


def test_delete_all_needs_exactly_confirm_true(api):
    c = api.client
    h = api.user("seven")
    c.post("/v1/memories", json={"messages": ["Likes tea", "Lives in Nantes"], "infer": False},
           headers=h)
    for value in ("yes", "1", "on", "True", "TRUE", "", "true "):
        err = is_error(c.delete("/v1/memories", params={"confirm": value}, headers=h), 400)
        assert "confirm=true" in err["message"]
    is_error(c.delete("/v1/memories", headers=h), 400)
    assert c.get("/v1/memories", headers=h).json()["total"] == 2
    assert c.delete("/v1/memories", params={"confirm": "true"}, headers=h).json() == {"deleted": 2}


@pytest.mark.parametrize("value", [True, False, 2.5, "3"])
def test_importance_must_be_an_integer_not_a_boolean(api, value):
    c = api.client
    h = api.user("seven")
    err = is_error(c.post("/v1/memories", json={"messages": ["Likes tea"], "infer": False,
                                                "importance": value}, headers=h), 422)
    assert err["message"].startswith("importance:")
    ok = c.post("/v1/memories", json={"messages": ["Likes tea"], "infer": False, "importance": 4},
                headers=h)
    mid = ok.json()["changes"][0]["id"]
    err = is_error(c.patch(f"/v1/memories/{mid}", json={"importance": value}, headers=h), 422)
    assert err["message"].startswith("importance:")
    assert c.get(f"/v1/memories/{mid}", headers=h).json()["importance"] == 4


def test_health_details_show_server_paths_to_the_admin_only(api, tmp_path):
    h = api.user("seven")
    where = str(tmp_path)
    admin = api.client.get("/v1/health", headers=api.admin).json()["parts"]
    assert where in admin["store"]["detail"]
    user = api.client.get("/v1/health", headers=h).json()["parts"]
    assert all(p["detail"] for p in user.values())  # details, but no server paths
    assert all(where not in p["detail"] and "/" + "tmp" not in p["detail"] for p in user.values())
    assert "[path]" in user["store"]["detail"]
    public = api.client.get("/v1/health").json()["parts"]
    assert all("detail" not in p for p in public.values())


def test_bidi_zero_width_and_c1_characters_are_never_stored(api):
    c = api.client
    h = api.user("seven")
    dirty = f"Li{BIDI}kes{ZERO_WIDTH} green{C1} tea"
    added = c.post("/v1/memories", json={"messages": [dirty], "infer": False,
                                         "tags": [f"dr{BIDI}ink", f"te{ZERO_WIDTH}a"]}, headers=h)
    assert added.status_code == 201, added.text
    mem = c.get(f"/v1/memories/{added.json()['changes'][0]['id']}", headers=h).json()
    assert mem["text"] == "Likes green tea" and mem["tags"] == ["drink", "tea"]
    upd = c.patch(f"/v1/memories/{mem['id']}", json={"text": f"Loves{C1} oolong{BIDI}"}, headers=h)
    assert upd.json()["text"] == "Loves oolong"
    thread = c.post("/v1/threads", json={"title": f"Pl{ZERO_WIDTH}ans{BIDI}"}, headers=h).json()
    assert thread["title"] == "Plans"
    name = f"\u202egnp{ZERO_WIDTH}.txt"  # shows as "txt.png" with the override kept
    up = c.post("/v1/resources", files={"file": (name, b"I love green tea.\n", "text/plain")},
                headers=h)
    assert up.status_code == 201, up.text
    assert up.json()["filename"] == "gnp.txt"
    listed = c.get("/v1/resources", headers=h).json()["resources"]
    assert [r["filename"] for r in listed] == ["gnp.txt"]
    everything = str(c.get("/v1/export", headers=h).json())
    assert not any(ch in everything for ch in BIDI + ZERO_WIDTH + C1)
