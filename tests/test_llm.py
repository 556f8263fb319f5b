"""memory.llm.client.LLM through real HTTP against the scripted OpenAI-compatible server."""
from __future__ import annotations

import base64
import json
import socket
import threading
import time

import pytest

from memory.config import load_config
from memory.llm.errors import LLMError, LLMOutputError
from memory.llm.client import LLM, strip_fences
from memory.llm.json_output import response_format
from tests.fake_llm import (Delay, Drop, HTTPError, Malformed, ScriptedLLM, has_image,
                            is_json_request, route)

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
MSGS = [{"role": "system", "content": "Extract the person."},
        {"role": "user", "content": "Bob is 42."}]


def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def llm(make_config):
    client = LLM(make_config())
    yield client
    client.close()


# ------------------------------------------------------------------ chat / stream
def test_stream_chat_yields_deltas_in_order_and_counts_usage(llm, scripted_llm):
    scripted_llm.push("Hello there, dear user!")
    pieces = list(llm.stream_chat([{"role": "user", "content": "hi"}], max_tokens=50))
    assert len(pieces) == 4
    assert "".join(pieces) == "Hello there, dear user!"
    body = scripted_llm.chat_requests()[0]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["model"] == "scripted" and body["max_tokens"] == 50
    assert body["temperature"] == pytest.approx(llm.config.llm_temperature)
    assert llm.calls == 1
    assert llm.completion_tokens == 4 and llm.prompt_tokens == 1


def test_chat_returns_text_and_sends_auth_header(llm, scripted_llm):
    scripted_llm.push("Plain answer.")
    assert llm.chat([{"role": "user", "content": "q"}], temperature=0.0) == "Plain answer."
    req = [r for r in scripted_llm.requests if r.method == "POST"][0]
    assert req.headers["authorization"] == "Bearer test"
    assert req.body["temperature"] == 0.0 and "stream" not in req.body
    assert llm.stats() == {"calls": 1, "prompt_tokens": 1, "completion_tokens": 2}


def test_model_defaults_to_first_listed_when_llm_model_unset(make_config, scripted_llm):
    client = LLM(make_config(llm_model=None))
    assert client.model is None
    scripted_llm.push("ok")
    assert client.chat([{"role": "user", "content": "q"}]) == "ok"
    assert client.model == "scripted"
    assert scripted_llm.chat_requests()[0]["model"] == "scripted"


def test_concurrent_calls_are_counted_exactly(make_config, scripted_llm):
    scripted_llm.responder = lambda req: "echo " + req["messages"][-1]["content"]
    client = LLM(make_config())
    results: dict[int, str] = {}

    def work(i: int) -> None:
        results[i] = client.chat([{"role": "user", "content": str(i)}])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == {i: f"echo {i}" for i in range(8)}
    assert client.calls == 8
    assert client.completion_tokens == 16


# ------------------------------------------------------------------ JSON
def test_complete_json_valid_first_time(llm, scripted_llm):
    scripted_llm.push({"name": "Bob", "age": 42})
    assert llm.complete_json(MSGS, PERSON, name="person") == {"name": "Bob", "age": 42}
    body = scripted_llm.chat_requests()[0]
    # a generic OpenAI-compatible endpoint: json_object + the schema in the system prompt
    assert body["response_format"] == {"type": "json_object"}
    assert body["temperature"] == 0 and body["max_tokens"] == 512
    system = body["messages"][0]["content"]
    assert system.startswith("Extract the person.") and '"required":["name","age"]' in system
    assert len(body["messages"]) == 2  # the note was merged into the existing system message


def test_complete_json_strips_code_fences(llm, scripted_llm):
    scripted_llm.push('```json\n{"name": "Ann", "age": 7}\n```')
    assert llm.complete_json(MSGS, PERSON, name="person") == {"name": "Ann", "age": 7}
    assert strip_fences("```\n[1]\n```") == "[1]"
    assert strip_fences('  {"a": 1} ') == '{"a": 1}'


def test_complete_json_retries_once_telling_the_model_what_was_wrong(llm, scripted_llm):
    scripted_llm.push("Sure! Bob is 42.", {"name": "Bob", "age": 42})
    assert llm.complete_json(MSGS, PERSON, name="person") == {"name": "Bob", "age": 42}
    first, second = scripted_llm.chat_requests()
    assert second["messages"][: len(first["messages"])] == first["messages"]
    assert second["messages"][-2] == {"role": "assistant", "content": "Sure! Bob is 42."}
    assert "not valid JSON" in second["messages"][-1]["content"]
    assert llm.calls == 2


def test_complete_json_schema_violation_is_reported_to_the_model(llm, scripted_llm):
    scripted_llm.push({"name": "Bob"}, {"name": "Bob", "age": 42})
    assert llm.complete_json(MSGS, PERSON, name="person")["age"] == 42
    feedback = scripted_llm.chat_requests()[1]["messages"][-1]["content"]
    assert "'age' is a required property" in feedback


def test_complete_json_gives_up_after_second_invalid_answer(llm, scripted_llm):
    scripted_llm.push({"name": "Bob", "age": -1}, "still not json", {"name": "unused", "age": 1})
    with pytest.raises(LLMOutputError) as info:
        llm.complete_json(MSGS, PERSON, name="person")
    assert info.value.raw == "still not json"
    assert "person" in str(info.value) and "\n" not in str(info.value)
    assert len(scripted_llm.chat_requests()) == 2
    assert scripted_llm.pending == 1


def test_complete_json_rejects_an_invalid_schema_before_calling(llm, scripted_llm):
    with pytest.raises(Exception):
        llm.complete_json(MSGS, {"type": "no-such-type"}, name="bad")
    assert scripted_llm.chat_requests() == []


@pytest.mark.parametrize("mode,expected", [
    ("json_schema", {"type": "json_schema",
                     "json_schema": {"name": "per_son", "schema": PERSON}}),
    ("json_object", {"type": "json_object"}),
    ("none", None),
])
def test_json_modes_shape_the_request(make_config, scripted_llm, mode, expected):
    client = LLM(make_config(llm_json_mode=mode))
    scripted_llm.push({"name": "Bob", "age": 42})
    client.complete_json(MSGS, PERSON, name="per son")
    body = scripted_llm.chat_requests()[0]
    assert body.get("response_format") == expected
    assert ('"required":["name","age"]' in body["messages"][0]["content"]) == (mode != "json_schema")
    assert is_json_request(body)


def test_auto_json_mode_per_endpoint(tmp_path):
    local = LLM(load_config(env_file=None, memory_data_dir=tmp_path, openai_base_url=None,
                            openai_api_key=None))
    assert local.is_local and local.json_mode() == "json_object+schema"
    assert response_format(local.json_mode(), PERSON, "p") == {"type": "json_object", "schema": PERSON}
    openai_llm = LLM(load_config(env_file=None, memory_data_dir=tmp_path,
                                 openai_api_key="sk-x", openai_base_url=None))
    assert openai_llm.json_mode() == "json_schema" and openai_llm.model == "gpt-4o-mini"
    other = LLM(load_config(env_file=None, memory_data_dir=tmp_path, openai_api_key="k",
                            openai_base_url="https://api.deepseek.com/v1"))
    assert other.json_mode() == "json_object"
    # constructing never touched the network nor started a local server
    assert not (tmp_path / "llama-server.pid").exists()


def test_unsupported_response_format_falls_back_to_prompt(make_config, scripted_llm):
    client = LLM(make_config(llm_json_mode="json_schema"))
    scripted_llm.push(HTTPError(400, "response_format json_schema is not supported"),
                      {"name": "Bob", "age": 42}, {"name": "Eve", "age": 3})
    assert client.complete_json(MSGS, PERSON, name="person")["name"] == "Bob"
    assert client.json_mode() == "none"
    client.complete_json(MSGS, PERSON, name="person")
    bodies = scripted_llm.chat_requests()
    assert "response_format" in bodies[0]
    assert "response_format" not in bodies[1] and "response_format" not in bodies[2]
    assert '"required":["name","age"]' in bodies[1]["messages"][0]["content"]


# ------------------------------------------------------------------ failures
def test_dead_endpoint_fails_fast_with_a_clear_message(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    client = LLM(load_config(env_file=None, memory_data_dir=tmp_path, openai_base_url=url,
                             openai_api_key="k", llm_model="m", llm_timeout=5,
                             llm_max_retries=1))
    for call in (lambda: client.chat(MSGS),
                 lambda: list(client.stream_chat(MSGS)),
                 lambda: client.complete_json(MSGS, PERSON, name="person")):
        start = time.monotonic()
        with pytest.raises(LLMError) as info:
            call()
        assert time.monotonic() - start < 5
        message = str(info.value)
        assert message == (f"The language model at {url} is not reachable (connection "
                           "refused). Check OPENAI_BASE_URL and that the server is running.")
    health = client.health()
    assert health["ok"] is False and "connection refused" in health["detail"]
    assert health["base_url"] == url and health["model"] == "m"


def test_http_500_is_retried_then_succeeds(make_config, scripted_llm):
    client = LLM(make_config(llm_max_retries=1))
    scripted_llm.push(HTTPError(500, "boom", retry_after=0.01), "recovered")
    assert client.chat(MSGS) == "recovered"
    assert len(scripted_llm.chat_requests()) == 2


def test_http_500_after_all_retries_is_an_llm_error(make_config, scripted_llm):
    client = LLM(make_config(llm_max_retries=2))
    scripted_llm.push(*[HTTPError(500, "engine exploded", retry_after=0.01)] * 3, "too late")
    with pytest.raises(LLMError, match=r"answered HTTP 500: engine exploded$"):
        client.chat(MSGS)
    assert len(scripted_llm.chat_requests()) == 3  # 1 try + 2 retries, never more
    assert scripted_llm.pending == 1


def test_http_429_is_retried_and_then_explained(make_config, scripted_llm):
    client = LLM(make_config(llm_max_retries=1))
    scripted_llm.push(HTTPError(429, "slow down", retry_after=0.01), "fine")
    assert client.chat(MSGS) == "fine"
    scripted_llm.push(*[HTTPError(429, "quota exceeded", retry_after=0.01)] * 2)
    with pytest.raises(LLMError, match="HTTP 429: quota exceeded") as info:
        client.chat(MSGS)
    assert "rate-limiting" in str(info.value)
    assert len(scripted_llm.chat_requests()) == 4


def test_no_retries_when_disabled(make_config, scripted_llm):
    client = LLM(make_config(llm_max_retries=0))
    scripted_llm.push(HTTPError(503, "busy", retry_after=0.01), "unused")
    with pytest.raises(LLMError, match="HTTP 503"):
        list(client.stream_chat(MSGS))
    assert len(scripted_llm.chat_requests()) == 1


def test_rejected_key_names_the_variable(llm, scripted_llm):
    scripted_llm.push(HTTPError(401, "invalid api key"))
    with pytest.raises(LLMError, match="Check OPENAI_API_KEY"):
        llm.chat(MSGS)


def test_mid_stream_drop_raises_after_the_partial_tokens(llm, scripted_llm):
    scripted_llm.push(Drop("the first words"))
    received = []
    with pytest.raises(LLMError, match="closed the connection before finishing"):
        for piece in llm.stream_chat(MSGS):
            received.append(piece)
    assert "".join(received) == "the first words"


def test_stream_without_finish_reason_is_an_error(make_config, scripted_llm):
    # a server that ends the body cleanly but never says it finished
    client = LLM(make_config(llm_max_retries=0))
    scripted_llm.push(Drop("half an", clean=True))
    received = []
    with pytest.raises(LLMError, match="stopped mid-answer"):
        for piece in client.stream_chat(MSGS):
            received.append(piece)
    assert received == ["half ", "an"]


def test_malformed_body_is_an_llm_error(make_config, scripted_llm):
    client = LLM(make_config(llm_max_retries=0))
    scripted_llm.push(Malformed(), Malformed())
    with pytest.raises(LLMError, match="malformed response"):
        client.chat(MSGS)
    with pytest.raises(LLMError, match="malformed response"):
        list(client.stream_chat(MSGS))


def test_slow_server_times_out(make_config, scripted_llm):
    client = LLM(make_config(llm_timeout=0.5, llm_max_retries=0))
    scripted_llm.push(Delay(3, "too slow"))
    start = time.monotonic()
    with pytest.raises(LLMError, match=r"did not answer within 0.5s \(timeout\)"):
        client.chat(MSGS)
    assert time.monotonic() - start < 2.5


# ------------------------------------------------------------------ vision / health
def test_describe_image_requires_a_vision_model(llm, scripted_llm):
    with pytest.raises(LLMError, match=r"^No vision model configured \(set VISION_MODEL\)$"):
        llm.describe_image(b"\x89PNG", "image/png", "What is this?")
    assert scripted_llm.chat_requests() == []


def test_describe_image_sends_a_data_url(make_config, scripted_llm):
    client = LLM(make_config(vision_model="vis-1"))
    scripted_llm.responder = route((has_image, "A red square."), default="no image seen")
    png = b"\x89PNG\r\n\x1a\nfake-bytes"
    assert client.describe_image(png, "image/png", "Describe it.") == "A red square."
    body = scripted_llm.chat_requests()[0]
    assert body["model"] == "vis-1"
    parts = body["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "Describe it."}
    url = parts[1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == png


def test_health_reports_ok_and_latency(llm, scripted_llm):
    health = llm.health()
    assert health["ok"] is True and health["model"] == "scripted"
    assert health["base_url"] == scripted_llm.base_url
    assert 0 <= health["latency_ms"] < 3000
    assert "1 model" in health["detail"]
    assert llm.calls == 0


def test_health_of_a_busy_server_is_ok_but_says_busy(llm, scripted_llm, monkeypatch):
    import memory.llm.health as llm_health
    monkeypatch.setattr(llm_health, "HEALTH_TIMEOUT", 0.3)
    scripted_llm.models_delay = 1.5
    health = llm.health()
    assert health["ok"] is True and health["detail"].startswith("reachable but busy")
    assert health["latency_ms"] < 1200


def test_health_flags_a_model_the_server_does_not_list(make_config, scripted_llm):
    health = LLM(make_config(llm_model="gpt-unknown")).health()
    assert health["ok"] is True and "'gpt-unknown' is not among" in health["detail"]


def test_health_of_stopped_local_model_does_not_start_it(tmp_path):
    port = free_port()
    client = LLM(load_config(env_file=None, memory_data_dir=tmp_path, openai_base_url=None,
                             openai_api_key=None, local_llm_port=port))
    start = time.monotonic()
    health = client.health()
    assert time.monotonic() - start < 3.5
    assert health["ok"] is False
    assert health["base_url"] == f"http://127.0.0.1:{port}/v1"
    assert "Start it with ./run.sh" in health["detail"]
    assert not (tmp_path / "llama-server.pid").exists()
    assert not (tmp_path / "llama-server.log").exists()
    with socket.socket() as sock:  # still nothing listening there
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_scripted_server_embeddings_are_unit_vectors(scripted_llm):
    import openai
    client = openai.OpenAI(base_url=scripted_llm.base_url, api_key="k")
    out = client.embeddings.create(model="e", input=["a", "b", "a"])
    vecs = [d.embedding for d in out.data]
    assert len(vecs) == 3 and len(vecs[0]) == 16
    assert vecs[0] == vecs[2] and vecs[0] != vecs[1]
    assert sum(v * v for v in vecs[1]) == pytest.approx(1.0)
    assert json.loads(json.dumps(scripted_llm.requests[-1].body))["input"] == ["a", "b", "a"]


def test_llama_cpp_style_500_on_json_schema_falls_back(make_config, scripted_llm):
    # llama-cpp-python answers response_format json_schema with HTTP 500 (validation)
    client = LLM(make_config(llm_json_mode="json_schema", llm_max_retries=0))
    scripted_llm.push(HTTPError(500, "1 validation error: {'type': 'literal_error', 'loc': "
                                     "('body', 'response_format', 'type'), 'msg': \"Input "
                                     "should be 'text' or 'json_object'\"}"),
                      {"name": "Bob", "age": 42})
    assert client.complete_json(MSGS, PERSON, name="person") == {"name": "Bob", "age": 42}
    assert client.json_mode() == "none"


def test_other_http_500_is_not_mistaken_for_a_format_problem(make_config, scripted_llm):
    client = LLM(make_config(llm_json_mode="json_schema", llm_max_retries=0))
    scripted_llm.push(HTTPError(500, "out of memory"), {"name": "Bob", "age": 42})
    with pytest.raises(LLMError, match="HTTP 500: out of memory"):
        client.complete_json(MSGS, PERSON, name="person")
    assert client.json_mode() == "json_schema"


def test_schema_skeleton_shows_a_filled_in_shape():
    from memory.llm.client import schema_skeleton
    schema = {"type": "object", "properties": {
        "facts": {"type": "array", "items": {"type": "object", "properties": {
            "text": {"type": "string"},
            "type": {"type": "string", "enum": ["fact", "task"]},
            "importance": {"type": "integer", "minimum": 1, "maximum": 5},
            "pinned": {"type": ["boolean", "null"]}}}}}}
    assert schema_skeleton(schema) == {"facts": [
        {"text": "...", "type": "fact|task", "importance": 1, "pinned": True}]}
