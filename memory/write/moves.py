"""Moves: a user who moves to another city no longer works in the old one, unless they
say so — LLM-free.

"I'm Dana, a firefighter in Denver" stores "Is a firefighter" and "Works in Denver"
(``memory.write.atomic``). "We relocated to Portland over the summer. I still fight fires,
just for a new department now." replaces the home, but the workplace has its own topic
and would stay "Works in Denver" forever. So when a turn moves the user (a candidate
says "moved/relocated to …", "搬去/搬到 …", or replaces the stored home), a stored
workplace that is only a city ("Works in Denver", "在西安工作") is retired (DELETE with
history) — unless the user's message names that city again ("… but I still work in
Denver"). A workplace that names an employer ("Works at Google") is never touched.
"""
from __future__ import annotations

import re

from memory.write import topics
from memory.write.stated import MOVED_ZH, city_of
from memory.write.grounding import mentions_someone_else

_MOVED = re.compile(r"\b(?:moved|moving|relocated|relocating|now (?:lives|living|based))\b"
                    rf"|{MOVED_ZH}|现在住在|引っ越|이사(?:했|하|를|갔|왔|해)", re.IGNORECASE)


def says_moved(text: str) -> bool:
    """True when memory text ``text`` says the user moved ("Moved to Lyon last week",
    "Now living in Houston", "搬去了厦门"), not just where they live."""
    return bool(_MOVED.search(text)) and not mentions_someone_else(text)


def moves_home(decisions) -> bool:
    """True when a turn's reconciliation ``decisions`` (``memory.write.reconcile.Decision``)
    move the user: a kept candidate says the user moved, or one updates the stored
    home."""
    for d in decisions:
        text = d.candidate.text
        if d.action in ("ADD", "UPDATE") and says_moved(text):
            return True
        if d.action == "UPDATE" and d.target is not None and topics.topic_of(d.target.tags) == "home":
            return True
    return False


def left_behind(records, user_text: str) -> list:
    """Return the ``records`` (stored memories) a move leaves behind: the user's own
    workplace memories that are only a city ``user_text`` does not name. Call it for a
    turn that moves the user (``moves_home``)."""
    said = user_text.casefold()
    out = []
    for rec in records:
        if topics.topic_of(rec.tags) != "workplace" or mentions_someone_else(rec.text):
            continue
        place = city_of(rec.text)
        if place and place.casefold() not in said:
            out.append(rec)
    return out
