"""Is a memory the extractor tagged ``home`` really the user's home? A trip is not a move.

The small model tags "Is in Tokyo for two weeks" or "Spending the weekend in Rome" with
the topic ``home`` and marks it as replacing the stored home; a confirmation call does not
catch it (on the false-positive set's tune split the model confirmed every such trip as
the end of the home; bench/README.md). The multilingual embedder does: a k-nearest-
neighbour vote (``memory.embed.knn``) over labelled examples in ten languages
(``memory/data/home_statements.json``: where the user lives, an address, a move for good,
against trips, visits, stays and plans) decides, before reconciliation, whether a ``home``
candidate states a home (``mark``). One that does not may not replace the stored home by
the model's word (``may_replace_home``, asked by ``memory.write.reconcile``): it is added
as an ordinary fact (topic ``other``) instead.

The margin leans towards "home" (-0.03): a real home wrongly kept as a home goes on to the
model and its confirmation as before, while the trips of the dev probes score -0.04 and
lower. Leave-one-out on the examples: 2 of 59 wrong at margin 0.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from memory.embed.knn import ExampleClassifier
from memory.write import constraints, topics

DATA = Path(__file__).resolve().parent.parent / "data" / "home_statements.json"

#: the vote over :data:`DATA` ("home" = says where the user lives now)
CLASSIFIER = ExampleClassifier(DATA, yes="home", no="other", k=3, margin=-0.03)


def mark(candidates: list, embedder, vectors: np.ndarray) -> None:
    """Set ``states_home`` on the extracted ``candidates`` (``memory.write.extract
    .Candidate``) of topic ``home``, in place, from the vote on their embeddings (rows
    of ``vectors``, same order, unit length); the others keep None. No embedding of
    theirs is made: the examples' vectors are computed once per embedder."""
    rows = [i for i, c in enumerate(candidates) if c.topic == "home"]
    if not rows:
        return
    verdicts = CLASSIFIER.decide(embedder, np.asarray(vectors, dtype=np.float32)[rows])
    for i, is_home in zip(rows, verdicts):
        candidates[i].states_home = bool(is_home)


def may_replace_home(cand, target) -> bool:
    """False when the model would replace the stored home ``target`` (a
    ``MemoryRecord``) by candidate ``cand`` (its UPDATE, or the extractor's
    ``replaces``) although the vote (``mark``) said ``cand`` states no home ("Is in
    Tokyo for two weeks"); True otherwise. No side effect: a refused candidate the
    caller adds is first made an ordinary fact with ``demote``."""
    return cand.states_home is not False or topics.topic_of(target.tags) != "home"


def demote(cand) -> None:
    """Make ``cand`` an ordinary fact (topic, type and importance of ``other``, its topic
    tag replaced), in place: a trip refused as the new home is added, not kept as a
    second home. An explicit move ("Moved to Lyon in the week of …", dated, so the vote
    leans to "trip") is not demoted when only the extractor's ``replaces`` is dropped:
    it still reaches the move rule (``memory.write.reconcile.find_related``)."""
    other = topics.get("other")
    cand.topic, cand.type, cand.importance = other.name, other.type, other.importance
    cand.tags = [other.name] + [t for t in cand.tags if t not in topics.TOPICS]


def mark_all(candidates: list, embedder, vectors: np.ndarray) -> None:
    """The write path's two votes on the embedder for freshly extracted ``candidates``
    (rows of ``vectors``, same order): constraints (``memory.write.constraints.mark``)
    and homes (``mark``), in place; for a chat turn and a document alike."""
    constraints.mark(candidates, embedder, vectors)
    mark(candidates, embedder, vectors)
