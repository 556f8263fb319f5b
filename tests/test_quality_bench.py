"""The memory-quality benchmark without a real model: the LLM-free scorer on hand-made
snapshots (a perfect run and a run with known faults), the labelled set's shape, and the
runner's loop and CLI end to end against the scripted OpenAI-compatible server."""
from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from bench.memory_quality import (DATA, evaluate, load_data, main, run_scenario,
                                  run_scenarios, select, split_of)
from bench.quality_score import (CATEGORIES, format_table, is_chinese, lang_ok, matches_all,
                                 score)
from tests.fake_llm import is_json_request, last_user_text

NOT_PARIS = r"^(?!.*(lyon|moved|used to|previously|formerly)).*paris"

SCENARIOS = [
    {"id": "en-a", "lang": "en", "turns": [
        {"user": "I live in Paris, I'm a nurse and I love ramen.", "assistant": "Hi!",
         "category": "intro",
         "expect": {"present": [{"all": [r"\bnurse\b"], "lang": "en"},
                                {"all": ["paris"], "lang": "en"},
                                {"all": ["ramen"], "lang": "en"}]}},
        {"user": "What are you?", "assistant": "I'm Memory Chat, I have a long-term memory.",
         "category": "assistant_self",
         "expect": {"max_new": 0, "junk": ["memory chat", "long-term memory"]}},
        {"user": "Actually I moved to Lyon last week.", "assistant": "Nice!",
         "category": "move_job",
         "expect": {"present": [{"all": ["nurse"], "lang": "en"}, {"all": ["lyon"], "lang": "en"}],
                    "absent": [{"all": [NOT_PARIS]}],
                    "update": {"history_old": ["paris"]}}},
        {"user": "Please forget that I like ramen.", "assistant": "Done.",
         "category": "forget",
         "expect": {"present": [{"all": ["nurse"], "lang": "en"}],
                    "forget": {"gone": ["ramen"]}, "junk": ["forget"]}},
    ]},
    {"id": "zh-b", "lang": "zh", "turns": [
        {"user": "我叫小王，住在成都。", "assistant": "你好！", "category": "intro",
         "expect": {"present": [{"all": ["成都"], "lang": "zh"}]}},
    ]},
]


def ev(mid, event, old, new):
    return {"memory_id": mid, "event": event, "old_text": old, "new_text": new, "actor": "llm"}


def snap(active, changes=(), history=(), calls=1, tokens=100, seconds=1.0):
    changes = [{"action": a, "id": i, "text": t, "old_text": o} for a, i, t, o in changes]
    return {"active": [{"id": i, "text": t, "type": "fact"} for i, t in active],
            "added": [c["id"] for c in changes if c["action"] == "ADD"],
            "changes": changes, "history": list(history),
            "llm_calls": calls, "prompt_tokens": tokens, "seconds": seconds}


H0 = [ev("m1", "ADD", None, "Is a nurse"), ev("m2", "ADD", None, "Lives in Paris"),
      ev("m3", "ADD", None, "Loves ramen")]
T0 = snap([("m1", "Is a nurse"), ("m2", "Lives in Paris"), ("m3", "Loves ramen")],
          [("ADD", "m1", "Is a nurse", None), ("ADD", "m2", "Lives in Paris", None),
           ("ADD", "m3", "Loves ramen", None)], H0)


def perfect_run():
    h2 = H0 + [ev("m2", "UPDATE", "Lives in Paris", "Lives in Lyon")]
    h3 = h2 + [ev("m3", "DELETE", "Loves ramen", None)]
    return [[
        T0,
        snap([("m1", "Is a nurse"), ("m2", "Lives in Paris"), ("m3", "Loves ramen")], [], H0, calls=0),
        snap([("m1", "Is a nurse"), ("m2", "Lives in Lyon"), ("m3", "Loves ramen")],
             [("UPDATE", "m2", "Lives in Lyon", "Lives in Paris")], h2),
        snap([("m1", "Is a nurse"), ("m2", "Lives in Lyon")],
             [("DELETE", "m3", "Loves ramen", None)], h3),
    ], [snap([("z1", "住在成都")], [("ADD", "z1", "住在成都", None)],
             [ev("z1", "ADD", None, "住在成都")])]]


def bad_run():
    h1 = H0 + [ev("m5", "ADD", None, "Is Memory Chat with a long-term memory")]
    h2 = h1 + [ev("m1", "UPDATE", "Is a nurse", "Moved to Lyon")]
    junk = ("m5", "Is Memory Chat with a long-term memory")
    return [[
        T0,
        # the assistant's words stored as the user's memory
        snap([("m1", "Is a nurse"), ("m2", "Lives in Paris"), ("m3", "Loves ramen"), junk],
             [("ADD", "m5", junk[1], None)], h1),
        # the move overwrote the job and left Paris as current
        snap([("m1", "Moved to Lyon"), ("m2", "Lives in Paris"), ("m3", "Loves ramen"), junk],
             [("UPDATE", "m1", "Moved to Lyon", "Is a nurse")], h2),
        # the forgotten fact kept
        snap([("m1", "Moved to Lyon"), ("m2", "Lives in Paris"), ("m3", "Loves ramen"), junk], [], h2),
    ], [snap([("z1", "Lives in成都")], [("ADD", "z1", "Lives in成都", None)],
             [ev("z1", "ADD", None, "Lives in成都")])]]


# ---- the scorer -----------------------------------------------------------------------------
def test_language_rule():
    assert is_chinese("在Google工作") and is_chinese("喜欢用Python写代码")
    assert is_chinese("手机号是[PHONE]")
    assert not is_chinese("Lives in成都") and not is_chinese("Works at Google")
    assert lang_ok("Lives in Chengdu", "en") and not lang_ok("Lives in 成都", "en")
    assert lang_ok("Lives in成都", "mixed") and lang_ok("随便", None)


def test_language_rule_of_the_other_language_probes():
    assert lang_ok("Vive en Madrid", "es") and not lang_ok("Lives in Madrid", "es")
    assert lang_ok("Arbeitet als Ingenieur bei Siemens", "de")
    assert not lang_ok("Works as an engineer at Siemens", "de")
    assert lang_ok("Mora em Lisboa", "pt") and not lang_ok("Lives in Lisbon", "pt")
    assert lang_ok("名前は田中", "ja") and not lang_ok("Name is Tanaka", "ja")
    assert lang_ok("이름은 민수", "ko") and not lang_ok("Name is Minsu", "ko")


def test_the_other_language_probe_set_is_well_formed():
    data = load_data(DATA.parent / "memory_quality_probe_ml.json")
    langs = {s["lang"] for s in data["scenarios"]}
    assert langs == {"fr", "es", "de", "it", "pt", "ja", "ko"}
    for scen in data["scenarios"]:
        for turn in scen["turns"]:
            assert turn["category"] in CATEGORIES
            for exp in turn["expect"].get("present", []) + turn["expect"].get("absent", []):
                for rx in exp["all"]:
                    re.compile(rx)


def test_matching_is_nfkc_and_casefolded():
    assert matches_all("ＧＯＯＧＬＥ Data Engineer", ["google", r"data engineer"])
    assert not matches_all("Lives in Lyon, moved from Paris", [NOT_PARIS])
    assert matches_all("Lives in Paris", [NOT_PARIS])
    assert not matches_all("anything", [])


def test_perfect_run_scores_perfectly():
    res = score(SCENARIOS, perfect_run())
    a = res["all"]
    assert a["n"] == 5
    assert (a["recall"], a["absent"], a["junk"], a["update"], a["forget"], a["lang"]) == (1, 1, 0, 1, 1, 1)
    assert a["calls_per_turn"] == pytest.approx(4 / 5)
    assert res["failures"] == [] and res["unmatched"] == []
    table = format_table(res)
    assert "| **all** | 5 | 1.000 | 1.000 | 0.000 | 1.000 | 1.000 | 1.000 |" in table
    assert set(res["categories"]) == {"intro", "assistant_self", "move_job", "forget"}
    assert res["langs"]["zh"]["n"] == 1
    # a dict keyed by scenario id works the same
    assert score(SCENARIOS, {"en-a": perfect_run()[0], "zh-b": perfect_run()[1]})["all"] == a


def test_known_bad_run_scores_badly_on_exactly_those_columns():
    res = score(SCENARIOS, bad_run())
    cats = res["categories"]
    assert cats["assistant_self"]["junk"] == 1.0            # assistant text stored
    assert cats["move_job"]["update"] == 0.0                # job lost on the move
    assert cats["move_job"]["recall"] == 0.5 and cats["move_job"]["absent"] == 0.0
    assert cats["forget"]["forget"] == 0.0                  # forgotten fact kept
    assert res["langs"]["zh"]["lang"] == 0.0                # "Lives in成都" on a zh turn
    assert res["langs"]["zh"]["recall"] == 0.0
    assert cats["intro"]["junk"] == 0.0                     # the rest stays clean
    assert res["langs"]["en"]["lang"] == 1.0
    a = res["all"]
    assert a["junk"] == pytest.approx(1 / 5) and a["update"] == 0 and a["forget"] == 0
    assert a["recall"] < 1 and a["lang"] < 1
    kinds = Counter(f["kind"] for f in res["failures"])
    assert kinds["max_new"] == 1 and kinds["update-history"] == 1 and kinds["forget-kept"] == 1
    assert kinds["lang"] == 1


def test_partial_run_scores_only_what_ran():
    res = score(SCENARIOS, [perfect_run()[0][:2]])
    assert res["all"]["n"] == 2 and res["all"]["update"] is None
    assert "–" in format_table(res)


# ---- the labelled set ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def data():
    return load_data(DATA)


def _regexes(turn):
    exp = turn["expect"]
    for key in ("present", "absent"):
        for e in exp.get(key, []):
            yield from e["all"]
    yield from exp.get("junk", [])
    yield from exp.get("update", {}).get("history_old", [])
    yield from exp.get("forget", {}).get("gone", [])


def test_data_file_shape(data):
    scen = data["scenarios"]
    assert data["version"] >= 1 and re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["today"])
    ids = [s["id"] for s in scen]
    assert len(ids) == len(set(ids))
    turns = [(s, t) for s in scen for t in s["turns"]]
    assert len(turns) >= 160
    assert sum(1 for s, _ in turns if s["lang"] == "zh") * 3 >= len(turns)
    assert any(s["lang"] == "mixed" for s in scen)
    for s in scen:
        assert s["lang"] in ("en", "zh", "mixed")
        assert 3 <= len(s["turns"]) <= 7, s["id"]
        for t in s["turns"]:
            assert t["user"].strip() and t["assistant"].strip() and t["category"] in CATEGORIES
            assert set(t["expect"]) <= {"present", "absent", "junk", "update", "forget", "max_new"}
            for r in _regexes(t):
                re.compile(r)
                assert r.strip(), s["id"]
            for p in t["expect"].get("present", []):
                assert p["all"] and p.get("lang", s["lang"]) == s["lang"] or s["lang"] == "mixed"
            if t["category"] in ("question", "smalltalk", "assistant_self",
                                 "assistant_suggestion", "hypothetical"):
                assert t["expect"].get("max_new") == 0, (s["id"], t["user"])
    for split in ("tune", "report"):
        cats = {t["category"] for i, s in enumerate(scen) if split_of(i) == split for t in s["turns"]}
        assert cats == set(CATEGORIES), (split, set(CATEGORIES) - cats)
    # the bug report's names/places appear in at most one scenario each (variety)
    for word in (r"\btom\b", r"\bparis\b", r"\bnurse\b", r"\btennis\b", r"\bseven\b",
                 r"\bshanghai\b", r"product designer", r"\bfootball\b", "小王", "成都"):
        used = {s["id"] for s, t in turns if re.search(word, t["user"], re.I)}
        assert len(used) <= 1, (word, used)


def test_selection_splits(data):
    scen = data["scenarios"]
    report = select(scen, "report")
    assert report == [s for i, s in enumerate(scen) if i % 5 == 4]
    assert len(select(scen, "tune")) + len(report) == len(scen)
    assert select(scen, "all", 2) == scen[:2]
    with pytest.raises(ValueError):
        select(scen, "dev")


# ---- the runner on the scripted server -------------------------------------------------------
MINI = {"id": "en-mini", "lang": "en", "turns": [
    {"user": "I'm Ana, a baker in Porto.", "assistant": "Hi Ana!", "category": "intro",
     "expect": {"present": [{"all": [r"\bana\b"], "lang": "en"},
                            {"all": ["baker"], "lang": "en"}, {"all": ["porto"], "lang": "en"}]}},
    {"user": "Who am I?", "assistant": "You're Ana, a baker in Porto.", "category": "question",
     "expect": {"present": [{"all": ["baker"], "lang": "en"}], "max_new": 0}},
    {"user": "Haha, I love talking to you, you're funny.", "assistant": "Thanks!",
     "category": "smalltalk", "expect": {"max_new": 0}},
]}
SCRIPT = {"I'm Ana, a baker in Porto.": [
    {"text": "Name is Ana", "topic": "name", "type": "profile", "importance": 4},
    {"text": "Works as a baker in Porto", "topic": "job", "type": "profile", "importance": 4}]}
#: what a default answer picks from an enum, when it offers one of these
PREFERRED = ("ADD", "none", "other", "fact")
_SCHEMA_IN_PROMPT = re.compile(r"JSON Schema[^:]*:\s*(\{.*\})\s*$", re.S)


def _schema_of(req):
    """The JSON Schema a JSON request asks for: from ``response_format`` or, in prompt
    mode, from the system message (see ``LLM._json_messages``); None if not found."""
    fmt = req.get("response_format") or {}
    schema = fmt.get("schema") or (fmt.get("json_schema") or {}).get("schema")
    if schema:
        return schema
    for msg in req.get("messages", []):
        m = _SCHEMA_IN_PROMPT.search(msg.get("content") or "") if msg.get("role") == "system" else None
        if m:
            try:
                return json.loads(m.group(1))
            except ValueError:
                return None
    return None


def _fill(schema, hint=None):
    """An instance of ``schema`` taking values from ``hint`` where they fit (so the
    script keeps working when the extraction schema gains or loses a field)."""
    if "enum" in schema:
        values = schema["enum"]
        return hint if hint in values else next((v for v in PREFERRED if v in values), values[0])
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), None) if isinstance(kind, list) else kind
    if kind == "object" or "properties" in schema:
        props, hint = schema.get("properties") or {}, hint if isinstance(hint, dict) else {}
        keys = [k for k in props if k in hint or k in (schema.get("required") or [])]
        return {k: _fill(props[k], hint.get(k)) for k in keys}
    if kind == "array":
        return [_fill(schema.get("items") or {}, h) for h in hint] if isinstance(hint, list) else []
    if kind == "string":
        return hint if isinstance(hint, str) else ""
    if kind in ("integer", "number"):
        return hint if isinstance(hint, (int, float)) else schema.get("minimum", 0)
    if kind == "boolean":
        return bool(hint)
    return hint


def scripted(req):
    """The extraction call for a scripted user message gets its memories; any other
    JSON call a default answer of its schema (reconciliation: ADD); chat gets "ok"."""
    if not is_json_request(req):
        return "ok"
    text, schema = last_user_text(req), _schema_of(req)
    memories = next((m for user, m in SCRIPT.items() if user in text), None)
    if schema is None:
        return {"memories": memories or []} if "memories" in json.dumps(req) else {"action": "ADD", "id": "none"}
    hint = None
    if memories is not None:
        props = schema.get("properties") or {}
        key = next((k for k, v in props.items() if v.get("type") == "array"
                    and "text" in ((v.get("items") or {}).get("properties") or {})), None)
        hint = {key: memories} if key else None
    return _fill(schema, hint)


def test_runner_loop_on_scripted_llm(make_config, scripted_llm, data):
    from memory import Memory

    scripted_llm.responder = scripted
    mem = Memory(make_config())
    try:
        rec = run_scenario(mem, MINI, data["today"])
        lines: list[str] = []
        more = run_scenarios(mem, data["scenarios"][:2], data["today"], log=lines.append)
    finally:
        mem.close()
    t0, t1, t2 = rec["turns"]
    # "Works as a baker in Porto" is split into the job and the workplace (memory.atomic)
    assert [c["action"] for c in t0["changes"]] == ["ADD", "ADD", "ADD"]
    assert len(t0["added"]) == 3 and len(t0["active"]) == 3
    assert [e["event"] for e in t0["history"]] == ["ADD", "ADD", "ADD"]
    assert t0["llm_calls"] >= 1 and t0["seconds"] > 0 and t0["error"] is None
    assert t1["added"] == [] and len(t1["active"]) == 3
    res = evaluate([MINI], [rec])
    assert res["all"]["recall"] == 1 and res["all"]["junk"] == 0 and res["all"]["lang"] == 1
    # the file's own scenarios run through (nothing is extracted by this script)
    assert [r["id"] for r in more] == [s["id"] for s in data["scenarios"][:2]]
    n = sum(len(s["turns"]) for s in data["scenarios"][:2])
    assert len(lines) == n and all(r["user_id"].startswith("mq-") for r in more)
    assert evaluate(data["scenarios"], more)["all"]["n"] == n


def test_cli_end_to_end_on_scripted_llm(scripted_llm, tmp_path, monkeypatch, capsys):
    scripted_llm.responder = scripted
    for key, value in {"OPENAI_BASE_URL": scripted_llm.base_url, "OPENAI_API_KEY": "test",
                       "LLM_MODEL": "scripted", "LLM_TIMEOUT": "10", "LLM_MAX_RETRIES": "1"}.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "mq.json"
    assert main(["--split", "report", "--limit", "1", "--out", str(out),
                 "--data-dir", str(tmp_path / "store")]) == 0
    printed = capsys.readouterr()
    assert "| **all** |" in printed.out and " t0 " in printed.err
    res = json.loads(out.read_text(encoding="utf-8"))
    first = select(load_data(DATA)["scenarios"], "report")[0]
    assert res["model"] == "scripted" and res["git_commit"] is not None
    assert res["split"] == "report" and [r["id"] for r in res["runs"]] == [first["id"]]
    assert res["metrics"]["all"]["n"] == len(first["turns"])
    assert res["runs"][0]["turns"][0]["user"] == first["turns"][0]["user"]
    assert "machine" in res and res["table"].startswith("| category |")
