"""Documents that are really read (issue 24), on the REAL local model (llama.cpp on
127.0.0.1), real embedder, real SQLite file: a CV as PDF and as its DOCX twin yields its
owner's facts as atomic memories, and a CV's home replaces a home said in chat, with
history naming the file. The files come from tests/documents.py. Assertions are on
stored state and key words (case-insensitive), never on exact wording. Slow (minutes):
marked ``e2e``."""
from __future__ import annotations

import re

import pytest

from memory import Memory
from tests.documents import cv_docx, cv_pdf
from tests.e2e_memory import local_memory

pytestmark = pytest.mark.e2e

#: A CV field label kept at the start of a memory ("Hobbies: Bouldering, cycling"): a CV
#: line copied, not an atomic memory.
LABEL = re.compile(r"\b(?:name|address|phone|experience|education|languages?|hobbies)\s*:",
                   re.IGNORECASE)


@pytest.fixture(scope="module")
def mem(tmp_path_factory):
    yield from local_memory(tmp_path_factory, "e2e-documents")


def current(mem: Memory, user: str) -> list[str]:
    """The texts of ``user``'s current memories, lower-cased."""
    return [r.text.lower() for r in mem.list(user, limit=500)]


@pytest.mark.parametrize("make,filename", [(cv_pdf, "cv.pdf"), (cv_docx, "cv.docx")],
                         ids=["pdf", "docx"])
def test_a_cv_yields_its_owners_facts(mem, make, filename):
    """The PDF CV and its DOCX twin: each yields at least four of name, home, job, a
    language and a hobby (always home and job), as memories without a CV field label."""
    user = f"lena-{filename.replace('.', '-')}"
    res = mem.add_resource(make(), user, filename=filename)
    assert res.status == "ready", res.error
    texts = [r.text for r in mem.resource_memories(user, res.id)]
    joined = " | ".join(texts).lower()
    fields = {"name": "lena" in joined, "home": "berlin" in joined,
              "job": "engineer" in joined, "languages": "german" in joined or "spanish" in joined,
              "hobbies": "boulder" in joined or "cycl" in joined}
    # the 1.5B model drops one field now and then (seen: the name, once in four runs):
    # four of the five, and always the home and the job the chat path depends on
    assert sum(fields.values()) >= 4 and fields["home"] and fields["job"], (fields, texts)
    assert not [t for t in texts if LABEL.search(t)], texts  # atomic memories, not CV lines


def test_a_cv_home_updates_a_chat_home_and_history_names_the_file(mem):
    """A home said in chat, then a CV with another one: the CV's chunk reconciles
    against the chat memory (home is a one-value topic, ``memory.write.reconcile``); a
    confirmed UPDATE rewrites that memory in place (same id, the old value kept as a
    superseded copy, ``memory.write.versions.replace_value``), a confirmed DELETE ends it
    (``versions.end``) while the file adds its own home memory. Either way the change is
    the file's, and history says so (``HistoryEvent.who``: ``file cv.pdf``)."""
    user = "cv-move"
    said = mem.add("I live in Munich.", user)
    assert said.error is None, said.error
    munich = [r for r in mem.list(user, limit=500) if "munich" in r.text.lower()]
    assert munich, current(mem, user)

    res = mem.add_resource(cv_pdf(), user, filename="cv.pdf")
    assert res.status == "ready", res.error
    now = current(mem, user)
    assert any("berlin" in t for t in now), now
    assert not any("munich" in t for t in now), now  # no current memory keeps Munich

    lasts = {rec.id: mem.history(rec.id, user)[-1] for rec in munich}
    for last in lasts.values():  # each Munich memory was changed last by the file
        assert last.event in ("UPDATE", "END") and "cv.pdf" in last.who, last
        assert "munich" in (last.old_text or "").lower(), last
    updated = [mid for mid, last in lasts.items() if last.event == "UPDATE"]
    if updated:  # the chat memory now holds the CV's home: same id, Berlin, by the file
        rec = mem.get(updated[0], user)
        assert rec is not None and "berlin" in rec.text.lower(), rec
        assert "berlin" in (lasts[rec.id].new_text or "").lower(), lasts[rec.id]
    else:  # Munich ended by the file; Berlin is a memory the file added
        added = [r for r in mem.resource_memories(user, res.id) if "berlin" in r.text.lower()]
        assert added, [r.text for r in mem.resource_memories(user, res.id)]
        first = mem.history(added[0].id, user)[0]
        assert first.event == "ADD" and "cv.pdf" in first.who, first
