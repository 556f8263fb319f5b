"""Memory topics: what a fact is about (home, job, a like, …), chosen by the extractor
from a fixed list, and what follows from it without another LLM call.

A topic fixes the memory's ``type`` and default ``importance``, becomes its first tag,
and decides which stored memories a new fact may replace: a move (topic ``home``) may
replace "Lives in Paris" but never "Is a nurse" (topic ``job``), so a change of city can
no longer erase the job. Topics marked *single* hold one current value per user (one
home, one job); the others may hold many (likes, family members, events).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    """One topic: its memory ``type``, default ``importance`` (1..5), whether the
    user has a single current value of it (``single``) and whether a new value replaces
    the stored one without asking the LLM (``replace``: an age has no "both true")."""

    name: str
    type: str
    importance: int
    single: bool = False
    #: a new value always replaces the stored one without an LLM call (an age)
    replace: bool = False


TOPICS: dict[str, Topic] = {t.name: t for t in (
    Topic("name", "profile", 5, single=True),
    Topic("age", "profile", 4, single=True, replace=True),
    Topic("home", "profile", 4, single=True),
    Topic("job", "profile", 4, single=True),
    Topic("workplace", "profile", 4, single=True),
    Topic("family", "profile", 4),
    Topic("pet", "profile", 3),
    Topic("health", "fact", 4),
    Topic("education", "profile", 3),
    Topic("like", "preference", 3),
    Topic("dislike", "preference", 3),
    Topic("habit", "fact", 3),
    Topic("plan", "task", 3),
    Topic("event", "fact", 3),
    Topic("other", "fact", 2),
)}

#: The topic names in prompt order (the extraction schema's enum).
TOPIC_NAMES: list[str] = list(TOPICS)


def topic_of(tags: list[str] | None) -> str | None:
    """Return the topic recorded in a memory's tags (its first tag that is a topic
    name), or None for memories stored before topics existed or by hand."""
    for tag in tags or []:
        if tag in TOPICS:
            return tag
    return None


def get(name: str | None) -> Topic:
    """Return the Topic called ``name``; unknown or None → ``other``."""
    return TOPICS.get(name or "", TOPICS["other"])
