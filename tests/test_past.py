"""memory.search.past: questions about the user's own past recognised by a k-NN vote on the
multilingual embedder (memory/data/past_questions.json), checked on a held-out set in
other languages and wordings that the examples were not tuned on."""
from __future__ import annotations

import json
from pathlib import Path

from memory.search import past

HELDOUT = Path(__file__).resolve().parent / "data" / "past_questions_heldout.json"


def test_held_out_past_questions_are_recognised(embedder):
    data = json.loads(HELDOUT.read_text(encoding="utf-8"))
    yes = past.CLASSIFIER.classify(embedder, data["past"])
    no = past.CLASSIFIER.classify(embedder, data["other"])
    recall = sum(yes) / len(yes)
    false_alarms = sum(no) / len(no)
    missed = [t for t, y in zip(data["past"], yes) if not y]
    wrong = [t for t, y in zip(data["other"], no) if y]
    # thresholds written before the first and only held-out run (K=3, margin 0; the
    # examples' leave-one-out accuracy was .86): a false alarm only shows the model past
    # values marked as past, a miss leaves a question about the past unanswered.
    # That run: recall 27/30 (missed two Vietnamese, one Indonesian), false alarms 3/30
    # (a Vietnamese and a Hindi history question, a Hindi present-tense twin)
    assert recall >= 0.75, (recall, missed)
    assert false_alarms <= 0.25, (false_alarms, wrong)


def test_training_examples_are_distinct_from_the_held_out_set():
    yes, no = past.CLASSIFIER.examples()
    held = json.loads(HELDOUT.read_text(encoding="utf-8"))
    assert not (set(yes) | set(no)) & (set(held["past"]) | set(held["other"]))
    assert len(yes) >= 60 and len(no) >= 80
