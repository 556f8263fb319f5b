"""The request log: one JSON line per request with the user, status and sizes, and no
key, token, password or body in it."""
from __future__ import annotations

from memory.api.requestlog import redact_query


def test_one_redacted_line_per_request(api):
    h = api.user("seven")
    key = h["Authorization"].split()[1]
    api.client.post("/v1/memories", json={"messages": "my password is hunter2-secret", "infer": False},
                    headers=h)
    api.client.get("/v1/memories", params={"api_key": key, "token": "tok-123", "limit": 5}, headers=h)
    api.client.get(f"/v1/memories/{key}", headers=h)
    api.client.get("/v1/memories", headers={"Authorization": "Bearer wrong-key-xyz"})
    lines = api.log_lines()
    assert len(lines) == 4
    first = lines[0]
    assert {"time", "duration_ms", "method", "path", "status", "user_id", "request_bytes",
            "response_bytes"} <= set(first)
    assert first["status"] == 201 and first["user_id"] == "seven" and first["request_bytes"] > 0
    assert lines[1]["query"].count("[redacted]") == 2 and "limit=5" in lines[1]["query"]
    assert lines[2]["path"] == "/v1/memories/[redacted]"
    assert lines[3]["status"] == 401 and lines[3]["user_id"] is None
    text = api.log.getvalue()
    for secret in (key, key.split("_", 2)[2], "tok-123", "hunter2", "wrong-key-xyz"):
        assert secret not in text


def test_redact_query():
    assert redact_query("password=x&q=tea&Authorization=y") == "password=[redacted]&q=tea&Authorization=[redacted]"
    assert redact_query("") == ""
