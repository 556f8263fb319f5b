"""Fact extraction: one JSON-constrained LLM call per chat turn → candidate memories.

Only the user's own statements are shown to the model (``intents.learnable_text``:
questions, requests and hypotheticals removed), never the assistant's reply, the system
prompt or the memories injected into it: feeding those back is how a memory system ends
up storing the assistant's words as the user's profile. When the user's message is a
short answer to the assistant ("Lyon."), the assistant's previous message is shown as
context. Every candidate then has to pass three LLM-free checks before reconciliation:

* grounding (``memory.write.grounding``): its content words occur in what the user said, and
  the clause they come from is about the user, not "my sister … she is an architect";
* language (``memory.text.language``): written in the user's language; one retry with the
  language stated again, then a candidate in the wrong script is dropped;
* dates (``memory.text.dates``): relative time words made absolute.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime

import pangu

from memory.text import language

from memory.llm import prompts

from memory.write import topics
from memory.text.dates import resolve_relative_dates
from memory.llm.errors import LLMError
from memory.write.cessation import lost_negation
from memory.write.grounding import about_someone_else, attribute, content_tokens
from memory.write.intents import normalize
from memory.types import MemoryRecord

log = logging.getLogger(__name__)

#: At most this many KNOWN memories are shown to the extractor.
MAX_KNOWN = 12
#: Below this share of the message's content tokens covered by the candidates, the
#: message is extracted again without KNOWN (see ``extract``).
RETRY_COVERAGE = 0.5
#: Only messages with at most this many content tokens are retried (chat turns, not
#: documents or imported sessions).
RETRY_MAX_TOKENS = 30
#: A user message this short (words, or CJK characters / 2) may be an answer to the
#: assistant's question, so the assistant's previous message is shown as context.
SHORT_ANSWER_WORDS = 6


@dataclass
class Candidate:
    """A memory proposed by extraction, before reconciliation: ``text``, ``topic`` (a
    ``memory.write.topics`` name) and what follows from it (``type``, ``importance``,
    ``tags``), ``replaces``: the KNOWN memory it changes, if any, and ``saw_known``:
    False when it came from the second call without KNOWN (see ``extract``), so
    reconciliation must not assume the extractor already judged the KNOWN memories.
    ``states_home``: for a ``home`` candidate, whether it states the user's home at all
    (``memory.write.residence``; None: not checked), so a trip cannot replace the home."""

    text: str
    type: str = "fact"
    importance: int = 3
    tags: list[str] = field(default_factory=list)
    replaces: MemoryRecord | None = None
    topic: str = "other"
    saw_known: bool = True
    states_home: bool | None = None


def extract(llm, user_text: str, today: datetime, known: list[MemoryRecord] | None = None,
            context: str = "", max_chars: int = 4000, *,
            document: bool = False) -> list[Candidate]:
    """Ask the LLM for atomic memories in the user's message.

    Takes the LLM client (``memory.llm.client.LLM``), ``user_text`` (already reduced to its
    statements by ``intents.learnable_text``), ``today`` (resolves "last week"),
    ``known``: the user's memories most related to this turn (at most 12, shown
    numbered with their topics; the model marks a candidate that changes one with
    ``replaces``, accepted only for the same topic or shared content), and ``context``:
    the assistant's previous message, shown only when the user's message is a short
    answer. Inputs are cut to ``max_chars``. Returns grounded, de-duplicated candidates
    in the user's language (possibly empty). Raises LLMError when the endpoint fails or
    the model's JSON stays invalid after one retry; the caller then writes nothing.

    With KNOWN shown, the 1.5B model sometimes copies KNOWN lines instead of stating
    what changed ("I moved to Hong Kong" → only "Works as an accountant" again). When
    the candidates cover less than ``RETRY_COVERAGE`` of a chat-sized message's content
    tokens (at most ``RETRY_MAX_TOKENS``; a document batch or a whole session is never
    covered that well and is not retried), the message is extracted once more without KNOWN and the new candidates are added
    (``saw_known=False``); reconciliation then compares them with the stored memories.
    ``document=True`` (a document's batch of chunks) never does that: it is not a chat
    message (its headings, lists and prose are never "covered" by a few facts, and a
    short Markdown or HTML page would cost two calls); it may also give more than 12
    candidates (``max_items``).
    """
    shown = list(known or [])[:MAX_KNOWN]
    limit = max_items(user_text[:max_chars]) if document else 12
    out = _extract_once(llm, user_text, today, shown, context, max_chars, limit)
    if not document and shown and len(content_tokens(user_text)) <= RETRY_MAX_TOKENS \
            and coverage(user_text, out) < RETRY_COVERAGE:
        log.debug("candidates cover too little of the message; extracting without KNOWN")
        keys = {normalize(c.text) for c in out}
        try:
            again = _extract_once(llm, user_text, today, [], context, max_chars, limit)
        except LLMError as exc:  # keep what the first call found
            log.warning("second extraction (without KNOWN) failed: %s", exc)
            again = []
        for c in again:
            if normalize(c.text) not in keys:
                c.saw_known = False
                out.append(c)
    return out


def answer_tokens(text: str) -> int:
    """Token budget of one extraction answer for input ``text``: 400 for a chat message
    (a dozen short memories fit), growing with longer input (a document batch of 2,400
    characters → 1,000) up to 1,200, so a long answer is not cut into invalid JSON
    (the 1.5B model's answer for a 10-page PDF batch ran past 400 tokens)."""
    return 400 if len(text) <= 1000 else min(1200, 400 + len(text) // 4)


def max_items(text: str) -> int:
    """How many candidates one extraction answer for a document batch ``text`` may
    give: 12 up to 1,000 characters, then one per 60 characters, at most 40, so a CV's
    last lines (languages, hobbies) are not cut after its duties. A chat message keeps 12."""
    return 12 if len(text) <= 1000 else min(40, len(text) // 60)


def coverage(user_text: str, candidates: list[Candidate]) -> float:
    """Share (0..1) of the content tokens of ``user_text`` that occur in the candidates'
    texts (1.0 when the message has none)."""
    from memory.write.grounding import support

    share = support(user_text, " ".join(c.text for c in candidates))
    return 1.0 if share is None else share


def _extract_once(llm, user_text: str, today: datetime, shown: list[MemoryRecord],
                  context: str, max_chars: int, limit: int = 12) -> list[Candidate]:
    """One extraction call (plus its language retry) and the filters; see ``extract``."""
    lang = language.detect(user_text)
    # a message mixing Chinese and English in earnest: a memory in either script is fine
    check = "" if language.is_mixed(user_text) else lang
    cjk, latin = language.cjk_weight(user_text)
    ctx = context.strip()[-300:] if context and latin + cjk / 2 <= SHORT_ANSWER_WORDS else ""
    messages = build_messages(user_text[:max_chars], lang, shown, ctx)
    schema = prompts.extract_schema(topics.TOPIC_NAMES, with_replaces=bool(shown))
    budget = answer_tokens(user_text[:max_chars])
    data = llm.complete_json(messages, schema, name="memories", max_tokens=budget)
    items = data.get("memories") or []
    if any(_wrong_language(item, check) for item in items if isinstance(item, dict)):
        retry = messages + [{"role": "system", "content":
                             f"Write every memory text in {_language_label(lang)}."}]
        try:
            items = llm.complete_json(retry, schema, name="memories", max_tokens=budget).get("memories") or []
        except LLMError:
            pass  # keep the first answer; wrong-language items are dropped below
    log.debug("extraction answer: %s", items)
    items = [i for i in items if isinstance(i, dict) and not _wrong_language(i, check)]
    source = f"{user_text}\n{ctx}"
    out = []
    for c in clean_candidates(items, shown, today, lang, limit=limit):
        if is_grounded(c.text, source) is False or lost_negation(c.text, user_text):
            log.debug("dropped %r: not grounded in the message or lost its negation", c.text)
            continue
        if about_someone_else(c.text, source):
            owned = attribute(c.text, source)  # "Works as an architect" → "Sister works …"
            if owned is None:
                continue
            c.text, c.topic, c.type, c.tags, c.replaces = owned, "family", "profile", ["family"], None
        out.append(c)
    return out


def build_messages(user_text: str, lang: str, known: list[MemoryRecord], context: str) -> list[dict]:
    """Return the chat messages of one extraction call: the fixed system prompt (rules
    and examples in English and Chinese; the same for every call, so llama.cpp reuses
    its cached prefix), then the KNOWN lines, the context, the language to write in
    and the message."""
    lines = "\n".join(prompts.EXTRACT_KNOWN_LINE.format(
        n=i, text=r.text, topic=topics.topic_of(r.tags) or "other")
        for i, r in enumerate(known, start=1))
    return [{"role": "system", "content": prompts.EXTRACT_SYSTEM},
            {"role": "user", "content": prompts.EXTRACT_USER.format(
                known=lines + "\n" if lines else "",
                context=prompts.EXTRACT_CONTEXT.format(assistant=context) if context else "",
                language=_language_label(lang), user=user_text)}]


def _language_label(lang: str) -> str:
    return language.name(lang)


def _wrong_language(item: dict, lang: str) -> bool:
    if not lang:  # nothing to check
        return False
    text = str(item.get("text") or "")
    return bool(text.strip()) and not language.is_written_in(text, lang)


def is_grounded(text: str, source: str) -> bool | None:
    """True/False when the content words of candidate ``text`` are / are not supported
    by ``source`` (at least half of them occur in it, see ``memory.write.grounding``); None
    when lexical support cannot tell (no content words, or a different script), and
    the caller may check embedding similarity instead."""
    from memory.write.grounding import support

    share = support(text, source)
    if share is None:
        return None
    if share >= GROUNDED_SHARE:
        return True
    if language.has_cjk(text) != language.has_cjk(source):
        return None  # a translation: lexical support says nothing
    return False


_TOPIC_SUFFIX = re.compile(r"\s*[(（](" + "|".join(topics.TOPIC_NAMES) + r")[)）]$")
_BARE_PRONOUN = re.compile(r"^(he|she|they|his|her|their|he's|she's|they're)\b|^(他|她|他们|她们)",
                           re.IGNORECASE)
#: words said *to* someone ("You can create that space you're imagining", "你一定行的"):
#: the listener is the subject, so it is no fact about the user
_ADDRESSED = re.compile(r"^(you|your|you're|you've|you'll|yourself)\b|^(你|您)", re.IGNORECASE)

#: thanks copied as a memory ("Thanks, Gina! Appreciate the offer.", seen importing LoCoMo)
_THANKS = re.compile(r"^\W*(?:(?:thanks|thank you|thx|merci|gracias|danke|grazie|obrigad[oa])\b"
                     r"|谢谢|多谢|感谢你|ありがとう|감사합니다|고마워)", re.IGNORECASE)
#: "Same job", "仕事は同じです", "工作没变", "Même travail": a value that did not change,
#: said next to a change; as a memory it holds no value and must replace nothing
_UNCHANGED = re.compile(
    r"\b(?:same|unchanged|hasn'?t changed|didn'?t change|pareil|pareille|même|mismo|misma|igual|"
    r"gleich|gleiche|gleichen|dasselbe|derselbe|stesso|stessa|uguale|mesmo|mesma|inalterad[oa])\b"
    r"|同じ|変わらない|変わってない|一样|没变|不变|没有变|照旧|그대로|같아요|같습니다|똑같", re.IGNORECASE)

#: … unless it also names what did change ("Same job, different pharmacy")
_CHANGED = re.compile(r"\b(?:different|new|another|other|autre|nouveau|nouvelle|otro|otra|nuevo|nueva|"
                      r"ander\w*|neue\w*|altro|altra|nuovo|nuova|outro|outra|novo|nova)\b"
                      r"|新|別の|别的|换|다른|새", re.IGNORECASE)


def says_unchanged(text: str) -> bool:
    """True when a short candidate ``text`` (≤ 6 words, or ≤ 12 characters without
    spaces) only says something stayed the same ("Same job", "仕事は同じです", "工作没变"):
    the 1.5B model let "仕事は同じです" replace "エンジニアとして働いています"."""
    short = len(text.split()) <= 6 if " " in text.strip() else len(text) <= 12
    return short and bool(_UNCHANGED.search(text)) and not _CHANGED.search(text)


#: Share of a candidate's content tokens that must occur in the user's words.
GROUNDED_SHARE = 0.5


def clean_candidates(items: list[dict], known: list[MemoryRecord] | None = None,
                     today: datetime | None = None, lang: str | None = None,
                     limit: int = 12) -> list[Candidate]:
    """Validate raw model items: drop empty/overlong texts and exact duplicates, strip a
    leading "User"/"The user", put a space between CJK and Latin runs (the ``pangu``
    library's rule: the 1.5B model writes "Lives in深圳"), map ``topic`` (unknown → "other") to type, importance and
    tags, resolve relative dates against ``today`` (``lang``: the message's ISO 639-1
    code, for phrases beyond English and Chinese), and resolve ``replaces`` (1-based
    index into ``known``): kept only when the known memory has the same topic or shares
    a content word (a move never replaces the job), each known memory at most once.
    Returns at most ``limit`` candidates (``max_items``)."""
    from memory.write.grounding import mentions_someone_else, shares_content

    out: list[Candidate] = []
    seen: set[str] = set()
    used: set[int] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        text = _strip_subject(" ".join(str(item.get("text") or "").split()))
        text = pangu.space_text(text)  # "Lives in深圳" -> "Lives in 深圳" (CJK/Latin spacing)
        text = _TOPIC_SUFFIX.sub("", text)  # "Vegetarian (dislike)": the KNOWN format copied
        if today is not None:
            text = resolve_relative_dates(text, today, lang)
        key = normalize(text)
        if not key or len(text) > 500 or key in seen:
            continue
        seen.add(key)
        if _BARE_PRONOUN.match(text) or _ADDRESSED.match(text) or _THANKS.match(text) or says_unchanged(text):
            continue  # "She is an architect": whose fact? never the user's; "You can …" neither
        topic = topics.get(str(item.get("topic") or ""))
        if topic.single and mentions_someone_else(text):
            topic = topics.get("family")  # "Sister lives in Berlin" is not the user's home
        mtype, importance = topic.type, topic.importance
        replaces = None
        idx = item.get("replaces")
        if isinstance(idx, int) and known and 1 <= idx <= len(known) and idx not in used:
            target = known[idx - 1]
            target_topic = topics.topic_of(target.tags)
            if (target_topic == topic.name or shares_content(target.text, text)) \
                    and mentions_someone_else(target.text) == mentions_someone_else(text):
                replaces = target
                used.add(idx)
        out.append(Candidate(text=text, type=mtype, importance=importance,
                             tags=[topic.name], replaces=replaces, topic=topic.name))
    return out[:limit]


def _strip_subject(text: str) -> str:
    for prefix in ("The user's ", "The user ", "User's ", "User ", "用户的", "用户"):
        if text.startswith(prefix) and len(text) > len(prefix) + 1:
            rest = text[len(prefix):]
            return rest[:1].upper() + rest[1:] if prefix[0].isascii() else rest
    return text
