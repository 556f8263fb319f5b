"""Constraints: memories every reply must respect — a diet, an allergy or intolerance, a
health condition that limits food or activity, an accessibility need, a never/always
rule ("Is vegetarian", "对花生过敏", "Uses a wheelchair", "Never flies").

Recognised at write time without an LLM call and without per-language rules: a
k-nearest-neighbour vote on the multilingual embedder that already embeds every memory,
against labelled examples shipped as data (``memory/data/constraints.json``). A memory
that is a constraint gets the tag ``constraint`` (and importance at least 4); the
profile lists constraints first under their own heading, so they reach every prompt
whatever the retrieval ranking. Checked on a held-out set in 14 languages
(``tests/data/constraints_heldout.json``, ``tests/test_constraints.py``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from memory.embed.knn import ExampleClassifier

#: the tag a constraint memory carries (``MemoryRecord.tags``)
TAG = "constraint"
#: importance given to a constraint (1..5): it outranks likes and events
IMPORTANCE = 4
#: neighbours per side in the vote
K = 3
#: a memory is a constraint when its mean cosine similarity to its K nearest constraint
#: examples exceeds that to its K nearest other examples by more than this margin
#: (0.0 = plain nearest-side vote; raise it to trade recall for precision)
MARGIN = 0.0

DATA = Path(__file__).resolve().parent.parent / "data" / "constraints.json"

#: the vote (``memory.embed.knn``) over the labelled examples of :data:`DATA`
CLASSIFIER = ExampleClassifier(DATA, yes="constraint", no="other", k=K, margin=MARGIN)


def examples(path: Path = DATA) -> tuple[list[str], list[str]]:
    """The labelled example texts ``(constraints, others)`` from the data file."""
    return ExampleClassifier(path, "constraint", "other").examples()


def scores(embedder, vectors: np.ndarray) -> np.ndarray:
    """Constraint scores of memories whose document embeddings by ``embedder`` are the
    rows of ``vectors`` (shape ``(n, dim)``, unit length): mean cosine similarity to the
    ``K`` nearest constraint examples minus that to the ``K`` nearest other examples.
    Returns shape ``(n,)``; > ``MARGIN`` means constraint."""
    return CLASSIFIER.scores(embedder, vectors)


def are_constraints(embedder, vectors: np.ndarray) -> list[bool]:
    """For each row of ``vectors`` (see ``scores``): is that memory a constraint?"""
    return CLASSIFIER.decide(embedder, vectors)


def classify(embedder, texts: list[str]) -> list[bool]:
    """Embed ``texts`` as documents with ``embedder`` and classify each (``are_constraints``)."""
    return CLASSIFIER.classify(embedder, texts)


def mark(candidates: list, embedder, vectors: np.ndarray) -> None:
    """Mark the extracted ``candidates`` (objects with ``tags``, ``importance`` and
    ``type``) whose embeddings (rows of ``vectors``, same order) are constraints: ``TAG``
    is added after the topic tag, importance raised to ``IMPORTANCE`` and the type set to
    ``profile`` (a constraint is a profile detail: the profile, in every prompt, is
    rebuilt when it changes). Changes them in place."""
    for cand, yes in zip(candidates, are_constraints(embedder, vectors)):
        if yes:
            if TAG not in cand.tags:
                cand.tags = (list(cand.tags) + [TAG])[:8]
            cand.importance = max(cand.importance, IMPORTANCE)
            cand.type = "profile"


def is_constraint(tags: list[str] | None) -> bool:
    """True when a stored memory's ``tags`` mark it as a constraint."""
    return TAG in (tags or [])
