"""Calendar dates named in a search query ("in July 2023", "on 13 October, 2023", "2023年5月") as created_at windows, so search can prefer memories written in that period instead of matching the date's words.

A memory is written when something is said, usually on or shortly after the day it is
about, so a period ``[start, end)`` named by the query matches memories created in
``[start, end + lag)`` (:meth:`QueryDates.matches`; the lag is a search weight). Only
absolute dates are read: a day (``October 13, 2023``, ``13 October 2023``,
``2023-10-13``, ``2023年10月13日``; "August 11" takes the year of another date of the
query, or else stands for its month), a month with or without year (``July 2023``,
``in June``, ``2023年5月``, ``5月``) and a year (``in 2023``, ``2023年``); relative ones
("last year") depend on when the question is asked and are left to the text.

Questions *about* time ("When did …", "How long …", "什么时候") are told apart by
:func:`asks_when`, and the memories that could answer them — those that say when:
"yesterday", "two weeks ago", "for 3 years", "every morning", "上个月" — by
:func:`has_time_reference`.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"]
_MONTH_NO = {m: i for i, m in enumerate(_MONTHS, start=1)}
_MONTH_NO.update({m[:3]: i for i, m in enumerate(_MONTHS, start=1) if m != "may"})
_MON = r"(january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\.?"
_YEAR = r"((?:19|20)\d\d)"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"

# (pattern, kind) in priority order; groups give the fields named by kind
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"\b{_MON}\s+{_DAY}(?:,\s*|\s+){_YEAR}\b", re.I), "mdy"),
    (re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MON}(?:,\s*|\s+){_YEAR}\b", re.I), "dmy"),
    (re.compile(r"\b((?:19|20)\d\d)-(\d{1,2})-(\d{1,2})\b"), "ymd"),
    (re.compile(r"((?:19|20)\d\d)\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]"), "ymd"),
    (re.compile(rf"\b{_MON}\s*,?\s+{_YEAR}\b", re.I), "my"),
    (re.compile(r"((?:19|20)\d\d)\s*年\s*(\d{1,2})\s*月(?:份)?"), "ym"),
    # a day without a year ("between August 11 and August 15 2023"): the year of a date
    # found before it, else its month
    (re.compile(rf"\b{_MON}\s+{_DAY}\b(?!\s*:)", re.I), "md"),
    (re.compile(rf"\b(?:on\s+)?(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MON}\b", re.I), "dm"),
    (re.compile(rf"\b(?:in|during|of|since|by)\s+(?:early\s+|late\s+|mid-?\s*)?{_YEAR}\b",
                re.I), "y"),
    (re.compile(r"((?:19|20)\d\d)\s*年"), "y"),
    # a month without a year only after a preposition ("in June", not "may I")
    (re.compile(rf"\b(?:in|during|of)\s+(?:early\s+|late\s+|mid-?\s*)?{_MON}\b", re.I), "m"),
    (re.compile(r"(?<!\d)(\d{1,2})\s*月(?:份)?(?!\d)"), "m_num"),
]


@dataclass
class QueryDates:
    """The dated periods a query names: ``periods`` = ``[(start, end)]`` (aware UTC,
    end exclusive) and ``months`` = month numbers named without a year. ``text`` is the
    query with the date expressions removed (what the text search should match)."""

    text: str
    periods: list[tuple[datetime, datetime]] = field(default_factory=list)
    months: set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.periods or self.months)

    def window(self, lag_days: float) -> tuple[datetime, datetime] | None:
        """The created_at range ``(since, until)`` covering every dated period plus the
        lag, or None when only yearless months were named."""
        if not self.periods:
            return None
        lag = timedelta(days=lag_days)
        return min(s for s, _ in self.periods), max(e for _, e in self.periods) + lag

    def matches(self, created_at: datetime, lag_days: float) -> bool:
        """True when ``created_at`` lies in a named period or up to ``lag_days`` after
        it (a yearless month matches that month of any year, and the lag after it)."""
        lag = timedelta(days=lag_days)
        if any(s <= created_at < e + lag for s, e in self.periods):
            return True
        return any(created_at.month == m or (created_at - lag).month == m
                   for m in self.months)


def _month_span(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=timezone.utc)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=timezone.utc)
    return start, end


def _month(name: str) -> int | None:
    name = name.lower().rstrip(".")
    return _MONTH_NO.get(name) or _MONTH_NO.get(name[:3]) if name != "may" else 5


def parse_query_dates(query: str) -> QueryDates:
    """Find the absolute dates in ``query`` (English or Chinese; see the module
    docstring). Returns a :class:`QueryDates` (falsy when none was found); impossible
    dates (``February 30, 2023``) are ignored but still removed from the text."""
    text = query or ""
    periods: list[tuple[datetime, datetime]] = []
    months: set[int] = set()
    for pattern, kind in _PATTERNS:
        for m in list(pattern.finditer(text)):
            g = m.groups()
            try:
                if kind in ("mdy", "dmy", "ymd"):
                    if kind == "mdy":
                        mon, day, year = _month(g[0]), int(g[1]), int(g[2])
                    elif kind == "dmy":
                        day, mon, year = int(g[0]), _month(g[1]), int(g[2])
                    else:
                        year, mon, day = int(g[0]), int(g[1]), int(g[2])
                    start = datetime(year, mon, day, tzinfo=timezone.utc)
                    periods.append((start, start + timedelta(days=1)))
                elif kind in ("md", "dm"):
                    mon, day = (_month(g[0]), int(g[1])) if kind == "md" else (_month(g[1]), int(g[0]))
                    if periods:
                        start = datetime(periods[0][0].year, mon, day, tzinfo=timezone.utc)
                        periods.append((start, start + timedelta(days=1)))
                    else:
                        datetime(2000, mon, day)  # a real day of that month, or ValueError
                        months.add(mon)
                elif kind in ("my", "ym"):
                    mon, year = (_month(g[0]), int(g[1])) if kind == "my" else (int(g[1]), int(g[0]))
                    periods.append(_month_span(year, mon))
                elif kind == "y":
                    year = int(g[0])
                    periods.append((datetime(year, 1, 1, tzinfo=timezone.utc),
                                    datetime(year + 1, 1, 1, tzinfo=timezone.utc)))
                else:
                    mon = _month(g[0]) if kind == "m" else int(g[0])
                    if not 1 <= mon <= 12:
                        raise ValueError(mon)
                    months.add(mon)
            except (TypeError, ValueError):
                pass
            text = text.replace(m.group(0), " ", 1)
    return QueryDates(" ".join(text.split()), periods, months)


# ---- questions about time, and the memories that answer them ------------------------

_NUM = r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|a few|few|several|couple of|a couple of)"
_UNIT = r"(?:days?|weeks?|months?|years?|hours?|weekends?)"
_DAYNAME = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|wed|thu|fri|sat|sun)"
_TIME_QUESTION = re.compile(
    r"\b(?:when|how long|since when|what (?:date|day|time|year|month)|which (?:date|day|year|month))\b"
    r"|什么时候|何时|哪天|哪一天|哪年|哪一年|几月|几号|几点|多久|多长时间", re.I)
_ZH_NUM = r"[0-9一二三四五六七八九十两几]"
_TIME_REFERENCE = re.compile(
    rf"\b(?:yesterday|today|tonight|tomorrow|ago|lately|o'clock"
    rf"|(?:last|next|this|past|coming|the other|every) (?:{_DAYNAME}|{_UNIT}|night|morning|evening|afternoon|summer|winter|spring|fall|autumn|day)"
    rf"|{_NUM} {_UNIT}(?: ago| now| later)?"
    rf"|since (?:(?:19|20)\d\d|{_NUM} {_UNIT}|i was)"
    rf"|\d{{1,2}}(?::\d\d)?\s*(?:am|pm|a\.m\.|p\.m\.)"
    rf"|{_DAYNAME}(?:day)?s?|{_MON}\s+\d{{1,2}}|(?:19|20)\d\d)(?!\w)"
    r"|昨天|前天|今天|明天|后天|上周|上个?星期|上个?月|去年|前年|下周|下个?月|明年|今年|周末|最近"
    r"|早上|上午|中午|下午|晚上|凌晨|每(?:天|日|周|星期|个?月|年)"
    rf"|[上下这]周[一二三四五六日天]|星期[一二三四五六日天]|周[一二三四五六日]"
    rf"|{_ZH_NUM}+\s*(?:年|月|日|号|点|岁)|{_ZH_NUM}+\s*(?:天|周|个月|年)前",
    re.I)


def asks_when(query: str) -> bool:
    """True when ``query`` asks about time ("When did …", "How long has …", "什么时候 …",
    "多久"): its answer is likely a memory that says when (:func:`has_time_reference`)."""
    return bool(_TIME_QUESTION.search(query or ""))


@functools.lru_cache(maxsize=1 << 16)
def has_time_reference(text: str) -> bool:
    """True when memory ``text`` says when something happened or how long it lasted:
    a relative day ("yesterday", "last Friday", "two weeks ago", "昨天", "上个月"), a
    duration ("for 3 years"), a habit's time ("every morning", "at 6 am", "每天早上六点"),
    a weekday, a month and day, a month or a year ("十二月", "2023"). Cached per text."""
    return bool(_TIME_REFERENCE.search(text or ""))
