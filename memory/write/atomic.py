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
clause the model dropped is added back by ``memory.write.stated``.

Korean joins clauses with the connective "-고" ("서울에 살고 디자이너로 일해요": lives in
Seoul and works as a designer), and the model copies such a clause whole; it is split
into "서울에 살다" (the dictionary form: stem + 다, the usual note style) and "디자이너로
일해요", each with its own topic (``split_korean``). The job and workplace patterns
above are English and Chinese only.
"""
from __future__ import annotations

import re
from dataclasses import replace

from memory.write import topics
from memory.write.extract import Candidate
from memory.write.grounding import mentions_someone_else
from memory.write.intents import normalize
from memory.text.language import has_cjk, has_kana
from memory.write.stated import MOVED_ZH, NOT_PLACE, PLACE, stated_facts

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
#: a move or a home in Japanese and Korean: "大阪に引っ越した", "東京に住んでいる",
#: "부산으로 이사했어요", "서울에 살다" / "서울에서 살아요"
_MOVE_JA_KO = re.compile(r"引っ越|に住ん|に住む|이사(?:했|하|를|갔|왔|해)|(?:에|에서)\s*(?:살|거주)")
#: Korean case particles that end the argument of a clause ("서울에", "회사에서",
#: "디자이너로", "커피를", "저는"); a word ending in "-고" after one is a clause's verb
_KO_ARG = re.compile(r"(?:에|에서|으로|로|을|를|은|는|가|도|와|과|이랑|랑|한테|께)$")
#: the particle that opens the second clause (narrower: 이 also ends plain words, "같이")
_KO_ARG_NEXT = re.compile(r"(?:에|에서|으로|로|을|를|은|는|가)$")
#: Korean job and workplace clauses: "디자이너로 일하다", "삼성에서 일해요"
_KO_JOB = re.compile(r"(?:으로|로)\s*(?:일하|일해|일합|근무)")
_KO_WORKPLACE = re.compile(r"에서\s*(?:일하|일해|일합|근무)")

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


def split_korean(cand: Candidate) -> list[Candidate]:
    """Return ``[cand]``, or its clauses when ``cand.text`` joins Korean clauses with
    "-고" ("서울에 살고 디자이너로 일해요" → "서울에 살다", "디자이너로 일해요"). A split
    needs an argument with a case particle before the "-고" verb and after it ("광고
    회사에서 일해요" and "친구하고 살아요" stay whole). Each clause gets the topic its
    verb shows (home, job, workplace) or, if none, the candidate's own topic when that
    holds many values ("other" when it is a one-value topic such as home)."""
    words = cand.text.strip().rstrip(".。").split()
    for i in range(1, len(words) - 2):
        verb = words[i]
        if (verb.endswith("고") and len(verb) >= 2 and _KO_ARG.search(words[i - 1])
                and _KO_ARG_NEXT.search(words[i + 1])):
            first = " ".join(words[:i] + [verb[:-1] + "다"])
            rest = replace(cand, text=" ".join(words[i + 1:]))
            pieces = [_korean_topic(replace(cand, text=first))] + \
                [_korean_topic(c) for c in split_korean(rest)]
            return _keep_replaces_once(pieces, cand.replaces)
    return [cand]


def _keep_replaces_once(pieces: list[Candidate], target) -> list[Candidate]:
    """The pieces of one split candidate with ``replaces`` (the KNOWN memory it changes)
    kept on one piece only: the first of the target's topic, else the first piece."""
    if target is None:
        return pieces
    want = topics.topic_of(target.tags)
    keep = next((i for i, p in enumerate(pieces) if p.topic == want), 0)
    return [p if i == keep else replace(p, replaces=None) for i, p in enumerate(pieces)]


def _korean_topic(cand: Candidate) -> Candidate:
    text = cand.text
    topic = ("home" if _MOVE_JA_KO.search(text) else "job" if _KO_JOB.search(text)
             else "workplace" if _KO_WORKPLACE.search(text) else None)
    if topic is None:
        topic = "other" if topics.get(cand.topic).single else cand.topic
    return _retopic(cand, topic) if topic != cand.topic else cand


def is_move(text: str) -> bool:
    """True when memory text ``text`` states where the user lives or moved to ("Moved to
    Portland", "Relocated to Lyon last week", "搬去了厦门", "住在成都", "大阪に引っ越した",
    "부산으로 이사했어요")."""
    return bool(_MOVE_EN.search(text) or _MOVE_ZH.search(text) or _MOVE_JA_KO.search(text))


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
    the user stated that the model dropped added (``memory.write.stated.stated_facts``: a name,
    a move, a Chinese job or workplace, one canonical age); duplicates by normalised text
    removed, and a fragment of another candidate ("이사했어요" beside "부산으로 이사했어요",
    "Moved" beside "Moved to Lyon") dropped, order kept."""
    out: list[Candidate] = []
    for cand in candidates:
        for piece in (split_korean(cand) if lang == "ko" else [cand]):
            out.extend(fix_topic(p) for p in split_combined(piece, user_text))
    out = stated_facts(out, user_text, lang)
    seen: set[str] = set()
    unique = []
    for cand in out:
        key = normalize(cand.text)
        if key not in seen:
            seen.add(key)
            unique.append(cand)
    return _drop_fragments(unique)


def _drop_fragments(cands: list[Candidate]) -> list[Candidate]:
    """``cands`` without those whose normalised text is part of a longer candidate's
    ("이사했어요" beside "부산으로 이사했어요", see ``_part_of``): they say nothing the
    longer one does not.
    A fragment that replaces a KNOWN memory hands that over to the longer candidate
    when it replaces none; if both replace different memories, the fragment stays."""
    out = list(cands)
    i = 0
    while i < len(out):
        cand = out[i]
        j = next((j for j, o in enumerate(out) if j != i and _part_of(cand.text, o.text)), None)
        if j is None or (cand.replaces is not None and out[j].replaces is not None
                         and out[j].replaces is not cand.replaces):
            i += 1
            continue
        if out[j].replaces is None and cand.replaces is not None:
            out[j] = replace(out[j], replaces=cand.replaces)
        del out[i]
    return out


def _part_of(short: str, long: str) -> bool:
    """True when ``short`` is a shorter part of ``long``: whole words of it in Latin or
    Hangul text ("Likes tea" is no part of "Likes teaching"), characters in Chinese or
    Japanese text, which puts no spaces between words."""
    a, b = normalize(short), normalize(long)
    if not a or len(a) >= len(b) or a not in b:
        return False
    if has_cjk(short) or has_kana(short):
        return True
    wa, wb = _WORD.findall(short.casefold()), _WORD.findall(long.casefold())
    return any(wb[k:k + len(wa)] == wa for k in range(len(wb) - len(wa) + 1))


_WORD = re.compile(r"\w+")
