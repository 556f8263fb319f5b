"""Whose fact a text is: the user's own ("I …", "我 …") or a named relation's ("My daughter …", "我女儿 …"), in English and Chinese, so search can tell "What am I allergic to?" from "My daughter is allergic to cats".

:func:`owner_of` reads who a memory or a question is about from its start: a
possessive relation word (``my sister``, ``our son``, ``我妹妹``, ``我的好朋友``), a relation
word opening the text (``Sister works as …``, ``哥哥是 …``, the way extracted facts are
written) or, for anything else, the user (``"self"``). English and Chinese relation words
map to one key (``妈妈`` and ``mum`` → ``mother``), so the check works across languages.
:func:`is_first_person` says whether a query asks about the user at all (third-person
questions, "What did Melanie's kids paint?", are left alone).
"""
from __future__ import annotations

import functools
import re

SELF = "self"

#: relation key → (English words, Chinese words); Chinese lists longest first
_RELATIONS: dict[str, tuple[str, str]] = {
    "mother": ("mother mom mum mama mommy", "妈妈 母亲 老妈 妈"),
    "father": ("father dad daddy papa", "爸爸 父亲 老爸 爸"),
    "parents": ("parents", "父母 爸妈"),
    "wife": ("wife", "老婆 妻子 太太"),
    "husband": ("husband", "老公 丈夫"),
    "son": ("son", "儿子"),
    "daughter": ("daughter", "女儿"),
    "child": ("kid kids child children", "孩子 小孩"),
    "brother": ("brother", "哥哥 弟弟 兄弟"),
    "sister": ("sister", "姐姐 妹妹 姐妹"),
    "girlfriend": ("girlfriend", "女朋友 女友"),
    "boyfriend": ("boyfriend", "男朋友 男友"),
    "partner": ("partner fiance fiancee fiancé fiancée", "对象 未婚夫 未婚妻"),
    "friend": ("friend", "好朋友 朋友 闺蜜 哥们"),
    "colleague": ("colleague coworker co-worker", "同事"),
    "boss": ("boss manager supervisor", "老板 领导 上司 经理 主管"),
    "teammate": ("teammate", "队友"),
    "classmate": ("classmate schoolmate", "同学"),
    "landlord": ("landlord landlady", "房东"),
    "doctor": ("doctor dentist therapist", "医生 大夫"),
    "neighbour": ("neighbour neighbor", "邻居"),
    "grandmother": ("grandmother grandma granny", "奶奶 外婆 姥姥"),
    "grandfather": ("grandfather grandpa", "爷爷 外公 姥爷"),
    "cousin": ("cousin", "表哥 表姐 表弟 表妹 堂哥 堂姐 堂弟 堂妹"),
    "uncle": ("uncle", "叔叔 舅舅 伯伯"),
    "aunt": ("aunt auntie", "阿姨 姑姑 舅妈 姨妈"),
    "niece": ("niece nephew", "侄女 侄子 外甥女 外甥"),
    "teacher": ("teacher", "老师"),
    "roommate": ("roommate flatmate", "室友"),
}
_EN_KEY = {w: k for k, (en, _) in _RELATIONS.items() for w in en.split()}
_ZH_KEY = {w: k for k, (_, zh) in _RELATIONS.items() for w in zh.split()}
_EN_WORDS = "|".join(sorted(map(re.escape, _EN_KEY), key=len, reverse=True))
_ZH_WORDS = "|".join(sorted(map(re.escape, _ZH_KEY), key=len, reverse=True))
_ADJ = r"(?:best|good|close|old|older|younger|little|big|elder|eldest|oldest|youngest)"
# the subject position only: "My (best) friend …", "Where does my mother live?" ("… with
# my sister" is the user's)
_WH = r"(?:what|where|when|who|whom|which|how|why)(?:\s+\w+)?\s+(?:is|are|was|were|does|do|did|has|have|will|can|would)\s+"
_EN_POSSESSIVE = re.compile(rf"^\s*(?:{_WH})?(?:my|our)\s+(?:{_ADJ}\s+)?({_EN_WORDS})(?:'s|s)?\b",
                            re.I)
_EN_OPENING = re.compile(rf"^\s*(?:{_ADJ}\s+)?({_EN_WORDS})(?:'s)?\b", re.I)
_ZH_POSSESSIVE = re.compile(rf"^\s*我们?(?:的)?(?:最好的|好|亲)?({_ZH_WORDS})")
_ZH_OPENING = re.compile(rf"^\s*({_ZH_WORDS})")
_EN_WITH_ME = re.compile(rf"\b({_EN_WORDS})\s+and\s+(?:I|me)\b", re.I)
# the user as subject: "I …" (capital I), "我 …" not opening a possessive ("我妹妹")
_EN_SELF = re.compile(r"\b(?:I|I'm|I've|I'd|I'll)\b")
_ZH_SELF = re.compile(rf"我(?!们?(?:的)?(?:最好的|好|亲)?(?:{_ZH_WORDS}))")
_FIRST_PERSON = re.compile(r"\b(?:i|me|my|mine|myself|i'm|i've|i'd)\b|我", re.I)
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
                           (_EN_POSSESSIVE, _EN_KEY), (_ZH_POSSESSIVE, _ZH_KEY)):
        m = pattern.search(head)
        if m:
            found.append((m.start(), table[m.group(1).lower()]))
    return min(found)[1] if found else SELF
