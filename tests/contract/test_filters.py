"""Store contract: type and date filters run inside the vector and full-text queries, so a filtered search returns ``k`` rows whenever ``k`` match (issue 13 item 4)."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from memory.search.hybrid import hybrid_search
from memory.types import utcnow

A = "alice"


def fill(store, mk, vec):
    """50 old memories of type "fact" that match the query best, then 5 recent ones of
    type "event" that match it worse. Returns (query vector, old ids, recent ids, cut)."""
    q = vec(1)
    start = utcnow().replace(microsecond=0) - timedelta(days=30)
    old = [mk(A, f"green tea green tea number {i}", type="fact",
              embedding=vec(100 + i, near=q, noise=0.05), created_at=start + timedelta(minutes=i))
           for i in range(50)]
    cut = start + timedelta(days=10)
    new = [mk(A, f"tea party {i}", type="event", embedding=vec(500 + i, near=q, noise=2.0),
              created_at=cut + timedelta(hours=i)) for i in range(5)]
    store.insert_memories(old)
    store.insert_memories(new)
    return q, {r.id for r in old}, {r.id for r in new}, cut


def test_type_and_date_filters_inside_the_vector_query(store, mk, vec):
    q, old, new, cut = fill(store, mk, vec)
    assert {m for m, _ in store.vector_search(A, q, 5, types=["event"])} == new
    assert {m for m, _ in store.vector_search(A, q, 5, since=cut)} == new
    # inclusive bounds: exactly the first recent memory
    first = store.vector_search(A, q, 5, since=cut, until=cut)
    assert len(first) == 1 and first[0][0] in new
    before = cut - timedelta(seconds=1)
    got = store.vector_search(A, q, 60, until=before)
    assert {m for m, _ in got} == old and len(got) == 50
    assert store.vector_search(A, q, 5, types=["fact"], since=cut) == []


@pytest.mark.fulltext
def test_type_and_date_filters_inside_the_text_query(store, mk, vec):
    _, old, new, cut = fill(store, mk, vec)
    assert {m for m, _ in store.text_search(A, "green tea", 5, types=["event"])} == new
    assert {m for m, _ in store.text_search(A, "green tea", 5, since=cut)} == new
    first = store.text_search(A, "tea", 5, since=cut, until=cut)
    assert len(first) == 1 and first[0][0] in new
    before = cut - timedelta(seconds=1)
    assert {m for m, _ in store.text_search(A, "tea", 60, until=before)} == old
    assert store.text_search(A, "tea", 5, types=["fact"], since=cut) == []


def test_filtered_hybrid_search_returns_limit_results(store, mk, vec):
    q, _, new, cut = fill(store, mk, vec)
    qv = np.asarray(q)
    by_type = hybrid_search(store, A, "green tea", qv, 5, types=["event"])
    assert {h.record.id for h in by_type} == new
    by_date = hybrid_search(store, A, "green tea", qv, 5, since=cut)
    assert {h.record.id for h in by_date} == new
