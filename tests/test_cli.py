"""The memory CLI and the REPL of main.py, run as real subprocesses (exit codes, JSON)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_llm import ScriptedLLM, is_json_request, last_user_text, system_text

ROOT = Path(__file__).resolve().parent.parent


def brain(req):
    if is_json_request(req):
        if "You extract memories" in system_text(req):
            first = next(m["content"] for m in req["messages"] if m["role"] == "user")
            if "Seven" in first:
                return {"memories": [{"text": "Name is Seven", "topic": "name"},
                                     {"text": "Loves football", "topic": "like"}]}
        return {"memories": []}
    if "Name is Seven" in system_text(req):
        return "You are Seven and you love football."
    return "I don't know yet."


@pytest.fixture(scope="module")
def llm():
    with ScriptedLLM(brain) as server:
        yield server


@pytest.fixture()
def run(tmp_path, llm):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TIDB_", "MEMORY_"))}
    env.update(MEMORY_DATA_DIR=str(tmp_path), OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="test",
               LLM_MODEL="scripted", LLM_MAX_RETRIES="0", LLM_TIMEOUT="10", DATABASE_URL="")

    def _run(*args, stdin=None):
        return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env, input=stdin,
                              capture_output=True, text=True, timeout=120)
    return _run


def test_memories_cli_roundtrip_with_json(run, tmp_path):
    r = run("memories", "add", "Likes green tea", "--user", "seven", "--raw", "--type", "preference", "--json")
    assert r.returncode == 0, r.stderr
    [change] = json.loads(r.stdout)
    assert change["event"] == "ADD" and change["text"] == "Likes green tea"
    assert run("memories", "add", "喜欢踢足球", "--user", "seven", "--raw", "--json").returncode == 0

    listed = json.loads(run("memories", "list", "--user", "seven", "--json").stdout)
    assert {m["text"] for m in listed} == {"Likes green tea", "喜欢踢足球"}
    found = json.loads(run("memories", "search", "足球", "--user", "seven", "--json").stdout)
    assert found["memories"][0]["text"] == "喜欢踢足球"
    assert "Likes green tea" in found["profile"]
    assert json.loads(run("memories", "list", "--user", "jane", "--json").stdout) == []

    out = tmp_path / "seven.json"
    assert run("memories", "export", "--user", "seven", "--out", str(out)).returncode == 0
    imp = json.loads(run("memories", "import", str(out), "--user", "jane", "--json").stdout)
    assert imp["imported"] == 2 and imp["skipped"] == 0

    r = run("memories", "delete", change["id"][:8], "--user", "seven", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["deleted"] == change["id"]
    assert len(json.loads(run("memories", "list", "--user", "seven", "--json").stdout)) == 1
    assert len(json.loads(run("memories", "list", "--user", "jane", "--json").stdout)) == 2


def test_cli_exit_codes(run, tmp_path):
    bad = run("memories", "list")  # --user missing
    assert bad.returncode == 2 and "--user" in bad.stderr
    assert run("memories", "frobnicate", "--user", "x").returncode == 2
    missing = run("memories", "delete", "deadbeef", "--user", "seven")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "no memory" in missing.stderr
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    broken = run("memories", "import", str(tmp_path / "bad.json"), "--user", "seven")
    assert broken.returncode == 2 and "not valid JSON" in broken.stderr
    env_bad = run("memories", "search", "", "--user", "seven")
    assert env_bad.returncode == 2 and "empty" in env_bad.stderr


@pytest.mark.parametrize("args,words", [
    (("memories", "list", "--user", "seven", "--limit", "999999999999999999999"), "--limit"),
    (("memories", "list", "--user", "seven", "--limit", "1.5"), "whole number"),
    (("memories", "list", "--user", " bob"), "whitespace"),
    (("memories", "list", "--user", ".."), "'..'"),
    (("memories", "list", "--user", "evil\u202e"), "text-direction"),
    (("memories", "add", "x", "--user", "seven", "--raw", "--type", "nope"), "--type"),
])
def test_bad_cli_input_exits_2_with_one_line(run, args, words):
    r = run(*args)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and words in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_failed_import_writes_nothing_and_exits_2(run, tmp_path):
    assert run("memories", "add", "Likes tea", "--user", "seven", "--raw").returncode == 0
    good = [{"text": f"fact {i}"} for i in range(300)]
    (tmp_path / "big.json").write_text(json.dumps(
        {"memories": good + [{"text": "bad", "importance": 10**30}]}), encoding="utf-8")
    r = run("memories", "import", str(tmp_path / "big.json"), "--user", "seven")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "memories[300].importance: must be 1..5" in r.stderr
    assert len(json.loads(run("memories", "list", "--user", "seven", "--json").stdout)) == 1


def test_names_with_spaces_work_in_the_cli(run):
    assert run("memories", "add", "Likes tea", "--user", "John Smith", "--raw").returncode == 0
    listed = json.loads(run("memories", "list", "--user", "John Smith", "--json").stdout)
    assert [m["user_id"] for m in listed] == ["John Smith"]


def test_invalid_config_names_the_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MEMORY_"))}
    env.update(MEMORY_DATA_DIR=str(tmp_path), LLM_TIMEOUT="-3")
    r = subprocess.run([sys.executable, "main.py", "memories", "list", "--user", "x"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "LLM_TIMEOUT" in r.stderr and r.stderr.count("\n") == 1


def test_repl_chat_remembers_across_new_thread_and_commands(run):
    session = "\n".join([
        "Hi, I'm Seven and I love football.",
        "/new",
        "Who am I?",
        "/memories",
        "/search football",
        "/profile",
        "/threads",
        "/bogus",
        "/user jane",
        "/memories",
        "exit",
    ]) + "\n"
    r = run("--user", "seven", stdin=session)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "+ added" in out and "Name is Seven" in out
    assert "You are Seven and you love football." in out
    assert "unknown command /bogus" in out
    assert "now chatting as jane (0 memories)" in out
    assert "0 memories of jane" in out.split("now chatting as jane")[1]


def test_repl_undo_takes_the_last_message_back(run):
    session = "\n".join([
        "Hi, I'm Seven and I love football.",
        "/undo",
        "/memories",
        "/undo",
        "exit",
    ]) + "\n"
    r = run("--user", "seven", stdin=session)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "+ added" in out
    undo = out.split("undone", 1)
    assert len(undo) == 2 and "Name is Seven" in undo[1] and "Loves football" in undo[1]
    assert "0 memories of seven" in out
    assert "(nothing to undo)" in out
    r = run("purge", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["erased"] == 0, r.stderr


def test_migrate_status_lists_the_named_migrations(run):
    r = run("migrate", "--status", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    ids = [row["id"] for row in rows]
    assert ids[0] == "0001_initial" and ids == sorted(ids)
    assert all(row["applied_at"] and row["doc"] for row in rows)  # opening applied them
    assert run("migrate").returncode == 2  # neither --to nor --status: bad usage


def test_serve_refuses_a_public_bind_without_an_admin_key(run):
    r = run("serve", "--host", "0.0.0.0", "--port", "8799")
    assert r.returncode == 2 and "MEMORY_ADMIN_KEY" in r.stderr


def test_resources_commands_are_wired(run, tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("", encoding="utf-8")
    r = run("resources", "list", "--user", "ana", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == [], r.stderr
    r = run("resources", "add", str(note), "--user", "ana", "--json")
    assert r.returncode == 2 and json.loads(r.stdout)["status"] == "failed"  # an empty file: bad input
    r = run("resources", "delete", "nope", "--user", "ana")
    assert r.returncode != 0 and "nope" in r.stderr
