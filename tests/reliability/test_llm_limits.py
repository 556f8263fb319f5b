"""LLM client limits (issue 9 item 7): a slow endpoint is reported after about
LLM_TIMEOUT seconds even with retries configured (timeouts are not retried), and an
empty stream is reported as empty, not as "stopped mid-answer"."""
from __future__ import annotations

import time

import pytest

from memory.llm.errors import LLMError
from memory.llm.client import LLM
from tests.fake_llm import Delay, Drop, HTTPError, ScriptedLLM, scripted_config

MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture()
def server():
    with ScriptedLLM(lambda req: "ok") as s:
        yield s


def test_slow_endpoint_reports_within_the_timeout(tmp_path, server):
    client = LLM(scripted_config(tmp_path, server, llm_timeout=1, llm_max_retries=2))
    server.push(Delay(4, "late"), Delay(4, "late"), Delay(4, "late"))
    start = time.monotonic()
    with pytest.raises(LLMError, match=r"did not answer within 1s"):
        client.chat(MSGS)
    assert time.monotonic() - start < 2.5       # was (2 + 1) × 1 s + back-off


def test_transient_errors_are_still_retried(tmp_path, server):
    client = LLM(scripted_config(tmp_path, server, llm_max_retries=2))
    server.push(HTTPError(503, "busy", retry_after=0.01), HTTPError(429, "slow", retry_after=0.01),
                "fine")
    assert client.chat(MSGS) == "fine"
    client = LLM(scripted_config(tmp_path, server, llm_max_retries=0))
    server.push(HTTPError(503, "busy"))
    with pytest.raises(LLMError, match="HTTP 503"):
        client.chat(MSGS)


def test_empty_stream_is_not_stopped_mid_answer(tmp_path, server):
    client = LLM(scripted_config(tmp_path, server, llm_max_retries=0))
    server.push(Drop("", clean=True))
    with pytest.raises(LLMError, match="empty answer") as info:
        list(client.stream_chat(MSGS))
    assert "mid-answer" not in str(info.value)
