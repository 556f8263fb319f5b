"""Atomic facts: candidates the small model combined are split, mis-labelled moves get
their topic, and what the user stated in a fixed form is never lost — all LLM-free.

Why: the extraction prompt asks for "Works as a data engineer" and "Works in Zurich" as
two items, but the 1.5B default model often writes one ("Is a firefighter in Denver",
"Teaches high-school history in Boston"). A combined memory breaks every later change:
a new job takes the city with it, a move keeps the old city inside the job. So a job or
workplace candidate of the form "<job> in <Place>" / "Works in <Place> as <job>" /
"在<地方>做<职业>" becomes a job fact and a "Works in <Place>" / "在<地方>工作" workplace
fact — the place piece only when the place is in the user's own words (a model copying
a KNOWN line must not re-state the old city).

"Works as an engineer at Google" is split the same way ("Works at Google"), so "I joined
Spotify" replaces the employer and keeps the job. A name, an age, a move or a Chinese job
clause the model dropped is added back by ``memory.stated``.

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
from memory.stated import MOVED_ZH, NOT_PLACE, PLACE, stated_facts

#: "Teaches high-school history in Boston", "Is a nurse in Paris, part-time",
#: "Works as a software engineer at Google" (an employer is split like a city)
_JOB_IN_PLACE = re.compile(rf"^(?P<job>.+?)\s+(?P<prep>in|at)\s+(?P<place>{PLACE})(?P<tail>\s*,.*)?$")
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
_MOVE_EN = re.compile(r"^(?:(?:has |have |just |recently )*(?:moved|relocated|moving)\s+(?:back\s+)?to\b"
                      r"|now (?:lives|living) in\b|lives in\b|is living in\b)", re.I)
_MOVE_ZH = re.compile(rf"{MOVED_ZH}|住在")

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
        job, place, prep = m["job"] + (m["tail"] or ""), m["place"], m["prep"]
    elif (m := _ZH_PLACE_JOB.match(text)):
        job, place, zh = m["job"], m["place"], True
    if not job or not place or NOT_PLACE.match(place):
        return [cand]
    job_cand = replace(cand, text=job, topic="job", type=topics.get("job").type,
                       importance=topics.get("job").importance, tags=["job"])
    # "Works as an engineer at Google in Zurich": the job piece may hold an employer too
    pieces = split_combined(job_cand, source) if job != text else [job_cand]
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
    """A move the model labelled ``event``, ``other``, ``plan`` or ``family`` becomes
    topic ``home`` (one current value: it may then replace the stored home). "全家搬去深圳了"
    (the user's whole family, the user included) is a move of the user's; a move that
    names someone else ("My parents moved to Xiamen") keeps its topic. Contact details
    ("Mobile number is …", "手机号码是…") labelled with a one-value topic (home, job …)
    become ``other``, so they never replace the home."""
    if cand.topic in ("event", "other", "plan", "family") and is_move(cand.text) \
            and not mentions_someone_else(cand.text):
        return _retopic(cand, "home")
    if topics.get(cand.topic).single and _CONTACT.search(cand.text):
        return _retopic(cand, "other")  # a phone number labelled "home" must not replace the home
    return cand


#: contact details: never a name, an age, a home, a job or a workplace
_CONTACT = re.compile(r"\b(?:phone|mobile|cell|e-?mail|telephone|whatsapp|wechat)\b|\[(?:PHONE|EMAIL)\]"
                      r"|电话|手机|号码|邮箱|微信号", re.IGNORECASE)


def _retopic(cand: Candidate, topic: str) -> Candidate:
    t = topics.get(topic)
    return replace(cand, topic=topic, type=t.type, importance=t.importance,
                   tags=[topic] + [x for x in cand.tags if x != cand.topic])


def atomize(candidates: list[Candidate], user_text: str, lang: str) -> list[Candidate]:
    """The candidates split into atomic facts and moves labelled ``home``, then the facts
    the user stated that the model dropped added (``memory.stated.stated_facts``: a name,
    a move, a Chinese job or workplace, one canonical age); duplicates by normalised text
    removed, order kept."""
    out: list[Candidate] = []
    for cand in candidates:
        out.extend(fix_topic(p) for p in split_combined(cand, user_text))
    out = stated_facts(out, user_text, lang)
    seen: set[str] = set()
    unique = []
    for cand in out:
        key = normalize(cand.text)
        if key not in seen:
            seen.add(key)
            unique.append(cand)
    return unique
