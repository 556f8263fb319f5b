"""PII redaction: replace phone numbers, e-mail addresses, ID numbers and bank card
numbers with typed placeholders before text is stored or logged. Fails closed.

Detectors (libraries, not home-made patterns, wherever one exists):

* ``[PHONE]`` — ``phonenumbers.PhoneNumberMatcher`` (leniency ``VALID``: the number must
  be a valid number of its region) run with default regions US then CN; numbers written
  with a leading ``+`` are matched for any country. A Chinese mobile such as
  ``13812345678`` or ``138-1234-5678`` and landlines such as ``010-12345678`` are found;
  years, prices, dates and short numbers are not valid phone numbers and are left alone.
* ``[ID_NUMBER]`` — 18-character Chinese resident ID (``stdnum.cn.ric``: birth date,
  and the ISO 7064 checksum must be valid; written whole or grouped 6-8-4 by spaces or
  dashes) and US Social Security numbers written ``123-45-6789`` or ``123 45 6789``
  (``stdnum.us.ssn`` on the digits: area/group/serial rules and the SSA black list).
* ``[BANK_CARD]`` — 13–19 digits, single spaces or dashes allowed between digits, that
  pass the Luhn check (``stdnum.luhn``) and start with 2–6 (the major networks' issuer
  ranges: Mastercard 2/5, Amex/JCB/Diners 3, Visa 4, Discover/UnionPay 6). The prefix rule
  keeps 13-digit millisecond timestamps and order numbers (1 in 10 of which pass Luhn
  by chance) from being redacted; an 18-digit number shaped like a resident ID with a
  wrong checksum is not taken for a card either.
* ``[EMAIL]`` — candidates ``local@domain`` (Unicode allowed, so ``张三@例子.中国``) are
  validated by ``email_validator.validate_email`` (RFC 5321/6531 syntax, IDNA 2008
  domains, a dot required in the domain; no DNS lookup). A local part that mixes
  another script with ASCII (``邮箱zs@example.cn``) keeps only its ASCII tail, and an
  ASCII domain stops at the first non-ASCII character (``zs@example.cn谢谢``).

Detection also sees through two disguises, on a same-length copy of the text (offsets
stay valid): non-ASCII decimal digits (full-width ``１３８…``) read as ASCII digits, and
a Latin word glued to the front of a number (``tel13812345678``, ``ID110101…``) is read
as if a space separated them. A number glued to letters on *both* sides (an order
code such as ``A13812345678B``) is left alone.

Fail closed: if any detector raises (a library bug, a pathological input), ``find_pii``
and ``redact`` raise :class:`PIIError` (a ValueError) instead of returning the text
unredacted; callers refuse the write. Nothing else is touched: ordinary numbers, years,
prices, "3 cats", dates such as 2024-05-08 and version numbers stay as they are.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Callable, Iterable

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import Leniency, PhoneNumberMatcher
from stdnum import luhn
from stdnum.cn import ric
from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.us import ssn

PLACEHOLDERS = {
    "EMAIL": "[EMAIL]",
    "ID_NUMBER": "[ID_NUMBER]",
    "BANK_CARD": "[BANK_CARD]",
    "PHONE": "[PHONE]",
}

#: regions whose national formats are recognised without a "+" prefix
PHONE_REGIONS: tuple[str, ...] = ("US", "CN")

Finding = tuple[int, int, str, str]  # start, end, type, kind


class PIIError(ValueError):
    """A PII detector failed, so the text could not be checked; the caller must refuse
    to store it. ``str(exc)`` is one line naming the detector (never the text)."""


# Higher wins when two findings overlap (an e-mail such as 13812345678@qq.com is an
# e-mail, not a phone; an ID number is not also a phone).
_PRIORITY = {"EMAIL": 4, "ID_NUMBER": 3, "BANK_CARD": 2, "PHONE": 1}

# An e-mail candidate: no whitespace, no ASCII/CJK punctuation that cannot be in an
# address; ``email_validator`` decides.
_EMAIL_STOP = r"\s@<>()\[\]{},;:\"'`|\\，。；：、！？（）《》「」【】“”‘’"
_EMAIL_CAND = re.compile(rf"[^{_EMAIL_STOP}]+@[^{_EMAIL_STOP}]+")
# 18-char resident ID, optionally grouped 6-8-4 by spaces or dashes (one kind).
_RIC_RE = re.compile(r"(?<![0-9A-Za-z])\d{6}([ -]?)\d{8}\1\d{3}[0-9Xx](?![0-9A-Za-z])")
# US SSN with separators, dashes or spaces (9 bare digits are too often something else).
_SSN_RE = re.compile(r"(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])")
# 13-19 digits, single space/dash between any two digits.
_CARD_RE = re.compile(r"(?<![\d.,-])\d(?:[ -]?\d){12,18}(?![\d]|[.,]\d)")
# A Latin word glued in front of a (possibly +) number, at the start of a word.
_GLUED_WORD = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]+(?=\+?\d)")


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit() or ch in "Xx").upper()


def _detection_copy(text: str) -> str:
    """``text`` with the same length: non-ASCII decimal digits as ASCII, and Latin
    words glued to the front of a number blanked (see the module docstring)."""
    out = "".join(str(unicodedata.decimal(ch)) if not ch.isascii() and ch.isdecimal() else ch
                  for ch in text)
    return _GLUED_WORD.sub(lambda m: " " * len(m.group()), out)


def _trim_email(local: str, domain: str) -> tuple[int, int]:
    """How many characters to drop from the front of ``local`` and the end of
    ``domain`` (mixed-script rule of the module docstring; trailing punctuation)."""
    cut_front = 0
    if local and local[-1].isascii() and not local.isascii():
        i = len(local)
        while i and local[i - 1].isascii():
            i -= 1
        cut_front = i
    keep = len(domain)
    if domain and domain[0].isascii():
        keep = next((i for i, ch in enumerate(domain) if not ch.isascii()), len(domain))
    while keep and not domain[keep - 1].isalnum():  # "…co.uk!", "…cn."
        keep -= 1
    return cut_front, len(domain) - keep


def _find_emails(text: str) -> Iterable[Finding]:
    for m in _EMAIL_CAND.finditer(text):
        local, domain = m.group().split("@", 1)
        front, back = _trim_email(local, domain)
        start, end = m.start() + front, m.end() - back
        candidate = text[start:end]
        if "@" not in candidate or candidate.startswith("@") or candidate.endswith("@"):
            continue
        try:
            validate_email(candidate, check_deliverability=False)
        except EmailNotValidError:
            continue
        yield start, end, "EMAIL", "email"


def _find_ids(text: str) -> Iterable[Finding]:
    for m in _RIC_RE.finditer(text):
        if ric.is_valid(_digits(m.group())):
            yield m.start(), m.end(), "ID_NUMBER", "cn_ric"
    for m in _SSN_RE.finditer(text):
        if ssn.is_valid(_digits(m.group())):
            yield m.start(), m.end(), "ID_NUMBER", "us_ssn"


def _looks_like_ric(number: str) -> bool:
    """True for an 18-digit number that is a resident ID in every part but the
    checksum (a mistyped ID, not a card)."""
    if len(number) != 18:
        return False
    try:
        ric.validate(number)
    except InvalidChecksum:
        return True
    except ValidationError:
        return False
    return True


def _find_cards(text: str) -> Iterable[Finding]:
    for m in _CARD_RE.finditer(text):
        number = _digits(m.group())
        if not 13 <= len(number) <= 19 or number[0] not in "23456":
            continue
        if _looks_like_ric(number):
            continue
        if luhn.is_valid(number):
            yield m.start(), m.end(), "BANK_CARD", "luhn"


def _find_phones(text: str) -> Iterable[Finding]:
    seen: set[tuple[int, int]] = set()
    for region in PHONE_REGIONS:
        for m in PhoneNumberMatcher(text, region, leniency=Leniency.VALID):
            if (m.start, m.end) not in seen:
                seen.add((m.start, m.end))
                kind = phonenumbers.region_code_for_number(m.number) or region
                yield m.start, m.end, "PHONE", f"phone_{kind.lower()}"


_DETECTORS: tuple[tuple[str, Callable[[str], Iterable[Finding]]], ...] = (
    ("email", _find_emails), ("id number", _find_ids), ("bank card", _find_cards),
    ("phone", _find_phones))


def _run(name: str, detector: Callable[[str], Iterable[Finding]], text: str) -> list[Finding]:
    try:
        return list(detector(text))
    except Exception as exc:  # noqa: BLE001 - fail closed: no check, no write
        raise PIIError(f"PII check failed ({name} detector: {type(exc).__name__}); "
                       "the text was not stored") from exc


def find_pii(text: str) -> list[dict]:
    """Return the PII found in ``text``, without the values.

    Takes a str (TypeError otherwise). Returns a list of ``{"type", "kind", "start",
    "end"}`` sorted by ``start``: ``type`` is one of EMAIL, ID_NUMBER, BANK_CARD, PHONE;
    ``kind`` names the detector (``cn_ric``, ``us_ssn``, ``luhn``, ``email``,
    ``phone_<region>``); ``start``/``end`` are character offsets into ``text``.
    Overlapping findings are resolved by priority EMAIL > ID_NUMBER > BANK_CARD > PHONE,
    then by length. Raises PIIError (a ValueError) if a detector fails.
    """
    if not isinstance(text, str):
        raise TypeError(f"redact() takes a str, got {type(text).__name__}")
    if not text or not any(ch.isdigit() or ch == "@" for ch in text):
        return []
    views = [text]
    copy = _detection_copy(text)
    if copy != text:
        views.append(copy)
    found: set[Finding] = set()
    for view in views:
        for name, detector in _DETECTORS:
            found.update(_run(name, detector, view))
    ordered = sorted(found, key=lambda f: (-_PRIORITY[f[2]], -(f[1] - f[0]), f[0], f[3]))
    kept: list[Finding] = []
    for start, end, typ, kind in ordered:
        if all(end <= k[0] or start >= k[1] for k in kept):
            kept.append((start, end, typ, kind))
    kept.sort()
    return [{"type": typ, "kind": kind, "start": start, "end": end}
            for start, end, typ, kind in kept]


def redact(text: str) -> tuple[str, list[dict]]:
    """Replace PII in ``text`` with typed placeholders.

    Returns ``(redacted_text, findings)``: every phone number becomes ``[PHONE]``, every
    e-mail ``[EMAIL]``, every valid Chinese resident ID / US SSN ``[ID_NUMBER]`` and
    every Luhn-valid card number ``[BANK_CARD]``; ``findings`` is :func:`find_pii`'s
    list (type, kind and span in the *original* text — never the value, so it is safe
    to log). Text without PII is returned unchanged. Raises TypeError for a non-str and
    PIIError (a ValueError) when a detector fails: the text is then never returned.
    """
    findings = find_pii(text)
    if not findings:
        return text, []
    parts: list[str] = []
    pos = 0
    for f in findings:
        parts.append(text[pos:f["start"]])
        parts.append(PLACEHOLDERS[f["type"]])
        pos = f["end"]
    parts.append(text[pos:])
    return "".join(parts), findings


def contains_pii(text: str) -> bool:
    """True if :func:`find_pii` finds anything in ``text`` (PIIError if it cannot tell)."""
    return bool(find_pii(text))
