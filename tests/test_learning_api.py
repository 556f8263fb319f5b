"""The write path's rules through the public API: forgetting, short answers, changed
habits, corrections, moves, ages, graduations and the extraction retry, each through
``Memory.add`` on a real SQLite file with the real embedder and a scripted
OpenAI-compatible server (the LLM-free rules themselves: ``test_learning_rules``)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from memory.types import MemoryRecord
from tests.fake_llm import last_user_text, system_text
from tests.scripted_memory import scripted_memory, texts


def test_a_forget_request_never_matches_through_a_function_word(mem):
    with _with_facts({"Faccio il cuoco": [{"text": "Faccio il cuoco", "topic": "job"},
                                          {"text": "Mi piace molto il calcio", "topic": "like"}]}):
        mem.add("Faccio il cuoco e mi piace molto il calcio.", "luca")
    changes = mem.add("Dimentica che mi piace il calcio.", "luca")
    assert [(c.event, c.text) for c in changes] == [("FORGET", "Mi piace molto il calcio")]
    assert texts(mem, "luca") == ["Faccio il cuoco"]  # "il" named nothing


def test_a_spanish_forget_request_deletes_through_the_api(mem):
    with _with_facts({"Vivo en Madrid": [{"text": "Vive en Madrid", "topic": "home"},
                                         {"text": "Trabaja como profesor", "topic": "job"}]}):
        mem.add("Vivo en Madrid y trabajo como profesor.", "diego")
    n = len(mem.llm_server.requests)
    changes = mem.add("Olvida que vivo en Madrid.", "diego")
    assert [(c.event, c.text) for c in changes] == [("FORGET", "Vive en Madrid")]
    assert texts(mem, "diego") == ["Trabaja como profesor"]
    assert len(mem.llm_server.requests) == n  # no LLM call: it never reaches extraction


FACTS = {
    "sushi": [{"text": "Likes sushi", "topic": "like"}, {"text": "Lives in Oslo", "topic": "home"}],
    "Bergen": [{"text": "Lives in Bergen", "topic": "home", "replaces": 1}],
    "cat": [{"text": "Has a cat named Miso", "topic": "pet"}],
    "Lyon": [{"text": "Lives in Lyon", "topic": "home"}],
}


@pytest.fixture()
def mem(tmp_path):
    yield from scripted_memory(tmp_path, FACTS)


def test_forget_by_name_deletes_only_that_memory_and_history_says_the_user(mem):
    mem.add("I like sushi and I live in Oslo.", "ann")
    mem.add("I have a cat.", "bob")
    changes = mem.add("Please forget that I like sushi.", "ann")
    assert [c.event for c in changes] == ["FORGET"] and changes[0].text == "Likes sushi"
    assert texts(mem, "ann") == ["Lives in Oslo"]
    assert [e.actor for e in mem.history(changes[0].id, "ann")] == ["llm", "user"]
    assert texts(mem, "bob") == ["Has a cat named Miso"]  # another user's rows untouched
    assert mem.add("Forget that I like jazz.", "ann") == []  # nothing matches: nothing deleted
    assert texts(mem, "ann") == ["Lives in Oslo"]


def test_bare_forget_undoes_the_last_turn(mem):
    mem.add("I like sushi and I live in Oslo.", "ann")
    mem.add("I moved, I live in Bergen now.", "ann")
    assert texts(mem, "ann") == ["Likes sushi", "Lives in Bergen"]
    changes = mem.add("别记这个", "ann")
    assert [c.event for c in changes] == ["UNDO"]
    assert texts(mem, "ann") == ["Likes sushi", "Lives in Oslo"]  # the move is undone
    assert mem.past("ann") == []  # the superseded copy of Oslo went with the undo


def test_a_short_answer_is_read_with_the_assistants_question(mem):
    turn = mem.chat("Hi!", "cat-owner")
    turn.run()
    assert turn.changes() == []
    msgs = [{"role": "assistant", "content": "Where do you live?"}, {"role": "user", "content": "Lyon."}]
    assert [c.text for c in mem.add(msgs, "cat-owner")] == ["Lives in Lyon"]
    prompt = [r.body for r in mem.llm_server.requests if "You extract memories" in system_text(r.body)][-1]
    assert "Where do you live?" in last_user_text(prompt)


def test_the_assistants_statement_is_no_context_for_a_short_message(mem):
    """Only an answer to the assistant's question is read with the assistant's words:
    after a reply that states something, a short message is extracted alone."""
    msgs = [{"role": "assistant", "content": "You lived in Lyon until 2026-12."},
            {"role": "user", "content": "I also started learning Spanish."}]
    mem.add(msgs, "ctx-user")
    prompt = [r.body for r in mem.llm_server.requests if "You extract memories" in system_text(r.body)][-1]
    assert "Lyon" not in last_user_text(prompt)


def test_cessation_deletes_through_the_api(mem):
    FACTS["coffee"] = [{"text": "Drinks coffee every morning", "topic": "habit"}]
    try:
        mem.add("I drink coffee every morning.", "cara")
        changes = mem.add("I don't drink coffee anymore.", "cara")  # the model re-extracts it
    finally:
        del FACTS["coffee"]
    assert [(c.event, c.text) for c in changes] == [("END", "Drinks coffee every morning")]
    assert changes[0].reason == "rule:ceased"
    assert mem.list("cara") == []
    assert [e.event for e in mem.history(changes[0].id, "cara")] == ["ADD", "END"]
    [past] = mem.past("cara")  # kept as the user's past, not deleted
    assert (past.id, past.status, past.invalid_reason) == (changes[0].id, "ended", "rule:ceased")


def test_a_correction_updates_through_the_api(mem):
    FACTS["Lille"] = [{"text": "Lives in Lille", "topic": "home"}]
    try:
        mem.add("I live in Lille.", "dan")
        changes = mem.add("No, I said Lyon, not Lille.", "dan")
    finally:
        del FACTS["Lille"]
    assert [(c.event, c.text, c.old_text) for c in changes][:1] == [("UPDATE", "Lives in Lyon", "Lives in Lille")]
    assert texts(mem, "dan") == ["Lives in Lyon"]


def test_extraction_retries_without_known_when_the_answer_misses_the_message(scripted_llm):
    """The 1.5B model copied KNOWN lines instead of the move; the second call (no KNOWN)
    finds it, and only then (a well-covered first answer costs no second call)."""
    from memory.write.extract import extract
    from memory.llm.client import LLM
    from memory.config import load_config

    seen = []

    def answer(req):
        user = req["messages"][-1]["content"]
        seen.append("KNOWN" in user)
        if "KNOWN" in user:
            return json.dumps({"memories": [{"text": "Works as an accountant", "topic": "job"}]})
        return json.dumps({"memories": [{"text": "Moved to Hong Kong", "topic": "home"},
                                        {"text": "Works as an accountant", "topic": "job"}]})
    scripted_llm.responder = answer
    llm = LLM(load_config(env_file=None, openai_base_url=scripted_llm.base_url, openai_api_key="k",
                          llm_model=scripted_llm.model, llm_max_retries=0))
    known = [MemoryRecord(id="m1", user_id="u", text="Works as an accountant", tags=["job"]),
             MemoryRecord(id="m2", user_id="u", text="Lives in Shenzhen", tags=["home"])]
    now = datetime(2026, 11, 27, tzinfo=timezone.utc)
    cands = extract(llm, "I moved to Hong Kong, still doing accounting.", now, known)
    assert [(c.text, c.saw_known) for c in cands] == [("Works as an accountant", True),
                                                       ("Moved to Hong Kong", False)]
    assert seen == [True, False]
    seen.clear()
    extract(llm, "I work as an accountant.", now, known)
    assert seen == [True]


def _with_facts(facts: dict):
    """Temporarily add scripted extraction answers (key: a phrase of the message)."""
    class _Ctx:
        def __enter__(self):
            FACTS.update(facts)

        def __exit__(self, *exc):
            for key in facts:
                FACTS.pop(key, None)
    return _Ctx()


def test_a_move_keeps_the_job_and_retires_the_old_city_workplace(mem):
    with _with_facts({"firefighter in Denver": [{"text": "Is a firefighter in Denver", "topic": "job"}],
                      "moved to Portland": [{"text": "Moved to Portland over the summer",
                                                 "topic": "event"}]}):
        mem.add("I'm Dana, a firefighter in Denver.", "dana")
        assert texts(mem, "dana") == ["Is a firefighter", "Name is Dana", "Works in Denver"]
        changes = mem.add("We moved to Portland over the summer.", "dana")  # "relocated" holds a FACTS key
    assert texts(mem, "dana") == ["Is a firefighter", "Moved to Portland over the summer", "Name is Dana"]
    gone = [c for c in changes if c.event == "END"]
    assert [c.text for c in gone] == ["Works in Denver"]
    assert [e.event for e in mem.history(gone[0].id, "dana")] == ["ADD", "END"]


def test_a_new_age_replaces_the_old_one_without_an_llm_call(mem):
    with _with_facts({"I'm 29": [{"text": "Name is Sam", "topic": "name"}],
                      "turned 30": [{"text": "Turned 30 on November 26, 2026", "topic": "event"}]}):
        mem.add("Hi, I'm Sam, I'm 29 and I like tea.", "sam")
        assert "Is 29 years old" in texts(mem, "sam")
        changes = mem.add("Guess what, I turned 30 yesterday!", "sam")
    asked = [r for r in mem.llm_server.requests if "memory list correct" in system_text(r.body)]
    assert asked == []  # no reconciliation call: an age has one current value
    assert ("UPDATE", "Is 30 years old", "Is 29 years old") in \
        [(c.event, c.text, c.old_text) for c in changes]
    assert "Is 29 years old" not in texts(mem, "sam")


def test_a_graduation_retires_the_current_studies(mem):
    with _with_facts({"浙江大学": [{"text": "在浙江大学读研究生", "topic": "education"}],
                      "毕业": [{"text": "现在在杭州的一家药企做研发", "topic": "job"}]}):
        mem.add("我叫陈晨，在浙江大学读研究生。", "chen")
        changes = mem.add("我已经毕业了，现在在杭州的一家药企做研发。", "chen")
    assert texts(mem, "chen") == ["名字是陈晨", "现在在杭州的一家药企做研发"]
    assert [(c.event, c.text) for c in changes if c.event == "END"] == [("END", "在浙江大学读研究生")]


