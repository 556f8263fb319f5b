"""Explicit corrections: "No, I said Nantes, not Nancy", "I'm 43, not 34", "陶艺课是每周
四晚上，不是周三" fix the stored memory that holds the wrong value — LLM-free, because a
small model tends to re-extract the fact unchanged ("… as a UX researcher") and the
duplicate check then keeps the wrong one.

A correction names a wrong value Y ("not Y", "不是Y") and the right value X just before it
(the words before ", not" — as many as Y has, one more when they end with Y: "senior UX
researcher, not just UX researcher"; in Chinese the span of the preceding clause as long
as Y that shares the most characters with it, rightmost on a tie: 周四 for 周三). Every
active memory of the user that contains Y (a whole word in Latin script) and not X gets Y
replaced by X. "not Y — X" (the wrong value first) is read the same way. Extracted
candidates that mention Y are dropped: they restate the correction.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from memory.text.language import has_cjk

_EN = re.compile(r"([^.!?;,—]*?)\s*[,—]\s*(?:and\s+)?not\s+(?:just\s+|only\s+|simply\s+)?"
                 r"([\w' -]{1,40}?)\s*(?:[.!?;]|$)", re.IGNORECASE)
#: "not Dallas — Austin", "not 34 – 43" (the wrong value first; names or numbers only)
_EN_NOT_FIRST = re.compile(r"\b[Nn]ot\s+((?:[A-Z][\w'-]*|\d+)(?:\s+[A-Z][\w'-]*){0,2})\s*[—–]+\s*"
                           r"((?:[A-Z][\w'-]*|\d+)(?:\s+[A-Z][\w'-]*){0,2})(?![\w'-])")
_ZH = re.compile(r"([^。！？；]*?)[，,]\s*(?:而)?不是([^，,。！？；]{1,12})")
_WORD = re.compile(r"[\w'-]+")


@dataclass(frozen=True)
class Correction:
    """``wrong`` → ``right``, as the user said them."""

    wrong: str
    right: str


def find_corrections(text: str) -> list[Correction]:
    """Return the explicit corrections in a user's message (possibly none)."""
    out = []
    for m in _EN.finditer(text):
        wrong = " ".join(_WORD.findall(m.group(2)))
        before = _WORD.findall(m.group(1))
        n = len(wrong.split())
        if not wrong or not before or n > 4:
            continue
        right_words = before[-n:]
        if [w.casefold() for w in right_words] == [w.casefold() for w in wrong.split()] \
                and len(before) > n:
            right_words = before[-n - 1:]  # "senior UX researcher, not just UX researcher"
        right = " ".join(right_words)
        if right.casefold() != wrong.casefold():
            out.append(Correction(wrong, right))
    for m in _EN_NOT_FIRST.finditer(text):
        wrong, right = (" ".join(_WORD.findall(g)) for g in m.groups())
        if wrong.casefold() != right.casefold():
            out.append(Correction(wrong, right))
    for m in _ZH.finditer(text):
        wrong, clause = m.group(2).strip(), m.group(1).strip()
        if not wrong or len(clause) < len(wrong):
            continue
        windows = [clause[i:i + len(wrong)] for i in range(len(clause) - len(wrong) + 1)]
        best = max(range(len(windows)), key=lambda i: (len(set(windows[i]) & set(wrong)), i))
        if windows[best] != wrong:
            out.append(Correction(wrong, windows[best]))
    return out


def states_wrong_value(memory_text: str, fixes: list[Correction]) -> bool:
    """True when ``memory_text`` mentions the wrong value of one of ``fixes`` (a word in
    Latin script, a substring in Chinese): an extracted candidate like "陶艺课是每周四晚上，
    不是周三" or "Not Dallas — Austin!" restates the correction itself, which the
    correction rule has already applied."""
    for fix in fixes:
        if has_cjk(fix.wrong):
            if fix.wrong in memory_text:
                return True
        elif re.search(r"(?<![\w-])" + re.escape(fix.wrong) + r"(?![\w-])", memory_text, re.IGNORECASE):
            return True
    return False


def corrected_text(memory_text: str, fix: Correction) -> str | None:
    """Return ``memory_text`` with the wrong value replaced by the right one, or None
    when it does not state the wrong value (or already states the right one)."""
    if fix.right.casefold() in memory_text.casefold():
        return None
    if has_cjk(fix.wrong):
        return memory_text.replace(fix.wrong, fix.right) if fix.wrong in memory_text else None
    pattern = re.compile(r"(?<![\w-])" + re.escape(fix.wrong) + r"(?![\w-])", re.IGNORECASE)
    new, n = pattern.subn(fix.right, memory_text)
    return new if n else None
