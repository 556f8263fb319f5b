"""Stated facts: what a user says in a fixed form (a name, an age, a move, a Chinese
"在<地方>做<职业>" clause) is never lost when the small model drops it — LLM-free.

The 1.5B default model keeps the salient part of a message with several facts and drops
the rest: "I'm Wei, 我在北京做律师" stores the job but not the name; "I just moved to
Singapore for a new job at a law firm" stores the law firm but not the move; "Hi, I'm Sam,
I'm 29 and …" loses the age or stores "Turned 30" as an event. Each rule here reads the
user's own words, and its fact is added only when no candidate of the turn already holds
it. A stated age replaces the model's own age items (one canonical ``age`` fact: "Is 29
years old" / "29岁"), so reconciliation can replace the old age without an LLM call.

English and Chinese patterns (the product's languages); a name and an age are also read
in French, Spanish, German, Italian, Portuguese, Japanese and Korean; other facts in
other languages pass through unchanged. ``stated_facts`` is the one entry point (``memory.write.atomic.atomize``).
"""
from __future__ import annotations

import re

import pangu

from memory.write import topics
from memory.write.extract import Candidate
from memory.write.cessation import overlaps, replaced_by
from memory.write.grounding import FUNCTION_WORDS, content_tokens, mentions_someone_else
from memory.text.language import has_cjk
from memory.text.fulltext import cut_words, tag_words

#: a place name in English: up to three capitalised words ("Boston", "New York City")
_PLACE_WORD = r"[A-Z][\w'’-]*(?:\.(?=\w)[\w'’-]*)*"  # "Lyon", "D.C" — a final "." ends the sentence
PLACE = rf"(?:(?:St|Mt|Ft)\.\s+)?{_PLACE_WORD}(?:\s+{_PLACE_WORD}){{0,2}}"

_AGE_EN = re.compile(
    r"\bI(?:'m|’m| am)\s+(?:now\s+)?(?P<n>\d{1,3})(?=\s*(?:years?[\s-]+old\b|y/?o\b|[,.!;)]|\s+and\b|\s+now\b|$))"
    r"|\bI(?:'ve| have)?\s+(?:just\s+)?turned\s+(?P<t>\d{1,3})\b", re.I)
_AGE_ZH = re.compile(r"(?:我|^|[，,。；;\s])(?:今年|现在|已经|刚)?(?:满|刚满)?(?P<n>\d{1,3})(?:周)?岁(?!的)")
#: "I'm Ravi, 34, a bike mechanic": an age in apposition to the speaker's name
_AGE_APPOSITION = re.compile(r"\bI(?:'m|’m| am)\s+[A-Z][\w'-]+,\s*(?P<n>\d{1,2})\s*(?=[,.;!]|\s+and\b|$)")


#: the speaker's age in other languages, with the memory text in that language
_AGE_OTHER = {
    "fr": (re.compile(r"\bj['’]ai\s+(?P<n>\d{1,3})\s+ans\b", re.I), "A {} ans"),
    "es": (re.compile(r"\b(?:tengo|cumplí)\s+(?P<n>\d{1,3})\s+años\b", re.I), "Tiene {} años"),
    "de": (re.compile(r"\bich\s+bin\s+(?:jetzt\s+)?(?P<n>\d{1,3})(?=\s+jahre\b|\s*(?:[,.!;]|$|\s+und\b))",
                      re.I), "Ist {} Jahre alt"),
    "it": (re.compile(r"\bho\s+(?P<n>\d{1,3})\s+anni\b", re.I), "Ha {} anni"),
    "pt": (re.compile(r"\btenho\s+(?P<n>\d{1,3})\s+anos\b", re.I), "Tem {} anos"),
    "ja": (re.compile(r"(?:私は|僕は|^|[、。\s])(?P<n>\d{1,3})歳(?:です|だ|になりました)"), "{}歳"),
    "ko": (re.compile(r"(?:저는|나는|^|[,.\s])\s*(?P<n>\d{1,3})\s*살(?:이에요|입니다|이야|예요)"), "{}살"),
}


def stated_age(text: str) -> int | None:
    """The age the user states about themselves in ``text`` ("I'm 29", "I am 41 years
    old", "I just turned 30", "I'm Ravi, 34, …", "我今年29岁", "我叫唐欣，34岁", "j'ai
    29 ans", "tengo 29 años", "29歳です"), or None; ages outside 1..120 are ignored, and
    "5岁的儿子" is someone else's."""
    found = _stated_age(text)
    return found[0] if found else None


def _stated_age(text: str) -> tuple[int, str] | None:
    """``(age, language code)`` of :func:`stated_age`, or None."""
    for rx, lang in ((_AGE_EN, "en"), (_AGE_APPOSITION, "en"), (_AGE_ZH, "zh")):
        m = rx.search(text)
        if m:
            n = int(m.group("t") if "t" in rx.groupindex and m.group("t") else m.group("n"))
            if 1 <= n <= 120:
                return n, lang
    for lang, (rx, _) in _AGE_OTHER.items():
        m = rx.search(text)
        if m and 1 <= int(m.group("n")) <= 120:
            return int(m.group("n")), lang
    return None


def age_candidate(text: str, lang: str) -> Candidate | None:
    """An ``age`` Candidate for the age stated in the user's ``text`` ("Is 29 years
    old" / "29岁" by ``lang``, an ISO 639-1 code; "A 29 ans", "Tiene 29 años", "29歳" …
    when said in one of the other languages), or None when no age is stated."""
    found = _stated_age(text)
    if found is None:
        return None
    n, said_in = found
    if said_in in _AGE_OTHER:
        shown = _AGE_OTHER[said_in][1].format(n)
    else:
        shown = f"{n}岁" if lang == "zh" else f"Is {n} years old"
    age = topics.get("age")
    return Candidate(text=shown, type=age.type, importance=age.importance, tags=["age"], topic="age")


#: "Hi, I'm Wei, …", "Hey! I'm Dana and …", "My name is Ravi.": a capitalised name at the
#: start of the message (after a greeting), followed by a clause boundary
_NAME_EN = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|greetings)(?:\s+there)?\s*[,!.]*\s*)?"
    r"(?:I(?:'m|’m| am)|my name(?:'s| is))\s+(?P<name>[A-Z][a-z'’-]{1,20})"
    r"(?=\s*(?:[,.!;—–-]|\s+and\b|\s+from\b|$))", re.I)
#: "我叫小王", "我的名字是陈晨"
_NAME_ZH = re.compile(r"(?:^|[，,。！!\s])(?:你好|嗨|大家好)?[，,！!\s]*(?:我叫|我的名字(?:是|叫))"
                      r"(?P<name>[\u4e00-\u9fff]{2,3}?|[A-Z][a-z'’-]{1,20})(?=[，,。！!；;\s]|$)")
#: words that follow "I'm" but are not names ("I'm Sorry, …", "I'm Back!", "I'm Italian")
_NOT_NAME = frozenset("""sorry fine good great ok okay back here home done tired happy sad glad
sure new just so not really very also still now busy free ready late early excited confused
afraid bored hungry sick well alright vegan vegetarian italian french german spanish chinese
japanese korean american british english canadian australian indian brazilian mexican russian
polish dutch swedish norwegian danish finnish irish scottish welsh greek turkish swiss austrian
belgian portuguese vietnamese thai filipino egyptian nigerian muslim jewish buddhist hindu
catholic""".split())


#: other languages, each with the phrase that names the speaker and the memory text
#: written in that language. Only unambiguous phrases: "soy/sono/sou/je suis" + a
#: capitalised word only at the start and before a clause boundary (these languages
#: write nationalities and jobs in lower case); never German "ich bin" (every noun is
#: capitalised) or Japanese "Xです" (a job).
_NAME_LATIN = r"(?P<name>[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'’-]{1,20})"
_INTRO_END = r"(?=\s*(?:[,.!;—–-]|\s+(?:et|y|e|und)\b|$))"
_GREETING = (r"^(?:(?:bonjour|salut|coucou|hola|buenos días|buenas|hallo|guten tag|servus|moin|"
             r"ciao|buongiorno|olá|oi|bom dia)\s*[,!.]*\s*)?")
_NAME_OTHER = [
    ("fr", re.compile(_GREETING + r"(?:je m['’]appelle|mon (?:nom|prénom) (?:est|c['’]est)|moi,? c['’]est)\s+"
                      + _NAME_LATIN, re.I), "S'appelle {}"),
    ("fr", re.compile(_GREETING + r"je suis\s+" + _NAME_LATIN + _INTRO_END, re.I), "S'appelle {}"),
    ("es", re.compile(_GREETING + r"(?:me llamo|mi nombre es)\s+" + _NAME_LATIN, re.I), "Se llama {}"),
    ("es", re.compile(_GREETING + r"(?:yo )?soy\s+" + _NAME_LATIN + _INTRO_END, re.I), "Se llama {}"),
    ("de", re.compile(_GREETING + r"(?:ich hei(?:ß|ss)e|mein name ist)\s+" + _NAME_LATIN, re.I), "Heißt {}"),
    ("it", re.compile(_GREETING + r"(?:mi chiamo|il mio nome è|(?:io )?sono)\s+" + _NAME_LATIN + _INTRO_END,
                      re.I), "Si chiama {}"),
    ("pt", re.compile(_GREETING + r"(?:me chamo|chamo-me|meu nome é|o meu nome é|(?:eu )?sou)\s+" + _NAME_LATIN
                      + _INTRO_END, re.I),
     "Chama-se {}"),
    ("ja", re.compile(r"(?:^|[、。！\s])(?:私|わたし|僕|俺)?の?名前は(?P<name>[\u4e00-\u9fff\u3040-\u30ff]{1,8}?)"
                      r"(?:です|だ|と申します|といいます)|(?:^|[、。！\s])(?:私は|わたしは)?"
                      r"(?P<name2>[\u4e00-\u9fff\u3040-\u30ff]{1,8}?)(?:と申します|といいます)"), "名前は{}"),
    ("ko", re.compile(r"(?:제|내) 이름은\s*(?P<name>[\uac00-\ud7af]{1,5}?)(?:입니다|이에요|예요|이야|야|이고|[,.!\s]|$)"),
     "이름은 {}"),
]


def stated_name(text: str) -> tuple[str, str] | None:
    """``(name, language)``: the name the user introduces themselves with at the start
    of ``text`` and the ISO 639-1 code of the sentence it was said in ("Hi, I'm Wei, …" →
    ("Wei", "en"), "我叫Leo，…" → ("Leo", "zh"), "Bonjour, je m'appelle Claire" →
    ("Claire", "fr"); also Spanish, German, Italian, Portuguese, Japanese and Korean
    by their unambiguous phrases), or None. English names must be capitalised and are
    checked against words that follow "I'm" without being names ("I'm Sorry, …",
    "I'm Italian")."""
    text = text.strip()
    m = _NAME_EN.match(text)
    if m and m["name"][0].isupper() and m["name"].casefold() not in _NOT_NAME:
        return m["name"], "en"
    m = _NAME_ZH.search(text)
    if m:
        return m["name"], "zh"
    for lang, rx, _ in _NAME_OTHER:
        m = rx.search(text)
        if m:
            name = m.groupdict().get("name") or m.groupdict().get("name2")
            if name and name.casefold() not in _NOT_NAME and (lang in ("ja", "ko") or name[0].isupper()):
                return name, lang
    return None


_NAME_TEXT = {lang: template for lang, _, template in _NAME_OTHER}


def name_candidate(text: str, candidates: list[Candidate]) -> Candidate | None:
    """A ``name`` Candidate in the language it was said in ("Name is Wei" / "名字是小王",
    "名字是Leo" when said in Chinese, "S'appelle Claire", "Se llama Diego") for the name stated in the user's ``text`` when no candidate already holds
    it, else None."""
    found = stated_name(text)
    if found is None or any(found[0].casefold() in c.text.casefold() for c in candidates):
        return None
    name, lang = found
    template = "名字是{}" if lang == "zh" else _NAME_TEXT.get(lang, "Name is {}")
    return _piece(template.format(name), "name")


_ZH_CLAUSE = re.compile(r"[，,。！!？?；;\n]")
_ZH_WORK_VERBS = ("做", "当", "担任")


def dropped_work_facts(candidates: list[Candidate], user_text: str) -> list[Candidate]:
    """Chinese "在<地方>[…]做/当<职业>" clauses of the user's own (jieba-segmented:
    "在武汉一家银行做客户经理", "在石家庄做兽医") whose place or job no candidate
    mentions: the 1.5B model often keeps one of the two and drops the other. Returns
    the missing pieces ("在武汉工作" workplace, "做客户经理" job); [] for other text."""
    said = " ".join(c.text for c in candidates)
    out: list[Candidate] = []
    for clause in _ZH_CLAUSE.split(user_text):
        if "在" not in clause or not any(v in clause for v in _ZH_WORK_VERBS) \
                or mentions_someone_else(clause):
            continue
        words = cut_words(clause)
        if "在" not in words:
            continue
        i = words.index("在")
        verb = next((j for j in range(i + 2, min(i + 6, len(words))) if words[j] in _ZH_WORK_VERBS), None)
        place = words[i + 1] if i + 1 < len(words) else ""
        if verb is None or len(place) < 2 or not re.fullmatch(r"[\u4e00-\u9fff]+", place):
            continue
        job = "".join(words[verb + 1:]).strip()
        if place not in said and not place.endswith(("大学", "学院", "学校")):
            out.append(_piece(f"在{place}工作", "workplace"))
        if 2 <= len(job) <= 10 and re.fullmatch(r"[\u4e00-\u9fff]+", job) and job not in said:
            out.append(_piece(f"{words[verb]}{job}", "job"))
    return out


def _piece(text: str, topic: str) -> Candidate:
    t = topics.get(topic)
    # "名字是Leo" -> "名字是 Leo": the CJK/Latin spacing extraction gives the model's items
    return Candidate(text=pangu.space_text(text), type=t.type, importance=t.importance,
                     tags=[topic], topic=topic)


#: "I just moved to Singapore", "We've relocated back to Leeds": the speaker (I / we) moved
_MOVED_TO_EN = re.compile(
    rf"\b(?:I|[Ww]e)(?:'ve|’ve| have| had)?\s+(?:just\s+|recently\s+|finally\s+|also\s+)*"
    rf"(?:moved|relocated)\s+(?:back\s+)?to\s+(?P<place>{PLACE})")
#: Chinese verbs of a move (the place is the ``ns`` word next to them)
_MOVE_VERBS_ZH = ("搬", "迁到", "迁往", "迁居", "回老家", "回到", "定居", "安家", "落户")
#: a Chinese memory text that says the user moved (the one list ``memory.write.moves`` and
#: ``memory.write.atomic`` use too): "搬去了厦门", "回老家西安了", "在苏州安家了"
MOVED_ZH = r"搬(?:去|到|回|来|家)|迁(?:居|往|到)|回(?:到)?老家|定居|安家|落户"
#: ... and of a job that moved to another city
_WORK_MOVE_VERBS_ZH = ("跳槽", "调到", "调去", "外派", "派到", "派驻", "被派")
_CLAUSE = re.compile(r"[，,。！!？?；;\n—–]|\s-\s")
#: capitalised words that are times, not places ("moved to … in September")
NOT_PLACE = re.compile(r"^(january|february|march|april|may|june|july|august|september|"
                        r"october|november|december|monday|tuesday|wednesday|thursday|friday|"
                        r"saturday|sunday|spring|summer|autumn|fall|winter|christmas|easter)\b", re.I)


def zh_place(clause: str, verbs: tuple[str, ...]) -> str | None:
    """The place name (jieba part of speech ``ns``) a Chinese ``clause`` names with one of
    ``verbs``: the first after the verb ("我从南京搬到了上海" → "上海"), else the last
    before it ("我们在苏州安家了" → "苏州"); None without a verb or a place."""
    if not any(v in clause for v in verbs):
        return None
    words = tag_words(clause)
    at = next((i for i, (w, _) in enumerate(words) if any(v in w for v in verbs)), None)
    if at is None:  # a verb jieba cut in two ("派" + "到")
        pairs = [w + nxt for (w, _), (nxt, _) in zip(words, words[1:])]
        at = next((i for i, w in enumerate(pairs) if any(v in w for v in verbs)), None)
    if at is None:
        return None
    places = [(i, w) for i, (w, f) in enumerate(words) if f == "ns" and not any(v in w for v in verbs)]
    after = [w for i, w in places if i > at]
    before = [w for i, w in places if i < at]
    return after[0] if after else (before[-1] if before else None)


def moved_to(text: str) -> str | None:
    """The place the speaker says they moved to ("I just moved to Singapore for a new
    job" → "Singapore", "我们全家搬去深圳了" → "深圳", "我回老家西安了" → "西安"), or None —
    also None when the clause is about someone else ("My sister moved to Paris",
    "我妈搬到了福州")."""
    for clause in _CLAUSE.split(text):
        if mentions_someone_else(clause):
            continue
        m = _MOVED_TO_EN.search(clause)
        if m and not NOT_PLACE.match(m["place"]):
            return m["place"]
        place = zh_place(clause, _MOVE_VERBS_ZH)
        if place:
            return place
    return None


def works_in_city(text: str) -> str | None:
    """The city a Chinese message says the speaker's work moved to ("我跳槽到上海的一家
    私立医院了" → "上海", "公司把我外派到新加坡了" → "新加坡"), or None."""
    for clause in _CLAUSE.split(text):
        if not mentions_someone_else(clause.replace("公司把我", "")):
            place = zh_place(clause, _WORK_MOVE_VERBS_ZH)
            if place:
                return place
    return None


_WORKS_IN_EN = re.compile(rf"^(?:Works|Working|Is working|Is based|Based)\s+in\s+(?P<place>{PLACE})\s*\.?$")
_WORKS_IN_ZH = re.compile(r"^(?:我)?(?:现在)?在(?P<place>(?![一二三两几某这那本])[\u4e00-\u9fff]{2,4}?)(?:工作|上班)。?$")


def city_of(text: str) -> str | None:
    """The city of a workplace memory that is only a city ("Works in Denver" → "Denver",
    "在西安工作" → "西安"), or None ("Works at Google", "在一所小学工作")."""
    m = _WORKS_IN_EN.match(text.strip()) or _WORKS_IN_ZH.match(text.strip())
    return m["place"] if m else None


def work_city_candidate(text: str, candidates: list[Candidate]) -> Candidate | None:
    """A ``workplace`` Candidate "在<城市>工作" for the city ``works_in_city`` finds when
    no candidate is already that city as a workplace, else None."""
    place = works_in_city(text)
    if place is None or any(city_of(c.text) == place for c in candidates):
        return None
    return _piece(f"在{place}工作", "workplace")


def move_candidate(text: str, candidates: list[Candidate]) -> Candidate | None:
    """A ``home`` Candidate ("Moved to Singapore" / "搬到深圳") for the move stated in the
    user's ``text`` when no ``home`` candidate names the new place, else None."""
    place = moved_to(text)
    if place is None or any(place.casefold() in c.text.casefold() for c in candidates
                            if c.topic == "home"):
        return None
    return _piece(f"搬到{place}" if has_cjk(place[:1]) else f"Moved to {place}", "home")


def new_habit_candidates(text: str, candidates: list[Candidate]) -> list[Candidate]:
    """``habit`` Candidates for what replaced a stopped habit in the user's ``text``
    ("…, maintenant je fais du yoga" → "Maintenant je fais du yoga"; see
    ``cessation.replaced_by``) when no candidate shares a content word with it; the
    clause is kept in the user's words and language."""
    out = []
    for clause in replaced_by(text):
        words = content_tokens(clause) - FUNCTION_WORDS
        if words and not any(overlaps(words, content_tokens(c.text)) for c in candidates):
            out.append(_piece(clause[:1].upper() + clause[1:], "habit"))
    return out


def stated_facts(candidates: list[Candidate], user_text: str, lang: str) -> list[Candidate]:
    """``candidates`` with the facts stated in ``user_text`` that the model dropped added:
    a Chinese workplace or job (``dropped_work_facts``), a name (``name_candidate``), a
    move (``move_candidate``), a new habit (``new_habit_candidates``); and the stated age as one canonical ``age`` fact, replacing
    the model's own age items ("2026年 28 岁" → "28岁"). ``lang``: ISO 639-1 code of the
    message. Order kept; nothing is removed except age items."""
    out = list(candidates)
    if lang == "zh" or has_cjk(user_text):
        out.extend(dropped_work_facts(out, user_text))
    for found in (name_candidate(user_text, out), move_candidate(user_text, out),
                  work_city_candidate(user_text, out) if has_cjk(user_text) else None):
        if found is not None:
            out.append(found)
    out.extend(new_habit_candidates(user_text, out))
    age = age_candidate(user_text, lang)
    if age is not None:
        out = [c for c in out if c.topic != "age"] + [age]
    return out
