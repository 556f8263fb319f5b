"""The past is answerable: questions about what used to be true ("Where did I live before
Cardiff?", "我以前做什么工作？") are answered from memories that are no longer current.

When the write path replaces or ends a memory it keeps the earlier value as a
``superseded`` or ``ended`` row (``memory.write.versions``). Current search never returns those.
For a chat message that asks about the user's own past — decided language-neutrally by a
k-nearest-neighbour vote on the multilingual embedder over labelled examples
(``memory/data/past_questions.json``; held-out check ``tests/data/past_questions_heldout.json``)
— :func:`recall` adds the past memories nearest to the message, and the prompt shows them
with their period, marked as no longer current (``memory.chat.prompt``). Forgotten memories
are never recalled.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from memory.embed.knn import ExampleClassifier
from memory.types import PAST_STATUSES, ScoredMemory

DATA = Path(__file__).resolve().parent.parent / "data" / "past_questions.json"

#: the vote over :data:`DATA` ("past" = asks about the user's own past)
CLASSIFIER = ExampleClassifier(DATA, yes="past", no="other", k=3, margin=0.0)

#: past memories given to the model for one message, at most
MAX_PAST = 4
#: past memories compared with the message, the most recently ended first
SCAN = 300
#: cosine similarity (query embedding vs memory embedding) a past memory needs to be
#: recalled; low, because "Where did I live before?" shares little with "Lives in Bristol"
MIN_SIMILARITY = 0.2


def asks_about_past(embedder, text: str) -> bool:
    """True when ``text`` (a chat message) asks about the user's own past."""
    return bool(text.strip()) and CLASSIFIER.classify(embedder, [text[:1000]])[0]


def recall(mem, uid: str, text: str, limit: int = MAX_PAST) -> list[ScoredMemory]:
    """The past memories of ``uid`` (superseded, ended) nearest to ``text`` when it asks
    about the user's past, best first, at most ``limit``; [] otherwise or when the user
    has none (then nothing is embedded and no vector is read: this runs on every chat
    turn)."""
    if not mem.store.past_memories(uid, statuses=PAST_STATUSES, limit=1):
        return []  # most users, most turns: no embedding, no vector read
    if not asks_about_past(mem.embedder, text):
        return []
    records = [r for r in mem.store.past_memories(uid, statuses=PAST_STATUSES, limit=SCAN,
                                                  with_embedding=True)
               if r.embedding is not None]
    query = np.asarray(mem.embedder.embed_query(text[:1000]), dtype=np.float32)
    sims = np.asarray([r.embedding for r in records], dtype=np.float32) @ query
    order = np.argsort(-sims)[:limit]
    return [ScoredMemory(records[i], float(sims[i])) for i in order
            if sims[i] >= MIN_SIMILARITY]
