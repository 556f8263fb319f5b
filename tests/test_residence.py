"""memory/write/residence.py on the real embedder: a memory tagged ``home`` that states a
trip is told apart from one that states a home. Sentences written for this test, none of
them among the examples in memory/data/home_statements.json."""
from __future__ import annotations

import json

import pytest

from memory.write.extract import Candidate
from memory.write.residence import CLASSIFIER, DATA, demote, mark, may_replace_home
from memory.types import MemoryRecord

HOMES = ["Address: Rue Neuve 3, 1000 Bruxelles", "Lives in Wellington", "住在厦门",
         "Wohnt seit Jahren in Graz", "Vive en Rosario"]
TRIPS = ["Is in Seoul for a week of meetings", "Spending Easter in Malta",
         "下周去西安出差", "Passe le week-end à Annecy", "Viaggio di lavoro a Bari domani"]


def test_held_out_homes_and_trips(embedder):
    data = json.loads(DATA.read_text(encoding="utf-8"))
    assert not set(HOMES + TRIPS) & set(data["home"] + data["other"])
    assert CLASSIFIER.classify(embedder, HOMES) == [True] * len(HOMES)
    assert CLASSIFIER.classify(embedder, TRIPS) == [False] * len(TRIPS)


def test_a_trip_may_not_replace_the_home_and_becomes_an_ordinary_fact(embedder):
    home = MemoryRecord(id="h", user_id="u", text="Lives in Denver", tags=["home"])
    trip = Candidate("Is in Seoul for a week of meetings", "profile", 4, ["home"], home, "home")
    move = Candidate("Lives in Wellington", "profile", 4, ["home"], home, "home")
    other = Candidate("Likes tea", "preference", 3, ["like"], None, "like")
    mark([trip, move, other], embedder, embedder.embed_documents([c.text for c in (trip, move, other)]))
    assert (trip.states_home, move.states_home, other.states_home) == (False, True, None)
    assert may_replace_home(move, home) and move.topic == "home"
    assert not may_replace_home(trip, home) and trip.topic == "home"  # no side effect
    assert may_replace_home(trip, MemoryRecord(id="x", user_id="u", text="Likes tea", tags=["like"]))
    demote(trip)
    assert (trip.topic, trip.type, trip.tags) == ("other", "fact", ["other"])


@pytest.mark.parametrize("text", HOMES[:2])
def test_a_cv_address_or_a_home_still_replaces(embedder, text):
    home = MemoryRecord(id="h", user_id="u", text="Lives in Denver", tags=["home"])
    cand = Candidate(text, "profile", 4, ["home"], home, "home")
    mark([cand], embedder, embedder.embed_documents([text]))
    assert may_replace_home(cand, home)
