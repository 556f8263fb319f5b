"""Supersede instead of delete, undo per turn, forget retention and the answerable past,
through ``Memory`` on a real SQLite file, the real embedder and a scripted
OpenAI-compatible server (extraction answers scripted by message phrase)."""
from __future__ import annotations

from datetime import timedelta

import re

import pytest

from memory import Memory
from memory.types import utcnow
from memory.write.undo import UndoError
from tests.fake_llm import ScriptedLLM, last_user_text, scripted_config, system_text
from tests.scripted_memory import facts_brain, texts

FACTS = {
    "Munich": [{"text": "Lives in Munich", "topic": "home"},
               {"text": "Works as a data engineer", "topic": "job"}],
    "Berlin": [{"text": "Lives in Berlin", "topic": "home", "replaces": "Lives in "}],
    "sushi": [{"text": "Likes sushi", "topic": "like"}],
    "smoke": [{"text": "Smokes cigarettes", "topic": "habit"}],
    "Lisbon": [{"text": "Lives in Lisbon", "topic": "home", "replaces": "Lives in "}],
}


def _brain(req):
    """``facts_brain(FACTS)``, with ``replaces`` given as a phrase: the number of the
    KNOWN line that contains it (as the model answers), else no replaces."""
    answer = facts_brain(FACTS)(req)
    if not isinstance(answer, dict) or "memories" not in answer:
        return answer
    known = re.findall(r"^KNOWN (\d+): (.*)$", last_user_text(req), re.M)
    out = []
    for item in answer["memories"]:
        item = dict(item)
        phrase = item.pop("replaces", None)
        hit = next((n for n, text in known if phrase and phrase in text), None)
        if hit:
            item["replaces"] = int(hit)
        out.append(item)
    return {"memories": out}


@pytest.fixture()
def mem(tmp_path):
    with ScriptedLLM(_brain) as llm:
        m = Memory(scripted_config(tmp_path, llm))
        m.llm_server = llm
        yield m
        m.close()


def _berlin(mem, user="lena"):
    mem.add("I'm a data engineer and I live in Munich.", user)
    return mem.add("I moved to Berlin last month.", user)


def test_an_update_keeps_the_earlier_value_as_a_superseded_memory(mem):
    changes = _berlin(mem)
    assert [(c.event, c.text, c.old_text) for c in changes] == [
        ("UPDATE", "Lives in Berlin", "Lives in Munich")]
    assert texts(mem, "lena") == ["Lives in Berlin", "Works as a data engineer"]
    [old] = mem.past("lena")
    assert (old.text, old.status, old.superseded_by) == ("Lives in Munich", "superseded", changes[0].id)
    assert old.invalid_reason and old.invalid_at is not None
    # current search never returns the earlier value; the profile names it as past
    hits = mem.search("Munich", "lena").memories
    assert "Lives in Munich" not in [h.text for h in hits]
    assert "Lives in Munich (until" in mem.profile("lena")
    assert [e.event for e in mem.history(changes[0].id, "lena")] == ["ADD", "UPDATE"]


def test_undo_takes_a_whole_turn_back_and_only_once(mem):
    first = mem.add("I'm a data engineer and I live in Munich.", "lena")
    second = mem.add("I moved to Berlin last month.", "lena")
    assert second.turn_id and second.turn_id != first.turn_id
    undone = mem.undo("lena")
    assert [(c.event, c.text, c.old_text) for c in undone] == [
        ("UNDO", "Lives in Munich", "Lives in Berlin")]
    assert undone.turn_id == second.turn_id
    assert texts(mem, "lena") == ["Lives in Munich", "Works as a data engineer"]
    assert mem.past("lena") == []  # the copy went back into the memory
    hits = mem.search("Where do I live?", "lena").memories
    assert "Lives in Munich" in [h.text for h in hits]  # its embedding came back too
    with pytest.raises(UndoError):
        mem.undo("lena", second.turn_id)
    # the next undo takes back the turn before: its ADDs are erased
    assert [c.event for c in mem.undo("lena")] == ["UNDO", "UNDO"]
    assert mem.list("lena") == []
    assert len(mem.undo("lena")) == 0  # nothing left to undo


def test_undo_refuses_a_turn_a_later_turn_changed_again(mem):
    _berlin(mem)
    first_move = mem.store.last_turn("lena")
    mem.add("Now I live in Lisbon.", "lena")
    with pytest.raises(UndoError, match="later message"):
        mem.undo("lena", first_move)
    assert texts(mem, "lena") == ["Lives in Lisbon", "Works as a data engineer"]


def test_undo_is_scoped_by_user(mem):
    mem.add("I like sushi.", "ann")
    turn = mem.add("I like sushi.", "bob").turn_id
    with pytest.raises(UndoError):
        mem.undo("ann", turn)
    assert texts(mem, "bob") == ["Likes sushi"] and texts(mem, "ann") == ["Likes sushi"]


def test_an_ended_habit_is_kept_as_past_and_undo_restores_it(mem):
    mem.add("I smoke cigarettes.", "sam")
    changes = mem.add("I don't smoke anymore.", "sam")
    assert [(c.event, c.text) for c in changes] == [("END", "Smokes cigarettes")]
    assert mem.list("sam") == []
    assert [(r.text, r.status) for r in mem.past("sam")] == [("Smokes cigarettes", "ended")]
    assert [c.event for c in mem.undo("sam", changes.turn_id)] == ["RESTORE"]
    assert texts(mem, "sam") == ["Smokes cigarettes"]
    assert mem.past("sam") == []


def test_a_rule_ends_nothing_the_model_does_not_confirm(tmp_path):
    """"I used to hate the smell of cigarettes" fires the cessation rule ("used to") on
    "Smokes cigarettes" (a shared word); the model answers "keeps", so it stays."""
    def keeps(req):
        if "You check a user's memory list" in system_text(req):
            return {"1": "keeps"}
        return _brain(req)

    with ScriptedLLM(keeps) as llm:
        m = Memory(scripted_config(tmp_path, llm))
        try:
            m.add("I smoke cigarettes.", "sam")
            changes = m.add("I used to hate the smell of cigarettes.", "sam")
            assert [c.event for c in changes if c.event != "NONE"] == []
            assert texts(m, "sam") == ["Smokes cigarettes"]
            asked = [r for r in llm.requests if "You check a user's memory list" in system_text(r.body)]
            assert len(asked) == 1 and "MEMORY 1: Smokes cigarettes" in asked[0].body["messages"][-1]["content"]
        finally:
            m.close()


def test_the_models_own_replacement_is_not_asked_again_a_rules_is(tmp_path):
    """The extractor's ``replaces`` is applied without a confirmation call (the 1.5B
    model refused real changes as often as it caught trips; ``confirm.SECOND_OPINION``);
    the move rule's proposals still are confirmed (test_atomic)."""
    with ScriptedLLM(_brain) as llm:
        m = Memory(scripted_config(tmp_path, llm))
        try:
            m.add("I live in Munich and I'm a data engineer.", "ana")
            changes = m.add("I moved to Berlin last month.", "ana")
            assert [(c.event, c.text, c.old_text) for c in changes] == [
                ("UPDATE", "Lives in Berlin", "Lives in Munich")]
            assert not [r for r in llm.requests if "You check a user's memory list" in system_text(r.body)]
        finally:
            m.close()


def test_a_trip_the_model_marks_as_the_new_home_replaces_nothing(tmp_path):
    """"Is in Tokyo for a three-week course" marked as replacing "Lives in Denver": not stated like
    a home (``reconcile.restates_kind``, cosine under the home topic's bound), so it is
    added as an ordinary fact (topic ``other``) without asking, and the home stays."""
    FACTS["Tokyo"] = [{"text": "Is in Tokyo for a three-week course", "topic": "home",
                       "replaces": "Lives in "}]
    FACTS["Denver"] = [{"text": "Lives in Denver", "topic": "home"}]

    def reconcile_says_update(req):
        if "You keep a user's memory list" in system_text(req):
            return {"action": "UPDATE", "id": "a"}
        return _brain(req)

    try:
        with ScriptedLLM(reconcile_says_update) as llm:
            m = Memory(scripted_config(tmp_path, llm))
            try:
                m.add("I live in Denver.", "kai")
                changes = m.add("I'm spending two weeks in Tokyo for a course.", "kai")
                assert [(c.event, c.text) for c in changes] == [("ADD", "Is in Tokyo for a three-week course")]
                assert texts(m, "kai") == ["Is in Tokyo for a three-week course", "Lives in Denver"]
                trip = next(r for r in m.list("kai") if "Tokyo" in r.text)
                assert trip.tags[0] == "other" and m.past("kai") == []
            finally:
                m.close()
    finally:
        del FACTS["Tokyo"], FACTS["Denver"]


def test_a_correction_rewrites_nothing_the_model_does_not_confirm(tmp_path):
    FACTS["tea"] = [{"text": "Likes drinking tea", "topic": "like"}]

    def keeps(req):
        if "You check a user's memory list" in system_text(req):
            return {"1": "keeps"}
        return _brain(req)

    try:
        with ScriptedLLM(keeps) as llm:
            m = Memory(scripted_config(tmp_path, llm))
            try:
                m.add("I like drinking tea.", "tom")
                m.add("Today I want hot chocolate, not tea.", "tom")
                asked = [r for r in llm.requests
                         if "You check a user's memory list" in system_text(r.body)]
                assert len(asked) == 1  # the "X, not Y" rule proposed a rewrite
                assert texts(m, "tom") == ["Likes drinking tea"]
                assert m.past("tom") == []
            finally:
                m.close()
    finally:
        del FACTS["tea"]


def test_a_chat_forget_is_a_tombstone_undo_restores_it_and_retention_erases_it(mem):
    mem.add("I like sushi.", "kim")
    forget = mem.add("Please forget that I like sushi.", "kim")
    assert [c.event for c in forget] == ["FORGET"]
    assert mem.list("kim") == [] and mem.search("sushi", "kim").memories == []
    assert mem.past("kim") == []  # never used to answer questions about the past
    [gone] = mem.past("kim", forgotten=True)
    assert gone.text == "Likes sushi"
    mem.undo("kim", forget.turn_id)
    assert texts(mem, "kim") == ["Likes sushi"]
    # forgotten again, then past the retention: erased for good at the next write
    mem.add("Please forget that I like sushi.", "kim")
    n = mem.store.purge_forgotten("kim", utcnow() + timedelta(hours=1))
    assert n == 1 and mem.past("kim", forgotten=True) == []
    assert mem.store.get_any_memory("kim", gone.id) is None


def test_retention_zero_erases_at_the_next_write(tmp_path):
    with ScriptedLLM(_brain) as llm:
        m = Memory(scripted_config(tmp_path, llm, memory_forget_retention_hours=0))
        try:
            m.add("I like sushi.", "kim")
            m.add("Please forget that I like sushi.", "kim")
            assert len(m.past("kim", forgotten=True)) == 1
            m.add("hello", "kim")
            assert m.past("kim", forgotten=True) == []
        finally:
            m.close()


def test_an_explicit_delete_erases_the_memory_and_its_earlier_values(mem):
    changes = _berlin(mem)
    assert mem.delete(changes[0].id, "lena")
    assert mem.past("lena") == []
    assert [e.event for e in mem.history(changes[0].id, "lena")][-1] == "DELETE"


def test_a_question_about_the_past_is_answered_from_the_earlier_value(mem):
    _berlin(mem)
    turn = mem.chat("Where did I live before Berlin?", "lena")
    turn.run()
    assert [m.text for m in turn.used.past] == ["Lives in Munich"]
    system = turn.prompt[0]["content"]
    assert "Earlier, the user: Lives in Munich" in system and "No longer true" in system
    now = mem.chat("What's my job?", "lena")
    now.run()
    assert now.used.past == []  # a question about the present gets no past


def test_changes_of_an_undone_bare_forget_have_no_turn_to_undo(mem):
    _berlin(mem)
    bare = mem.add("forget that", "lena")
    assert [c.event for c in bare] == ["UNDO"] and bare.turn_id is None


def test_extraction_requests_are_not_sent_for_undo(mem):
    _berlin(mem)
    n = len(mem.llm_server.requests)
    mem.undo("lena")
    assert len(mem.llm_server.requests) == n
    assert all("You extract memories" not in system_text(r.body)
               for r in mem.llm_server.requests[n:])
