"""SQLite full-text search ranks only rows with a rarer query term when the query also has common terms: same BM25 scores, fallback to the whole query when fewer than k rows remain."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from memory.store.sqlite import SQLiteStore
from memory.store.sqlite import search as search_mod
from memory.types import MemoryRecord, new_id

DIM = 4
DAY = datetime(2024, 3, 1, tzinfo=timezone.utc)
VEC = (np.ones(DIM) / np.sqrt(DIM)).tolist()


def rec(user: str, text: str, day: int = 0) -> MemoryRecord:
    when = DAY + timedelta(days=day)
    return MemoryRecord(id=new_id(), user_id=user, text=text, embedding=VEC,
                        created_at=when, updated_at=when)


@pytest.fixture
def store(tmp_path, monkeypatch):
    """400 rows of u1: 150 short "Caroline" rows, 40 long rows with "dog", 100 short
    "weather" rows, 110 others; the 10 newest rows are Caroline-only. One row of u2.
    Thresholds: common above 80 rows, then above 120 and 180."""
    monkeypatch.setattr(search_mod, "COMMON_TERM_SHARE", 0.2)
    monkeypatch.setattr(search_mod, "COMMON_TERM_MIN_ROWS", 10)
    monkeypatch.setattr(search_mod, "COMMON_TERM_WIDEN", 1.5)
    s = SQLiteStore(tmp_path / "memory.db")
    s.open("e", DIM)
    filler = " ".join(f"word{i}" for i in range(80))
    rows = ([rec("u1", "Caroline Caroline Caroline", day=i % 5) for i in range(140)]
            + [rec("u1", "Caroline Caroline Caroline again", day=30) for _ in range(10)]
            + [rec("u1", f"the dog {filler} {i}") for i in range(30)]
            + [rec("u1", f"Caroline and her dog {filler} {i}") for i in range(10)]
            + [rec("u1", f"weather today {i}") for i in range(100)]
            + [rec("u1", f"sunny today {i}") for i in range(110)]
            + [rec("u2", "Caroline dog")])
    s.insert_memories(rows)
    s.texts = {r.id: r.text for r in rows}
    yield s
    s.close()


def whole_query(store, *args, **kw):
    """text_search with pruning off (every term rare)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(search_mod, "COMMON_TERM_SHARE", 1.0)
        return store.text_search(*args, **kw)


def test_rare_terms_first_then_widening_by_document_frequency(store):
    with store._read() as conn:
        def splits(terms):
            return list(search_mod._rare_first(conn, terms))

        # a term found nowhere is dropped; without a rare term nothing is split
        assert splits(["Caroline", "dog", "zebra"]) == [(["dog"], ["Caroline"])]
        assert splits(["Caroline", "zebra"]) == []
        assert splits(["dog", "again"]) == splits(["Caroline"]) == []
        assert splits(["weather", "Caroline", "dog", "today"]) == [
            (["dog"], ["weather", "Caroline", "today"]),
            (["weather", "dog"], ["Caroline", "today"]),
            (["weather", "Caroline", "dog"], ["today"])]


@pytest.mark.parametrize("alone", [False, True])
def test_rows_with_only_common_terms_are_not_ranked_and_scores_stay_exact(store, monkeypatch,
                                                                          alone):
    if alone:  # the user-token-free query of a sole owner (u2's row is ignored)
        monkeypatch.setattr(search_mod, "_sole_owner", lambda conn, user: True)
    whole = whole_query(store, "u1", "Is Caroline's dog here?", 200)
    assert len(whole) == 190
    # the short Caroline-only rows outrank the long dog-only rows in the whole query
    assert any("dog" not in store.texts[m] for m, _ in whole[:20])
    with_rare = [(m, s) for m, s in whole if "dog" in store.texts[m]]
    got = store.text_search("u1", "Is Caroline's dog here?", 20)
    assert [m for m, _ in got] == [m for m, _ in with_rare[:20]]
    assert np.allclose([s for _, s in got], [s for _, s in with_rare[:20]], rtol=0, atol=1e-9)


def test_fewer_than_k_rare_rows_widen_the_rare_terms(store):
    whole = whole_query(store, "u1", "Caroline dog weather", 400)
    top = [m for m, _ in whole[:130]]
    assert any("dog" not in store.texts[m] and "weather" not in store.texts[m] for m in top)
    # 40 rows with "dog" < 130: "weather" (100 rows) joins the rare terms, Caroline-only
    # rows are not ranked
    want = [(m, sc) for m, sc in whole if {"dog", "weather"} & set(store.texts[m].split())]
    got = store.text_search("u1", "Caroline dog weather", 130)
    assert [m for m, _ in got] == [m for m, _ in want[:130]]
    assert np.allclose([s for _, s in got], [s for _, s in want[:130]], rtol=0, atol=1e-9)


def test_fewer_than_k_rare_rows_rank_the_whole_query(store):
    assert store.text_search("u1", "Caroline dog", 60) == whole_query(store, "u1",
                                                                      "Caroline dog", 60)
    # filtered: only Caroline-only rows are recent; k of them still come back
    since = DAY + timedelta(days=20)
    got = store.text_search("u1", "Caroline dog", 5, since=since)
    assert len(got) == 5 and all("dog" not in store.texts[m] for m, _ in got)
    assert got == whole_query(store, "u1", "Caroline dog", 5, since=since)
    assert store.text_search("u2", "Caroline dog", 5) == whole_query(store, "u2",
                                                                     "Caroline dog", 5)


def test_date_filters_match_inside_the_rid_band_of_the_period(tmp_path):
    """Memories stored out of time order (a backdated import between new ones): the
    filtered search equals the unfiltered ranking cut to the period."""
    s = SQLiteStore(tmp_path / "memory.db")
    s.open("e", DIM)
    try:
        days = [(i * 7) % 30 for i in range(60)]  # created_at jumps back and forth
        rows = [rec("u1", f"tea and cake {i}" if i % 3 else f"tea {i}", day=d)
                for i, d in enumerate(days)] + [rec("u2", "tea", day=5)]
        s.insert_memories(rows)
        born = {r.id: r.created_at for r in rows}
        everything = s.text_search("u1", "tea cake", 100)
        assert len(everything) == 60
        for lo, hi in [(3, 9), (0, 0), (29, 40), (12, None), (None, 4)]:
            since = DAY + timedelta(days=lo) if lo is not None else None
            until = DAY + timedelta(days=hi) if hi is not None else None
            want = [(m, sc) for m, sc in everything
                    if (since is None or born[m] >= since) and (until is None or born[m] <= until)]
            got = s.text_search("u1", "tea cake", 100, since=since, until=until)
            assert [m for m, _ in got] == [m for m, _ in want] and want
            assert np.allclose([x for _, x in got], [x for _, x in want], rtol=0, atol=1e-9)
        assert s.text_search("u1", "tea", 5, since=DAY + timedelta(days=31)) == []
    finally:
        s.close()
