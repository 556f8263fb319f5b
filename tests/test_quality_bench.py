"""The memory-quality benchmark without a real model: the LLM-free scorer on hand-made
snapshots (a perfect run and a run with known faults), the labelled set's shape, and the
runner's loop and CLI end to end against the scripted OpenAI-compatible server."""
from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from bench.memory_quality import (DATA, evaluate, insert_seeds, load_data, main, run_scenario,
                                  run_scenarios, select, split_of, turn_time)
from bench.quality_score import (CATEGORIES, aggregate_runs, format_table, is_chinese, lang_id,
                                 lang_ok, matches_all, run_means, score)
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
    assert "| **all** | 5 | 1.000 | 1.000 | 0.000 | 0.000 | 1.000 | 1.000 | 1.000 |" in table
    assert "fp ok" not in table  # no seeds in this data
    assert a["changes"] == 6 and a["junk_count"] == 0 and a["added"] == 4
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
    # ADD-only junk as older reports had it: the assistant's words, 1 of 5 added memories
    assert a["junk_add"] == pytest.approx(1 / 5)
    # per change: that ADD and the UPDATE that overwrote the job (an over-deletion), of
    # 4 ADDs + 1 UPDATE + the zh ADD
    assert a["junk"] == pytest.approx(2 / 6) and a["over_deleted"] == 1
    assert a["update"] == 0 and a["forget"] == 0
    assert a["recall"] < 1 and a["lang"] < 1
    kinds = Counter(f["kind"] for f in res["failures"])
    assert kinds["max_new"] == 1 and kinds["update-history"] == 1 and kinds["forget-kept"] == 1
    assert kinds["lang"] == 1 and kinds["over-delete"] == 1


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
    # "Works as a baker in Porto" is split into the job and the workplace (memory.write.atomic)
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
    records = res["runs"][0]["records"]
    assert res["split"] == "report" and [r["id"] for r in records] == [first["id"]]
    assert res["metrics"]["all"]["n"] == len(first["turns"])
    assert res["runs"][0]["metrics"] == res["metrics"] and res["runs_run"] == 1
    assert records[0]["turns"][0]["user"] == first["turns"][0]["user"]
    assert res["git_describe"] and "metrics_spread" not in res
    assert "machine" in res and res["table"].startswith("| category |")


# ---- scorer rules: changes-based junk, END / FORGET, language id, seeds, several runs ------
def one(scenario_turns, lang="en", seed=None):
    scen = {"id": "s", "lang": lang, "turns": scenario_turns}
    if seed is not None:
        scen["seed"] = seed
    return [scen]


def turn(category="intro", **expect):
    return {"user": "u", "assistant": "a", "category": category, "expect": expect}


def test_unmatched_add_counts_as_junk():
    scen = one([turn(present=[{"all": ["nurse"]}], junk=["weather"])])
    snaps = [[snap([("m1", "Is a nurse"), ("m2", "Has a red car"), ("m3", "Nice weather")],
                   [("ADD", "m1", "Is a nurse", None), ("ADD", "m2", "Has a red car", None),
                    ("ADD", "m3", "Nice weather", None)])]]
    res = score(scen, snaps)
    a = res["all"]
    assert a["junk"] == pytest.approx(2 / 3) and a["junk_unmatched"] == 1
    assert a["junk_add"] == pytest.approx(1 / 3)          # the old figure: regex junk only
    assert [u["text"] for u in res["unmatched"]] == ["Has a red car"]
    assert Counter(f["kind"] for f in res["failures"]) == {"unmatched": 1, "junk": 1}


def test_update_to_junk_and_update_on_a_max_new_turn_count_as_junk():
    scen = one([turn(present=[{"all": ["nurse"]}, {"all": ["tea"]}]),
                turn("assistant_self", max_new=0, junk=["memory chat"]),
                turn("question", max_new=0)])
    h0 = [ev("m1", "ADD", None, "Is a nurse"), ev("m2", "ADD", None, "Likes tea")]
    t0 = snap([("m1", "Is a nurse"), ("m2", "Likes tea")],
              [("ADD", "m1", "Is a nurse", None), ("ADD", "m2", "Likes tea", None)], h0)
    # the assistant's self-description written over the tea memory
    t1 = snap([("m1", "Is a nurse"), ("m2", "Talks to Memory Chat, likes tea")],
              [("UPDATE", "m2", "Talks to Memory Chat, likes tea", "Likes tea")], h0)
    # a question turn rephrasing a memory (it still holds "nurse": no over-deletion)
    t2 = snap([("m1", "Works as a nurse"), ("m2", "Talks to Memory Chat, likes tea")],
              [("UPDATE", "m1", "Works as a nurse", "Is a nurse")], h0)
    res = score(scen, [[t0, t1, t2]])
    a = res["all"]
    assert (a["changes"], a["junk_count"], a["junk_update"]) == (4, 2, 2)
    assert a["junk"] == pytest.approx(2 / 4) and a["junk_add"] == 0
    assert res["categories"]["assistant_self"]["junk"] == 1.0
    assert res["categories"]["question"]["junk"] == 1.0
    assert {f["kind"] for f in res["failures"]} == {"update-max_new"}


def test_over_deletion_counts_as_junk_unless_the_fact_survives_elsewhere():
    scen = one([turn(present=[{"all": ["nurse"]}, {"all": ["tea"]}]),
                turn("smalltalk"),
                turn("question", present=[{"all": ["nurse"]}], max_new=0)])
    t0 = snap([("m1", "Is a nurse"), ("m2", "Likes tea"), ("m3", "Works as a nurse")],
              [("ADD", "m1", "Is a nurse", None), ("ADD", "m2", "Likes tea", None),
               ("ADD", "m3", "Works as a nurse", None)])
    # a duplicate merged away (m3 still holds "nurse") and the tea memory ended: tea is
    # expected only on turn 0, so ending it on turn 1 is no over-deletion
    t1 = snap([("m1", "Is a nurse")],
              [("DELETE", "m3", "Works as a nurse", None), ("END", "m2", "Likes tea", None)])
    # the job forgotten while turn 2 still expects it
    t2 = snap([], [("FORGET", "m1", "Is a nurse", None)])
    res = score(scen, [[t0, t1, t2]])
    a = res["all"]
    assert a["over_deleted"] == 1 and a["changes"] == 6 and a["junk"] == pytest.approx(1 / 6)
    over = [f for f in res["failures"] if f["kind"] == "over-delete"]
    assert len(over) == 1 and over[0]["turn"] == 2 and over[0]["detail"]["action"] == "FORGET"
    assert over[0]["detail"]["text"] == "Is a nurse"
    # the same FORGET on turn 1 (with the expectation of turn 2) is counted on turn 1
    t1b = snap([("m2", "Likes tea"), ("m3", "Works as a nurse")],
               [("FORGET", "m1", "Is a nurse", None)])
    t1c = snap([("m2", "Likes tea")], [("END", "m3", "Works as a nurse", None)])
    res = score(scen, [[t0, t1b, t1c]])
    assert res["all"]["over_deleted"] == 1
    assert [f["turn"] for f in res["failures"] if f["kind"] == "over-delete"] == [2]


def test_end_and_forget_events_are_update_and_forget_evidence():
    scen = one([turn(present=[{"all": ["paris"]}, {"all": ["ramen"]}]),
                turn("move_job", present=[{"all": ["lyon"]}], absent=[{"all": [NOT_PARIS]}],
                     update={"history_old": ["paris"]}),
                turn("forget", forget={"gone": ["ramen"]})])
    h0 = [ev("m1", "ADD", None, "Lives in Paris"), ev("m2", "ADD", None, "Loves ramen")]
    t0 = snap([("m1", "Lives in Paris"), ("m2", "Loves ramen")],
              [("ADD", "m1", "Lives in Paris", None), ("ADD", "m2", "Loves ramen", None)], h0)

    def run(end_event, forget_event):
        h1 = h0 + [ev("m1", end_event, "Lives in Paris", None),
                   ev("m3", "ADD", None, "Lives in Lyon")]
        t1 = snap([("m2", "Loves ramen"), ("m3", "Lives in Lyon")],
                  [("END", "m1", "Lives in Paris", None), ("ADD", "m3", "Lives in Lyon", None)], h1)
        h2 = h1 + [ev("m2", forget_event, "Loves ramen", None)]
        t2 = snap([("m3", "Lives in Lyon")], [(forget_event, "m2", "Loves ramen", None)], h2)
        return score(scen, [[t0, t1, t2]])["all"]

    for end_event, forget_event in (("END", "FORGET"), ("DELETE", "DELETE"), ("END", "END")):
        a = run(end_event, forget_event)
        assert (a["update"], a["forget"], a["junk"]) == (1, 1, 0), (end_event, forget_event)
    a = run("NONE", "NONE")   # neither left a trace in the history
    assert (a["update"], a["forget"]) == (0, 0)


def test_language_id_for_every_language():
    # a French memory in a Spanish scenario (the old es-vs-en choice passed it)
    assert not lang_ok("Habite à Madrid avec sa sœur", "es")
    assert lang_ok("Vive en Madrid con su hermana", "es")
    res = score(one([turn(present=[{"all": ["madrid"]}])], lang="es"),
                [[snap([("m1", "Habite à Madrid avec sa sœur")],
                       [("ADD", "m1", "Habite à Madrid avec sa sœur", None)])]])
    assert res["all"]["lang"] == 0 and res["all"]["recall"] == 1
    (f,) = [f for f in res["failures"] if f["kind"] == "lang"]
    assert f["lang_id"] == "fr"
    # English scaffolding around another script fails (it passed before)
    assert not lang_ok("Lives in Казани", "ru") and lang_ok("Живёт в Казани", "ru")
    assert lang_ok("Работает в Google", "ru")
    # English is checked by language id too, not only "no CJK"
    assert lang_ok("Is a paramedic", "en") and not lang_ok("Trabaja como enfermera en Madrid", "en")
    # placeholders and short names are tolerated
    assert lang_ok("[PHONE]", "de") and lang_ok("Heter Erik", "sv") and lang_ok("Ana", "es")
    assert lang_ok("Tanaka", "ja") and not lang_ok("Name is Tanaka", "ja")
    assert lang_ok("Lives in成都", "mixed") and lang_ok("anything", None)


def test_chinese_japanese_and_korean_are_told_apart():
    ja, ko, zh = "東京に住んでいます", "서울에 살아요", "住在成都"
    assert lang_ok(ja, "ja") and not lang_ok(ja, "zh") and not lang_ok(ja, "ko")
    assert lang_ok(ko, "ko") and not lang_ok(ko, "zh") and not lang_ok(ko, "ja")
    assert lang_ok(zh, "zh") and not lang_ok(zh, "ko") and not lang_ok(zh, "en")
    assert lang_ok("東京在住", "ja")      # kanji only: cannot be told from Chinese
    assert not lang_ok("Works at 삼성", "ko") and lang_ok("삼성전자에서 일해요", "ko")
    assert lang_id(ja) == "ja" and lang_id(ko) == "ko" and lang_id(zh) == "zh"


SEEDS = [{"id": "s1", "text": "Lives in Porto", "type": "profile"},
         {"id": "s2", "text": "Has a cat named Miso", "type": "fact"},
         {"id": "s3", "text": "Likes jazz", "type": "preference"}]


def test_seeds_missing_or_rewritten_break_the_false_positive_metric():
    scen = one([turn("fp_question", survive="all", max_new=0),
                turn("fp_hypothetical", survive="all", max_new=0),
                turn("fp_smalltalk", survive="all", max_new=0)],
               seed=[{"text": s["text"], "type": s["type"]} for s in SEEDS])
    seeded = [(s["id"], s["text"]) for s in SEEDS]
    hist = [ev(s["id"], "ADD", None, s["text"]) for s in SEEDS]
    t0 = snap(seeded, [], hist)
    # the hypothetical ended the home and rewrote the cat
    h1 = hist + [ev("s1", "END", "Lives in Porto", None),
                 ev("s2", "UPDATE", "Has a cat named Miso", "Has a dog")]
    t1 = snap([("s2", "Has a dog"), ("s3", "Likes jazz")],
              [("END", "s1", "Lives in Porto", None),
               ("UPDATE", "s2", "Has a dog", "Has a cat named Miso")], h1)
    t2 = snap([("s2", "Has a dog"), ("s3", "Likes jazz")], [], h1)
    record = {"seeds": SEEDS, "turns": [t0, t1, t2]}
    res = score(scen, [record])
    a = res["all"]
    assert (a["fp_turns"], a["fp_broken"], a["seeds_lost"], a["seeds"]) == (3, 2, 2, 3)
    assert a["fp_ok"] == pytest.approx(1 / 3)
    assert res["categories"]["fp_question"]["fp_ok"] == 1
    assert res["categories"]["fp_hypothetical"]["seeds_lost"] == 2
    assert res["categories"]["fp_smalltalk"]["seeds_lost"] == 0
    seeds = {f["detail"]["seed"]: f["detail"] for f in res["failures"] if f["kind"] == "seed"}
    assert set(seeds) == {"Lives in Porto", "Has a cat named Miso"}      # reported once each
    assert seeds["Lives in Porto"]["state"] == "missing"
    assert seeds["Lives in Porto"]["change"]["action"] == "END"
    assert seeds["Has a cat named Miso"]["state"] == "rewritten"
    assert seeds["Has a cat named Miso"]["now"] == "Has a dog"
    assert seeds["Has a cat named Miso"]["change"]["old_text"] == "Has a cat named Miso"
    # categories not in CATEGORIES come in data order; seed columns shown
    assert list(res["categories"]) == ["fp_question", "fp_hypothetical", "fp_smalltalk"]
    table = format_table(res)
    assert "| fp ok | seeds lost |" in table
    assert "| **all** | 3 |" in table and "| 0.333 | 2 |" in table
    # without the runner's record the seeds are looked up by text: same verdicts
    by_text = score(scen, [[t0, t1, t2]])["all"]
    assert (by_text["fp_broken"], by_text["seeds_lost"]) == (2, 2)
    # a seed restored before the end is not lost
    t2r = snap(seeded, [("RESTORE", "s1", "Lives in Porto", None)], h1)
    t2r["active"][1]["text"] = "Has a cat named Miso"
    a = score(scen, [{"seeds": SEEDS, "turns": [t0, t1, t2r]}])["all"]
    assert (a["fp_broken"], a["seeds_lost"]) == (1, 0)


def test_categories_and_languages_follow_the_data_after_the_known_ones():
    scens = [{"id": "a", "lang": "nl", "turns": [turn("move"), turn("intro")]},
             {"id": "b", "lang": "en", "turns": [turn("habit_end"), turn("move")]},
             {"id": "c", "lang": "ja", "turns": [turn("job_change")]}]
    res = score(scens, [[snap([])] * 2, [snap([])] * 2, [snap([])]])
    assert list(res["categories"]) == ["intro", "move", "habit_end", "job_change"]
    assert list(res["langs"]) == ["en", "nl", "ja"]


def test_aggregating_several_runs():
    r1 = {"all": {"n": 4, "recall": 1.0, "junk": 0.1, "update": None, "seeds_lost": 1},
          "categories": {"intro": {"n": 2, "recall": 1.0}},
          "langs": {"en": {"n": 4, "recall": 1.0}}, "turns": 4}
    r2 = {"all": {"n": 4, "recall": 0.5, "junk": 0.3, "update": None, "seeds_lost": 3},
          "categories": {"intro": {"n": 2, "recall": 0.5}, "move": {"n": 2, "recall": 0.0}},
          "langs": {"en": {"n": 4, "recall": 0.5}}, "turns": 4}
    agg = aggregate_runs([r1, r2])
    assert agg["runs"] == 2 and agg["turns"] == {"mean": 4, "min": 4, "max": 4}
    assert agg["all"]["recall"] == {"mean": 0.75, "min": 0.5, "max": 1.0}
    assert agg["all"]["junk"]["mean"] == pytest.approx(0.2)
    assert agg["all"]["update"] is None
    assert list(agg["categories"]) == ["intro", "move"]
    assert agg["categories"]["move"]["recall"] == {"mean": 0.0, "min": 0.0, "max": 0.0}
    means = run_means(agg)
    assert means["all"]["recall"] == 0.75 and means["all"]["update"] is None
    assert means["turns"] == 4
    table = format_table(agg)
    assert "| **all** | 4 | 0.750 (0.500–1.000) | – | 0.200 (0.100–0.300) |" in table
    assert "| 2 (1–3) |" in table          # seeds lost: a count
    # one run: plain numbers, as before
    assert "| **all** | 4 | 1.000 | – | 0.100 |" in format_table(r1)


# ---- the runner with seeds, several runs and a new data file, on the scripted server -----
SEEDED = {"id": "fp-mini", "lang": "en",
          "seed": [{"text": "Lives in Porto", "type": "profile"},
                   {"text": "Has a cat named Miso", "type": "fact"}],
          "turns": [
              {"user": "What's the capital of Peru?", "assistant": "Lima.",
               "category": "fp_question", "expect": {"survive": "all", "max_new": 0}},
              {"user": "If I lived in Oslo I'd ski every day.",
               "category": "fp_hypothetical", "expect": {"survive": "all", "max_new": 0}}]}


def test_runner_inserts_seeds_without_the_llm(make_config, scripted_llm, data):
    from memory import Memory

    scripted_llm.responder = scripted
    mem = Memory(make_config())
    try:
        stored = insert_seeds(mem, "seed-check", SEEDED["seed"], turn_time(data["today"]))
        assert scripted_llm.chat_requests() == []             # no LLM call
        assert [s["text"] for s in stored] == [s["text"] for s in SEEDED["seed"]]
        assert {r.id for r in mem.list("seed-check")} == {s["id"] for s in stored}
        rec = run_scenario(mem, SEEDED, data["today"])
        bad = run_scenario(mem, {**SEEDED, "seed": [{"text": "Likes jazz", "type": "bogus"}],
                                 "turns": SEEDED["turns"][:1]}, data["today"])
    finally:
        mem.close()
    # a seed the import refuses is recorded, and counts as lost
    assert "type" in bad["seed_error"] and bad["seeds"] == [
        {"id": None, "text": "Likes jazz", "type": "bogus"}]
    assert evaluate([SEEDED], [bad])["all"]["fp_broken"] == 1
    seeds = rec["seeds"]
    assert [s["text"] for s in seeds] == ["Lives in Porto", "Has a cat named Miso"]
    assert all(s["id"] for s in seeds) and [s["type"] for s in seeds] == ["profile", "fact"]
    t0 = rec["turns"][0]
    assert {m["id"]: m["text"] for m in t0["active"]} == {s["id"]: s["text"] for s in seeds}
    imported = [e for e in t0["history"] if e["memory_id"] in {s["id"] for s in seeds}]
    assert [e["event"] for e in imported] == ["ADD", "ADD"]
    assert {e["actor"] for e in imported} == {"import"}
    assert rec["turns"][1]["error"] is None and "seed_error" not in rec
    res = evaluate([SEEDED], [rec])
    a = res["all"]
    assert (a["fp_turns"], a["fp_broken"], a["seeds_lost"], a["seeds"]) == (2, 0, 0, 2)
    assert a["fp_ok"] == 1


def test_cli_several_runs_on_a_seeded_data_file(scripted_llm, tmp_path, monkeypatch, capsys):
    scripted_llm.responder = scripted
    for key, value in {"OPENAI_BASE_URL": scripted_llm.base_url, "OPENAI_API_KEY": "test",
                       "LLM_MODEL": "scripted", "LLM_TIMEOUT": "10", "LLM_MAX_RETRIES": "1"}.items():
        monkeypatch.setenv(key, value)
    data_file = tmp_path / "fp.json"
    data_file.write_text(json.dumps({"version": 1, "today": "2026-11-27",
                                     "scenarios": [SEEDED, MINI]}), encoding="utf-8")
    out = tmp_path / "mq.json"
    assert main(["--data", str(data_file), "--split", "all", "--runs", "2", "--out", str(out),
                 "--data-dir", str(tmp_path / "store")]) == 0
    printed = capsys.readouterr()
    assert "[run 2/2] [2/2] en-mini t2" in printed.err
    assert "2 runs × 2 scenarios" in printed.out and "mean (min–max) over 2 runs" in printed.out
    assert "| fp ok | seeds lost |" in printed.out and "| fp_question |" in printed.out
    res = json.loads(out.read_text(encoding="utf-8"))
    assert res["runs_planned"] == 2 and res["runs_run"] == 2 and res["runs_aggregated"] == 2
    assert [r["run"] for r in res["runs"]] == [1, 2]
    users = [rec["user_id"] for r in res["runs"] for rec in r["records"]]
    assert len(set(users)) == 4                                # fresh users each run
    assert all(len(r["records"][0]["seeds"]) == 2 for r in res["runs"])
    assert res["metrics"]["all"]["fp_ok"] == 1 and res["metrics"]["all"]["n"] == 5
    assert res["metrics_spread"]["all"]["recall"]["min"] <= res["metrics"]["all"]["recall"]
    assert all("run" in f for f in res["failures"]) and res["git_describe"]


def test_no_unmatched_adds_in_a_scenario_that_labels_nothing_to_keep():
    scen = one([turn("fp_trip", survive="all", junk=["umbrella"])],
               seed=[{"text": "Lives in Rome", "type": "profile"}])
    t0 = snap([("s1", "Lives in Rome"), ("m1", "Is going to Naples"), ("m2", "Forgot umbrella")],
              [("ADD", "m1", "Is going to Naples", None), ("ADD", "m2", "Forgot umbrella", None)])
    a = score(scen, [{"seeds": [{"id": "s1", "text": "Lives in Rome"}], "turns": [t0]}])["all"]
    assert (a["junk_unmatched"], a["junk_count"], a["changes"]) == (0, 1, 2)
    assert a["fp_ok"] == 1 and a["seeds_lost"] == 0


@pytest.mark.parametrize("name", ["memory_quality_holdout2.json", "memory_false_positive.json"])
def test_cli_split_all_on_the_new_data_files(name, scripted_llm, tmp_path, monkeypatch, capsys):
    path = DATA.parent / name
    if not path.exists():
        pytest.skip(f"{name} not written yet")
    scripted_llm.responder = scripted
    for key, value in {"OPENAI_BASE_URL": scripted_llm.base_url, "OPENAI_API_KEY": "test",
                       "LLM_MODEL": "scripted", "LLM_TIMEOUT": "10", "LLM_MAX_RETRIES": "1"}.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "mq.json"
    assert main(["--data", str(path), "--split", "all", "--limit", "2", "--out", str(out),
                 "--data-dir", str(tmp_path / "store")]) == 0
    table = capsys.readouterr().out
    res = json.loads(out.read_text(encoding="utf-8"))
    scen = load_data(path)["scenarios"][:2]
    records = res["runs"][0]["records"]
    assert [r["id"] for r in records] == [s["id"] for s in scen]
    assert res["metrics"]["all"]["n"] == sum(len(s["turns"]) for s in scen)
    for cat in {t["category"] for s in scen for t in s["turns"]}:
        assert f"| {cat} |" in table
    seeded = any(s.get("seed") for s in scen)
    assert ("| fp ok | seeds lost |" in table) == seeded
    if seeded:  # every seed stored (the import accepted the file's types and texts)
        assert all("seed_error" not in r for r in records)
        assert all(s["id"] for r in records for s in r["seeds"])
        assert res["metrics"]["all"]["seeds"] == sum(len(s.get("seed") or []) for s in scen)
