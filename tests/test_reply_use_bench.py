"""The reply-use benchmark without a real model: the scripted set's shape, the LLM-free
reply check, and the runner's case loop and CLI end to end against the scripted
OpenAI-compatible server."""
from __future__ import annotations

import re

import pytest

from bench.reply_use import (DATA, avoid_hits, format_table, load_data, main, matching,
                             metrics, retrieved, run_case, run_cases, score_reply)
from memory.write.topics import TOPIC_NAMES
from tests.fake_llm import is_json_request, system_text


@pytest.fixture(scope="module")
def cases():
    return load_data(DATA)["cases"]


# ---- the scripted set -----------------------------------------------------------------------
def test_data_file_shape(cases):
    assert len(cases) == 20
    ids = [c["id"] for c in cases]
    assert len(set(ids)) == 20
    langs = [c["lang"] for c in cases]
    assert set(langs) == {"en", "zh"} and langs.count("zh") >= 7 and langs.count("en") >= 10
    for c in cases:
        assert set(c) <= {"id", "lang", "memories", "prompt", "expect_any", "avoid"}, c["id"]
        assert 3 <= len(c["memories"]) <= 6, c["id"]
        relevant = [m for m in c["memories"] if m.get("relevant", True)]
        distractors = [m for m in c["memories"] if not m.get("relevant", True)]
        assert relevant and 1 <= len(distractors) <= 3, c["id"]
        for m in c["memories"]:
            assert m["topic"] in TOPIC_NAMES and m["text"].strip(), (c["id"], m)
        patterns = c["expect_any"] + c.get("avoid", [])
        assert c["expect_any"] and all(p.strip() for p in patterns)
        for p in patterns:
            re.compile(p)
        # the prompt must not name what it is checked for
        assert not matching(c["expect_any"], c["prompt"]), c["id"]
        # every relevant memory is named by some regex, no distractor by any
        for m in relevant:
            assert matching(c["expect_any"], m["text"]), (c["id"], m["text"])
        for m in distractors:
            assert not matching(c["expect_any"], m["text"]), (c["id"], m["text"])
        # a Chinese case's memories are Chinese (as the extractor writes them)
        if c["lang"] == "zh":
            assert all(re.search(r"[\u4e00-\u9fff]", m["text"]) for m in c["memories"]), c["id"]
            assert re.search(r"[\u4e00-\u9fff]", c["prompt"])
        else:
            assert not any(re.search(r"[\u4e00-\u9fff]", m["text"] + c["prompt"])
                           for m in c["memories"])
    topics = {m["topic"] for c in cases for m in c["memories"] if m.get("relevant", True)}
    assert {"like", "home", "pet", "family", "health", "job", "plan", "dislike"} <= topics


# ---- the reply check -----------------------------------------------------------------------
CASE = {"id": "t", "lang": "en", "prompt": "What should I cook for dinner tonight?",
        "expect_any": [r"vegetarian|veggie|素食", r"\bthai\b|泰式"],
        "avoid": [r"\b(beef|pork|steak|chicken)\b"]}


def test_reply_naming_the_preference_passes():
    r = score_reply(CASE, "Since you're vegetarian, how about a Thai green curry with tofu?")
    assert r["pass"] and len(r["uses"]) == 2 and r["avoid"] == []
    assert score_reply(CASE, "做一道泰式咖喱吧。")["pass"]
    assert score_reply(CASE, "Try a ＶＥＧＥＴＡＲＩＡＮ lasagne.")["pass"]  # NFKC + case


def test_generic_reply_fails():
    r = score_reply(CASE, "How about pasta with tomato sauce, or a nice risotto?")
    assert not r["pass"] and r["uses"] == [] and r["avoid"] == []
    assert not score_reply(CASE, "")["pass"]


def test_avoid_match_fails_unless_negated():
    r = score_reply(CASE, "As a fan of Thai food, you could make chicken pad thai.")
    assert r["uses"] and r["avoid"] and not r["pass"]
    # the same food named as something to leave out is no recommendation
    ok = score_reply(CASE, "A vegetarian pad thai: use tofu instead of chicken. Enjoy!")
    assert ok["pass"] and ok["avoid"] == []
    assert avoid_hits(["麻辣"], "推荐麻辣香锅！") and not avoid_hits(["麻辣"], "你不吃辣，别点麻辣的。")
    assert avoid_hits([], "steak") == []


def test_retrieval_check_and_metrics():
    assert retrieved(CASE, ["Is vegetarian", "Plays the piano"], "")
    assert retrieved(CASE, [], "Preferences:\n- Loves Thai food")
    assert not retrieved(CASE, ["Plays the piano"], "About:\n- Works in Glasgow")
    recs = [{"lang": "en", "pass": True, "retrieved": ["x"], "avoid": [], "error": None, "seconds": 2.0},
            {"lang": "en", "pass": False, "retrieved": [], "avoid": ["s"], "error": None, "seconds": 4.0},
            {"lang": "zh", "pass": True, "retrieved": ["y"], "avoid": [], "error": None, "seconds": 3.0}]
    m = metrics(recs)
    assert m["en"] == {"n": 2, "use_rate": 0.5, "retrieved_rate": 0.5, "avoid_violations": 1,
                       "errors": 0, "s_per_reply": 3.0}
    assert m["all"]["use_rate"] == pytest.approx(0.667) and m["zh"]["n"] == 1
    table = format_table(m)
    assert "| **all** | 3 | 0.667 | 0.667 | 1 | 0 | 3.0 |" in table
    assert "| zh | 0 | – |" in format_table(metrics(recs[:2]))


# ---- the runner on the scripted server -------------------------------------------------------
def knowing_reply(req):
    """Chat: a reply built on the football memory when the prompt's knowledge holds it,
    else a generic one with meat in it (fails the vegetarian case by its avoid rule)."""
    if is_json_request(req):
        return {"memories": []}
    system = system_text(req)
    if "football" in system:
        return "Since you love playing football, join a five-a-side game in Leeds!"
    return "You could roast a chicken. Or grill a steak."


def test_runner_loop_on_scripted_llm(make_config, scripted_llm, cases):
    from memory import Memory

    scripted_llm.responder = knowing_reply
    mem = Memory(make_config())
    lines: list[str] = []
    try:
        recs = run_cases(mem, cases[:2], log=lines.append)
        again = run_case(mem, cases[0], user_id="ru-fixed")
        stored = [r.text for r in mem.list("ru-fixed")]
        threads = mem.threads("ru-fixed")
    finally:
        mem.close()
    assert [r["id"] for r in recs] == [c["id"] for c in cases[:2]]
    assert len(lines) == 2 and "PASS" in lines[0] and "FAIL" in lines[1]
    first, second = recs
    assert first["pass"] and first["retrieved"] and first["error"] is None
    assert "football" in first["reply"] and first["seconds"] >= 0
    assert any("football" in t for t in first["used_memories"] + [first["profile"]])
    assert not second["pass"] and second["avoid"] and second["user_id"].startswith("ru-")
    # the case's memories were stored with the extractor's topic tags; one new thread
    assert sorted(stored) == sorted(m["text"] for m in cases[0]["memories"])
    assert len(threads) == 1 and again["pass"]
    # no extraction ran (turn.changes() is never called)
    assert not any(is_json_request(r) for r in scripted_llm.chat_requests())
    m = metrics(recs)
    assert m["all"]["use_rate"] == 0.5 and m["all"]["avoid_violations"] == 1


def test_cli_end_to_end(monkeypatch, make_config, scripted_llm, tmp_path, capsys):
    import json

    from bench import memory_quality
    from memory import Memory

    scripted_llm.responder = knowing_reply
    built = []

    def fake_build(data_dir, **overrides):
        built.append(overrides)
        return Memory(make_config(data_dir=data_dir, **overrides))

    monkeypatch.setattr(memory_quality, "build_memory", fake_build)
    out = tmp_path / "ru.json"
    assert main(["--limit", "2", "--out", str(out), "--temperature", "0.1"]) == 0
    assert built == [{"llm_temperature": 0.1}]
    printed = capsys.readouterr().out
    assert "| **all** | 2 | 0.500 |" in printed and "NOT met" in printed
    res = json.loads(out.read_text(encoding="utf-8"))
    assert res["cases_run"] == 2 and res["temperature"] == 0.1 and res["model"] == "scripted"
    assert res["metrics"]["all"]["use_rate"] == 0.5 and len(res["records"]) == 2
    assert "git_commit" in res and res["records"][0]["reply"]
