"""memory.write.constraints: constraints (diet, allergy, health limits, accessibility,
never/always rules) recognised by a k-NN vote on the multilingual embedder, checked on a
held-out set in 14 languages that the examples were not tuned on."""
from __future__ import annotations

import json
from pathlib import Path

from memory.write import constraints

HELDOUT = Path(__file__).resolve().parent / "data" / "constraints_heldout.json"


def test_held_out_constraints_are_recognised_in_many_languages(embedder):
    data = json.loads(HELDOUT.read_text(encoding="utf-8"))
    yes = constraints.classify(embedder, data["constraint"])
    no = constraints.classify(embedder, data["other"])
    recall = sum(yes) / len(yes)
    false_alarms = sum(no) / len(no)
    missed = [t for t, y in zip(data["constraint"], yes) if not y]
    wrong = [t for t, y in zip(data["other"], no) if y]
    # first and only held-out run (K=3, margin 0 chosen by leave-one-out on the
    # examples, .953): recall 29/30 (missed the Vietnamese one), false alarms 3/30
    # (a Dutch and a Vietnamese liking, "Is reading a book about nutrition")
    assert recall >= 0.85, (recall, missed)
    assert false_alarms <= 0.10, (false_alarms, wrong)


def test_training_examples_are_distinct_from_the_held_out_set():
    yes, no = constraints.examples()
    held = json.loads(HELDOUT.read_text(encoding="utf-8"))
    assert not (set(yes) | set(no)) & (set(held["constraint"]) | set(held["other"]))


def test_mark_tags_constraints_and_raises_importance(embedder):
    class Cand:
        def __init__(self, text):
            self.text, self.tags, self.importance = text, ["other"], 2

    cands = [Cand("Is allergic to shellfish"), Cand("Likes shellfish")]
    constraints.mark(cands, embedder, embedder.embed_documents([c.text for c in cands]))
    assert cands[0].tags == ["other", "constraint"] and cands[0].importance == 4
    assert cands[1].tags == ["other"] and cands[1].importance == 2
    assert constraints.is_constraint(cands[0].tags)
    assert constraints.classify(embedder, []) == []


# ------------------------------------------------------------------ through Memory
import pytest  # noqa: E402

from memory.chat.prompt import build_prompt  # noqa: E402
from tests.scripted_memory import scripted_memory  # noqa: E402


@pytest.fixture
def mem(tmp_path):
    yield from scripted_memory(tmp_path, {
        "vegetarian": [{"text": "Is vegetarian", "topic": "health"},
                       {"text": "Loves hiking", "topic": "like"}],
        "Leeds": [{"text": "Lives in Leeds", "topic": "home"}],
    })


def test_a_constraint_learned_in_chat_is_tagged_and_heads_the_profile(mem):
    mem.add("I'm vegetarian and I love hiking.", "ola")
    mem.add("I live in Leeds.", "ola")
    rec = {r.text: r for r in mem.list("ola")}
    assert "constraint" in rec["Is vegetarian"].tags and rec["Is vegetarian"].type == "profile"
    assert "constraint" not in rec["Loves hiking"].tags
    profile = mem.profile("ola")
    assert profile.startswith("Always respect:\n- Is vegetarian\n")
    assert "About:\n- Lives in Leeds" in profile and "- Is vegetarian" not in profile.split("About:")[1]


def test_the_constraint_reaches_the_prompt_whatever_retrieval_ranks(mem):
    mem.add("I'm vegetarian and I love hiking.", "ola")
    turn = mem.chat("Any idea for dinner tonight?", "ola")
    system = turn.prompt[0]["content"]
    assert "Always respect:\n- The user: Is vegetarian" in system
    assert "you are not the user" in system
    assert "Since you love" not in system  # no example that reads like a user's fact


def test_an_older_value_of_a_one_value_topic_is_marked_as_past(mem):
    from datetime import timedelta

    from memory.types import utcnow
    then = utcnow() - timedelta(days=60)
    mem.add("Lives in Paris", "pia", infer=False, memory_type="profile", tags=["home"],
            created_at=then)
    mem.add("Moved to Lyon", "pia", infer=False, memory_type="profile", tags=["home"])
    mem.add("Has two sisters", "pia", infer=False, memory_type="profile", tags=["family"],
            created_at=then)   # a many-value topic: never 'earlier'
    profile = mem.profile("pia")
    about, earlier = profile.split("Earlier, no longer current:")
    assert "- Moved to Lyon" in about and "- Has two sisters" in about
    assert "Lives in Paris" not in about
    assert earlier.strip() == f"- Lives in Paris (until {then:%Y-%m})"
