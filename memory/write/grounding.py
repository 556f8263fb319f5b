"""Grounding: a candidate memory is kept only if the user's own words support it.

A small model sometimes "extracts" the assistant's words ("I am Memory Chat"), general
knowledge, or facts it invented from a question. Before anything is stored, each
candidate's content words must be found in what the user said (LLM-free):

* Latin-script words are compared by their Porter stem (``snowballstemmer``, the same
  stemmer as the full-text index), after dropping the scaffold words memories are made
  of ("lives", "works", "likes", "user", "the" …);
* CJK text is compared by characters, after dropping function characters (的 了 是 …).

``support(candidate, source)`` is the share of the candidate's content tokens found in
the source; a candidate with no content token at all (say "Is happy") is judged by
the caller. Translations (a Chinese message, an English memory) have no lexical
support; the caller falls back to embedding similarity for those.

The scaffold words, the CJK function characters and the relation words that tell whose
fact a clause is (``mentions_someone_else``, ``attribute``) are ``memory.text.lexicon``'s, in
``memory/data/lexicon/<language>.json``: the relation words are the same
``memory.search.owner`` reads, except the ``roles`` ("doctor", "老师"), which found anywhere in a
clause are as often the user's own job.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer
import stopwordsiso

from memory.text import lexicon
from memory.text.language import has_cjk, has_kana

#: function words of French, Spanish, German, Italian and Portuguese (stopwords-iso lists):
#: "je", "como", "il" say nothing about which fact a sentence is about, so a shared one
#: never makes two texts the same habit (``memory.write.cessation``) or a forget target
#: (``memory.write.forget``). English and Chinese keep ``SCAFFOLD`` below.
FUNCTION_WORDS = frozenset(stopwordsiso.stopwords(["fr", "es", "de", "it", "pt"]))
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")

#: Words every memory is built from; they say nothing about whose fact it is
#: (``memory.text.lexicon``: English ``scaffold``, Chinese ``function_chars``).
SCAFFOLD = frozenset(lexicon.words("scaffold", ["en"]))
_CJK_FUNCTION = frozenset(lexicon.words("function_chars", ["zh"]))


@lru_cache(maxsize=1)
def _stemmer():
    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=8192)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


def content_tokens(text: str) -> set[str]:
    """Return the content tokens of ``text``: stemmed, case-folded Latin-script words
    that are not scaffold words, and CJK characters that are not function characters.
    Digits are not content (dates are rewritten by ``memory.text.dates``)."""
    norm = unicodedata.normalize("NFKC", text).casefold()
    tokens = {_stem(w) for w in _WORD.findall(_CJK.sub(" ", norm))
              if len(w) > 1 and w not in SCAFFOLD}
    tokens |= {c for c in _CJK.findall(norm) if c not in _CJK_FUNCTION}
    return tokens


def support(candidate: str, source: str) -> float | None:
    """Return the share (0..1) of ``candidate``'s content tokens that occur in
    ``source``, or None when the candidate has no content token to check."""
    cand = content_tokens(candidate)
    if not cand:
        return None
    return len(cand & content_tokens(source)) / len(cand)


def shares_content(a: str, b: str) -> bool:
    """True when texts ``a`` and ``b`` have a content token in common ("Drinks coffee
    every morning" / "No longer drinks coffee")."""
    return bool(content_tokens(a) & content_tokens(b))


#: Relation words that name the person a clause is about ("my sister …", "我哥哥 …"): the
#: relations of ``memory.text.lexicon`` (the same as ``memory.search.owner``'s) except the roles,
#: which found anywhere are as often the user's own job ("I'm a doctor", "在学校当老师")
_KIN_EN_WORDS = [w for w in lexicon.words("relations", ["en"]) if w not in lexicon.words("roles", ["en"])]
_KIN_ZH_WORDS = [w for w in lexicon.words("relations", ["zh"]) if w not in lexicon.words("roles", ["zh"])]
_KIN_EN = re.compile(rf"\b({lexicon.alternation(_KIN_EN_WORDS)})\b", re.IGNORECASE)
_KIN_ZH = re.compile(lexicon.alternation(_KIN_ZH_WORDS))
#: ... and the one-character ones after 我 ("我哥", "我妹")
_ZH_SHORT = lexicon.words_re("short_relations", ["zh"])
#: Words that put another person in a clause: pronouns and the people users talk about.
_OTHERS_EN = re.compile(rf"\b({lexicon.alternation(lexicon.words('third_person', ['en']) + _KIN_EN_WORDS)})\b",
                        re.IGNORECASE)
_OTHERS_ZH = re.compile(rf"{lexicon.alternation(lexicon.words('third_person', ['zh']) + _KIN_ZH_WORDS)}"
                        rf"|我(?:{_ZH_SHORT})")
#: The same relations in French, Spanish, German, Italian, Portuguese (the languages with
#: ``determiners``) as the subject at the start of a clause ("Mia sorella vive a Torino e
#: fa l'avvocata" is the sister's job; not "Vivo con mi hermana": these languages drop the
#: "I"), and Japanese / Korean ones (with ``subject_particles``) followed by their topic or
#: subject particle (a kanji inside a Chinese word never counts)
_LATIN = lexicon.having("determiners")
_KIN_OTHER = re.compile(
    rf"^\W*(?:(?:{lexicon.words_re('and_also', _LATIN)})\s+)?(?:(?:{lexicon.words_re('determiners', _LATIN)})\s+)?"
    rf"({lexicon.words_re('relations', _LATIN)})\b"
    + "".join(rf"|(?:{lexicon.words_re('relations', [lang])})(?={lexicon.words_re('subject_particles', [lang])})"
              for lang in lexicon.having("subject_particles")),
    re.IGNORECASE)
#: The user as subject: "I …", "I'm …", "我 …" (not "我的"/"我们"/"我哥哥"/"我哥").
_SELF_EN = lexicon.words("self_subject", ["en"]) + lexicon.words("self_subject_informal", ["en"])
_SELF_SUBJECT = re.compile(rf"\b({lexicon.alternation(_SELF_EN)})\b", re.IGNORECASE)
_SELF_SUBJECT_ZH = re.compile(rf"我(?!的|们|{lexicon.alternation(_KIN_ZH_WORDS)}|{_ZH_SHORT})")
_BREAKS = lexicon.words_re("clause_breaks", ["en"])
_CLAUSE_SPLIT = re.compile(rf"[.!?。！？;；,，、\n]+|\b(?:{_BREAKS})\b", re.IGNORECASE)


def mentions_someone_else(text: str) -> bool:
    """True when ``text`` names another person (a pronoun such as "she"/"他" or a
    relation such as "sister"/"妈妈"/"sorella"/"언니는")."""
    return bool(_OTHERS_EN.search(text) or _OTHERS_ZH.search(text) or _KIN_OTHER.search(text.strip()))


def about_someone_else(candidate: str, source: str) -> bool:
    """True when the clause of ``source`` that supports ``candidate`` is about another
    person while the candidate does not say so: "My sister lives in Berlin, she is an
    architect" does not support "Works as an architect" for the user (it does support
    "Sister is an architect"). A candidate that itself names someone else is never
    flagged; a clause with the user as subject ("I am an architect") never is either."""
    return _owner(candidate, source) is not None


def attribute(candidate: str, source: str) -> str | None:
    """Return ``candidate`` rewritten as the fact of the person the user spoke about
    ("Works as an architect" → "Sister works as an architect", "是一名牙医" → "哥哥是一名
    牙医") when the supporting clause is about someone named by a relation word; None
    when it is about nobody else (keep the candidate) or about an unnamed "he"/"she"
    (drop it)."""
    owner = _owner(candidate, source)
    if not owner or owner == "?":
        return None
    if has_cjk(owner):
        return owner + ("は" if has_kana(candidate) else "") + candidate
    return owner.capitalize() + " " + candidate[:1].lower() + candidate[1:]


def _owner(candidate: str, source: str) -> str | None:
    """The other person the candidate's supporting clause is about: a relation word
    ("sister", "哥哥"), "?" for a bare pronoun, or None when the clause is the user's."""
    if mentions_someone_else(candidate):
        return None
    cand = content_tokens(candidate)
    if not cand:
        return None
    # a clause without a subject of its own ("… and works as an architect") continues
    # the previous clause's subject; a pronoun continues the previous person's name
    owners, owner = [], None
    for clause in (c for c in _CLAUSE_SPLIT.split(source) if c and c.strip()):
        if _SELF_SUBJECT.search(clause) or _SELF_SUBJECT_ZH.search(clause):
            owner = None
        else:
            kin = _KIN_EN.search(clause) or _KIN_ZH.search(clause)
            other = None if kin else _KIN_OTHER.search(clause.strip())
            if kin or other:
                owner = kin.group(0).lower() if kin else (other.group(1) or other.group(0)).lower()
            elif mentions_someone_else(clause):
                owner = owner or "?"
        owners.append((len(cand & content_tokens(clause)), owner))
    best = max((n for n, _ in owners), default=0)
    found = {o for n, o in owners if n == best}
    if best == 0 or None in found:
        return None
    return sorted(found)[0]


