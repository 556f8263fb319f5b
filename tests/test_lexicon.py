"""The write path's lexicon (``memory/data/lexicon/*.json``, ``memory.text.lexicon``, issue 22).

* every language file parses and has the documented shape, and the README documents
  every kind;
* errors: a malformed file, a wrong language, an unknown kind or an empty folder raise
  ``LexiconError``;
* the modules that read it (``memory.search.owner``, ``memory.write.grounding``, ``memory.write.intents``,
  ``memory.text.dates_intl``) give the answers they gave when the words were lists in their
  code: the expected values below were computed with that code (commit c282664) before
  the words moved;
* ``memory.search.owner`` and ``memory.write.grounding`` read the same relation words: the cases that
  changed by that unification are pinned separately.
"""
from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from memory.text import dates, dates_intl, lexicon

from memory.write import grounding, intents

from memory.search import owner

FILES = sorted(lexicon.DIR.glob("*.json"))


def test_every_language_file_parses_with_the_documented_keys():
    assert {p.stem for p in FILES} >= {"en", "zh", "fr", "es", "de", "it", "pt", "ja", "ko"}
    for path in FILES:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["language"] == path.stem
        assert isinstance(data["spaced"], bool) and isinstance(data["pro_drop"], bool)
        for kind, value in data.items():
            if kind in ("language", "spaced", "pro_drop"):
                continue
            assert kind in lexicon.KINDS, (path.name, kind)
            assert lexicon._has_shape(lexicon.KINDS[kind][0], value), (path.name, kind)
    assert lexicon.languages() == tuple(p.stem for p in FILES)


def test_words_are_plain_lower_case_and_listed_once():
    for lang in lexicon.languages():
        for kind, (shape, _) in lexicon.KINDS.items():
            if shape not in ("words", "keyed"):
                continue
            raw = lexicon._load()[lang].get(kind, [])
            listed = [w for ws in raw.values() for w in ws] if isinstance(raw, dict) else raw
            assert len(listed) == len(set(listed)), (lang, kind)
            for w in listed:
                assert w == w.strip() and w == w.lower(), (lang, kind, w)


def test_relation_keys_are_one_vocabulary_across_languages():
    english = set(lexicon.relations(langs=["en"]))
    for lang in lexicon.languages():
        assert set(lexicon.relations(langs=[lang])) <= english, lang
    assert lexicon.keys(langs=["en", "zh", "ko"])["mum"] == "mother"
    assert lexicon.keys(langs=["zh"])["妈妈"] == lexicon.keys(langs=["ko"])["엄마"] == "mother"


def test_readme_documents_every_kind():
    readme = (lexicon.DIR / "README.md").read_text(encoding="utf-8")
    for kind in lexicon.KINDS:
        assert f"| `{kind}` |" in readme, kind


def test_accessors():
    assert lexicon.words("self_subject", ["en"]) == ["i", "i'm", "i've", "i'd", "i'll"]
    assert "je" in lexicon.speaker_words(["fr"]) and "我" in lexicon.speaker_words(iter(["zh"]))
    assert lexicon.words("self_subject", ["ko"]) == ["저", "나"]
    assert lexicon.words("relations", ["pt"])[:2] == ["irmã", "irmão"]
    assert lexicon.relations("short_relations", ["zh"]) == {"brother": {"zh": ["哥", "弟"]},
                                                            "sister": {"zh": ["姐", "妹"]}}
    assert lexicon.words("trivial", ["fr"]) == []  # a kind a language lacks is empty
    assert lexicon.spaced("de") and not lexicon.spaced("ja")
    assert lexicon.pro_drop("es") and not lexicon.pro_drop("fr")
    assert set(lexicon.having("relative_dates")) == {"fr", "es", "de", "it", "pt", "ja", "ko"}
    assert lexicon.table("relative_dates", "fr")["day"]["-1"] == ["hier"]
    with pytest.raises(KeyError):
        lexicon.table("date_format", "en")
    with pytest.raises(lexicon.LexiconError):
        lexicon.words("no_such_kind", ["en"])
    with pytest.raises(lexicon.LexiconError):
        lexicon.words("self_subject", ["xx"])
    with pytest.raises(lexicon.LexiconError):
        lexicon.words("relative_dates")


def test_alternation_escapes_and_puts_the_longest_first():
    assert lexicon.alternation(["妈", "妈妈", "co-worker", "kid", "kids", "kid"]) == r"co\-worker|kids|kid|妈妈|妈"
    assert re.fullmatch(rf"(?:{lexicon.alternation(['a.b'])})", "axb") is None
    assert re.search(lexicon.alternation([]), "anything") is None


@pytest.fixture
def lexicon_dir(tmp_path, monkeypatch):
    """An empty folder read as the lexicon; the real one is read again afterwards."""
    monkeypatch.setattr(lexicon, "DIR", tmp_path)
    lexicon._load.cache_clear()
    yield tmp_path
    lexicon._load.cache_clear()


GOOD = {"language": "xx", "spaced": True, "pro_drop": False, "trivial": ["ok"]}


@pytest.mark.parametrize("name, content, message", [
    ("xx.json", "{not json", "xx.json"),
    ("xx.json", json.dumps({**GOOD, "language": "yy"}), "'language' must be 'xx'"),
    ("xx.json", json.dumps({k: v for k, v in GOOD.items() if k != "pro_drop"}), "'pro_drop'"),
    ("xx.json", json.dumps({**GOOD, "trivia": ["ok"]}), "unknown kind 'trivia'"),
    ("xx.json", json.dumps({**GOOD, "trivial": "ok"}), "'trivial' is not of shape 'words'"),
    ("xx.json", json.dumps({**GOOD, "trivial": ["ok", ""]}), "'trivial' is not of shape 'words'"),
    ("xx.json", json.dumps({**GOOD, "relations": {"mother": "mère"}}), "'relations'"),
    ("xx.json", json.dumps({**GOOD, "relative_dates": {"days": {"-1": ["hier"]}}}), "'relative_dates'"),
    ("xx.json", json.dumps({**GOOD, "date_format": {"day": "le {}"}}), "'date_format'"),
])
def test_a_malformed_file_raises_a_clear_error(lexicon_dir, name, content, message):
    (lexicon_dir / name).write_text(content, encoding="utf-8")
    with pytest.raises(lexicon.LexiconError, match=re.escape(message)):
        lexicon.words("trivial", ["xx"])


def test_an_empty_folder_raises(lexicon_dir):
    with pytest.raises(lexicon.LexiconError, match="no lexicon files"):
        lexicon.languages()


def test_a_good_file_reads(lexicon_dir):
    (lexicon_dir / "xx.json").write_text(json.dumps(GOOD), encoding="utf-8")
    assert lexicon.words("trivial") == ["ok"]


# --- the same answers as the code before the words moved (computed at c282664) -------

OWNER_OF = [
    ("My daughter is allergic to cats", "daughter"), ("What am I allergic to?", "self"),
    ("我女儿对猫过敏", "daughter"), ("我的好朋友住在上海", "friend"), ("Sister works as a nurse", "sister"),
    ("哥哥是医生", "brother"), ("my wife and I moved", "self"), ("How much do I send my parents?", "self"),
    ("我每个月给父母寄钱", "self"), ("Went hiking with my sister", "self"),
    ("Where does my mother live?", "mother"), ("my friend's girlfriend is a doctor", "friend"),
    ("Bob: my sister lives in Rome", "sister"), ("Our older brother moved to Paris", "brother"),
    ("妈妈住在成都", "mother"), ("My fiancée lives in Lyon", "partner"), ("i went home with my mum", "self"),
    ("My doctor said to rest", "doctor"), ("Grandma's garden is big", "grandmother"), ("我老板很严格", "boss"),
    ("Teacher at Lincoln High", "teacher"),
]
FIRST_PERSON = [("What did Melanie's kids paint?", False), ("What am I allergic to?", True), ("我喜欢猫", True),
                ("im tired", False), ("Tell me a joke", True), ("I'll go", True), ("Mine is red", True)]


@pytest.mark.parametrize("text, expected", OWNER_OF)
def test_owner_of_as_before(text, expected):
    assert owner.owner_of(text) == expected


@pytest.mark.parametrize("text, expected", FIRST_PERSON)
def test_is_first_person_as_before(text, expected):
    assert owner.is_first_person(text) is expected


MENTIONS = [
    ("My sister lives in Berlin", True), ("she is an architect", True), ("I'm a doctor", False),
    ("我在长沙当幼儿园老师", False), ("Mia sorella vive a Torino", True), ("Vivo con mi hermana", False),
    ("姉は医者です", True), ("언니는 의사예요", True), ("I like cats", False), ("面向对象编程", False),
    ("他喜欢猫", True), ("Und meine Schwester wohnt in Berlin", True), ("The kids love the park", True),
]
ATTRIBUTE = [
    ("Works as an architect", "My sister lives in Berlin, she is an architect", "Sister works as an architect"),
    ("是一名牙医", "我哥哥是一名牙医", "哥哥是一名牙医"),
    ("Fa l'avvocata", "Mia sorella vive a Torino e fa l'avvocata", "Sorella fa l'avvocata"),
    ("Works as an architect", "I am an architect", None), ("Is a nurse", "He is a nurse", None),
    ("做客户经理", "我在武汉一家银行做客户经理", None), ("医者です", "姉は医者です", "姉は医者です"),
]


@pytest.mark.parametrize("text, expected", MENTIONS)
def test_mentions_someone_else_as_before(text, expected):
    assert grounding.mentions_someone_else(text) is expected


@pytest.mark.parametrize("candidate, source, expected", ATTRIBUTE)
def test_attribute_as_before(candidate, source, expected):
    assert grounding.attribute(candidate, source) == expected


def test_content_tokens_as_before():
    assert grounding.content_tokens("The user lives in Berlin and works as a nurse") == {"berlin", "nurs"}
    assert grounding.content_tokens("我喜欢在北京吃烤鸭") == set("京北吃喜欢烤鸭")
    assert grounding.content_tokens("Likes hiking on weekends") == {"hike", "weekend"}


LEARNABLE = [
    ("ok thanks", ""), ("I'm vegetarian. Can you recommend a restaurant?", "I'm vegetarian."),
    ("If I were rich I'd buy a boat", ""), ("Tell me a joke", ""),
    ("Help me plan my trip to Rome", "Help me plan my trip to Rome"), ("I'm Tom, what's my score?", "I'm Tom"),
    ("It's freezing today", ""), ("嗯嗯，好的", ""), ("要是我有钱就去环游世界", ""),
    ("我住在成都。你喜欢猫吗？", "我住在成都。"), ("帮我写一首诗", ""), ("Il fait froid aujourd'hui", ""),
    ("J'habite à Lyon", "J'habite à Lyon"), ("Hoy hace buen tiempo", ""), ("今日はいい天気ですね", ""),
    ("私は雨の日が好きです", "私は雨の日が好きです"), ("Si j'étais riche, j'achèterais un bateau", ""),
    ("Wenn ich reich wäre, würde ich reisen", ""), ("thank you so much", ""),
    ("Ich wohne in Köln", "Ich wohne in Köln"),
]
FORGET = [("forget that I like sushi", True), ("don't forget to call mom", False), ("别记这个", True),
          ("Oublie que j'habite à Lyon", True), ("忘れてください", True), ("잊어 줘", True), ("I forgot my keys", False)]
ALREADY = [("Oh and I'm learning piano, like I told you", True), ("我之前说过，我是教语文的", True),
           ("我妈说过要来", False), ("I said hi", False)]


@pytest.mark.parametrize("text, expected", LEARNABLE)
def test_learnable_text_as_before(text, expected):
    assert intents.learnable_text(text) == expected


@pytest.mark.parametrize("text, expected", FORGET)
def test_is_forget_request_as_before(text, expected):
    assert intents.is_forget_request(text) is expected


@pytest.mark.parametrize("text, expected", ALREADY)
def test_says_already_told_as_before(text, expected):
    assert intents.says_already_told(text) is expected


RESOLVED = [
    ("Déménagé à Marseille le mois dernier", "fr", "Déménagé à Marseille en octobre 2026"),
    ("先月大阪に引っ越した", "ja", "2026年10月大阪に引っ越した"),
    ("Letzte Woche bin ich umgezogen", "de", "in der Woche vom 16. November 2026 bin ich umgezogen"),
    ("Me mudé el año pasado", "es", "Me mudé en 2025"), ("l’anno scorso", "it", "nel 2025"),
    ("Mudei-me no mês passado", "pt", "Mudei-me em outubro de 2026"),
    ("지난 주에 이사했어요", "ko", "2026년 11월 16일 주에 이사했어요"),
    ("Je suis arrivé aujourd’hui", "fr", "Je suis arrivé le 27 novembre 2026"),
    ("Je suis arrivé l'an dernier", "fr", "Je suis arrivé l'an dernier"),  # not a phrase before either
    ("Vou amanhã", "pt", "Vou em 28 de novembro de 2026"),
]


@pytest.mark.parametrize("text, lang, expected", RESOLVED)
def test_relative_dates_as_before(text, lang, expected):
    assert dates_intl.resolve(text, date(2026, 11, 27), lang, dates._shift) == expected


def test_dates_cover_the_same_languages():
    assert dates_intl.LANGUAGES == {"fr", "es", "de", "it", "pt", "ja", "ko"}
    assert dates_intl.render(date(2026, 10, 7), "week", "ja") == "2026年10月5日の週"
    assert dates_intl.render(date(2026, 10, 7), "year", "ko") == "2026년"


# --- one set of relation words for memory.search.owner and memory.write.grounding -----------------

def test_owner_and_grounding_read_the_same_relation_words():
    roles = set(lexicon.words("roles"))
    for key, by in lexicon.relations(langs=["en", "zh"]).items():
        for lang, ws in by.items():
            for w in ws:
                text = f"My {w} lives in Berlin" if lang == "en" else f"我{w}住在上海"
                assert owner.owner_of(text) == key, text
                assert grounding.mentions_someone_else(text) is (w not in roles), text


@pytest.mark.parametrize("text, expected", [
    ("My sibling lives in Berlin", "sibling"),  # a grounding word, new to owner
    ("Where does my parent live?", "parents"),
    ("我哥是一名牙医", "brother"),  # grounding's 我哥/我妹, new to owner
    ("我妹住在上海", "sister"),
])
def test_owner_reads_grounding_relation_words(text, expected):
    assert owner.owner_of(text) == expected


@pytest.mark.parametrize("text", [
    "My teammate says the best book is Hamlet.", "My classmate speaks French", "我队友说最好的书是《哈姆雷特》。",
    "我太太怀孕了，预产期在十二月。", "我侄女去年上了中学。"])
def test_grounding_reads_owner_relation_words(text):
    assert grounding.mentions_someone_else(text)


def test_a_role_found_anywhere_is_not_someone_else():
    for text in ("I work as a teacher", "I'm a doctor", "我在长沙当幼儿园老师", "我在武汉一家银行做客户经理",
                 "面向对象编程"):
        assert not grounding.mentions_someone_else(text), text
    assert owner.owner_of("My doctor said to rest") == "doctor"


def test_a_one_character_relation_after_wo_is_someone_else():
    assert grounding.attribute("是一名牙医", "我妈是一名牙医") == "妈是一名牙医"
    assert owner.owner_of("妈是一名牙医") == "mother"


def test_the_lexicon_is_read_from_its_folder():
    assert lexicon.DIR == Path(lexicon.__file__).resolve().parent.parent / "data" / "lexicon"
    assert (lexicon.DIR / "en.json").is_file()
