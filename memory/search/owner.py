"""Whose fact a text is: the user's own ("I …", "我 …") or a named relation's ("My daughter …", "我女儿 …"), in English and Chinese, so search can tell "What am I allergic to?" from "My daughter is allergic to cats".

:func:`owner_of` reads who a memory or a question is about from its start: a
possessive relation word (``my sister``, ``our son``, ``我妹妹``, ``我的好朋友``), a relation
word opening the text (``Sister works as …``, ``哥哥是 …``, the way extracted facts are
written) or, for anything else, the user (``"self"``). English and Chinese relation words
map to one key (``妈妈`` and ``mum`` → ``mother``), so the check works across languages; the
words are ``memory.text.lexicon``'s ``relations`` (``memory/data/lexicon/en.json``, ``zh.json``),
the same ``memory.write.grounding`` reads.
:func:`is_first_person` says whether a query asks about the user at all (third-person
questions, "What did Melanie's kids paint?", are left alone).
"""
from __future__ import annotations

import functools
import re

from memory.text import lexicon

SELF = "self"

#: relation word (lower case) → relation key, English and Chinese (``memory.text.lexicon``);
#: Chinese one-character forms (我哥) only after a possessive
_EN_KEY = lexicon.keys("relations", ["en"])
_ZH_KEY = lexicon.keys("relations", ["zh"])
_ZH_SHORT_KEY = lexicon.keys("short_relations", ["zh"])
_EN_WORDS = lexicon.alternation(_EN_KEY)
_ZH_WORDS = lexicon.alternation(_ZH_KEY)
_ZH_OWNED = lexicon.alternation([*_ZH_KEY, *_ZH_SHORT_KEY])
_ADJ = f"(?:{lexicon.words_re('relation_adjectives', ['en'])})"
_ZH_ADJ = f"(?:{lexicon.words_re('relation_adjectives', ['zh'])})"
# the subject position only: "My (best) friend …", "Where does my mother live?" ("… with
# my sister" is the user's)
_WH = r"(?:what|where|when|who|whom|which|how|why)(?:\s+\w+)?\s+(?:is|are|was|were|does|do|did|has|have|will|can|would)\s+"
_EN_POSSESSIVE = re.compile(rf"^\s*(?:{_WH})?(?:my|our)\s+(?:{_ADJ}\s+)?({_EN_WORDS})(?:'s|s)?\b", re.I)
_EN_OPENING = re.compile(rf"^\s*(?:{_ADJ}\s+)?({_EN_WORDS})(?:'s)?\b", re.I)
_ZH_POSSESSIVE = re.compile(rf"^\s*我们?(?:的)?{_ZH_ADJ}?({_ZH_OWNED})")
_ZH_OPENING = re.compile(rf"^\s*({_ZH_WORDS})")
_EN_WITH_ME = re.compile(rf"\b({_EN_WORDS})\s+and\s+(?:I|me)\b", re.I)
# the user as subject: "I …" with a capital I (a lower-case "i" is as often a typo or a
# letter), "我 …" not opening a possessive ("我妹妹", "我哥")
_EN_I = lexicon.alternation(w[:1].upper() + w[1:] for w in lexicon.words("self_subject", ["en"]))
_EN_SELF = re.compile(rf"\b(?:{_EN_I})\b")
_ZH_SELF = re.compile(rf"我(?!们?(?:的)?{_ZH_ADJ}?(?:{_ZH_OWNED}))")
#: the speaker anywhere: "I", "my", "me", "我"
_EN_ME = lexicon.alternation(lexicon.words("self_subject", ["en"]) + lexicon.words("self_forms", ["en"]))
_FIRST_PERSON = re.compile(rf"\b(?:{_EN_ME})\b|{lexicon.words_re('self_subject', ['zh'])}", re.I)
_SPEAKER = re.compile(r"^[A-Z][\w .'-]{0,40}:\s+")


def is_first_person(text: str) -> bool:
    """True when ``text`` speaks of the speaker ("I", "my", "我")."""
    return bool(_FIRST_PERSON.search(text or ""))


@functools.lru_cache(maxsize=1 << 16)
def owner_of(text: str) -> str:
    """Who ``text`` is about: a relation key (``"daughter"``, ``"friend"``, …) or
    :data:`SELF`. Reads the opening clause (a leading ``Name:`` speaker label skipped):
    "my wife and I …" is the user's; otherwise whichever comes first names the owner —
    the user as subject ("How much do I send my parents?", "我每个月给父母…"), a
    possessive relation in subject position ("my friend's girlfriend …" → ``friend``,
    "Where does my mother live?") or an opening relation word ("Sister works as …");
    none of them ("Went hiking with my sister") → the user. Cached per text."""
    head = _SPEAKER.sub("", (text or "").strip(), count=1)
    head = re.split(r"[.!?。！？;；\n]", head, maxsplit=1)[0]
    if _EN_WITH_ME.search(head) or re.match(r"^\s*我(?:和|跟|与)", head):
        return SELF
    found: list[tuple[int, str]] = [(m.start(), SELF) for m in
                                    (_EN_SELF.search(head), _ZH_SELF.search(head)) if m]
    for pattern, table in ((_EN_OPENING, _EN_KEY), (_ZH_OPENING, _ZH_KEY),
                           (_EN_POSSESSIVE, _EN_KEY), (_ZH_POSSESSIVE, _ZH_KEY | _ZH_SHORT_KEY)):
        m = pattern.search(head)
        if m:
            found.append((m.start(), table[m.group(1).lower()]))
    return min(found)[1] if found else SELF
