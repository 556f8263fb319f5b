"""Write-path rules for languages beside English and Chinese, each found on the
seven-language probe (bench/data/memory_quality_probe_ml.json): Korean clauses joined by
"-고", a move in Korean replacing the home, weather talk in pro-drop languages, and the
new habit that a "no longer X, now Y" sentence states. Unit checks of the rules, then the
same through the public API (real SQLite file, real embedder, scripted LLM answers)."""
from __future__ import annotations

import pytest

from memory.write.atomic import atomize, is_move, split_korean
from memory.write.cessation import replaced_by
from memory.write.extract import Candidate
from memory.write.intents import is_weather_talk, learnable_text
from memory.write.moves import says_moved
from memory.write.stated import new_habit_candidates
from memory.types import MemoryRecord
from tests.fake_llm import system_text
from tests.scripted_memory import scripted_memory, texts


def cand(text, topic="other", **kw):
    return Candidate(text=text, topic=topic, tags=[topic], **kw)


@pytest.mark.parametrize("text,want", [
    ("서울에 살고 디자이너로 일해요", [("서울에 살다", "home"), ("디자이너로 일해요", "job")]),
    ("삼성에서 일하고 서울에 살고 고양이를 키워요",
     [("삼성에서 일하다", "workplace"), ("서울에 살다", "home"), ("고양이를 키워요", "other")]),
    ("저는 학생이고 커피를 좋아해요", [("저는 학생이다", "other"), ("커피를 좋아해요", "other")]),
    # "광고" (an advert) ends in 고 but has no argument before it; "친구하고" is "with a
    # friend", and "같이" after it is no argument: both stay whole
    ("광고 회사에서 일해요", [("광고 회사에서 일해요", "other")]),
    ("서울에서 친구하고 같이 살아요", [("서울에서 친구하고 같이 살아요", "other")]),
])
def test_korean_clauses_joined_by_go_are_split_with_their_own_topics(text, want):
    assert [(c.text, c.topic) for c in split_korean(cand(text))] == want


def test_a_split_korean_candidate_keeps_its_replaced_memory_on_one_piece():
    old = MemoryRecord(id="m1", user_id="u", text="디자이너로 일해요", type="profile", tags=["job"])
    pieces = split_korean(cand("부산에 살고 개발자로 일해요", "job", replaces=old))
    assert [(c.text, c.replaces is old) for c in pieces] == [("부산에 살다", False), ("개발자로 일해요", True)]


def test_korean_and_japanese_moves_are_moves():
    assert is_move("부산으로 이사했어요") and says_moved("부산으로 이사했어요")
    assert is_move("大阪に引っ越した") and says_moved("大阪に引っ越した")
    assert is_move("서울에 살다") and not says_moved("서울에 살다")
    assert not is_move("디자이너로 일해요")


def test_a_fragment_of_another_candidate_is_dropped_and_hands_over_its_target():
    old = MemoryRecord(id="m1", user_id="u", text="서울에 살다", type="profile", tags=["home"])
    out = atomize([cand("이사했어요", "home", replaces=old), cand("부산으로 이사했어요", "home")],
                  "지난달 부산으로 이사했어요.", "ko")
    assert [(c.text, c.replaces is old) for c in out] == [("부산으로 이사했어요", True)]
    out = atomize([cand("Moved", "home"), cand("Moved to Lyon", "home"), cand("Likes tea", "like")],
                  "I moved to Lyon. I like tea.", "en")
    assert [c.text for c in out] == ["Moved to Lyon", "Likes tea"]
    # whole words only in Latin text; characters in Chinese
    out = atomize([cand("Likes tea", "like"), cand("Likes teaching kids", "like")], "I like tea.", "en")
    assert [c.text for c in out] == ["Likes tea", "Likes teaching kids"]
    out = atomize([cand("喜欢猫", "like"), cand("很喜欢猫和狗", "like")], "我很喜欢猫和狗", "zh")
    assert [c.text for c in out] == ["很喜欢猫和狗"]


@pytest.mark.parametrize("text,talk", [
    ("今日はいい天気ですね。", True), ("날씨가 정말 좋네요.", True), ("Hoy hace buen tiempo.", True),
    ("Che bel tempo oggi!", True), ("今日は寒いですね。", True),
    # the speaker, a like or dislike, or a long sentence (a verb may name the speaker)
    ("私は雨の日が好きです。", False), ("寒いのが苦手です。", False), ("추운 날씨를 싫어해요.", False),
    ("저는 비 오는 날을 좋아해요.", False), ("Trabajo en casa cuando llueve mucho en invierno.", False),
    ("東京に住んでいます。", False),
])
def test_weather_talk_without_the_speaker_is_small_talk(text, talk):
    assert is_weather_talk(text) is talk
    assert (learnable_text(text) == "") is talk


def test_weather_talk_is_dropped_but_the_fact_beside_it_is_kept():
    assert learnable_text("先月、大阪に引っ越しました。今日は寒いですね。") == "先月、大阪に引っ越しました。"


@pytest.mark.parametrize("text,clauses", [
    ("Je ne joue plus au tennis, maintenant je fais du yoga.", ["maintenant je fais du yoga"]),
    ("Não bebo mais café, agora só chá.", ["agora só chá"]),
    ("Ya no como carne, ahora soy vegetariano.", ["ahora soy vegetariano"]),
    ("I quit smoking. Now I run every morning.", ["Now I run every morning"]),
    ("我不喝咖啡了，现在喝茶。", ["现在喝茶"]),
    # a refused stop, or no "now" clause after the stop
    ("I'm not gonna give up, now I work harder.", []),
    ("I don't drink coffee anymore, it keeps me awake.", []),
])
def test_what_replaced_a_stopped_habit(text, clauses):
    assert replaced_by(text) == clauses


def test_a_dropped_new_habit_is_added_only_when_no_candidate_states_it():
    said = "Je ne joue plus au tennis, maintenant je fais du yoga."
    added = new_habit_candidates(said, [cand("Je ne joue plus au tennis", "dislike")])
    assert [(c.text, c.topic, c.type) for c in added] == [("Maintenant je fais du yoga", "habit", "fact")]
    assert new_habit_candidates(said, [cand("Fait du yoga", "habit")]) == []
    # two shared CJK characters count as stating it, one ("喝") does not
    assert new_habit_candidates("我不喝咖啡了，现在喝茶。", [cand("现在喝茶")]) == []
    assert [c.text for c in new_habit_candidates("我不喝咖啡了，现在喝茶。", [cand("不喝咖啡")])] == ["现在喝茶"]


# ---- through the public API --------------------------------------------------------
FACTS = {
    "서울에 살고": [{"text": "이름은 민수입니다", "topic": "name"},
                {"text": "서울에 살고 디자이너로 일해요", "topic": "home"}],
    "부산으로": [{"text": "이사했어요", "topic": "home", "replaces": 1},
              {"text": "부산으로 이사했어요", "topic": "event"}],
    "j'adore le tennis": [{"text": "Adore le tennis", "topic": "like"}],
    "maintenant": [{"text": "Ne joue plus au tennis", "topic": "dislike"}],
    "天気": [{"text": "2026年11月27日はいい天気ですね", "topic": "other"}],
}


@pytest.fixture()
def mem(tmp_path):
    yield from scripted_memory(tmp_path, FACTS)


def test_a_korean_move_replaces_the_city_and_keeps_the_job(mem):
    mem.add("안녕하세요, 제 이름은 민수입니다. 서울에 살고 디자이너로 일해요.", "minsu")
    assert texts(mem, "minsu") == ["디자이너로 일해요", "서울에 살다", "이름은 민수입니다"]
    changes = mem.add("지난달 부산으로 이사했어요.", "minsu")
    assert texts(mem, "minsu") == ["디자이너로 일해요", "부산으로 이사했어요", "이름은 민수입니다"]
    moved = [c for c in changes if c.event == "UPDATE"]
    assert [(c.text, c.old_text) for c in moved] == [("부산으로 이사했어요", "서울에 살다")]
    assert [e.old_text for e in mem.history(moved[0].id, "minsu")][-1] == "서울에 살다"


def test_a_french_habit_change_keeps_the_new_habit(mem):
    mem.add("J'adore le tennis.", "claire")
    mem.add("Je ne joue plus au tennis, maintenant je fais du yoga.", "claire")
    assert texts(mem, "claire") == ["Maintenant je fais du yoga", "Ne joue plus au tennis"]


def test_japanese_weather_talk_costs_no_llm_call_and_stores_nothing(mem):
    mem.add("今日はいい天気ですね。", "tanaka")
    assert texts(mem, "tanaka") == []
    assert not [r for r in mem.llm_server.requests if "You extract memories" in system_text(r.body)]
