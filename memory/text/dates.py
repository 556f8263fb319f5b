"""Relative dates in memories made absolute: "moved to Lyon last week" stored on
2026-11-27 becomes "moved to Lyon in the week of November 16, 2026", "上个月搬到北京" becomes
"2026年10月搬到北京".

A memory outlives the day it was said, so "yesterday" must not stay relative. The
extraction prompt asks the model to keep time words as the user said them (a 1.5B model
computes dates unreliably); this module resolves them against the turn's date with
calendar arithmetic (``dateutil.relativedelta``). English and Chinese expressions are
covered here, seven more languages in ``memory.text.dates_intl``; a phrase it does not know
is left as written.

Precision follows the phrase: a day ("yesterday", "3 days ago", "昨天") → a date; a week
→ "the week of <Monday>"; a month → year-month; a year → the year.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from dateutil.relativedelta import relativedelta

from memory.text import dates_intl

_EN_NUM = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
           "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
           "a couple of": 2, "a few": 3}
_ZH_NUM = {"一": 1, "两": 2, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
           "九": 9, "十": 10, "几": 3}
_UNIT = {"day": "day", "days": "day", "week": "week", "weeks": "week", "month": "month",
         "months": "month", "year": "year", "years": "year",
         "天": "day", "日": "day", "周": "week", "星期": "week", "个星期": "week", "礼拜": "week",
         "个礼拜": "week", "月": "month", "个月": "month", "年": "year"}

_EN_FIXED = {
    "the day before yesterday": ("day", -2), "the day after tomorrow": ("day", 2),
    "yesterday": ("day", -1), "today": ("day", 0), "tomorrow": ("day", 1),
    "tonight": ("day", 0), "this morning": ("day", 0),
    "last week": ("week", -1), "this week": ("week", 0), "next week": ("week", 1),
    "last weekend": ("week", -1), "this weekend": ("week", 0), "next weekend": ("week", 1),
    "last month": ("month", -1), "this month": ("month", 0), "next month": ("month", 1),
    "last year": ("year", -1), "this year": ("year", 0), "next year": ("year", 1),
}
_ZH_FIXED = {
    "大前天": ("day", -3), "前天": ("day", -2), "昨天": ("day", -1), "昨晚": ("day", -1),
    "今天": ("day", 0), "今晚": ("day", 0), "明天": ("day", 1), "后天": ("day", 2),
    "上上周": ("week", -2), "上周": ("week", -1), "上个星期": ("week", -1), "上星期": ("week", -1),
    "上个礼拜": ("week", -1), "这周": ("week", 0), "本周": ("week", 0), "这个星期": ("week", 0),
    "下周": ("week", 1), "下个星期": ("week", 1), "下星期": ("week", 1), "上个周末": ("week", -1),
    "上上个月": ("month", -2), "上个月": ("month", -1), "上月": ("month", -1), "这个月": ("month", 0),
    "本月": ("month", 0), "下个月": ("month", 1), "下月": ("month", 1),
    "前年": ("year", -2), "去年": ("year", -1), "今年": ("year", 0), "明年": ("year", 1),
    "后年": ("year", 2),
}
_EN_AGO = re.compile(
    r"\b(\d{1,3}|a couple of|a few|an?|one|two|three|four|five|six|seven|eight|nine|ten|"
    r"eleven|twelve)\s+(days?|weeks?|months?|years?)\s+(ago|from now)\b"
    r"|\bin\s+(\d{1,3}|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
    r"\s+(days?|weeks?|months?|years?)\b", re.IGNORECASE)
_ZH_AGO = re.compile(r"([0-9]{1,3}|[一两二三四五六七八九十几]{1,2})\s*(个星期|个礼拜|个月|天|日|周|星期|月|年)"
                     r"(前|之前|以前|后|之后|以后)")
_EN_FIXED_RE = re.compile(r"\b((?:since|from|until|till|before|after|by)\s+)?("
                          + "|".join(sorted(map(re.escape, _EN_FIXED), key=len, reverse=True))
                          + r")\b", re.IGNORECASE)
_ZH_WEEKDAY = re.compile(r"(上上|上|这|本|下)(个)?(周|星期|礼拜)([一二三四五六日天])")
_EN_WEEKDAY = re.compile(r"\b(last|this|next)\s+(monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
                         re.IGNORECASE)
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_ZH_WEEKDAYS = "一二三四五六日"
_ZH_FIXED_RE = re.compile("|".join(sorted(map(re.escape, _ZH_FIXED), key=len, reverse=True)))


def _zh_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    if len(text) == 2 and text[0] == "十":
        return 10 + _ZH_NUM.get(text[1], 0)
    if len(text) == 2 and text[1] == "十":
        return _ZH_NUM.get(text[0], 1) * 10
    return _ZH_NUM.get(text, 1)


def _shift(today: date, unit: str, n: int) -> date:
    if unit == "day":
        return today + timedelta(days=n)
    if unit == "week":
        return today + timedelta(weeks=n)
    if unit == "month":
        return today + relativedelta(months=n)
    return today + relativedelta(years=n)


_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]


def _render(day: date, unit: str, zh: bool, exact_days: bool = False) -> str:
    """Chinese: 2026年11月26日 / 2026年10月 / 2025年; English, spelled out so people and
    models read it alike: November 26, 2026 / October 2026 / 2025."""
    if unit == "day" or exact_days:
        return f"{day.year}年{day.month}月{day.day}日" if zh else f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"
    if unit == "week":
        monday = day - timedelta(days=day.weekday())
        return f"{_render(monday, 'day', zh)}那一周" if zh else f"the week of {_render(monday, 'day', zh)}"
    if unit == "month":
        return f"{day.year}年{day.month}月" if zh else f"{_MONTHS[day.month - 1]} {day.year}"
    return f"{day.year}年" if zh else str(day.year)


def _en_prefix(unit: str) -> str:
    return {"day": "on ", "week": "in ", "month": "in ", "year": "in "}[unit]


def resolve_relative_dates(text: str, today: datetime | date, lang: str | None = None) -> str:
    """Return ``text`` with relative time expressions replaced by absolute ones,
    computed from ``today`` (a date, or a datetime whose date is used). ``lang``: the
    ISO 639-1 code of the user's message; French, Spanish, German, Italian, Portuguese,
    Japanese and Korean phrases are resolved too when it names one of them
    (``memory.text.dates_intl``: "le mois dernier" → "en octobre 2026").

    English phrases get a preposition ("last week" → "in the week of November 16, 2026",
    "yesterday" → "on November 26, 2026", "3 years ago" → "in 2023"); Chinese ones are
    replaced in place ("上个月" → "2026年10月", "三天前" → "2026年11月24日"). Text without
    such a phrase is returned unchanged. Never raises for odd input.
    """
    day = today.date() if isinstance(today, datetime) else today

    def en_fixed(m: re.Match) -> str:
        unit, n = _EN_FIXED[m.group(2).lower()]
        prefix = m.group(1) or _en_prefix(unit)  # "since last month" → "since 2026-10"
        return prefix + _render(_shift(day, unit, n), unit, zh=False)

    def en_ago(m: re.Match) -> str:
        if m.group(1):
            num, unit_word, sign = m.group(1).lower(), m.group(2).lower(), -1 if m.group(3).lower() == "ago" else 1
        else:
            num, unit_word, sign = m.group(4).lower(), m.group(5).lower(), 1
        n = int(num) if num.isdigit() else _EN_NUM.get(num, 1)
        unit = _UNIT[unit_word]
        # "3 weeks ago" is a day-ish point in time; months and years keep their grain
        shown = "day" if unit in ("day", "week") else unit
        return _en_prefix(shown) + _render(_shift(day, unit, sign * n), shown, zh=False)

    def zh_fixed(m: re.Match) -> str:
        unit, n = _ZH_FIXED[m.group(0)]
        return _render(_shift(day, unit, n), unit, zh=True)

    def zh_ago(m: re.Match) -> str:
        n, unit = _zh_number(m.group(1)), _UNIT[m.group(2)]
        sign = -1 if m.group(3) in ("前", "之前", "以前") else 1
        shown = "day" if unit in ("day", "week") else unit
        return _render(_shift(day, unit, sign * n), shown, zh=True)

    def zh_weekday(m: re.Match) -> str:
        weeks = {"上上": -2, "上": -1, "这": 0, "本": 0, "下": 1}[m.group(1)]
        wd = 6 if m.group(4) in "日天" else _ZH_WEEKDAYS.index(m.group(4))
        monday = day - timedelta(days=day.weekday()) + timedelta(weeks=weeks)
        return _render(monday + timedelta(days=wd), "day", zh=True)

    def en_weekday(m: re.Match) -> str:
        wd = _WEEKDAYS.index(m.group(2).lower())
        which = m.group(1).lower()
        if which == "last":  # the most recent such day before today
            back = (day.weekday() - wd) % 7 or 7
            return "on " + _render(day - timedelta(days=back), "day", zh=False)
        ahead = (wd - day.weekday()) % 7 or 7
        if which == "next" and ahead <= (6 - day.weekday()):
            ahead += 7 if day.weekday() < wd else 0
        return "on " + _render(day + timedelta(days=ahead), "day", zh=False)

    try:
        out = _ZH_WEEKDAY.sub(zh_weekday, text)
        out = _EN_WEEKDAY.sub(en_weekday, out)
        out = _EN_AGO.sub(en_ago, out)
        out = _EN_FIXED_RE.sub(en_fixed, out)
        out = _ZH_AGO.sub(zh_ago, out)
        out = _ZH_FIXED_RE.sub(zh_fixed, out)
        if lang in dates_intl.LANGUAGES:
            out = dates_intl.resolve(out, day, lang, _shift)
    except (ValueError, OverflowError):
        return text
    return re.sub(r"\b(on|in) (on|in) ", r"\1 ", out)
