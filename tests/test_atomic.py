"""Atomic facts, moves and graduations: the LLM-free rules that keep a change from
taking unchanged details with it (memory.write.atomic, memory.write.moves, memory.write.cessation)."""
from __future__ import annotations

import numpy as np
import pytest

from memory.write.atomic import atomize, fix_topic, split_combined
from memory.write.stated import age_candidate, stated_age
from memory.write.cessation import eats_meat_again, graduated, meat_free, still_studying
from memory.write.extract import Candidate
from memory.write.moves import left_behind, moves_home
from memory.write.reconcile import Decision
from memory.types import MemoryRecord


def cand(text, topic="job", **kw):
    return Candidate(text=text, topic=topic, tags=[topic], **kw)


def rec(text, topic=None, id_="m1"):
    return MemoryRecord(id=id_, user_id="u", text=text, type="profile",
                        tags=[topic] if topic else [])


@pytest.mark.parametrize("text,source,want", [
    ("Is a firefighter in Denver", "I'm Dana, a firefighter in Denver",
     ["Is a firefighter", "Works in Denver"]),
    ("Teaches high-school history in Boston", "I teach high-school history in Boston",
     ["Teaches high-school history", "Works in Boston"]),
    ("Works in Shanghai as a product designer", "I work in Shanghai as a product designer",
     ["Works as a product designer", "Works in Shanghai"]),
    ("Works as a barista in New York", "barista in New York", ["Works as a barista", "Works in New York"]),
    ("Is a nurse in Paris, part-time", "a nurse in Paris, part-time", ["Is a nurse, part-time", "Works in Paris"]),
    ("在杭州当护士", "我在杭州当护士", ["当护士", "在杭州工作"]),
    # an employer is split like a city: "I joined Spotify" must replace Google, not the job
    ("Works as an engineer at Google", "engineer at Google", ["Works as an engineer", "Works at Google"]),
    # the place is not in the user's words (copied from a KNOWN line): only the job stays
    ("Fights fires in Denver, now for a new department", "I still fight fires, just for a new department now",
     ["Fights fires, now for a new department"]),
    # atomic already, or not a place
    ("Works in Boston", "I work in Boston", ["Works in Boston"]),
    ("Works in marketing", "I work in marketing", ["Works in marketing"]),
    ("Works at Google as a data engineer", "I work at Google as a data engineer",
     ["Works as a data engineer", "Works at Google"]),
    # times and events are not places
    ("Left teaching in September", "I left teaching in September", ["Left teaching in September"]),
    ("Is a lifeguard in Summer", "I'm a lifeguard in Summer", ["Is a lifeguard in Summer"]),
])
def test_split_combined_job_and_place(text, source, want):
    pieces = split_combined(cand(text), source)
    assert [p.text for p in pieces] == want
    assert [p.topic for p in pieces] == ["job", "workplace"][:len(want)]


def test_split_keeps_replaces_on_the_job_and_leaves_other_topics():
    old = rec("Is a firefighter in Denver", "job")
    job, place = split_combined(cand("Is a paramedic in Denver", replaces=old), "a paramedic in Denver")
    assert job.replaces is old and place.replaces is None and place.tags == ["workplace"]
    assert [c.text for c in split_combined(cand("Loves hiking in Norway", "like"), "hiking in Norway")] \
        == ["Loves hiking in Norway"]


@pytest.mark.parametrize("text,age", [
    ("Hi, I'm Sam, I'm 29 and I work as a barista.", 29), ("I am 41 years old", 41),
    ("Guess what, I turned 30 yesterday!", 30), ("I've just turned 18", 18),
    ("我今年29岁，在上海工作", 29), ("我刚满30岁了", 30),
    ("I'm 5 minutes late", None), ("I have 3 cats", None), ("My son is 7", None),
    ("I'm 300 years old", None),
])
def test_stated_age(text, age):
    assert stated_age(text) == age


def test_atomize_adds_the_stated_age_once_and_in_the_users_language():
    out = atomize([cand("Name is Sam", "name"), cand("Works as a barista in Seattle")],
                  "Hi, I'm Sam, I'm 29 and I work as a barista in Seattle.", "en")
    assert [c.text for c in out] == ["Name is Sam", "Works as a barista", "Works in Seattle",
                                     "Is 29 years old"]
    assert age_candidate("我今年29岁", "zh").text == "29岁"
    # the model's own age facts give way to the one canonical text
    assert [c.text for c in atomize([cand("2026年 28 岁", "age")], "我今年28岁", "zh")] == ["28岁"]
    assert [c.text for c in atomize([cand("Is 92", "age")], "I'm 29", "en")] == ["Is 29 years old"]
    assert [c.text for c in atomize([cand("Is 29", "age")], "I like tea", "en")] == ["Is 29"]


def test_a_move_labelled_event_becomes_home():
    assert fix_topic(cand("Relocated to Portland over the summer", "event")).topic == "home"
    assert fix_topic(cand("2026年春天我们全家搬去了厦门", "other")).type == "profile"
    assert fix_topic(cand("Went to Portland for a concert", "event")).topic == "event"


def _decision(text, action="ADD", target=None):
    return Decision(cand(text, "home"), np.zeros(0, dtype=np.float32), action, target, text)


def test_a_move_retires_the_old_city_workplace_only():
    stored = [rec("Works in Denver", "workplace", "w1"), rec("Works at Google", "workplace", "w2"),
              rec("Is a firefighter", "job", "j1"), rec("在西安工作", "workplace", "w3"),
              rec("Sister works in Denver", "workplace", "w4")]
    moved = [_decision("Relocated to Portland over the summer")]
    assert moves_home(moved)
    assert [r.id for r in left_behind(stored, "We relocated to Portland.")] == ["w1", "w3"]
    # the user still works in the old city: nothing retired
    assert left_behind(stored, "Moved to Portland but I still work in Denver and 西安") == []
    # updating the stored home is a move too; a plain new fact is not
    home = rec("Lives in Austin", "home", "h1")
    assert moves_home([_decision("Lives in Houston", "UPDATE", home)])
    assert not moves_home([_decision("Loves salsa dancing")])


@pytest.mark.parametrize("text,ends", [
    ("我已经毕业了，现在在杭州的一家药企做研发。", True), ("I graduated in June!", True),
    ("I've finally finished my PhD", True), ("I haven't graduated yet", False),
    ("快毕业了", False), ("我毕业后想去北京", False), ("I love my classes", False),
])
def test_a_graduation_ends_current_studies(text, ends):
    stored = [rec("在浙江大学读研究生", "education", "e1"), rec("学的是化学", "education", "e2"),
              rec("Is a PhD student at MIT", "education", "e3"), rec("Not a student anymore", "education", "e4")]
    assert graduated(text) is ends
    assert [r.id for r in still_studying(stored)] == ["e1", "e3"]


@pytest.mark.parametrize("text,ends", [
    ("Update on the food front: I'm eating meat again these days.", True), ("我又开始吃肉了", True),
    ("I started eating fish again", True), ("I don't eat meat", False), ("I'd never eat fish", False),
    ("If I ate meat I'd feel bad", False), ("I love chicken", False),
])
def test_eating_meat_again_ends_a_meat_free_diet(text, ends):
    stored = [rec("Vegan for five years", "habit", "v1"), rec("吃素三年了", "habit", "v2"),
              rec("Sister is vegan", "family", "v3"), rec("No longer vegetarian", "habit", "v4")]
    assert eats_meat_again(text) is ends
    assert [r.id for r in meat_free(stored)] == ["v1", "v2"]
    assert still_studying([rec("Brother is a PhD student", "family")]) == []


def test_a_move_replaces_the_one_stored_home_without_a_reconciliation_call(tmp_path):
    """The change rule picks the one stored home; the model is asked only to confirm
    (one ``memory.write.confirm`` call), never to reconcile."""
    from memory import Memory
    from tests.fake_llm import ScriptedLLM, scripted_config, system_text

    def brain(req):
        if "You check a user's memory list" in system_text(req):
            return {"1": "ended"}
        if "You extract memories" in system_text(req):
            said = req["messages"][-1]["content"].split("User: ")[-1]
            if "Paris" in said:
                return {"memories": [{"text": "Lives in Paris", "topic": "home"}]}
            if "Lyon" in said:
                return {"memories": [{"text": "Moved to Lyon last week", "topic": "event"}]}
            return {"memories": []}
        return {"action": "ADD", "id": "none"}  # a reconciliation call would keep both

    with ScriptedLLM(brain) as llm:
        mem = Memory(scripted_config(tmp_path, llm))
        try:
            mem.add("I live in Paris.", "tom")
            changes = mem.add("Actually I moved to Lyon last week.", "tom")
            assert [(c.event, c.old_text) for c in changes] == [("UPDATE", "Lives in Paris")]
            assert [r.text for r in mem.list("tom")] == [changes[0].text]
            assert not [r for r in llm.requests if "memory list correct" in system_text(r.body)]
            asked = [r for r in llm.requests if "You check a user's memory list" in system_text(r.body)]
            assert len(asked) == 1 and "MEMORY 1: Lives in Paris" in asked[0].body["messages"][-1]["content"]
        finally:
            mem.close()


def test_one_change_per_memory():
    from memory.write.reconcile import one_change_per_memory

    dentist, age = rec("Is a dentist", "job", "d1"), rec("Is 29 years old", "age", "a1")
    z = np.zeros(0, dtype=np.float32)

    def d(text, action, target, reason):
        return Decision(cand(text), z, action, target, text, reason)

    out = one_change_per_memory([
        d("Is a dentist", "NONE", dentist, "exact"),
        d("I'm a dentist", "UPDATE", dentist, "llm"),                      # restates a confirmed one
        d("Is 30 years old", "UPDATE", age, "one value"),
        d("Turned 30 on November 26, 2026", "UPDATE", age, "llm"),        # second change: a new fact
        d("Is 29", "UPDATE", age, "llm"),                                  # adds nothing: NONE
    ])
    assert [(x.action, x.reason) for x in out] == [
        ("NONE", "exact"), ("NONE", "restated"), ("UPDATE", "one value"),
        ("ADD", "already changed"), ("NONE", "restated")]
    assert out[3].target is None


def test_a_candidate_restating_a_correction_is_dropped():
    from memory.write.corrections import find_corrections, states_wrong_value

    fixes = find_corrections("No no, not Dallas — Austin! I've never lived in Dallas.")
    assert [(f.wrong, f.right) for f in fixes] == [("Dallas", "Austin")]
    assert states_wrong_value("Not Dallas — Austin! I've never lived in Dallas", fixes)
    assert not states_wrong_value("Works in Austin", fixes)
    zh = find_corrections("陶艺课是每周四晚上，不是周三")
    assert states_wrong_value("陶艺课是每周四晚上，不是周三", zh) and not states_wrong_value("每周四晚上去学陶艺", zh)
    assert find_corrections("I am not happy: the food was cold.") == []


@pytest.mark.parametrize("said,have,added", [
    ("我叫陈雨桐，在武汉一家银行做客户经理，周末喜欢爬山。", ["名字是陈雨桐", "在武汉工作"], ["做客户经理"]),
    ("我叫唐欣，在长沙当幼儿园老师，每天早上都要喝一杯咖啡。", ["是一名幼儿园老师"], ["在长沙工作"]),
    ("我叫钱多多，在石家庄做兽医", [], ["在石家庄工作", "做兽医"]),
    ("我叫钱多多，在石家庄做兽医", ["做兽医", "在石家庄工作"], []),
    ("我妹妹在深圳做护士。", [], []),                      # someone else's job
    ("今年春天我们全家搬去了厦门，我还是做程序员。", [], []),  # no 在<地方>
    ("I work in Boston as a nurse", [], []),
])
def test_a_dropped_chinese_workplace_or_job_is_added_back(said, have, added):
    from memory.write.stated import dropped_work_facts

    got = dropped_work_facts([Candidate(text=t) for t in have], said)
    assert [c.text for c in got] == added
    assert [c.topic for c in got] == [("workplace" if t.endswith("工作") else "job") for t in added]


def test_age_in_apposition_and_chinese_clause():
    assert stated_age("I'm Ravi, 34, a bike mechanic in Austin.") == 34
    assert stated_age("我叫唐欣，34岁") == 34
    assert stated_age("我有个5岁的儿子") is None and stated_age("他今年5岁") is None


@pytest.mark.parametrize("message,changed", [
    ("I left the bank. I work as a software tester now.", True),
    ("我最近换工作了，现在在一家保险公司做培训讲师。", True), ("我改行当摄影师了", True),
    ("I also teach yoga on weekends now.", False), ("我现在兼职做翻译", False),
    ("I love my job as a nurse.", False),
])
def test_a_message_that_changes_the_job(message, changed):
    from memory.write.reconcile import signals_change

    assert signals_change(message) is changed


def test_a_changed_job_replaces_the_one_stored_job_without_a_reconciliation_call(tmp_path):
    """The change rule picks the one stored job; the model only confirms it ended."""
    from memory import Memory
    from tests.fake_llm import ScriptedLLM, scripted_config, system_text

    answers = {"nurse": [{"text": "Is a nurse", "topic": "job"}, {"text": "Loves tennis", "topic": "like"}],
               "tester": [{"text": "Works as a software tester", "topic": "job"}],
               "yoga": [{"text": "Teaches yoga on weekends", "topic": "job"}]}

    def brain(req):
        if "You extract memories" in system_text(req):
            said = req["messages"][-1]["content"].split("User: ")[-1]
            return {"memories": next((v for k, v in answers.items() if k in said), [])}
        if "You check a user's memory list" in system_text(req):
            return {"1": "ended"}
        return {"action": "ADD", "id": "none"}

    with ScriptedLLM(brain) as llm:
        mem = Memory(scripted_config(tmp_path, llm))
        try:
            mem.add("I'm a nurse and I love tennis.", "kim")
            changes = mem.add("I quit nursing. I work as a software tester now.", "kim")
            assert [(c.event, c.old_text) for c in changes if c.event != "NONE"] == [("UPDATE", "Is a nurse")]
            mem.add("I also teach yoga on weekends.", "kim")   # a second job: added, not replaced
            assert sorted(r.text for r in mem.list("kim")) == [
                "Loves tennis", "Teaches yoga on weekends", "Works as a software tester"]
        finally:
            mem.close()


def test_a_city_workplace_is_never_replaced_by_an_employer():
    from memory.write.moves import city_of

    assert city_of("Works in Denver") == "Denver" and city_of("现在在北京工作") == "北京"
    assert city_of("在一所小学工作") is None and city_of("Works at Google") is None
