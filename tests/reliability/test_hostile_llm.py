"""Hostile LLM answers: a chat turn never raises and never half-applies.

The scripted server answers the extraction call (and in two cases the reply stream) with
junk: lone surrogates, NUL, wrong types, huge arrays, nested junk, huge strings, broken
JSON. For every answer: iterating the turn and ``changes()`` do not raise; what is on
disk afterwards is exactly what the returned changes report (nothing more, nothing
less), and no stored text holds a NUL or a lone surrogate.
"""
from __future__ import annotations

import pytest

from tests.fake_llm import is_json_request
from tests.reliability.helpers import open_memory, raw

MESSAGE = "I live in Paris and I like green tea."


def _item(text, topic="like"):
    return {"text": text, "topic": topic}


CASES = [
    pytest.param({"memories": [_item("Lives in Paris", "home"), _item("Likes \ud800 tea")]},
                 None, id="surrogate-in-second-item"),
    pytest.param({"memories": [_item("Likes\x00green tea")]}, None, id="nul-in-text"),
    pytest.param({"memories": "not a list"}, None, id="memories-is-str"),
    pytest.param({"memories": [5, None, True, [1]]}, None, id="items-wrong-types"),
    pytest.param({"memories": [{"text": 5, "topic": "like"}]}, None, id="text-is-int"),
    pytest.param({"memories": [{"text": {"a": {"b": [1, {"c": "d"}]}}, "topic": {}}]}, None,
                 id="nested-junk"),
    pytest.param({"memories": [_item(f"Likes tea number {i}") for i in range(5000)]}, None,
                 id="huge-array"),
    pytest.param({"memories": [_item("Likes tea " + "x" * 200_000)]}, None, id="huge-string"),
    pytest.param({"memories": [_item("Lives in Paris", "home")], "extra": [[[[[[[]]]]]]] * 100},
                 None, id="extra-nested-keys"),
    pytest.param([{"text": "Lives in Paris"}], None, id="top-level-list"),
    pytest.param('{"memories": [', None, id="broken-json"),
    pytest.param({"memories": [_item("Likes tea", "no-such-topic") | {"replaces": "abc"}]},
                 None, id="bad-topic-and-replaces"),
    pytest.param({"memories": [_item("Lives in Paris", "home")]}, "Sure \ud800 thing",
                 id="surrogate-in-reply"),
    pytest.param({"memories": [_item("Lives in Paris", "home")]}, "Sure\x00 thing",
                 id="nul-in-reply"),
]


@pytest.mark.parametrize("answer, reply", CASES)
def test_hostile_answer_never_raises_nor_half_applies(tmp_path, llm, answer, reply):
    llm.responder = lambda req: answer if is_json_request(req) else (reply or "Noted.")
    mem = open_memory(tmp_path, llm)
    try:
        turn = mem.chat(MESSAGE, "hostile")
        turn.run()
        changes = turn.changes()
        stored = {r.id: r.text for r in mem.list("hostile", limit=10_000)}
        texts = [t for (t,) in raw(tmp_path, "SELECT text FROM memories")]
        messages = [c for (c,) in raw(tmp_path, "SELECT content FROM messages")]
    finally:
        mem.close()
    live = {c.id: c.text for c in changes if c.event in ("ADD", "UPDATE")}
    assert stored == live                       # exactly what the turn reports
    for text in texts + messages:
        assert "\x00" not in text
        text.encode("utf-8")                    # no lone surrogate on disk
    ok_len = all(len(t) <= 20_000 for t in texts)
    assert ok_len
