"""A local model server that dies while the chat runs is restarted once and the message
is answered (issue 21); a second crash within a minute is an error with the log tail.
Real llama.cpp server with the shipped 0.5B model on 127.0.0.1, killed with SIGKILL."""
from __future__ import annotations

import os
import signal
import socket

import pytest

from memory import Memory

from memory.llm import local_server as local_llm, local_server_cli as local_llm_cli
from memory.config import load_config
from memory.llm.errors import LLMError

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mem(tmp_path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python[server] is not installed (./test.sh installs it)")
    config = load_config(env_file=None, memory_data_dir=tmp_path, openai_base_url=None,
                         openai_api_key=None, local_llm_port=_free_port(),
                         local_llm_model="qwen2.5-coder-0.5b", local_llm_ctx=2048,
                         llm_temperature=0, llm_timeout=240)
    m = Memory(config)
    local_llm.ensure_server(config)
    yield m
    m.close()
    local_llm.stop_all(config)


def _kill_server(config, name: str = "llama-server") -> int:
    pid = int((config.memory_data_dir / f"{name}.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    return pid


def _assistant_messages(mem: Memory, user: str, thread_id: str) -> list[str]:
    return [m.content for m in mem.store.get_messages(user, thread_id) if m.role == "assistant"]


def test_a_server_killed_between_turns_is_restarted_and_the_message_answered(mem):
    first = mem.chat("Hi, I'm Ana and I live in Porto.", "ana")
    assert first.run().strip() and first.error is None
    old = _kill_server(mem.config)

    turn = mem.chat("What city do I live in?", "ana", first.thread.id)
    reply = turn.run()
    assert turn.error is None and reply.strip()
    assert turn.notice and "restarted" in turn.notice and "killed" in turn.notice
    new = int((mem.config.memory_data_dir / "llama-server.pid").read_text())
    assert new != old and local_llm_cli.status(mem.config)["running"]
    # the notice is kept with the reply (the app shows it under the message)
    stored = [m for m in mem.store.get_messages("ana", first.thread.id) if m.role == "assistant"]
    assert stored[-1].metadata.get("notice") == turn.notice
    assert stored[-1].content == reply

    # a second crash within a minute is not restarted again: an error with the log
    _kill_server(mem.config)
    again = mem.chat("And what is my name?", "ana", first.thread.id)
    assert again.run() == ""
    assert again.error and "crashed again within a minute" in again.error
    assert "llama-server.log" in again.error
    assert local_llm.served_models(mem.config) is None


def test_a_server_killed_mid_answer_is_restarted_and_the_whole_answer_given_again(mem):
    turn = mem.chat("Count from one to thirty in words, one per line.", "bo")
    shown: list[str] = []
    for delta in turn:
        shown.append(delta)
        if len(shown) == 3:
            _kill_server(mem.config)
    assert turn.error is None, turn.error
    assert turn.notice and "restarted" in turn.notice
    assert "Answering again" in "".join(shown)      # the user saw why the text restarts
    # only the new, whole reply is stored: nothing half-written
    assert _assistant_messages(mem, "bo", turn.thread.id) == [turn.reply]
    assert turn.reply.strip() and "Answering again" not in turn.reply
    assert "".join(shown).endswith(turn.reply)
    # memory work after the restart runs on the new server
    turn.changes()
    assert turn.changes_error is None


def test_a_dead_memory_server_is_restarted_for_memory_extraction_too(mem):
    assert mem.llm.chat([{"role": "user", "content": "Say hi."}], max_tokens=4).strip()
    _kill_server(mem.config, "llama-server-memory")   # the memory-work server
    changes = mem.add("I work as a nurse in Lyon and I love sailing.", "cy")
    assert changes.error is None
    assert mem.llm.restarts == 1
    assert mem.list("cy")
    with pytest.raises(LLMError, match="crashed again within a minute"):
        _kill_server(mem.config, "llama-server-memory")
        mem.llm.chat([{"role": "user", "content": "Say hi."}], max_tokens=4)
    # the chat server was never touched
    assert local_llm_cli.status(mem.config)["running"]
