"""Relative dates in French, Spanish, German, Italian, Portuguese, Japanese and Korean
memories made absolute: "Déménagé à Marseille le mois dernier" stored on 2026-11-27
becomes "Déménagé à Marseille en octobre 2026", "先月大阪に引っ越した" becomes
"2026年10月大阪に引っ越した" (``memory.dates`` does English and Chinese).

Only the common fixed phrases of each language (yesterday, last week, last month, last
year, this …, next …); the phrase is replaced together with its article, by the absolute
date with the preposition the language uses ("le mois dernier" → "en octobre 2026",
"letzten Monat" → "im Oktober 2026"). Month names come from Babel's CLDR data
(``babel.dates.format_date``). A table applies only to text of its language (the
message's language, ``memory.language.detect``): German "hier" means "here", not the
French "yesterday".
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Callable

#: unit → (day, week, month, year) rendering per language: a template with ``{}`` for the
#: Babel-formatted date (CLDR pattern) or, for ja/ko, digits.
_LATIN = {
    # lang: (day template, day pattern, week template, month template, month pattern, year template)
    "fr": ("le {}", "d MMMM y", "la semaine du {}", "en {}", "LLLL y", "en {}"),
    "es": ("el {}", "d 'de' MMMM 'de' y", "la semana del {}", "en {}", "MMMM 'de' y", "en {}"),
    "de": ("am {}", "d. MMMM y", "in der Woche vom {}", "im {}", "LLLL y", "im Jahr {}"),
    "it": ("il {}", "d MMMM y", "la settimana del {}", "a {}", "LLLL y", "nel {}"),
    "pt": ("em {}", "d 'de' MMMM 'de' y", "na semana de {}", "em {}", "MMMM 'de' y", "em {}"),
}

_D, _W, _M, _Y = "day", "week", "month", "year"
#: lang → {phrase (regex): (unit, offset)}
_PHRASES: dict[str, dict[str, tuple[str, int]]] = {
    "fr": {r"avant-hier": (_D, -2), r"hier": (_D, -1), r"aujourd['’]hui": (_D, 0),
           r"après-demain": (_D, 2), r"demain": (_D, 1),
           r"la semaine (?:dernière|passée)": (_W, -1), r"cette semaine": (_W, 0),
           r"la semaine prochaine": (_W, 1),
           r"le mois (?:dernier|passé)": (_M, -1), r"ce mois-ci": (_M, 0), r"le mois prochain": (_M, 1),
           r"l['’](?:année|an) (?:dernière?|passée?)": (_Y, -1), r"cette année": (_Y, 0),
           r"l['’](?:année|an) prochaine?": (_Y, 1)},
    "es": {r"anteayer": (_D, -2), r"ayer": (_D, -1), r"hoy": (_D, 0), r"pasado mañana": (_D, 2),
           r"la semana pasada": (_W, -1), r"esta semana": (_W, 0),
           r"la (?:semana que viene|próxima semana)": (_W, 1),
           r"el mes pasado": (_M, -1), r"este mes": (_M, 0), r"el (?:mes que viene|próximo mes)": (_M, 1),
           r"el año pasado": (_Y, -1), r"este año": (_Y, 0), r"el (?:año que viene|próximo año)": (_Y, 1)},
    "de": {r"vorgestern": (_D, -2), r"gestern": (_D, -1), r"heute": (_D, 0), r"übermorgen": (_D, 2),
           r"(?:letzte|vergangene|vorige) Woche": (_W, -1), r"diese Woche": (_W, 0),
           r"nächste Woche": (_W, 1),
           r"(?:letzten|vergangenen|vorigen) Monat": (_M, -1), r"diesen Monat": (_M, 0),
           r"nächsten Monat": (_M, 1),
           r"(?:letztes|vergangenes|voriges) Jahr": (_Y, -1), r"dieses Jahr": (_Y, 0),
           r"nächstes Jahr": (_Y, 1)},
    "it": {r"l['’]altro ?ieri": (_D, -2), r"ieri": (_D, -1), r"oggi": (_D, 0), r"dopodomani": (_D, 2),
           r"domani": (_D, 1),
           r"la settimana (?:scorsa|passata)": (_W, -1), r"questa settimana": (_W, 0),
           r"la (?:settimana prossima|prossima settimana)": (_W, 1),
           r"il mese (?:scorso|passato)": (_M, -1), r"questo mese": (_M, 0),
           r"il (?:mese prossimo|prossimo mese)": (_M, 1),
           r"l['’]anno (?:scorso|passato)": (_Y, -1), r"quest['’]anno": (_Y, 0),
           r"l['’]anno prossimo|il prossimo anno": (_Y, 1)},
    "pt": {r"anteontem": (_D, -2), r"ontem": (_D, -1), r"hoje": (_D, 0), r"amanhã": (_D, 1),
           r"(?:na |a )?semana passada": (_W, -1), r"(?:n)?esta semana": (_W, 0),
           r"(?:na |a )?próxima semana|a semana que vem": (_W, 1),
           r"(?:no |o )?mês passado": (_M, -1), r"(?:n)?este mês": (_M, 0),
           r"(?:no |o )?próximo mês|o mês que vem": (_M, 1),
           r"(?:no |o )?ano passado": (_Y, -1), r"(?:n)?este ano": (_Y, 0),
           r"(?:no |o )?próximo ano|o ano que vem": (_Y, 1)},
    "ja": {r"一昨日|おととい": (_D, -2), r"昨日|きのう": (_D, -1), r"今日|きょう": (_D, 0),
           r"明日|あした": (_D, 1), r"先週": (_W, -1), r"今週": (_W, 0), r"来週": (_W, 1),
           r"先月": (_M, -1), r"今月": (_M, 0), r"来月": (_M, 1),
           r"去年|昨年": (_Y, -1), r"今年": (_Y, 0), r"来年": (_Y, 1)},
    "ko": {r"그저께|그제": (_D, -2), r"어제": (_D, -1), r"오늘": (_D, 0), r"내일": (_D, 1),
           r"지난 ?주": (_W, -1), r"이번 ?주": (_W, 0), r"다음 ?주": (_W, 1),
           r"지난 ?달": (_M, -1), r"이번 ?달": (_M, 0), r"다음 ?달": (_M, 1),
           r"작년|지난해": (_Y, -1), r"올해": (_Y, 0), r"내년": (_Y, 1)},
}
LANGUAGES = frozenset(_PHRASES)


def _compile(lang: str) -> re.Pattern:
    alternatives = sorted(_PHRASES[lang], key=len, reverse=True)
    body = "|".join(f"(?:{p})" for p in alternatives)
    if lang in _LATIN:  # whole words only ("ayer" is not inside "playera")
        return re.compile(rf"(?<![\w'’-])(?:{body})(?![\w'’-])", re.IGNORECASE)
    return re.compile(body)


_COMPILED = {lang: _compile(lang) for lang in _PHRASES}


def _lookup(lang: str, said: str) -> tuple[str, int]:
    for pattern, value in _PHRASES[lang].items():
        if re.fullmatch(pattern, said, re.IGNORECASE):
            return value
    raise ValueError(said)  # pragma: no cover - the compiled alternation only matches these


def render(day: date, unit: str, lang: str) -> str:
    """``day`` at the grain ``unit`` ("day" / "week" / "month" / "year") as written in
    ``lang`` with its preposition: fr month → "en octobre 2026", de day → "am 5. Oktober
    2026", ja month → "2026年10月", ko day → "2026년 10월 5일". A week is named by its
    Monday. Raises KeyError for a language not in ``LANGUAGES``."""
    if unit == "week":
        day = day - timedelta(days=day.weekday())
    if lang in ("ja", "ko"):
        y, m, d = ("年", "月", "日") if lang == "ja" else ("년 ", "월 ", "일")
        shown = {"day": f"{day.year}{y}{day.month}{m}{day.day}{d}", "week": f"{day.year}{y}{day.month}{m}{day.day}{d}",
                 "month": f"{day.year}{y}{day.month}{m}".strip(), "year": f"{day.year}{y}".strip()}[unit]
        return shown + ("の週" if lang == "ja" else " 주") if unit == "week" else shown
    from babel.dates import format_date

    day_t, day_p, week_t, month_t, month_p, year_t = _LATIN[lang]
    if unit == "day":
        return day_t.format(format_date(day, day_p, locale=lang))
    if unit == "week":
        return week_t.format(format_date(day, day_p, locale=lang))
    if unit == "month":
        return month_t.format(format_date(day, month_p, locale=lang))
    return year_t.format(day.year)


def resolve(text: str, day: date, lang: str, shift: Callable[[date, str, int], date]) -> str:
    """``text`` with the relative-date phrases of ``lang`` replaced by absolute dates
    computed from ``day`` with ``shift(day, unit, n)`` (``memory.dates``' calendar
    arithmetic). Text of a language without a table is returned unchanged."""
    rx = _COMPILED.get(lang)
    if rx is None:
        return text

    def sub(m: re.Match) -> str:
        unit, n = _lookup(lang, m.group(0))
        return render(shift(day, unit, n), unit, lang)

    return rx.sub(sub, text)
