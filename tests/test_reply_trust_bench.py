"""bench/reply_trust.py: the LLM-free checks can fail (each one shown failing and
passing on hand-written replies), and the runner works on the scripted server."""
from __future__ import annotations

import json

from bench import reply_trust as rt
from tests.fake_llm import is_json_request, system_text

VEG = {"id": "x-c", "lang": "en", "kind": "constraint", "prompt": "Dinner ideas?",
       "memories": [["Is vegetarian", "health"], ["Loves cooking", "like"]],
       "expect_any": ["vegetarian|veggie"], "avoid": ["chicken|steak"], "invent": ["climb"]}
ME = {"id": "x-p", "lang": "zh", "kind": "profile", "prompt": "我是谁？你知道我什么？", "name": "小周",
      "memories": [["名字叫小周", "name"], ["住在上海", "home"]], "keys": ["小周", "上海"]}


def test_uses_contradicts_and_invents_are_told_apart():
    good = rt.score(VEG, "Since you're vegetarian and love cooking, try a mushroom risotto.")
    assert good["uses"] and not good["contradicts"] and good["invented"] == []
    bad = rt.score(VEG, "Since you love climbing, grill a steak. Chicken works too.")
    assert not bad["uses"] and len(bad["contradicts"]) == 2
    assert any("climbing" in c for c in bad["invented"])
    # a negated mention is no recommendation
    assert rt.score(VEG, "As a vegetarian, skip the chicken and make dal.")["contradicts"] == []


def test_chinese_claims_profile_coverage_and_second_person():
    good = rt.score(ME, "你叫小周，住在上海。")
    assert good["coverage"] == 1.0 and good["second_person"] is True and not good["invented"]
    as_user = rt.score(ME, "你好，我是小周。我知道我住在上海。")
    assert as_user["second_person"] is False and as_user["coverage"] == 1.0
    invented = rt.score(ME, "因为你喜欢打篮球，所以你住在上海。")
    assert invented["invented"] and rt.score(ME, "你住在北京。")["coverage"] == 0.0


def _replies(req):
    if is_json_request(req):
        return {"memories": []}
    if "Always respect:\n- The user: Is vegetarian" in system_text(req):
        return "Since you're vegetarian, how about a chickpea curry?"
    return "You could grill a steak."


def test_the_runner_on_the_scripted_server(make_config, scripted_llm, tmp_path, monkeypatch, capsys):
    from memory import Memory

    scripted_llm.responder = _replies
    data = tmp_path / "cases.json"
    data.write_text(json.dumps({"cases": [{**VEG, "split": "tune"}, {**ME, "split": "report"}]},
                               ensure_ascii=False))
    monkeypatch.setattr(rt, "DATA", data)
    out = tmp_path / "r.json"
    assert rt.main(["--split", "tune", "--runs", "2", "--out", str(out)],
                   memory_factory=lambda d: Memory(make_config(data_dir=d))) == 0
    result = json.loads(out.read_text())
    assert [len(r) for r in result["records"]] == [1, 1]
    rec = result["records"][0][0]
    # the seeded constraint was classified and reached the prompt through the profile
    assert rec["profile"].startswith("Always respect:\n- Is vegetarian")
    assert rec["uses"] and not rec["contradicts"] and not rec["invented"]
    assert result["summary"]["contradictions"] == {"mean": 0, "min": 0, "max": 0}
    assert "| uses | 1.0 |" in capsys.readouterr().out
