"""Facts stated in fixed forms survive a model that drops them (memory.write.stated), and the
reconciliation guards that keep a change from landing on the wrong memory
(memory.write.reconcile: same_subject, a home changed "these days", a restated memory's
new value)."""
from __future__ import annotations

import numpy as np
import pytest

from memory.write.atomic import atomize
from memory.write.extract import Candidate
from memory.write.reconcile import Decision, one_change_per_memory, same_subject
from memory.write.stated import moved_to, stated_facts, stated_name
from memory.types import MemoryRecord
from tests.fake_llm import system_text
from tests.test_learning_api import _with_facts, mem, texts  # noqa: F401  (fixture)


def cand(text, topic="other"):
    return Candidate(text=text, type="fact", importance=3, tags=[topic], topic=topic)


@pytest.mark.parametrize("text,name", [
    ("I'm Wei, 我在北京做律师。", "Wei"),
    ("Hi, I'm Seven. I work in Shanghai", "Seven"),
    ("Hey! I'm Dana and I fight fires", "Dana"),
    ("My name is Ravi.", "Ravi"),
    ("I'm Ravi, 34, a bike mechanic", "Ravi"),
    ("我叫小王，住在成都。", "小王"),
    ("你好，我叫陈晨，住在广州", "陈晨"),
    # not a name
    ("I'm Sorry, I forgot", None),
    ("I'm tired.", None),
    ("I'm going to Paris", None),
    ("I'm Italian, from Rome", None),
    ("Yesterday I'm told Bob, my friend, called", None),
    ("我是程序员", None),
])
def test_stated_name(text, name):
    found = stated_name(text)
    assert (found[0] if found else None) == name
    assert found is None or found[1] == ("zh" if "我叫" in text else "en")


@pytest.mark.parametrize("text,memory", [
    ("Bonjour, j'ai 29 ans et j'habite à Lyon.", "A 29 ans"), ("Tengo 34 años.", "Tiene 34 años"),
    ("Ich bin 41 Jahre alt.", "Ist 41 Jahre alt"), ("Ho 25 anni.", "Ha 25 anni"),
    ("Tenho 52 anos.", "Tem 52 anos"), ("私は29歳です。", "29歳"), ("저는 29살이에요.", "29살"),
    # not the speaker's age
    ("Ich bin 30 Minuten gelaufen.", None), ("Ich bin 80 kg schwer.", None),
    ("J'ai 3 enfants.", None), ("Mon fils a 5 ans.", None), ("Ich bin 1990 geboren.", None),
])
def test_an_age_in_other_languages_is_one_fact_in_that_language(text, memory):
    got = [c.text for c in stated_facts([cand("Hat 29 Jahre", "age")], text, "xx") if c.topic == "age"]
    assert got == ([memory] if memory else ["Hat 29 Jahre"])


@pytest.mark.parametrize("text,name,lang,memory", [
    ("Bonjour, je m'appelle Claire, j'habite à Lyon et je suis infirmière.", "Claire", "fr", "S'appelle Claire"),
    ("Je suis Marie.", "Marie", "fr", "S'appelle Marie"),
    ("Hola, soy Diego. Vivo en Madrid y trabajo como profesor.", "Diego", "es", "Se llama Diego"),
    ("Me llamo Lucía y vivo en Sevilla.", "Lucía", "es", "Se llama Lucía"),
    ("Hallo, ich heiße Jonas, ich wohne in Berlin.", "Jonas", "de", "Heißt Jonas"),
    ("Ciao, mi chiamo Luca e vivo a Roma.", "Luca", "it", "Si chiama Luca"),
    ("Olá, sou Ana e moro em Lisboa.", "Ana", "pt", "Chama-se Ana"),
    ("こんにちは、私の名前は田中です。東京に住んでいます。", "田中", "ja", "名前は田中"),
    ("제 이름은 민수입니다. 서울에 살아요.", "민수", "ko", "이름은 민수"),
    # not a name: a job, a diet, a mood, a German noun, Japanese "Xです"
    ("Je suis infirmière.", None, None, None),
    ("Soy vegetariano.", None, None, None),
    ("Sono stanco, vivo a Roma.", None, None, None),
    ("Ich bin Ingenieur.", None, None, None),
    ("Soy Profesor de matemáticas en Madrid.", None, None, None),
    ("会社員です。", None, None, None),
])
def test_a_name_in_other_languages_is_kept_in_that_language(text, name, lang, memory):
    found = stated_name(text)
    assert found == ((name, lang) if name else None)
    got = [c.text for c in stated_facts([], text, lang or "en") if c.topic == "name"]
    assert got == ([memory] if memory else [])


@pytest.mark.parametrize("text,place", [
    ("I just moved to Singapore for a new job at a law firm here.", "Singapore"),
    ("We relocated to Portland over the summer.", "Portland"),
    ("We've just moved back to Leeds", "Leeds"),
    ("I have moved to New York City", "New York City"),
    ("Actually I moved to Lyon last week.", "Lyon"),
    # a sentence's full stop is not part of the place ("Moved to Lyon. I" was stored)
    ("I moved to Lyon. I like tea.", "Lyon"),
    ("We moved to St. Louis in May.", "St. Louis"),
    ("我们全家搬去深圳了，我也调到了深圳的分行。", "深圳"),
    ("我上个月搬到北京了，现在在北京工作。", "北京"),
    ("去年年底我回老家西安了，现在在一家面馆掌勺。", "西安"),
    ("我们在苏州安家了，我也在这边的学校继续教英语。", "苏州"),
    ("我从南京搬到了上海", "上海"),
    ("上个月我带着豆豆搬到重庆了", "重庆"),
    # someone else moved, or no place
    ("My sister moved to Paris.", None),
    ("我妈搬到了福州", None),
    ("I moved to a new flat", None),
    ("我搬家了", None),
    ("I moved here in May", None),
    ("I moved to September's schedule", None),
])
def test_moved_to(text, place):
    assert moved_to(text) == place


def test_a_dropped_name_and_move_are_added_only_when_missing():
    got = stated_facts([cand("Works at a law firm here", "workplace")],
                       "I'm Wei. I just moved to Singapore for a job at a law firm.", "en")
    assert [(c.text, c.topic) for c in got] == [("Works at a law firm here", "workplace"),
                                                ("Name is Wei", "name"), ("Moved to Singapore", "home")]
    kept = [cand("Name is Wei", "name"), cand("Moved to Singapore last week", "home")]
    assert stated_facts(kept, "I'm Wei. I moved to Singapore last week.", "en") == kept
    zh = atomize([cand("调到了深圳的分行", "workplace")], "我叫陈晨。我们全家搬去深圳了。", "zh")
    # 深圳 is named, but as a workplace: the move itself is added
    assert [c.text for c in zh] == ["调到了深圳的分行", "名字是陈晨", "搬到深圳"]


def test_a_whole_family_move_is_the_users_home():
    fixed = atomize([cand("全家搬去深圳了", "family"), cand("父母搬到了福州", "family")], "…", "zh")
    assert [c.topic for c in fixed] == ["home", "family"]


def test_an_employer_and_a_city_in_one_job_are_three_facts():
    pieces = atomize([cand("Works as a software engineer at Google in Zurich", "job")],
                     "I'm a software engineer at Google in Zurich.", "en")
    assert [(c.text, c.topic) for c in pieces] == [("Works as a software engineer", "job"),
                                                   ("Works at Google", "workplace"),
                                                   ("Works in Zurich", "workplace")]


@pytest.mark.parametrize("topic,target,ok", [
    ("home", ["home"], True),
    ("home", ["pet"], False),  # "Momo and I are based in Munich" vs "Has a cat named Momo"
    ("pet", ["home"], False),
    ("workplace", ["job"], True),  # "Joined Spotify" may replace "Works as an engineer at Google"
    ("education", ["job"], True),
    ("like", ["habit"], True),  # many-valued on both sides: the LLM decides
    ("home", [], True),  # a memory stored before topics existed
    (None, ["name"], True),
])
def test_same_subject(topic, target, ok):
    assert same_subject(topic, target) is ok


def _rec(text, topic, id_):
    return MemoryRecord(id=id_, user_id="u", text=text, type="profile", tags=[topic])


def test_a_restated_memory_is_not_rewritten_but_a_new_value_is_kept():
    zurich = _rec("Works in Zurich", "workplace", "z")
    emb = np.zeros(4, dtype=np.float32)
    decisions = [Decision(cand("Works in Zurich", "workplace"), emb, "NONE", zurich, "Works in Zurich", "exact"),
                 Decision(cand("Joined Spotify", "workplace"), emb, "UPDATE", zurich, "Joined Spotify", "llm"),
                 Decision(cand("Still in Zurich", "workplace"), emb, "UPDATE", zurich, "Still in Zurich", "llm")]
    out = one_change_per_memory(decisions)
    assert [(d.action, d.target.id if d.target else None) for d in out] == \
        [("NONE", "z"), ("ADD", None), ("NONE", "z")]  # "still" adds no value


def test_a_home_said_to_be_current_replaces_the_stored_one_without_a_reconciliation_call(mem):  # noqa: F811
    """The extraction call, then only the second opinion (memory.write.confirm) on the change."""
    with _with_facts({"Berlin": [{"text": "Lives in Berlin", "topic": "home"}],
                      "Munich": [{"text": "Based in Munich", "topic": "home"}]}):
        mem.add("I live in Berlin.", "jonas")
        n = len(mem.llm_server.requests)
        changes = mem.add("I'm based in Munich these days.", "jonas")
    asked = [system_text(r.body) for r in mem.llm_server.requests[n:]]
    assert len(asked) == 2 and "You extract memories" in asked[0]
    assert "You check a user's memory list" in asked[1]
    assert [(c.event, c.text, c.old_text) for c in changes] == [("UPDATE", "Based in Munich", "Lives in Berlin")]
    assert texts(mem, "jonas") == ["Based in Munich"]


def test_a_latin_name_said_in_chinese_is_stored_in_chinese():
    got = stated_facts([], "Hi! 我叫Leo，在东京读研究生。", "zh")
    assert [(c.text, c.topic) for c in got] == [("名字是 Leo", "name")]


@pytest.mark.parametrize("text,told", [
    ("Oh and I'm learning piano on my own, like I told you.", True),
    ("As I said, I live in Lyon", True),
    ("I've told you before, I hate coffee", True),
    ("我之前说过，我是教语文的，在一所小学。", True),
    ("对了 I'm a data engineer at Google，我说过吧。", True),
    ("我就住在成都啊，之前跟你说过的。", True),
    ("I said no to the offer", False),
    ("I told you about my sister", False),
    ("I mentioned it to my boss", False),
    ("我妈说过我小时候很调皮", False),
])
def test_says_already_told(text, told):
    from memory.write.intents import says_already_told
    assert says_already_told(text) is told


def test_a_repeat_keeps_the_stored_wording_and_adds_only_what_is_new(mem):  # noqa: F811
    with _with_facts({"I am learning": [{"text": "Learning piano", "topic": "habit"}],
                      "told you": [{"text": "Learning piano on my own", "topic": "habit"},
                                   {"text": "Has a cat named Tofu", "topic": "pet"}]}):
        mem.add("I am learning piano.", "sofia")
        changes = mem.add("Oh I'm learning piano on my own, like I told you. And I adopted Tofu, a kitten.",
                          "sofia")
    assert [(c.event, c.text) for c in changes] == [("NONE", "Learning piano on my own"),
                                                    ("ADD", "Has a cat named Tofu")]
    assert texts(mem, "sofia") == ["Has a cat named Tofu", "Learning piano"]


def test_a_school_never_replaces_the_city_of_a_workplace():
    from memory.write.reconcile import may_replace
    city = _rec("在厦门工作", "workplace", "c")
    assert not may_replace(cand("在一所小学工作", "workplace"), city)
    assert may_replace(cand("在福州工作", "workplace"), city)
    assert may_replace(cand("Joined Spotify", "workplace"), _rec("Works at Google", "workplace", "g"))
    assert not may_replace(cand("Works in Munich", "workplace"), _rec("Works at Google", "workplace", "g"))
    assert not may_replace(cand("妈妈在福州工作", "workplace"), city)


def test_a_phone_number_labelled_home_never_replaces_the_home():
    fixed = atomize([cand("Mobile number is +44 7400 123456", "home"), cand("手机号码是13800000000", "job"),
                     cand("Lives in Wellington", "home")], "…", "en")
    assert [c.topic for c in fixed] == ["other", "other", "home"]


@pytest.mark.parametrize("text,city", [
    ("我跳槽到上海的一家私立医院了，还是做护士。", "上海"),
    ("公司把我外派到新加坡了，要待两年", "新加坡"),
    ("我也调到了深圳的分行", "深圳"),
    ("我换了工作，现在在一家游戏公司做策划", None),
    ("我哥哥调到了深圳", None),
])
def test_works_in_city(text, city):
    from memory.write.stated import works_in_city
    assert works_in_city(text) == city


def test_a_job_moved_to_another_city_becomes_a_workplace_city():
    got = stated_facts([cand("跳槽到上海的一家私立医院了", "workplace")], "我跳槽到上海的一家私立医院了，还是做护士。", "zh")
    assert [(c.text, c.topic) for c in got][-1] == ("在上海工作", "workplace")
