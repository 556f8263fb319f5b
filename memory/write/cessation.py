"""Changed habits: "I don't drink coffee anymore", "我现在不喝咖啡了", "I'm not vegetarian
anymore" retire the stored memory they contradict — LLM-free, because a 1.5B model often
drops the negation and re-extracts "Drinks coffee" from exactly such a sentence.

A *cessation clause* says something stopped ("anymore", "no longer", "stopped", "quit",
"gave up", "used to", "不再", "不…了", "戒了", "以前"). A stored memory that shares its
content words (one Latin word, or two CJK characters) and is not itself negated is
contradicted and gets deleted (history keeps it); an extracted candidate drawn from the
clause that lost the negation is dropped.

Two changes share no words with what they end, so each has its own small rule: a
graduation ("我已经毕业了") ends "在读研究生" / "Is a PhD student", and eating meat or fish
again ends "Vegan" / "吃素". Another person's memories ("Sister is vegan") are never
touched.
"""
from __future__ import annotations

import re

from memory.text.language import has_east_asian
from memory.write.grounding import FUNCTION_WORDS, content_tokens, mentions_someone_else

_CEASED = re.compile(
    r"\b(any ?more|no longer|stopped|quit|quitting|gave up|given up|give up|gone off|"
    r"used to|not \w+ing|cut out)\b"
    r"|不再|已经不|不\S{1,6}了|戒了|戒掉|没再|停了|以前|之前|曾经"
    # French, Spanish, German, Italian, Portuguese: "je ne bois plus de café", "ya no como
    # carne", "nicht mehr", "non … più", "não … mais", "arrêté de", "dejé de", "aufgehört"
    r"|\b(?:ne|n['’])\s*\w+\s+plus\b|\bya no\b|\bnicht mehr\b|\bkein\w*\s+\w+\s+mehr\b"
    r"|\bnon\s+\w+\s+più\b|\bnão\s+\w+\s+mais\b|\barrêté de\b|\bdej[éó] de\b|\baufgehört\b"
    r"|\bsmesso di\b|\bparei de\b", re.IGNORECASE)
_NEGATED = re.compile(
    r"\b(not|no|never|don't|doesn't|didn't|isn't|aren't|no longer|any ?more|stopped|quit|"
    r"gave up|used to|formerly|former|ex-?|ne|nicht|kein\w*|non|não|nunca|jamais)\b"
    r"|\bn['’]|不|没|戒|以前|之前|曾", re.IGNORECASE)
_CLAUSE = re.compile(r"[.!?。！？;；,，\n—–:：]+|\s-+\s|\b(?:but|and|so)\b", re.IGNORECASE)
#: a stop that did not happen: refused ("I'm not gonna give up on my dreams", "我不会放弃"),
#: or only planned, wished or supposed ("thinking of quitting", "if I quit", "想戒烟")
_KEEPS_ON = re.compile(
    r"\b(?:not|never|won'?t|wouldn'?t|can'?t|cannot|don'?t|didn'?t|ain'?t|refuse to|"
    r"gonna|going to|will|want to|wanna|plan(?:ning)? to|thinking (?:of|about)|considering|"
    r"might|may|should|could|would|if|before|when|whether)\s+(?:\w+\s+){0,2}?"
    r"(?:give up|giving up|quit|quitting|stop|stopping)\b"
    r"|(?:不会|不要|不想|不能|绝不|决不|永不|别|没有|没|想|打算|准备|要是|如果)再?(?:放弃|停|戒)",
    re.IGNORECASE)


def ceased_clauses(text: str) -> list[str]:
    """Return the clauses of ``text`` that say something stopped — not those where the
    stop is refused or only planned ("I'm not gonna give up on my dance studio",
    "thinking of quitting", "我不会放弃"), nor those about another person ("My
    neighbour's kid doesn't walk the dog anymore": ``grounding.mentions_someone_else``,
    relation words from the lexicon)."""
    return [c.strip() for c in _CLAUSE.split(text)
            if c and c.strip() and _CEASED.search(c) and not _KEEPS_ON.search(c)
            and not mentions_someone_else(c)]


#: what replaced a stopped habit opens the next clause: "…, now I do yoga", "…, agora só
#: chá", "不喝咖啡了，现在喝茶", "…、今は紅茶です"
_NOW = re.compile(
    r"^(?:now|instead|these days|nowadays|maintenant|désormais|à la place|ahora|en cambio|"
    r"jetzt|stattdessen|inzwischen|ora|adesso|invece|agora|em vez disso|hoje em dia)\b"
    r"|^(?:现在|如今|改成|改为|今は|今では|지금은|이제는|요즘은)", re.IGNORECASE)


def replaced_by(text: str) -> list[str]:
    """Return the clauses of the user's ``text`` that say what replaced a stopped habit:
    a clause right after a cessation clause that opens with "now" or "instead" in one of
    the supported languages ("Je ne joue plus au tennis, maintenant je fais du yoga" →
    ["maintenant je fais du yoga"]). The small model often keeps only the stop."""
    clauses = [c.strip() for c in _CLAUSE.split(text) if c and c.strip()]
    return [after for before, after in zip(clauses, clauses[1:])
            if _CEASED.search(before) and not _KEEPS_ON.search(before) and _NOW.search(after)
            and not _CEASED.search(after)]


def is_negated(text: str) -> bool:
    """True when a memory text carries a negation ("No longer drinks coffee", "不喝咖啡")."""
    return bool(_NEGATED.search(text))


def overlaps(a: set[str], b: set[str]) -> bool:
    """True when two sets of ``grounding.content_tokens`` share content: one Latin word,
    or two CJK characters; function words ("je", "il", "que") never count."""
    shared = (a & b) - FUNCTION_WORDS  # "Je ne joue plus au tennis" ends no "Je suis …"
    latin = [t for t in shared if not has_east_asian(t)]  # "coffee", "café", "caffè"
    return bool(latin) or len(shared) >= 2


def contradicted(records: list, text: str) -> list:
    """Return the records (anything with ``.text``) that a cessation clause of the user's
    ``text`` contradicts: they share its content words and are not negated themselves."""
    clauses = [content_tokens(c) for c in ceased_clauses(text)]
    if not clauses:
        return []
    return [r for r in records if not is_negated(r.text)
            and any(overlaps(content_tokens(r.text), c) for c in clauses)]


def lost_negation(candidate: str, text: str) -> bool:
    """True when ``candidate`` restates a cessation clause of ``text`` without its
    negation ("Drinks coffee" from "I don't drink coffee anymore")."""
    if is_negated(candidate):
        return False
    cand = content_tokens(candidate)
    return any(overlaps(cand, content_tokens(c)) for c in ceased_clauses(text))


_GRADUATED = re.compile(
    r"\b(?:graduated|finished (?:my |the )?(?:degree|studies|master'?s|phd|doctorate|"
    r"university|college|school|course))\b|毕业|毕了业", re.IGNORECASE)
_NOT_YET = re.compile(r"\b(?:not|never|yet|soon|will|going to|next|after|once|when|if)\b"
                      r"|n't|还没|没有|未|快|将|要|后|想|如果", re.IGNORECASE)
_STUDYING = re.compile(
    r"\b(?:student|studying|studies|enrolled|undergrad\w*|grad school|"
    r"(?:is )?doing (?:a |an |my |the )?(?:master'?s|phd|doctorate|degree|bachelor'?s)|"
    r"in (?:the |my )?(?:first|second|third|fourth|final|last) year)\b"
    r"|在读|读研|读博|读大学|读本科|上大学|念书|正在读|大学生|博士生|研究生在读", re.IGNORECASE)


def graduated(text: str) -> bool:
    """True when the user's ``text`` says they graduated ("我已经毕业了", "I graduated in
    June", "I've finished my PhD"), not only that they will ("I haven't graduated yet",
    "快毕业了", "我毕业后想去北京")."""
    return any(c and _GRADUATED.search(c) and not _NOT_YET.search(c) for c in _CLAUSE.split(text))


def still_studying(records: list) -> list:
    """The ``records`` (anything with ``.text``) saying the user is still studying
    ("在浙江大学读研究生", "Is a PhD student"): what a graduation (``graduated``) ends.
    Negated ones and another person's ("Brother is a PhD student") are left out."""
    return [r for r in records if _STUDYING.search(r.text) and not is_negated(r.text)
            and not _GRADUATED.search(r.text) and not mentions_someone_else(r.text)]


_EATS_MEAT = re.compile(
    r"\b(?:eat(?:s|ing)?|ate|started eating|back to eating)\s+(?:\w+\s+){0,2}?"
    r"(?:meat|fish|chicken|beef|pork|steak|seafood|burgers?)\b|吃肉|开荤|吃鱼|吃荤", re.IGNORECASE)
_MEAT_FREE = re.compile(r"\b(?:vegan|vegetarian|plant-based|pescatarian)\b|素食|吃素|不吃肉|不吃荤",
                        re.IGNORECASE)


def eats_meat_again(text: str) -> bool:
    """True when a clause of the user's ``text`` says they eat meat or fish ("I'm eating
    meat again these days", "我又开始吃肉了"), not negated or as a wish ("I don't eat
    meat", "I'd never eat fish", "If I ate meat …")."""
    return any(c and _EATS_MEAT.search(c) and not _NEGATED.search(_EATS_MEAT.sub("", c))
               and not _NOT_YET.search(c) for c in _CLAUSE.split(text))


def meat_free(records: list) -> list:
    """The ``records`` (anything with ``.text``) stating the user's meat-free diet
    ("Vegan for five years", "吃素"): what eating meat again (``eats_meat_again``) ends.
    Negated ones and another person's ("Sister is vegan") are left out."""
    return [r for r in records if _MEAT_FREE.search(r.text) and not is_negated(r.text)
            and not mentions_someone_else(r.text)]
