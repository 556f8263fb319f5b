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
from memory.write import topics

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


def may_replace_home(cand, target, retag: bool = True) -> bool:
    """False when the model would replace the stored home ``target`` by candidate
    ``cand`` (its UPDATE, or the extractor's ``replaces``) although the vote said
    ``cand`` states no home ("Is in Tokyo for two weeks"); such a candidate is re-tagged
    as an ordinary fact (topic ``other``) so it is added, not taken for a second home.
    An explicit move ("Moved to Lyon last week") takes the move rule's path, which this
    does not gate: with ``retag`` False (the extractor's ``replaces``) the candidate
    keeps its topic, so "Moved to Lyon in the week of …" (dated, so the vote leans to
    "trip") still reaches that rule. True otherwise."""
    if cand.states_home is not False or topics.topic_of(target.tags) != "home":
        return True
    if not retag:
        return False
    other = topics.get("other")
    cand.topic, cand.type, cand.importance = other.name, other.type, other.importance
    cand.tags = [other.name] + [t for t in cand.tags if t not in topics.TOPICS]
    return False
