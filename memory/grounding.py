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
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer
import stopwordsiso

from memory.language import has_cjk, has_kana

#: function words of French, Spanish, German, Italian and Portuguese (stopwords-iso lists):
#: "je", "como", "il" say nothing about which fact a sentence is about, so a shared one
#: never makes two texts the same habit (``memory.cessation``) or a forget target
#: (``memory.forget``). English and Chinese keep ``SCAFFOLD`` below.
FUNCTION_WORDS = frozenset(stopwordsiso.stopwords(["fr", "es", "de", "it", "pt"]))
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")

#: Words every memory is built from; they say nothing about whose fact it is.
SCAFFOLD = frozenset("""
a an the and or but of to in at on for with from by as is are was were be been being am
i i'm me my mine you your he she it its they them their we our us this that these those
user user's name named called lives live living lived works work working worked job
likes like liked loves love loved enjoys enjoy enjoyed prefers prefer preferred favourite
favorite has have had having does do did doesn't don't didn't not no never anymore now
currently recently just also still very really since until moved move moving went go goes going
got get gets started start starts stopped stop used usually often always sometimes
wants want wanted plans plan planning planned will would can could should about there
here who what when where why how which week month year day years months weeks days old
new lot lots much many some any all more most other another same one ones two time
""".split())
_CJK_FUNCTION = frozenset("的了是在我你他她它们有个一这那和与及也都就不很还仍要会想把被对于吗呢吧啊")


@lru_cache(maxsize=1)
def _stemmer():
    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=8192)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


def content_tokens(text: str) -> set[str]:
    """Return the content tokens of ``text``: stemmed, case-folded Latin-script words
    that are not scaffold words, and CJK characters that are not function characters.
    Digits are not content (dates are rewritten by ``memory.dates``)."""
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


#: Words that put another person in a clause: pronouns and the people users talk about.
_OTHERS_EN = re.compile(
    r"\b(he|she|they|him|her|his|hers|their|them|he's|she's|they're|sister|brother|mother|mom|"
    r"mum|father|dad|wife|husband|son|daughter|kids?|children|child|friend|boss|colleague|"
    r"coworker|girlfriend|boyfriend|partner|neighbou?r|cousin|aunt|uncle|grandma|grandpa|"
    r"grandmother|grandfather|roommate|niece|nephew|fianc[ée]e?|sibling|parents?)\b", re.IGNORECASE)
_OTHERS_ZH = re.compile(
    r"他|她|哥哥|姐姐|弟弟|妹妹|妈妈|爸爸|母亲|父亲|老婆|老公|妻子|丈夫|儿子|女儿|孩子|朋友|同事|老板|"
    r"女朋友|男朋友|女友|男友|邻居|表哥|表姐|表妹|表弟|爷爷|奶奶|外公|外婆|室友|父母|爸妈|舅舅|叔叔|阿姨|"
    r"我妈|我爸|我哥|我姐|我弟|我妹")
#: The user as the subject: "I …", "I'm …", "我 …" (not "我的"/"我哥哥").
#: Relation words that name the person a clause is about ("my sister …", "我哥哥 …").
_KIN_EN = re.compile(
    r"\b(sister|brother|mother|mom|mum|father|dad|wife|husband|son|daughter|friend|boss|"
    r"colleague|coworker|girlfriend|boyfriend|partner|neighbou?r|cousin|aunt|uncle|grandma|"
    r"grandpa|grandmother|grandfather|roommate|niece|nephew|parents)\b", re.IGNORECASE)
_KIN_ZH = re.compile(
    r"女朋友|男朋友|哥哥|姐姐|弟弟|妹妹|妈妈|爸爸|母亲|父亲|老婆|老公|妻子|丈夫|儿子|女儿|朋友|同事|老板|"
    r"女友|男友|邻居|表哥|表姐|表妹|表弟|爷爷|奶奶|外公|外婆|室友|父母|爸妈|舅舅|叔叔|阿姨")
#: The same relations in French, Spanish, German, Italian, Portuguese as the subject at the
#: start of a clause ("Mia sorella vive a Torino e fa l'avvocata" is the sister's job; not
#: "Vivo con mi hermana": these languages drop the "I"), and Japanese / Korean ones
#: followed by their topic or subject particle (a kanji inside a Chinese word never counts)
_KIN_OTHER = re.compile(
    r"^\W*(?:(?:y|e|et|und|also|aussi|también|anche|também)\s+)?"
    r"(?:(?:mi|mia|mio|mis|ma|mon|mes|mein|meine|minha|meu|la|el|il|le|lo|a|o|die|der)\s+)?"
    r"(sœur|soeur|frère|frere|mère|père|femme|mari|fils|fille|copine|copain|"
    r"hermana|hermano|madre|padre|esposa|esposo|marido|hijo|hija|novia|novio|amiga|amigo|"
    r"schwester|bruder|mutter|vater|ehefrau|ehemann|sohn|tochter|freundin|freund|"
    r"sorella|fratello|moglie|marito|figlio|figlia|fidanzata|fidanzato|amica|amico|"
    r"irmã|irmão|mãe|pai|filho|filha|namorada|namorado)\b"
    r"|(?:姉|妹|兄|弟|母|父|妻|夫|息子|娘|友達|彼氏)(?=は|が)"
    r"|(?:언니|누나|오빠|형|동생|엄마|어머니|아빠|아버지|아내|남편|아들|딸|친구|여자친구|남자친구)(?=는|은|가|이|도)",
    re.IGNORECASE)
#: The user as subject: "I …", "I'm …", "我 …" (not "我的"/"我哥哥").
_SELF_SUBJECT = re.compile(r"\b(i|i'm|i've|i'd|i'll|im)\b", re.IGNORECASE)
_SELF_SUBJECT_ZH = re.compile(r"我(?!的|们|" + _OTHERS_ZH.pattern.replace("他|她|", "") + ")")
_CLAUSE_SPLIT = re.compile(r"[.!?。！？;；,，、\n]+|\b(?:and|but|while|whereas)\b", re.IGNORECASE)


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


