"""bench/mem0_quality.py without a real model: the Mem0 → snapshot mappers (in
bench/mem0_quality_worker.py), and (when the mem0 virtualenv exists) one scenario end to end
against the scripted OpenAI-compatible server, scored by our scorer."""
from __future__ import annotations

import json

import pytest

from bench import mem0_quality as mq
from bench.mem0_quality_worker import mem0_active, mem0_changes, mem0_history
from tests.fake_llm import HTTPError, ScriptedLLM, is_json_request


def test_mappers():
    add = {"results": [{"id": "a", "memory": "User is a nurse", "event": "ADD"},
                       {"id": "b", "memory": "Lives in Lyon", "event": "UPDATE",
                        "previous_memory": "Lives in Paris"}]}
    assert mem0_changes(add) == [
        {"action": "ADD", "id": "a", "text": "User is a nurse", "old_text": None, "type": None},
        {"action": "UPDATE", "id": "b", "text": "Lives in Lyon", "old_text": "Lives in Paris",
         "type": None}]
    assert mem0_active({"results": [{"id": "a", "memory": "x", "score": None}]}) == [
        {"id": "a", "text": "x", "type": None}]
    rows = [{"memory_id": "b", "event": "UPDATE", "old_memory": "Paris", "new_memory": "Lyon",
             "created_at": "2026-01-02", "actor_id": None, "role": None},
            {"memory_id": "b", "event": "ADD", "old_memory": None, "new_memory": "Paris",
             "created_at": "2026-01-01", "actor_id": None, "role": "user"}]
    assert mem0_history(rows) == [
        {"memory_id": "b", "event": "ADD", "old_text": None, "new_text": "Paris", "actor": "user"},
        {"memory_id": "b", "event": "UPDATE", "old_text": "Paris", "new_text": "Lyon",
         "actor": "mem0"}]


@pytest.mark.skipif(not (mq.DEFAULT_VENV / "bin" / "python").exists(),
                    reason="no mem0 virtualenv (see bench/mem0_quality.py)")
def test_one_scenario_end_to_end(tmp_path, capsys):
    replies = iter([{"memory": [{"id": "0", "text": "User's name is Dana"},
                                {"id": "1", "text": "User is a pharmacist in Leeds"}]},
                    HTTPError(400, "context window exceeded")])

    def responder(req):
        if not is_json_request(req):
            return "ok"
        return next(replies, {"memory": []})

    out = tmp_path / "mem0.json"
    with ScriptedLLM(responder, model="scripted-alias") as llm:
        rc = mq.main(["--split", "report", "--limit", "1", "--base-url", llm.base_url,
                      "--out", str(out)])
        chat = llm.chat_requests()
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["model"] == "scripted-alias" and res["mem0"]["mem0_version"].startswith("2.")
    turns = res["runs"][0]["turns"]
    assert turns[0]["llm_calls"] == 1 and [c["action"] for c in turns[0]["changes"]] == ["ADD", "ADD"]
    assert {m["text"] for m in turns[0]["active"]} == {"User's name is Dana",
                                                       "User is a pharmacist in Leeds"}
    assert [e["event"] for e in turns[0]["history"]] == ["ADD", "ADD"]
    assert turns[1]["error"] and turns[1]["http_status"] == [400]
    assert len(turns[2]["active"]) == 2 and res["turn_errors"] == 1
    assert chat and chat[0]["response_format"] == {"type": "json_object"}
    assert chat[0]["temperature"] == 0 and chat[0]["max_tokens"] == 1000
    assert res["metrics"]["turns"] == len(turns)
    assert "| **all** |" in capsys.readouterr().out
