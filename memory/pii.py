"""PII redaction: replace phone numbers, e-mail addresses, ID numbers and bank card
numbers with typed placeholders before text is stored or logged.

Detectors (libraries, not home-made patterns, wherever one exists):

* ``[PHONE]`` — ``phonenumbers.PhoneNumberMatcher`` (leniency ``VALID``: the number must
  be a valid number of its region) run with default regions US then CN; numbers written
  with a leading ``+`` are matched for any country. A Chinese mobile such as
  ``13812345678`` or ``138-1234-5678`` and landlines such as ``010-12345678`` are found;
  years, prices, dates and short numbers are not valid phone numbers and are left alone.
* ``[ID_NUMBER]`` — 18-character Chinese resident ID (``stdnum.cn.ric``: birth date,
  and the ISO 7064 checksum must be valid) and US Social Security numbers written
  ``123-45-6789`` (``stdnum.us.ssn``: area/group/serial rules and the SSA black list).
* ``[BANK_CARD]`` — 13–19 digits, single spaces or dashes allowed between digits, that
  pass the Luhn check (``stdnum.luhn``) and start with 2–6 (the major networks' issuer
  ranges: Mastercard 2/5, Amex/JCB/Diners 3, Visa 4, Discover/UnionPay 6). The prefix rule
  keeps 13-digit millisecond timestamps and order numbers (1 in 10 of which pass Luhn
  by chance) from being redacted; an 18-digit number shaped like a resident ID with a
  wrong checksum is not taken for a card either.
* ``[EMAIL]`` — the WHATWG HTML "valid e-mail address" grammar, with a dot required
  in the domain.

Nothing else is touched: ordinary numbers, years, prices, "3 cats", dates such as
2024-05-08 and version numbers stay as they are.
"""
from __future__ import annotations

import re
from typing import Iterable

import phonenumbers
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

# Higher wins when two findings overlap (an e-mail such as 13812345678@qq.com is an
# e-mail, not a phone; an ID number is not also a phone).
_PRIORITY = {"EMAIL": 4, "ID_NUMBER": 3, "BANK_CARD": 2, "PHONE": 1}

# WHATWG HTML spec, "valid e-mail address" (local part and labels), domain needs a dot.
_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9.!#$%&'*+/=?^_`{|}~-])"
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,63}"
    r"(?![A-Za-z0-9-])"
)
# 18-char resident ID, optionally grouped 6-8-4 by spaces.
_RIC_RE = re.compile(r"(?<![0-9A-Za-z])\d{6} ?\d{8} ?\d{3}[0-9Xx](?![0-9A-Za-z])")
# US SSN with separators (9 bare digits are too often something else).
_SSN_RE = re.compile(r"(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])")
# 13-19 digits, single space/dash between any two digits.
_CARD_RE = re.compile(r"(?<![\d.,-])\d(?:[ -]?\d){12,18}(?![\d]|[.,]\d)")


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit() or ch in "Xx").upper()


def _find_emails(text: str) -> Iterable[tuple[int, int, str, str]]:
    for m in _EMAIL_RE.finditer(text):
        yield m.start(), m.end(), "EMAIL", "email"


def _find_ids(text: str) -> Iterable[tuple[int, int, str, str]]:
    for m in _RIC_RE.finditer(text):
        if ric.is_valid(_digits(m.group())):
            yield m.start(), m.end(), "ID_NUMBER", "cn_ric"
    for m in _SSN_RE.finditer(text):
        if ssn.is_valid(m.group()):
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


def _find_cards(text: str) -> Iterable[tuple[int, int, str, str]]:
    for m in _CARD_RE.finditer(text):
        number = _digits(m.group())
        if not 13 <= len(number) <= 19 or number[0] not in "23456":
            continue
        if _looks_like_ric(number):
            continue
        if luhn.is_valid(number):
            yield m.start(), m.end(), "BANK_CARD", "luhn"


def _find_phones(text: str) -> Iterable[tuple[int, int, str, str]]:
    seen: set[tuple[int, int]] = set()
    for region in PHONE_REGIONS:
        try:
            matcher = PhoneNumberMatcher(text, region, leniency=Leniency.VALID)
            for m in matcher:
                if (m.start, m.end) not in seen:
                    seen.add((m.start, m.end))
                    kind = phonenumbers.region_code_for_number(m.number) or region
                    yield m.start, m.end, "PHONE", f"phone_{kind.lower()}"
        except Exception:  # noqa: BLE001 - a library failure must not lose the text
            continue


def find_pii(text: str) -> list[dict]:
    """Return the PII found in ``text``, without the values.

    Takes a str (TypeError otherwise). Returns a list of ``{"type", "kind", "start",
    "end"}`` sorted by ``start``: ``type`` is one of EMAIL, ID_NUMBER, BANK_CARD, PHONE;
    ``kind`` names the detector (``cn_ric``, ``us_ssn``, ``luhn``, ``email``,
    ``phone_<region>``); ``start``/``end`` are character offsets into ``text``.
    Overlapping findings are resolved by priority EMAIL > ID_NUMBER > BANK_CARD > PHONE,
    then by length.
    """
    if not isinstance(text, str):
        raise TypeError(f"redact() takes a str, got {type(text).__name__}")
    if not text or not any(ch.isdigit() or ch == "@" for ch in text):
        return []
    found = [*_find_emails(text), *_find_ids(text), *_find_cards(text), *_find_phones(text)]
    found.sort(key=lambda f: (-_PRIORITY[f[2]], -(f[1] - f[0]), f[0]))
    kept: list[tuple[int, int, str, str]] = []
    for start, end, typ, kind in found:
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
    to log). Text without PII is returned unchanged. Raises TypeError for a non-str.
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
    """True if :func:`find_pii` finds anything in ``text``."""
    return bool(find_pii(text))
