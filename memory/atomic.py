"""Atomic facts: candidates the small model combined are split, mis-labelled moves get
their topic, and an age the user states is never lost — all LLM-free.

Why: the extraction prompt asks for "Works as a data engineer" and "Works in Zurich" as
two items, but the 1.5B default model often writes one ("Is a firefighter in Denver",
"Teaches high-school history in Boston"). A combined memory breaks every later change:
a new job takes the city with it, a move keeps the old city inside the job. So a job or
workplace candidate of the form "<job> in <Place>" / "Works in <Place> as <job>" /
"在<地方>做<职业>" becomes a job fact and a "Works in <Place>" / "在<地方>工作" workplace
fact — the place piece only when the place is in the user's own words (a model copying
a KNOWN line must not re-state the old city).

The model also drops a bare age ("Hi, I'm Sam, I'm 29 and …") or stores "Turned 30" as
an event, so a stated age ("I'm 29", "I just turned 30", "我今年29岁") is added as an
``age`` fact when the model gave none; age has one current value, so reconciliation
replaces the old one without an LLM call.

English and Chinese patterns only (the product's languages); other languages pass
through unchanged.
"""
from __future__ import annotations

import re
from dataclasses import replace

from memory import topics
from memory.extraction import Candidate
from memory.grounding import mentions_someone_else
from memory.intents import normalize
from memory.textsearch import cut_words

#: a place name in English: up to three capitalised words ("Boston", "New York City")
PLACE = r"[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*){0,2}"
#: "Teaches high-school history in Boston", "Is a nurse in Paris, part-time"
_JOB_IN_PLACE = re.compile(rf"^(?P<job>.+?)\s+in\s+(?P<place>{PLACE})(?P<tail>\s*,.*)?$")
#: "Works in Shanghai as a product designer", "Works at Google as a data engineer"
_PLACE_AS_JOB = re.compile(rf"^(?:Works|Working|Is working|Based)\s+(?P<prep>in|at)\s+(?P<place>{PLACE})"
                           rf"\s*,?\s+as\s+(?P<job>.+)$")
#: "在西安做程序员", "在杭州当护士"
_ZH_PLACE_JOB = re.compile(r"^(?:我)?(?:现在)?在(?P<place>[\u4e00-\u9fff]{2,4}?)"
                           r"(?P<job>(?:做|当|担任|从事)[\u4e00-\u9fff\w]+)$")
#: a head that is only the scaffold of a place fact ("Works in Boston" is atomic already)
#: or an event ("Left teaching in September")
_BARE_HEAD = re.compile(r"^(works|working|lives|living|is based|based|is working|is)$"
                        r"|^(left|quit|stopped|started|starting|finished|retired|moved|joined|"
                        r"graduated|was|used to)\b", re.I)
#: capitalised words that are times, not places ("in September", "in Spring 2025")
_NOT_PLACE = re.compile(r"^(january|february|march|april|may|june|july|august|september|"
                        r"october|november|december|monday|tuesday|wednesday|thursday|friday|"
                        r"saturday|sunday|spring|summer|autumn|fall|winter|christmas|easter)\b", re.I)

_MOVE_EN = re.compile(r"^(?:(?:has |have |just |recently )*(?:moved|relocated|moving)\s+(?:back\s+)?to\b"
                      r"|now (?:lives|living) in\b|lives in\b|is living in\b)", re.I)
_MOVE_ZH = re.compile(r"搬(?:去|到|回|来)|迁(?:居|往)|住在|定居")

_AGE_EN = re.compile(
    r"\bI(?:'m|’m| am)\s+(?:now\s+)?(?P<n>\d{1,3})(?=\s*(?:years?[\s-]+old\b|y/?o\b|[,.!;)]|\s+and\b|\s+now\b|$))"
    r"|\bI(?:'ve| have)?\s+(?:just\s+)?turned\s+(?P<t>\d{1,3})\b", re.I)
_AGE_ZH = re.compile(r"(?:我|^|[，,。；;\s])(?:今年|现在|已经|刚)?(?:满|刚满)?(?P<n>\d{1,3})(?:周)?岁(?!的)")
#: "I'm Ravi, 34, a bike mechanic": an age in apposition to the speaker's name
_AGE_APPOSITION = re.compile(r"\bI(?:'m|’m| am)\s+[A-Z][\w'-]+,\s*(?P<n>\d{1,2})\s*(?=[,.;!]|\s+and\b|$)")


def split_combined(cand: Candidate, source: str) -> list[Candidate]:
    """Return ``[cand]``, or the job and the workplace fact ``cand`` combines (see the
    module docstring). ``source``: the user's own words; a place not in it is dropped
    (the job piece stays). Only job and workplace candidates are split; the job piece
    keeps ``cand.replaces``."""
    if cand.topic not in ("job", "workplace"):
        return [cand]
    text = cand.text.strip().rstrip(".。")
    job = place = None
    zh = False
    m = _PLACE_AS_JOB.match(text)
    prep = "in"
    if m:
        job, place, prep = "Works as " + m["job"], m["place"], m["prep"]
    elif (m := _JOB_IN_PLACE.match(text)) and not _BARE_HEAD.match(m["job"]):
        job, place = m["job"] + (m["tail"] or ""), m["place"]
    elif (m := _ZH_PLACE_JOB.match(text)):
        job, place, zh = m["job"], m["place"], True
    if not job or not place or _NOT_PLACE.match(place):
        return [cand]
    pieces = [replace(cand, text=job, topic="job", type=topics.get("job").type,
                      importance=topics.get("job").importance, tags=["job"])]
    if place.casefold() in source.casefold():
        work = topics.get("workplace")
        pieces.append(Candidate(text=f"在{place}工作" if zh else f"Works {prep} {place}",
                                type=work.type, importance=work.importance,
                                tags=["workplace"], topic="workplace",
                                saw_known=cand.saw_known))
    return pieces


def is_move(text: str) -> bool:
    """True when memory text ``text`` states where the user lives or moved to ("Moved to
    Portland", "Relocated to Lyon last week", "搬去了厦门", "住在成都")."""
    return bool(_MOVE_EN.search(text) or _MOVE_ZH.search(text))


def fix_topic(cand: Candidate) -> Candidate:
    """A move the model labelled ``event`` or ``other`` becomes topic ``home`` (one
    current value: it may then replace the stored home)."""
    if cand.topic in ("event", "other", "plan") and is_move(cand.text):
        home = topics.get("home")
        return replace(cand, topic="home", type=home.type, importance=home.importance,
                       tags=["home"] + [t for t in cand.tags if t != cand.topic])
    return cand


def stated_age(text: str) -> int | None:
    """The age the user states about themselves in ``text`` ("I'm 29", "I am 41 years
    old", "I just turned 30", "I'm Ravi, 34, …", "我今年29岁", "我叫唐欣，34岁"), or None;
    ages outside 1..120 are ignored, and "5岁的儿子" is someone else's."""
    for rx in (_AGE_EN, _AGE_APPOSITION, _AGE_ZH):
        m = rx.search(text)
        if m:
            n = int(m.group("t") if "t" in rx.groupindex and m.group("t") else m.group("n"))
            if 1 <= n <= 120:
                return n
    return None


def age_candidate(text: str, lang: str) -> Candidate | None:
    """An ``age`` Candidate for the age stated in the user's ``text`` ("Is 29 years
    old" / "29岁", by ``lang``, an ISO 639-1 code), or None when no age is stated."""
    n = stated_age(text)
    if n is None:
        return None
    age = topics.get("age")
    return Candidate(text=f"{n}岁" if lang == "zh" else f"Is {n} years old", type=age.type,
                     importance=age.importance, tags=["age"], topic="age")


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
    return Candidate(text=text, type=t.type, importance=t.importance, tags=[topic], topic=topic)


def atomize(candidates: list[Candidate], user_text: str, lang: str) -> list[Candidate]:
    """The candidates split into atomic facts, moves labelled ``home``, a Chinese
    workplace or job the model dropped added back (``dropped_work_facts``), and the stated
    age as one canonical ``age`` fact (replacing the model's own age items, whose text
    may be "2026年 28 岁" or another number); duplicates by normalised text removed,
    order kept."""
    out: list[Candidate] = []
    for cand in candidates:
        out.extend(fix_topic(p) for p in split_combined(cand, user_text))
    if lang == "zh" or re.search(r"[\u4e00-\u9fff]", user_text):
        out.extend(dropped_work_facts(out, user_text))
    age = age_candidate(user_text, lang)
    if age is not None:  # one canonical age fact ("2026年 28 岁" → "28岁")
        out = [c for c in out if c.topic != "age"] + [age]
    seen: set[str] = set()
    unique = []
    for cand in out:
        key = normalize(cand.text)
        if key not in seen:
            seen.add(key)
            unique.append(cand)
    return unique
