"""The write path's words, one lexicon for every module: relation words, first-person
words, small-talk words, relative-date phrases … read from data files, one per language
(``memory/data/lexicon/<code>.json``), never written as per-language rules in code.

Modules build their regexes from these lists (:func:`alternation`), so a word added to a
file is understood everywhere that kind of word is used: ``memory.search.owner`` and
``memory.write.grounding`` read the same relation words, and the speaker's own words ("I", "我",
"je", "ich" …) are one list for ``memory.search.owner``, ``memory.write.grounding`` and
``memory.write.intents``.

File shape (``memory/data/lexicon/README.md`` has the same table with examples)::

    {"language": "fr", "spaced": true, "pro_drop": false,
     "relations": {"sister": ["sœur", "soeur"], ...},
     "self_subject": ["je"], ...,
     "relative_dates": {"day": {"-1": ["hier"], ...}, ...},
     "date_format": {"day": "le {}", ...}}

``language`` is the ISO 639-1 code and must equal the file name; ``spaced`` says whether
the language separates words by spaces (then its words are matched as whole words,
``\\b…\\b``; Chinese, Japanese and Korean words are matched anywhere); ``pro_drop`` whether
it usually drops the subject pronoun (Spanish "vivo en Madrid"), so the speaker's words
cannot tell a sentence about the user from small talk. Every other key is one *kind* of
:data:`KINDS`; a language has only the kinds it needs (a kind a language lacks reads as
empty). Words are plain text as said (Latin scripts in lower case; matching ignores
case), every spelling variant listed (``"aujourd'hui"`` and ``"aujourd’hui"``): nothing is
expanded or normalised when a regex is built.

Accessors: :func:`words` (a kind's words in some languages), :func:`speaker_words`,
:func:`relations` / :func:`keys` (keyed kinds), :func:`table` (relative dates, date
formats), :func:`languages`, :func:`having`, :func:`spaced`, :func:`pro_drop`; and
:func:`alternation` / :func:`words_re` to make a regex alternation of words.

Errors: a file that is not valid JSON, lacks ``language``/``spaced``/``pro_drop``, names
another language than its file, has a kind not in :data:`KINDS` or a value of the wrong
shape raises :class:`LexiconError` at first use (the modules above read the lexicon at
import, so the error shows at start-up, naming the file), and so does an empty or
missing folder. Asking for a language without a file, or for a kind that is not in
:data:`KINDS`, raises :class:`LexiconError` too; :func:`table` raises KeyError for a
language that lacks the table (as ``memory.text.dates_intl.render`` documents).
"""
from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable
from pathlib import Path

DIR = Path(__file__).resolve().parent.parent / "data" / "lexicon"

#: kind → (shape, what it holds). Shapes: ``words`` a list of strings; ``keyed`` a dict
#: ``{key: [words]}`` whose keys are shared by every language (``"mother"``);
#: ``dates`` ``{unit: {offset: [phrases]}}`` with unit day/week/month/year and offset an
#: integer as a string; ``format`` a dict of strings.
KINDS: dict[str, tuple[str, str]] = {
    "relations": ("keyed", "people the user talks about, by relation key: 'mother' → mother, mom, 妈妈 …"),
    "short_relations": ("keyed", "one-character relations that name a person only right after 我 (我哥); "
                                 "elsewhere they are parts of other words (哥伦比亚)"),
    "roles": ("words", "relation words that are also a job or a common noun ('doctor', '老师', '对象'): "
                       "a relation only where a person is expected (owner's possessive or opening), "
                       "never when found anywhere in a clause (grounding)"),
    "relation_adjectives": ("words", "words between a possessive and a relation ('my best friend', '我最好的朋友')"),
    "third_person": ("words", "pronouns of another person ('she', '他')"),
    "and_also": ("words", "'and' / 'also' opening a clause before its subject ('y mi hermana …')"),
    "determiners": ("words", "possessives and articles before a relation word ('mia sorella', 'la madre')"),
    "subject_particles": ("words", "particles after a subject or topic ('姉は', '언니는')"),
    "clause_breaks": ("words", "conjunctions that start a new clause ('and', 'but')"),
    "self_subject": ("words", "the speaker as subject ('i', \"i'm\", '我', 'je', '私')"),
    "self_subject_informal": ("words", "informal spellings of self_subject ('im')"),
    "self_forms": ("words", "the speaker's other singular forms ('me', 'my', 'mon', '제')"),
    "self_plural": ("words", "the speaker with others ('we', 'our', 'nous', '우리')"),
    "self_prefixes": ("words", "beginnings of words that name the speaker (\"j'\", 'mein' for meine, meinem)"),
    "self_statements": ("words", "openings that make a clause a statement about the user ('i live', 'my')"),
    "likes": ("words", "liking and disliking, which name the speaker where the pronoun is dropped ('好き', 'gusta')"),
    "trivial": ("words", "acknowledgements and small talk that never carry a memory ('ok', '谢谢')"),
    "trivial_fillers": ("words", "words that only pad small talk ('thank you so much')"),
    "question_openers": ("words", "words a question starts with ('what', 'do')"),
    "question_endings": ("words", "particles or phrases a question ends with ('吗', '是不是')"),
    "request_openers": ("words", "imperatives that open a request to the assistant ('tell', '帮我')"),
    "conditionals": ("words", "words that open a hypothetical at the start of a sentence ('if', '如果', 'もし')"),
    "hypotheticals": ("words", "phrases of a hypothetical or a wish anywhere ('i wish i', 'si j'étais', '下辈子')"),
    "discourse_fillers": ("words", "fillers that may come before a conditional ('well', 'so')"),
    "weather": ("words", "talk about the weather ('天気', 'hace calor')"),
    "scaffold": ("words", "words every memory is built from, not content ('lives', 'user', 'the')"),
    "function_chars": ("words", "CJK function characters, not content (的 了 是)"),
    "relative_dates": ("dates", "relative-date phrases by unit and offset ('hier' = day -1)"),
    "date_format": ("format", "how an absolute date is written: day/week/month/year templates with {} "
                              "and the Babel (CLDR) patterns day_pattern/month_pattern"),
}
_UNITS = ("day", "week", "month", "year")
_FLAGS = ("spaced", "pro_drop")
#: the kinds that name the speaker (:func:`speaker_words`)
_SELF_KINDS = ("self_subject", "self_subject_informal", "self_forms", "self_plural")
_FORMAT_KEYS = frozenset({"day", "week", "month", "year", "day_pattern", "month_pattern"})


class LexiconError(ValueError):
    """A lexicon file is missing, not valid JSON or not of the documented shape."""


def _is_words(value) -> bool:
    return isinstance(value, list) and all(isinstance(w, str) and w.strip() for w in value)


def _has_shape(shape: str, value) -> bool:
    """True when ``value`` is of ``shape`` (see :data:`KINDS`)."""
    if shape == "words":
        return _is_words(value)
    if not isinstance(value, dict):
        return False
    if shape == "keyed":
        return all(_is_words(v) for v in value.values())
    if shape == "dates":
        return set(value) <= set(_UNITS) and all(
            isinstance(by, dict) and all(re.fullmatch(r"-?\d+", n) and _is_words(p) for n, p in by.items())
            for by in value.values())
    return set(value) == _FORMAT_KEYS and all(isinstance(v, str) for v in value.values())


def _check(path: Path, data) -> dict:
    """``data`` read from ``path`` when it has the documented shape, else LexiconError."""
    where = f"lexicon file {path.name}"
    if not isinstance(data, dict) or data.get("language") != path.stem:
        raise LexiconError(f"{where}: 'language' must be {path.stem!r}")
    for flag in _FLAGS:
        if not isinstance(data.get(flag), bool):
            raise LexiconError(f"{where}: {flag!r} must be true or false")
    for kind, value in data.items():
        if kind == "language" or kind in _FLAGS:
            continue
        if kind not in KINDS:
            raise LexiconError(f"{where}: unknown kind {kind!r} (see memory.text.lexicon.KINDS)")
        if not _has_shape(KINDS[kind][0], value):
            raise LexiconError(f"{where}: {kind!r} is not of shape {KINDS[kind][0]!r}")
    return data


@functools.cache
def _load() -> dict[str, dict]:
    """``{language: data}`` of every file in :data:`DIR`, read and checked once."""
    out = {}
    for path in sorted(DIR.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LexiconError(f"lexicon file {path.name}: {exc}") from exc
        out[path.stem] = _check(path, data)
    if not out:
        raise LexiconError(f"no lexicon files in {DIR}")
    return out


def languages() -> tuple[str, ...]:
    """The language codes that have a lexicon file, sorted."""
    return tuple(_load())


def _lang(lang: str) -> dict:
    try:
        return _load()[lang]
    except KeyError:
        raise LexiconError(f"no lexicon file for language {lang!r} in {DIR}") from None


def _kind(kind: str, *shapes: str) -> None:
    if kind not in KINDS or KINDS[kind][0] not in shapes:
        raise LexiconError(f"{kind!r} is not a lexicon kind of shape {' or '.join(shapes)}")


def spaced(lang: str) -> bool:
    """True when ``lang`` separates words by spaces (matched as whole words)."""
    return _lang(lang)["spaced"]


def pro_drop(lang: str) -> bool:
    """True when ``lang`` usually drops the subject pronoun ("Vivo en Madrid", "東京に住んで
    います"), so a sentence about the speaker need not name them."""
    return _lang(lang)["pro_drop"]


def words(kind: str, langs: Iterable[str] | None = None) -> list[str]:
    """The words of ``kind`` in ``langs`` (codes; None = every language), language by
    language in the given order, each word once. For a keyed kind
    (``relations``) the words of every key. A language without the kind adds nothing."""
    _kind(kind, "words", "keyed")
    out: list[str] = []
    for lang in languages() if langs is None else langs:
        value = _lang(lang).get(kind, [])
        out += [w for ws in value.values() for w in ws] if isinstance(value, dict) else value
    return list(dict.fromkeys(out))


def speaker_words(langs: Iterable[str] | None = None) -> list[str]:
    """The speaker's own words in ``langs``: ``self_subject``, ``self_subject_informal``,
    ``self_forms`` and ``self_plural`` ("i", "im", "my", "we", "我", "je", "nous" …)."""
    langs = None if langs is None else list(langs)
    return list(dict.fromkeys(w for kind in _SELF_KINDS for w in words(kind, langs)))


def relations(kind: str = "relations", langs: Iterable[str] | None = None) -> dict[str, dict[str, list[str]]]:
    """``{key: {language: [words]}}`` of a keyed kind (``relations`` or
    ``short_relations``) in ``langs`` (None = every language)."""
    _kind(kind, "keyed")
    out: dict[str, dict[str, list[str]]] = {}
    for lang in languages() if langs is None else langs:
        for key, ws in _lang(lang).get(kind, {}).items():
            out.setdefault(key, {})[lang] = list(ws)
    return out


def keys(kind: str = "relations", langs: Iterable[str] | None = None) -> dict[str, str]:
    """``{word (lower case): key}`` of a keyed kind: ``"mum"`` → ``"mother"``."""
    return {w.lower(): key for key, by in relations(kind, langs).items() for ws in by.values() for w in ws}


def table(kind: str, lang: str) -> dict:
    """The ``dates`` or ``format`` kind ``kind`` of ``lang`` as stored. Raises KeyError
    when ``lang`` does not have it (``memory.text.dates_intl`` covers only those that do)."""
    _kind(kind, "dates", "format")
    if lang not in _load() or kind not in _load()[lang]:
        raise KeyError(lang)
    return copy.deepcopy(_load()[lang][kind])


def having(kind: str) -> tuple[str, ...]:
    """The languages whose file has ``kind``, sorted."""
    if kind not in KINDS:
        raise LexiconError(f"{kind!r} is not a lexicon kind")
    return tuple(lang for lang, data in _load().items() if kind in data)


def alternation(items) -> str:
    """``items`` as a regex alternation of literal words: each escaped once, the longest
    first (so "妈妈" is tried before "妈" and "kids" before "kid" wherever both fit).
    Wrap it in a group yourself; an empty list gives a pattern that never matches."""
    unique = sorted(set(items), key=lambda w: (-len(w), w))
    return "|".join(map(re.escape, unique)) if unique else "(?!)"


def words_re(kind: str, langs: Iterable[str] | None = None) -> str:
    """:func:`alternation` of :func:`words` ``(kind, langs)``."""
    return alternation(words(kind, langs))
