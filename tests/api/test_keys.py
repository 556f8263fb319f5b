"""Users and API keys: only argon2id hashes on disk (0600), shown-once keys, revoke and
rotate (also across processes), and the admin API behind MEMORY_ADMIN_KEY."""
from __future__ import annotations

import stat

from memory.api.keys import KeyStore


def test_keystore_stores_only_hashes_and_is_private(tmp_path):
    ks = KeyStore(tmp_path / "keys.db")
    ks.create_user("seven")
    key, info = ks.create_key("seven", "laptop")
    secret = key.split("_", 2)[2]
    raw = (tmp_path / "keys.db").read_bytes()
    assert secret.encode() not in raw and b"$argon2id$" in raw
    assert stat.S_IMODE((tmp_path / "keys.db").stat().st_mode) == 0o600
    assert ks.verify(key).user_id == "seven"
    assert ks.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert ks.verify("mk_000000000000_" + secret) is None
    other = KeyStore(tmp_path / "keys.db")  # a second process on the same file
    assert other.verify(key).key_id == info.key_id
    assert ks.revoke(info.key_id) and not ks.revoke(info.key_id)
    assert other.verify(key) is None  # revocation is seen at once
    other.close()
    ks.close()


def test_rotate_revokes_the_old_key(tmp_path):
    ks = KeyStore(tmp_path / "keys.db")
    ks.create_user("a")
    old, info = ks.create_key("a", "ci")
    new, new_info = ks.rotate(info.key_id)
    assert ks.verify(old) is None and ks.verify(new).user_id == "a"
    assert new_info.label == "ci"
    assert {k.key_id: k.revoked_at is None for k in ks.keys("a")} == {info.key_id: False, new_info.key_id: True}
    ks.close()


def test_admin_api(api):
    c, admin = api.client, api.admin
    assert c.post("/v1/admin/users", json={"user_id": "lin"}, headers=admin).status_code == 201
    assert c.post("/v1/admin/users", json={"user_id": "lin"}, headers=admin).status_code == 409
    made = c.post("/v1/admin/users/lin/keys", json={"label": "phone"}, headers=admin).json()
    h = {"Authorization": f"Bearer {made['key']}"}
    assert c.get("/v1/me", headers=h).json() == {"user_id": "lin", "key_id": made["key_id"]}
    listed = c.get("/v1/admin/users/lin/keys", headers=admin).json()["keys"]
    assert [k["key_id"] for k in listed] == [made["key_id"]] and "key" not in listed[0]
    assert c.post("/v1/admin/users/nobody/keys", json={}, headers=admin).status_code == 404
    rotated = c.post(f"/v1/admin/keys/{made['key_id']}/rotate", headers=admin).json()
    assert c.get("/v1/me", headers=h).status_code == 401
    h2 = {"Authorization": f"Bearer {rotated['key']}"}
    own = c.post("/v1/keys/rotate", headers=h2).json()  # a user rotates their own key
    assert c.get("/v1/me", headers=h2).status_code == 401
    h3 = {"Authorization": f"Bearer {own['key']}"}
    assert c.delete(f"/v1/admin/keys/{own['key_id']}", headers=admin).status_code == 204
    assert c.get("/v1/me", headers=h3).status_code == 401
    assert c.delete(f"/v1/admin/keys/{own['key_id']}", headers=admin).status_code == 404
    # a user key is not an admin key, and a wrong admin key is refused
    user = api.user("eve")
    assert c.get("/v1/admin/users", headers=user).status_code == 401
    assert c.get("/v1/admin/users", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert {u["user_id"] for u in c.get("/v1/admin/users", headers=admin).json()["users"]} == {"lin", "eve"}


def test_admin_api_off_without_admin_key(tmp_path, llm, embedder):
    from fastapi.testclient import TestClient

    from memory import Memory
    from memory.api.app import create_app
    from memory.api.engine import Engine
    from memory.api.requestlog import RequestLog
    from tests.fake_llm import scripted_config
    engine = Engine(Memory(scripted_config(tmp_path, llm), embedder=embedder))
    app = create_app(engine, admin_key="", request_log=RequestLog())
    with TestClient(app) as c:
        r = c.post("/v1/admin/users", json={"user_id": "x"}, headers={"Authorization": "Bearer "})
        assert r.status_code == 403 and "MEMORY_ADMIN_KEY" in r.json()["error"]["message"]
    engine.close()


def test_cli_user_and_key_commands(tmp_path, monkeypatch, capsys):
    import json

    from memory.api.cli import main
    monkeypatch.setenv("MEMORY_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(["user", "create", "seven", "--label", "laptop"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["user_id"] == "seven" and made["key"].startswith("mk_")
    assert main(["user", "create", "seven"]) == 1
    assert main(["key", "rotate", made["key_id"]]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["revoked"] == made["key_id"]
    assert main(["key", "revoke", rotated["key_id"]]) == 0
    capsys.readouterr()
    assert main(["key", "list", "seven"]) == 0
    listed = json.loads(capsys.readouterr().out)["keys"]
    assert len(listed) == 2 and all(k["revoked_at"] for k in listed)
