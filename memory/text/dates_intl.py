"""Relative dates in French, Spanish, German, Italian, Portuguese, Japanese and Korean
memories made absolute: "Déménagé à Marseille le mois dernier" stored on 2026-11-27
becomes "Déménagé à Marseille en octobre 2026", "先月大阪に引っ越した" becomes
"2026年10月大阪に引っ越した" (``memory.text.dates`` does English and Chinese).

Only the common fixed phrases of each language (yesterday, last week, last month, last
year, this …, next …); the phrase is replaced together with its article, by the absolute
date with the preposition the language uses ("le mois dernier" → "en octobre 2026",
"letzten Monat" → "im Oktober 2026"). Month names come from Babel's CLDR data
(``babel.dates.format_date``). A table applies only to text of its language (the
message's language, ``memory.text.language.detect``): German "hier" means "here", not the
French "yesterday".

The phrases (``relative_dates``) and how a date is written in each language
(``date_format``: the template with its preposition and the CLDR pattern) are data, in
``memory/data/lexicon/<language>.json`` (``memory.text.lexicon``); a language is covered when its
file has both.
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Callable

from memory.text import lexicon

#: lang → {phrase: (unit, offset)}: the ``relative_dates`` of ``memory.text.lexicon``
#: ("hier" → ("day", -1), "la semaine prochaine" → ("week", 1))
_PHRASES: dict[str, dict[str, tuple[str, int]]] = {
    lang: {phrase: (unit, int(n)) for unit, by in lexicon.table("relative_dates", lang).items()
           for n, phrases in by.items() for phrase in phrases}
    for lang in lexicon.having("relative_dates") if lang in lexicon.having("date_format")}
LANGUAGES = frozenset(_PHRASES)


def _compile(lang: str) -> re.Pattern:
    body = lexicon.alternation(_PHRASES[lang])
    if lexicon.spaced(lang):  # whole words only ("ayer" is not inside "playera")
        return re.compile(rf"(?<![\w'’-])(?:{body})(?![\w'’-])", re.IGNORECASE)
    return re.compile(body)


_COMPILED = {lang: _compile(lang) for lang in _PHRASES}
#: phrase (case-folded) -> (unit, offset), per language: what a match means
_BY_KEY = {lang: {p.casefold(): v for p, v in phrases.items()} for lang, phrases in _PHRASES.items()}


def _lookup(lang: str, said: str) -> tuple[str, int]:
    """``(unit, offset)`` of the phrase ``said`` (as matched by ``_COMPILED[lang]``)."""
    found = _BY_KEY[lang].get(said.casefold())
    if found is not None:
        return found
    raise ValueError(said)  # pragma: no cover - the compiled alternation only matches these


def render(day: date, unit: str, lang: str) -> str:
    """``day`` at the grain ``unit`` ("day" / "week" / "month" / "year") as written in
    ``lang`` with its preposition: fr month → "en octobre 2026", de day → "am 5. Oktober
    2026", ja month → "2026年10月", ko day → "2026년 10월 5일". A week is named by its
    Monday. Raises KeyError for a language not in ``LANGUAGES``."""
    if unit == "week":
        day = day - timedelta(days=day.weekday())
    shown = lexicon.table("date_format", lang)
    if unit == "year":
        return shown["year"].format(day.year)
    from babel.dates import format_date

    pattern = shown["month_pattern"] if unit == "month" else shown["day_pattern"]
    return shown[unit].format(format_date(day, pattern, locale=lang))


def resolve(text: str, day: date, lang: str, shift: Callable[[date, str, int], date]) -> str:
    """``text`` with the relative-date phrases of ``lang`` replaced by absolute dates
    computed from ``day`` with ``shift(day, unit, n)`` (``memory.text.dates``' calendar
    arithmetic). Text of a language without a table is returned unchanged."""
    rx = _COMPILED.get(lang)
    if rx is None:
        return text

    def sub(m: re.Match) -> str:
        unit, n = _lookup(lang, m.group(0))
        return render(shift(day, unit, n), unit, lang)

    return rx.sub(sub, text)
