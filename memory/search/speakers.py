"""Who said an imported chat message: the ``Name:`` label a chat export puts before each message ("Caroline: I made this for a local church"), so a question naming a person ("What did Caroline make?") can prefer what that person said over messages that only address them ("Thanks, Caroline!").

Only verbatim memories (``source="raw"``: ``Memory.add(..., infer=False)``) carry a
label; a label is a capitalised name of one or two words followed by a colon and a
space at the start of the text, after an optional bracketed timestamp
("[8 May 2023] Caroline: …", "[12/05/2023, 14:03] Gina: …"). Extracted facts and
messages without a label have no speaker.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from memory.types import MemoryRecord

_NAME = r"[A-Z][\w.'-]{0,30}"
_LABEL = re.compile(rf"^\s*(?:\[[^\]\n]{{1,40}}\]\s*)?({_NAME}(?: {_NAME})?):\s")


@functools.lru_cache(maxsize=1 << 16)
def speaker_label(text: str) -> str | None:
    """The speaker label opening ``text`` ("Caroline" for "Caroline: hi"), or None.
    Cached per text."""
    m = _LABEL.match(text or "")
    return m.group(1) if m else None


def speaker_of(rec: MemoryRecord) -> str | None:
    """The speaker of a verbatim message ``rec`` (its label), or None for extracted
    facts and unlabelled text."""
    return speaker_label(rec.text) if rec.source == "raw" else None


def speakers_named(query: str, records: Iterable[MemoryRecord]) -> frozenset[str]:
    """The speakers of ``records`` that ``query`` names as a whole word (case-folded:
    "what did caroline say" names "Caroline"). Returns a frozenset of labels, empty
    when the query names none of them."""
    labels = {s for s in map(speaker_of, records) if s}
    q = (query or "").casefold()
    return frozenset(n for n in labels
                     if re.search(rf"(?<!\w){re.escape(n.casefold())}(?!\w)", q))
