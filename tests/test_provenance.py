"""Provenance: a memory supported by several sources (two files, a file and a chat
message) keeps all of them, and deleting one source removes it only when nothing else
supports it. Real files, a real SQLite store, the real embedder and the scripted
OpenAI-compatible server playing the LLM (extraction by keyword, tests.test_resources)."""
from __future__ import annotations

import pytest

from memory import Memory

from memory.write import provenance
from memory.resources import ingest
from memory.types import MemoryRecord
from tests.fake_llm import ScriptedLLM, scripted_config
from tests.test_resources import brain

CV = b"Curriculum vitae. I work as a nurse. I play the cello."
CV2 = b"CV, 2026 edition. I work as a nurse. I play the cello. I have a cat named Xiaolan."


@pytest.fixture()
def mem(tmp_path, embedder):
    with ScriptedLLM(brain) as server:
        m = Memory(scripted_config(tmp_path / "data", server), embedder=embedder)
        yield m
        m.close()


def _texts(mem, user):
    return sorted(r.text for r in mem.list(user))


def test_two_overlapping_files_then_deleting_one_keeps_what_the_other_says(mem):
    cv = ingest.add_resource(mem, CV, "anna", filename="cv.txt")
    v2 = ingest.add_resource(mem, CV2, "anna", filename="cv_v2.txt")
    assert (cv.memory_count, v2.memory_count) == (2, 3)  # v2 supports the two it restates
    counts = {r.filename: r.memory_count for r in ingest.resources(mem, "anna")}
    assert counts == {"cv.txt": 2, "cv_v2.txt": 3}

    assert ingest.delete_resource(mem, "anna", cv.id)
    assert _texts(mem, "anna") == ["Has a grey cat named Xiaolan", "Plays the cello",
                                   "Works as a nurse"]
    nurse = next(r for r in mem.list("anna") if r.text == "Works as a nurse")
    assert provenance.sources(nurse) == [provenance.resource_key(v2.id)]
    assert nurse.metadata["resource"] == "cv_v2.txt"
    last = mem.history(nurse.id, "anna")[-1]
    assert (last.event, last.actor) == ("NONE", f"resource-deleted:{cv.id[:8]}")
    assert [r.text for r in ingest.resource_memories(mem, "anna", v2.id)] and \
        ingest.resource(mem, "anna", v2.id).memory_count == 3

    assert ingest.delete_resource(mem, "anna", v2.id)  # the last source: all gone
    assert _texts(mem, "anna") == []


def test_a_chat_message_that_repeats_a_file_fact_keeps_it_when_the_file_goes(mem):
    cv = ingest.add_resource(mem, CV, "anna", filename="cv.txt")
    changes = mem.add("As I said, I work as a nurse.", "anna")
    assert [c.event for c in changes] == ["NONE"]
    nurse = next(r for r in mem.list("anna") if r.text == "Works as a nurse")
    assert provenance.sources(nurse) == [provenance.resource_key(cv.id), "chat"]

    assert ingest.delete_resource(mem, "anna", cv.id)
    assert _texts(mem, "anna") == ["Works as a nurse"]  # the cello was only the file's
    kept = mem.get(nurse.id, "anna")
    assert provenance.sources(kept) == ["chat"] and "resource_id" not in kept.metadata


def test_a_file_that_restates_a_chat_memory_does_not_take_it_away_when_deleted(mem):
    mem.add("I work as a nurse.", "anna")
    cv = ingest.add_resource(mem, CV, "anna", filename="cv.txt")
    assert cv.memory_count == 2  # the cello, and the chat's nurse it supports
    assert ingest.delete_resource(mem, "anna", cv.id)
    [nurse] = mem.list("anna")
    assert nurse.text == "Works as a nurse" and provenance.sources(nurse) == ["chat"]
    assert provenance.ALSO_FROM not in nurse.metadata


def test_provenance_is_scoped_by_user(mem):
    cv = ingest.add_resource(mem, CV, "anna", filename="cv.txt")
    mem.add("I work as a nurse.", "bob")  # bob's own memory, same text
    assert ingest.delete_resource(mem, "bob", cv.id) is False
    assert ingest.delete_resource(mem, "anna", cv.id)
    assert _texts(mem, "anna") == [] and _texts(mem, "bob") == ["Works as a nurse"]


def _rec(source="chat", **meta):
    return MemoryRecord(id="m", user_id="u", text="t", source=source, metadata=meta)


def test_sources_and_their_changes():
    chat = _rec()
    assert provenance.sources(chat) == ["chat"]
    assert provenance.with_source(chat, "chat") is None
    meta = provenance.with_source(chat, "resource:r1")
    assert meta == {"also_from": ["resource:r1"]}
    both = _rec(**meta)
    assert provenance.without_resource(both, "r1") == {}
    filed = _rec("resource", resource_id="r1", resource="a.txt", chunk=2,
                 also_from=["resource:r2", "chat"])
    assert provenance.sources(filed) == ["resource:r1", "resource:r2", "chat"]
    assert provenance.without_resource(filed, "r1") == {"resource_id": "r2", "also_from": ["chat"]}
    assert provenance.without_resource(filed, "r2") == {
        "resource_id": "r1", "resource": "a.txt", "chunk": 2, "also_from": ["chat"]}
    alone = _rec("resource", resource_id="r1")
    assert provenance.without_resource(alone, "r1") is None
    assert provenance.source_key("chat", {"resource_id": "r9"}) == "resource:r9"


def test_search_scopes_follow_every_source(mem):
    from memory.resources.scope import scoped_search
    cv = ingest.add_resource(mem, CV, "anna", filename="cv.txt")
    mem.add("As I said, I work as a nurse.", "anna")
    q = "what is my job and what do I play"
    chat = {h.text for h in scoped_search(mem, q, "anna", 10, "chat").memories}
    filed = {h.text for h in scoped_search(mem, q, "anna", 10, cv.scope).memories}
    assert chat == {"Works as a nurse"}
    assert filed == {"Works as a nurse", "Plays the cello"}
