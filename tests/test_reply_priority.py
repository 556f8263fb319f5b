"""Replies first (issue 23): while a reply streams, the local memory-work server is paused
(SIGSTOP) and resumed after (SIGCONT), counted over nested and concurrent replies."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from memory.llm import local_server as local_llm

from memory.chat import reply_priority
from memory.config import load_config


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def paused_target(tmp_path):
    """A real process that counts as our memory server (its command line names
    llama_cpp.server and its pid is in llama-server-memory.pid)."""
    config = load_config(env_file=None, memory_data_dir=tmp_path, openai_base_url=None,
                         openai_api_key=None)
    proc = subprocess.Popen([sys.executable, "-c",
                             "import time; print('ready', flush=True); time.sleep(120)",
                             "llama_cpp.server"], stdout=subprocess.PIPE, text=True)
    # until it prints, /proc may still show the forked pytest's command line
    assert proc.stdout.readline().strip() == "ready"
    (tmp_path / "llama-server-memory.pid").write_text(f"{proc.pid}\n")
    yield config, proc
    proc.send_signal(signal.SIGCONT)
    proc.kill()
    proc.wait()


def _wait_state(pid: int, wanted: str) -> str:
    # SIGSTOP/SIGCONT take effect asynchronously; the kernel reports it in /proc
    import time
    end = time.monotonic() + 5
    while _state(pid) != wanted and time.monotonic() < end:
        time.sleep(0.01)
    return _state(pid)


def test_the_memory_server_is_paused_during_replies_and_resumed_after_the_last(paused_target):
    config, proc = paused_target
    assert local_llm.server_pid(local_llm.memory_config(config)) == proc.pid
    with reply_priority.replying(config):
        assert _wait_state(proc.pid, "T") == "T"
        with reply_priority.replying(config):       # a second, concurrent reply
            pass
        assert _state(proc.pid) == "T"               # still paused: one reply left
    assert _wait_state(proc.pid, "S") == "S"


def test_a_reply_that_fails_or_is_abandoned_still_resumes_it(paused_target):
    config, proc = paused_target
    with pytest.raises(RuntimeError):
        with reply_priority.replying(config):
            assert _wait_state(proc.pid, "T") == "T"
            raise RuntimeError("the stream broke")
    assert _wait_state(proc.pid, "S") == "S"

    def reply():
        with reply_priority.replying(config):
            yield "a"
            yield "b"
    gen = reply()
    next(gen)
    assert _wait_state(proc.pid, "T") == "T"
    gen.close()                                       # the user left mid-reply
    assert _wait_state(proc.pid, "S") == "S"


def test_one_shared_server_or_a_dead_process_is_left_alone(paused_target, tmp_path):
    config, proc = paused_target
    single = config.model_copy(update={"local_llm_memory_server": False})
    with reply_priority.replying(single):
        assert _state(proc.pid) != "T"
    proc.send_signal(signal.SIGSTOP)                   # left paused by a process that died
    assert _wait_state(proc.pid, "T") == "T"
    reply_priority.resume(config)
    assert _wait_state(proc.pid, "S") == "S"


@pytest.mark.e2e
def test_memory_work_waits_for_the_reply_on_the_real_servers(tmp_path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python[server] is not installed (./test.sh installs it)")
    import socket

    from memory.llm.client import LLM
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = load_config(env_file=None, memory_data_dir=tmp_path, openai_base_url=None,
                         openai_api_key=None, local_llm_port=port, local_llm_memory_port=0,
                         local_llm_model="qwen2.5-coder-0.5b", local_llm_ctx=1024,
                         llm_temperature=0, llm_timeout=240)
    llm = LLM(config)
    try:
        assert llm.chat([{"role": "user", "content": "Say hi."}], max_tokens=4)  # memory server up
        memory_pid = local_llm.server_pid(llm.memory_config)
        assert memory_pid and memory_pid != local_llm.server_pid(config)
        result: dict = {}
        schema = {"type": "object", "properties": {"city": {"type": "string"}},
                  "required": ["city"], "additionalProperties": False}
        work = threading.Thread(target=lambda: result.update(llm.complete_json(
            [{"role": "user", "content": "I live in Lisbon. Where do I live?"}], schema,
            name="city", max_tokens=30)))
        states = []
        stream = llm.stream_chat([{"role": "user", "content": "Count from one to ten."}],
                                 max_tokens=40)
        first = next(stream)
        work.start()                                   # memory work arrives mid-reply
        for _ in stream:
            states.append(_state(memory_pid))
        work.join(timeout=300)
        assert first and states and set(states) == {"T"}   # paused for the whole reply
        assert result.get("city", "").lower().startswith("lisb")
        assert _state(memory_pid) != "T"
    finally:
        llm.close()
        local_llm.stop_all(config)
