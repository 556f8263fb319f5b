"""API keys under attack (issue 25): concurrent rotations of one key (real threads on a
real keys.db, and on the real server), no key-id timing oracle (argon2 verifications
counted, not timed), the admin key masked in the request log, a weak admin key refused,
MEMORY_ADMIN_KEY / MEMORY_API_MAX_BODY_BYTES read from .env, private data and log dirs."""
from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from memory.api import keys as keys_mod
from memory.api.keys import KeyStore, KeyStoreError, open_keystore
from tests.api.conftest import free_port, subprocess_env, wait_ready

N = 8
STRONG_ADMIN = "9f3c1a7be20d46c58e11f0a4b7d2c963e5a8"


def _race(n: int, call):
    """Run ``call(i)`` in ``n`` threads released together (a barrier); return the
    results in order, exceptions included as values."""
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        try:
            return call(i)
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            return exc

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


@pytest.mark.parametrize("shared", [True, False], ids=["one-connection", "connection-per-thread"])
def test_concurrent_rotations_of_one_key_issue_exactly_one_new_key(tmp_path, shared):
    path = tmp_path / "keys.db"
    ks = KeyStore(path)
    ks.create_user("alice")
    old, info = ks.create_key("alice", "laptop")
    # one connection shared by the threads (one server process), or one per thread (as
    # separate processes on the same file would have)
    stores = [ks] * N if shared else [KeyStore(path) for _ in range(N)]
    results = _race(N, lambda i: stores[i].rotate(info.key_id, user_id="alice"))
    won = [r for r in results if isinstance(r, tuple)]
    lost = [r for r in results if not isinstance(r, tuple)]
    assert len(won) == 1, results
    assert all(isinstance(r, KeyStoreError) for r in lost), lost
    new_key, new_info = won[0]
    assert ks.verify(old) is None and ks.verify(new_key).user_id == "alice"
    active = [k for k in ks.keys("alice") if k.revoked_at is None]
    assert [k.key_id for k in active] == [new_info.key_id] and active[0].label == "laptop"
    for store in set(stores) - {ks}:
        store.close()
    ks.close()


def test_rotating_a_revoked_key_or_another_users_key_is_refused(tmp_path):
    ks = KeyStore(tmp_path / "keys.db")
    for user in ("a", "b"):
        ks.create_user(user)
    _, ka = ks.create_key("a")
    _, kb = ks.create_key("b")
    with pytest.raises(KeyStoreError):
        ks.rotate(kb.key_id, user_id="a")
    assert ks.revoke(ka.key_id)
    with pytest.raises(KeyStoreError):
        ks.rotate(ka.key_id)
    assert len(ks.keys()) == 2  # nothing issued
    ks.close()


@pytest.fixture()
def counted_verify(monkeypatch):
    """Count argon2 verifications made by memory.api.keys."""
    real = keys_mod._HASHER
    calls: list[str] = []

    class Counting:
        def hash(self, secret):
            return real.hash(secret)

        def verify(self, digest, secret):
            calls.append(digest)
            return real.verify(digest, secret)

    monkeypatch.setattr(keys_mod, "_HASHER", Counting())
    return calls


def test_unknown_key_id_costs_one_argon2_verification_like_a_wrong_secret(tmp_path, counted_verify):
    ks = KeyStore(tmp_path / "keys.db")
    ks.create_user("a")
    key, info = ks.create_key("a")
    secret = key.split("_", 2)[2]
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    cases = {
        "unknown id": f"mk_{'0' * 12}_{secret}",
        "known id, wrong secret": f"mk_{info.key_id}_{wrong}",
    }
    for name, candidate in cases.items():
        counted_verify.clear()
        assert ks.verify(candidate) is None
        assert len(counted_verify) == 1, name
    counted_verify.clear()
    assert ks.verify(key).user_id == "a" and len(counted_verify) == 1
    ks.revoke(info.key_id)
    counted_verify.clear()
    assert ks.verify(key) is None and len(counted_verify) == 1  # revoked: like unknown
    ks.close()


def test_admin_key_is_masked_in_the_request_log(api):
    admin = api.admin["Authorization"].split()[1]
    h = api.user("seven")
    api.client.get("/v1/memories", params={"q": admin, "note": f"x{admin}y"}, headers=h)
    api.client.get(f"/v1/memories/{admin}", headers=h)
    api.client.delete(f"/v1/admin/keys/{admin}", headers=api.admin)
    lines = api.log_lines()
    assert len(lines) == 3
    assert lines[0]["query"] == "q=[redacted]&note=x[redacted]y"
    assert lines[1]["path"] == "/v1/memories/[redacted]"
    assert lines[2]["path"] == "/v1/admin/keys/[redacted]"
    assert admin not in api.log.getvalue()


@pytest.mark.parametrize("weak", ["a" * 16, "0123456789abcdef", "passwordpassword", "short-key"])
def test_a_weak_admin_key_is_refused_at_start(weak, tmp_path, monkeypatch, capsys):
    from memory.api.cli import serve
    from memory.config import ConfigError, load_config
    with pytest.raises(ConfigError, match=r"^MEMORY_ADMIN_KEY: too (short|easy to guess)"):
        load_config(env_file=None, memory_admin_key=weak)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEMORY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MEMORY_ADMIN_KEY", weak)
    assert serve("127.0.0.1", free_port()) == 2
    err = capsys.readouterr().err
    assert "MEMORY_ADMIN_KEY" in err and "openssl rand" in err and weak not in err


def test_a_random_admin_key_is_accepted():
    import secrets

    from memory.config import load_config
    for _ in range(20):
        key = secrets.token_hex(8)  # 16 hex characters, the documented minimum
        assert load_config(env_file=None, memory_admin_key=key).memory_admin_key == key
    assert load_config(env_file=None, memory_admin_key=STRONG_ADMIN).masked()["MEMORY_ADMIN_KEY"] == "***"


def test_user_create_makes_a_private_data_dir(tmp_path, monkeypatch, capsys):
    from memory.api.cli import main
    data = tmp_path / "new" / "data"
    monkeypatch.setenv("MEMORY_DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path)
    assert main(["user", "create", "seven"]) == 0
    assert json.loads(capsys.readouterr().out)["user_id"] == "seven"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "keys.db").stat().st_mode) == 0o600


def test_request_log_dir_is_private_also_when_it_existed(tmp_path):
    from memory.api.requestlog import default_log
    fresh = default_log(tmp_path / "a", echo=False)
    assert stat.S_IMODE((tmp_path / "a" / "logs").stat().st_mode) == 0o700
    fresh.close()
    old = tmp_path / "b" / "logs"
    old.mkdir(parents=True, mode=0o755)
    old.chmod(0o755)
    default_log(tmp_path / "b", echo=False).close()
    assert stat.S_IMODE(old.stat().st_mode) == 0o700


@pytest.fixture()
def env_file_server(tmp_path, llm):
    """The real server (``python -m memory.api serve``) whose admin key and JSON body
    limit are only in ``.env`` (not in its environment); alice has a key."""
    ks = open_keystore(tmp_path)
    ks.create_user("alice")
    key = ks.create_key("alice", "laptop")[0]
    ks.close()
    (tmp_path / ".env").write_text(f"MEMORY_ADMIN_KEY={STRONG_ADMIN}\n"
                                   "MEMORY_API_MAX_BODY_BYTES=2048\n", encoding="utf-8")
    env = subprocess_env(tmp_path, llm)
    assert not any(k in env for k in ("MEMORY_ADMIN_KEY", "MEMORY_API_MAX_BODY_BYTES"))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "memory.api", "serve", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base + "/v1/health")
        yield base, key, tmp_path
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_real_server_concurrent_rotations_env_file_and_private_logs(env_file_server):
    base, key, data = env_file_server
    admin = {"Authorization": f"Bearer {STRONG_ADMIN}"}

    def post(path, headers):
        with httpx.Client(base_url=base, timeout=120) as c:
            return c.post(path, headers=headers)

    def works(k):
        with httpx.Client(base_url=base, timeout=30) as c:
            return c.get("/v1/me", headers={"Authorization": f"Bearer {k}"}).status_code == 200

    # 1. eight concurrent POST /v1/keys/rotate with the same key: one 201, seven 401
    answers = _race(N, lambda i: post("/v1/keys/rotate", {"Authorization": f"Bearer {key}"}))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] + [401] * (N - 1), [r.text for r in answers]
    assert all(r.json()["error"]["message"] == "invalid or revoked API key"
               for r in answers if r.status_code == 401)
    new = next(r.json() for r in answers if r.status_code == 201)
    assert works(new["key"]) and not works(key)

    # 2. the admin route (same code), its key read from .env: one 201, seven 404
    answers = _race(N, lambda i: post(f"/v1/admin/keys/{new['key_id']}/rotate", admin))
    assert sorted(r.status_code for r in answers) == [201] + [404] * (N - 1)
    issued = [r.json()["key"] for r in answers if r.status_code == 201]
    assert works(issued[0]) and not works(new["key"])
    with httpx.Client(base_url=base, timeout=30) as c:
        listed = c.get("/v1/admin/users/alice/keys", headers=admin).json()["keys"]
        assert len(listed) == 3 and sum(k["revoked_at"] is None for k in listed) == 1
        # 3. MEMORY_API_MAX_BODY_BYTES=2048 from .env
        h = {"Authorization": f"Bearer {issued[0]}"}
        big = c.post("/v1/memories", json={"messages": "x" * 3000, "infer": False}, headers=h)
        assert big.status_code == 413 and "2,048" in big.json()["error"]["message"]
    # 4. the request log: private folder, no admin key in it
    logs = data / "logs"
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700
    text = (logs / "api-requests.jsonl").read_text(encoding="utf-8")
    assert STRONG_ADMIN not in text and key not in text and issued[0] not in text
