"""Taking over an abandoned upload is a compare-and-set (issue 24): of two uploads of the
same file that find its ``pending`` row abandoned at the same moment, exactly one learns
from it. Real SQLite store, real embedder, the scripted OpenAI-compatible server."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from memory import Memory
from memory.resources import ingest, lease
from memory.resources.model import Resource
from memory.types import new_id, utcnow
from tests.fake_llm import ScriptedLLM, scripted_config, system_text
from tests.test_resources import brain

DATA = b"I work as a nurse."


@pytest.fixture()
def mem(tmp_path, embedder):
    with ScriptedLLM(brain) as server:
        m = Memory(scripted_config(tmp_path / "data", server), embedder=embedder)
        m.llm_server = server
        yield m
        m.close()


def _abandoned_row(mem, user: str) -> Resource:
    """A ``pending`` row whose owner on another host stopped renewing it a lease ago."""
    when = utcnow() - lease.LEASE - timedelta(minutes=1)
    row = Resource(id=new_id(), user_id=user, filename="cv.txt", mime="text/plain",
                   size=len(DATA), sha256=hashlib.sha256(DATA).hexdigest(), status="pending",
                   detail={"ingest": {"host": "elsewhere", "pid": 1, "token": "x"}},
                   created_at=when, updated_at=when)
    return mem.store.insert_resource(row)


def _extractions(mem) -> int:
    return sum("You extract memories" in system_text(r.body) for r in mem.llm_server.requests)


def test_a_claim_wins_once_for_what_it_saw(mem):
    row = _abandoned_row(mem, "anna")
    store = mem.store
    assert store.claim_resource("bob", row.id, row.updated_at, status="pending") is False
    assert store.claim_resource("anna", row.id, row.updated_at - timedelta(seconds=1),
                                status="pending") is False  # it saw an older row
    assert store.claim_resource("anna", row.id, row.updated_at, status="pending",
                                detail={"ingest": lease.owner()}) is True
    assert store.claim_resource("anna", row.id, row.updated_at, status="pending") is False
    assert store.get_resource("anna", row.id).detail["ingest"] == lease.owner()


def test_the_upload_that_loses_the_takeover_learns_nothing(mem, monkeypatch):
    """The other upload claims the abandoned row between this one's read and its claim
    (the interleaving of a real race, made deterministic): this one answers the row as
    a pending duplicate and makes no extraction call."""
    row = _abandoned_row(mem, "anna")
    real = mem.store.claim_resource

    def other_upload_first(user_id, resource_id, seen, **fields):
        assert real(user_id, resource_id, seen, status="pending",
                    detail={"ingest": {"host": "other", "pid": 2, "token": "y"}})
        return real(user_id, resource_id, seen, **fields)

    monkeypatch.setattr(mem.store, "claim_resource", other_upload_first)
    lost = ingest.add_resource(mem, DATA, "anna", filename="cv.txt")
    assert (lost.id, lost.duplicate, lost.status) == (row.id, True, "pending")
    assert _extractions(mem) == 0 and mem.list("anna") == []


def test_an_uncontested_takeover_learns(mem):
    row = _abandoned_row(mem, "anna")
    taken = ingest.add_resource(mem, DATA, "anna", filename="cv.txt")
    assert (taken.id, taken.duplicate, taken.status) == (row.id, False, "ready")
    assert [r.text for r in mem.list("anna")] == ["Works as a nurse"] and _extractions(mem) == 1
