"""The acceptance walk-through on the REAL local model (Qwen2.5-Coder-1.5B via llama.cpp on
127.0.0.1), real embedder, real SQLite file. Assertions are on stored state and key
words, never on exact wording. Slow (minutes): marked ``e2e``; CI runs them."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from memory import Memory, load_config

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def mem(tmp_path_factory):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python[server] is not installed (./test.sh installs it)")
    from memory import local_llm

    data = tmp_path_factory.mktemp("e2e")
    # temperature 0: greedy decoding, so a CI run sees the same replies as this one did
    m = Memory(load_config(env_file=None, memory_data_dir=data, llm_temperature=0))
    assert m.config.uses_local_llm
    already_running = local_llm.served_models(m.config) is not None
    yield m
    m.close()
    if not already_running:  # leave the machine as we found it
        local_llm.stop_server(m.config)


def texts(mem: Memory, user: str) -> list[str]:
    return [r.text for r in mem.list(user, limit=500)]


def turn(mem: Memory, text: str, user: str, thread_id=None):
    t = mem.chat(text, user, thread_id)
    reply = t.run()
    assert t.error is None, t.error
    return t, reply, t.changes()


def test_walkthrough_on_the_real_local_model(mem):
    # 1. introduce yourself: memories are extracted and stored
    _, reply, changes = turn(mem, "Hi, I'm Seven. I work in Shanghai and love football.", "seven")
    assert reply.strip()
    stored = " | ".join(texts(mem, "seven")).lower()
    assert "seven" in stored and "shanghai" in stored and "football" in stored, stored
    assert all(c.event in ("ADD", "NONE") for c in changes)

    # 2. a new thread recalls who the user is
    new = mem.new_thread("seven")
    t, reply, _ = turn(mem, "Who am I?", "seven", new.id)
    assert "seven" in reply.lower(), reply
    assert "Seven" in t.prompt[0]["content"]  # the profile was injected

    # 3. the move updates the Shanghai memory (not a duplicate, not left contradicting)
    before = texts(mem, "seven")
    _, _, changes = turn(mem, "I moved to Beijing last month.", "seven")
    after = texts(mem, "seven")
    assert any("beijing" in x.lower() for x in after), after
    assert not any("shanghai" in x.lower() and "beijing" not in x.lower() for x in after), after
    updated = [c for c in changes if c.event in ("UPDATE", "DELETE") and "shanghai" in (c.old_text or c.text).lower()]
    assert updated, changes
    if updated[0].event == "UPDATE":
        hist = mem.history(updated[0].id, "seven")
        assert any("shanghai" in (e.old_text or "").lower() for e in hist)
        assert any("beijing" in (e.new_text or "").lower() for e in hist)
    assert len(after) <= len(before) + 1

    # 4. Chinese stays Chinese and is found by a Chinese question
    _, _, changes = turn(mem, "我最喜欢的编程语言是 Python", "seven")
    zh = [x for x in texts(mem, "seven") if "python" in x.lower()]
    assert zh and CJK.search(zh[0]), zh
    hits = mem.search("我最喜欢的编程语言是什么？", "seven", limit=3).memories
    assert any("python" in h.text.lower() for h in hits)

    # 5. Jane is told it is not known; nothing of Seven's is reachable for her
    t, reply, _ = turn(mem, "What is my favourite programming language?", "jane")
    assert "python" not in reply.lower(), reply
    assert mem.list("jane") == [] or all("python" not in x.lower() for x in texts(mem, "jane"))
    assert mem.search("Seven football Beijing Python", "jane").memories == []
    assert "You know nothing about this user" in t.prompt[0]["content"]


def test_terminal_chat_remembers_after_restart(mem):
    """Quitting and starting main.py again: a fresh process on the same data dir knows
    the user (runs after the walk-through, which stored Seven's memories)."""
    if not mem.list("seven"):
        pytest.skip("walk-through did not run")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TIDB_"))}
    env["MEMORY_DATA_DIR"] = str(mem.config.memory_data_dir)
    r = subprocess.run([sys.executable, "main.py", "--user", "seven"], cwd=ROOT, env=env,
                       input="Who am I?\nexit\n", capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    reply = r.stdout.split("Assistant:", 1)[1]  # the banner names the user too: skip it
    assert "seven" in reply.lower(), r.stdout
