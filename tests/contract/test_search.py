"""Store contract: vector (KNN) and full-text (BM25) search."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

A, B = "alice", "bob"


def cosine_distance(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(1.0 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---- vector search -----------------------------------------------------------------
def test_vector_search_nearest_first_with_cosine_distance(store, mk, vec):
    q = vec(1)
    near = mk(A, "near", embedding=vec(2, near=q, noise=0.05))
    mid = mk(A, "mid", embedding=vec(3, near=q, noise=0.6))
    far = mk(A, "far", embedding=[-x for x in q])
    store.insert_memories([far, near, mid])
    hits = store.vector_search(A, q, 3)
    assert [m for m, _ in hits] == [near.id, mid.id, far.id]
    dists = [d for _, d in hits]
    assert dists == sorted(dists)
    assert dists[-1] == pytest.approx(2.0, abs=1e-4)  # opposite vector: cosine distance 2
    assert 0 <= dists[0] < 0.05
    for (_, d), rec in zip(hits, [near, mid, far]):
        assert d == pytest.approx(cosine_distance(q, rec.embedding), abs=1e-5)
    assert store.vector_search(A, q, 0) == []


def test_knn_returns_k_rows_for_a_user_among_many_closer_users(store, mk, vec):
    q = vec(7)
    crowd = [mk(f"user{u}", f"crowd {u}-{i}", embedding=vec(1000 + 10 * u + i, near=q, noise=0.01))
             for u in range(20) for i in range(5)]
    mine = [mk(A, f"mine {i}", embedding=vec(50 + i, near=q, noise=1.0)) for i in range(4)]
    store.insert_memories(crowd + mine)
    hits = store.vector_search(A, q, 4)
    assert sorted(m for m, _ in hits) == sorted(r.id for r in mine)
    assert len(store.vector_search(A, q, 50)) == 4
    assert store.vector_search("nobody", q, 5) == []


def test_vector_search_type_filter(store, mk, vec):
    q = vec(9)
    fact = mk(A, "fact", type="fact", embedding=vec(10, near=q, noise=0.01))
    task = mk(A, "task", type="task", embedding=vec(11, near=q, noise=0.5))
    pref = mk(A, "pref", type="preference", embedding=vec(12, near=q, noise=0.7))
    store.insert_memories([fact, task, pref])
    expected = sorted([task, pref], key=lambda r: cosine_distance(q, r.embedding))
    assert [m for m, _ in store.vector_search(A, q, 5, types=["task", "preference"])] == \
        [r.id for r in expected]
    assert [m for m, _ in store.vector_search(A, q, 1, types=["preference"])] == [pref.id]
    assert store.vector_search(A, q, 5, types=["episode"]) == []


def test_vector_search_rejects_wrong_dimension(store, mk):
    store.insert_memories([mk(A, "x")])
    with pytest.raises(ValueError):
        store.vector_search(A, [1.0, 0.0], 3)


@pytest.mark.parametrize("component", [0.0, -0.0, 1e-50],
                         ids=["zeros", "negative-zeros", "float32-underflow"])
def test_zero_vectors_are_refused_before_any_write(store, mk, vec, event, embedder, component):
    """One rule for both stores (``memory.store.common.vector_values``): a zero-norm
    vector (cosine distance undefined) is a ValueError naming it, and nothing is written."""
    zero = [component] * embedder[1]
    kept = mk(A, "kept memory", seed=1)
    store.insert_memories([kept])
    bad = mk(A, "zero vector memory", embedding=zero)
    with pytest.raises(ValueError, match="zero vector"):
        store.insert_memories([mk(A, "good one"), bad], [event(bad)])
    assert [r.id for r in store.list_memories(A)] == [kept.id]
    assert store.all_history(A) == []
    with pytest.raises(ValueError, match="zero vector"):
        store.update_memory(A, kept.id, text="changed", embedding=zero)
    with pytest.raises(ValueError, match="zero vector"):
        store.set_embeddings(A, [(kept.id, zero)])
    got = store.get_memory(A, kept.id, with_embedding=True)
    assert got.text == "kept memory" and got.embedding == pytest.approx(vec(1), abs=1e-6)
    with pytest.raises(ValueError, match="zero vector"):
        store.vector_search(A, zero, 3)
    assert [m for m, _ in store.vector_search(A, vec(1), 3)] == [kept.id]


def test_both_stores_take_the_search_filters_the_same_way():
    """``types``, ``since`` and ``until`` are keyword-only in the interface and in both
    stores, with the same defaults."""
    from memory.store.base import Store
    from memory.store.sqlite import SQLiteStore
    from memory.store.tidb import TiDBStore

    for name in ("vector_search", "text_search"):
        want = inspect.signature(getattr(Store, name))
        filters = [p for p in want.parameters.values() if p.kind is p.KEYWORD_ONLY]
        assert [p.name for p in filters] == ["types", "since", "until"], name
        assert all(p.default is None for p in filters), name
        for cls in (SQLiteStore, TiDBStore):
            assert inspect.signature(getattr(cls, name)) == want, (cls.__name__, name)


@pytest.mark.fulltext
# ---- text search -------------------------------------------------------------------
def test_text_search_ranks_and_scores(store, mk):
    r1 = mk(A, "I play chess every weekend with my brother")
    r2 = mk(A, "My brother lives in Berlin")
    r3 = mk(A, "Chess openings: the Sicilian defence and chess tactics")
    store.insert_memories([r1, r2, r3])
    hits = store.text_search(A, "chess", 10)
    assert sorted(m for m, _ in hits) == sorted([r1.id, r3.id])
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
    assert store.text_search(A, "chess", 1)[0][0] in (r1.id, r3.id)
    assert len(store.text_search(A, "chess", 1)) == 1
    # OR semantics: any term matches; both terms rank first
    both = store.text_search(A, "chess brother", 10)
    assert both[0][0] == r1.id and len(both) == 3


@pytest.mark.fulltext
@pytest.mark.stemming
def test_text_search_stems_english(store, mk):
    rec = mk(A, "She was running marathons in 2019")
    store.insert_memories([rec])
    assert [m for m, _ in store.text_search(A, "run marathon", 5)] == [rec.id]


@pytest.mark.fulltext
def test_text_search_is_scoped_by_user(store, mk):
    a = mk(A, "Alice likes sailing")
    b = [mk(B, f"Bob likes sailing {i}") for i in range(5)]
    store.insert_memories([a] + b)
    assert [m for m, _ in store.text_search(A, "sailing", 10)] == [a.id]
    assert len(store.text_search(B, "sailing", 10)) == 5
    assert store.text_search("nobody", "sailing", 10) == []


@pytest.mark.fulltext
@pytest.mark.parametrize("query", [
    'AND', 'OR NOT', 'NEAR(sailing boat)', 'sailing*', '"sailing', 'sail"ing"', '(sailing',
    'sailing)', '-sailing', '^sailing', 'text:sailing', 'sailing AND', 'NOT sailing',
    '{text}: sailing', "sailing' OR 1=1 --", '*', '""', '\\', 'sailing\x00boat',
])
def test_text_search_operators_are_plain_text(store, mk, query):
    rec = mk(A, "Alice likes sailing on a small boat")
    other = mk(A, "Nothing relevant here")
    store.insert_memories([rec, other])
    hits = store.text_search(A, query, 5)  # never a syntax error
    assert other.id not in [m for m, _ in hits]
    if "sailing" in query.replace("sail\"ing", ""):
        assert rec.id in [m for m, _ in hits]


@pytest.mark.fulltext
def test_text_search_finds_operator_words_as_words(store, mk):
    rec = mk(A, "We live near the station")
    store.insert_memories([rec, mk(A, "unrelated")])
    assert [m for m, _ in store.text_search(A, "NEAR", 5)] == [rec.id]


@pytest.mark.fulltext
@pytest.mark.parametrize("query", ["", "   ", "?!…", "the a of is", "的了吗", "😀🎉", "\x00\x01"])
def test_text_search_without_searchable_terms_returns_nothing(store, mk, query):
    store.insert_memories([mk(A, "the a of is 的 了 😀 anything")])
    assert store.text_search(A, query, 5) == []


@pytest.mark.fulltext
def test_chinese_full_text(store, mk):
    rec = mk(A, "我最喜欢的编程语言是 Python")
    other = mk(A, "我住在上海")
    store.insert_memories([rec, other])
    assert [m for m, _ in store.text_search(A, "编程语言", 5)] == [rec.id]
    assert [m for m, _ in store.text_search(A, "我最喜欢什么编程语言？", 5)][0] == rec.id
    assert [m for m, _ in store.text_search(A, "python", 5)] == [rec.id]
    assert [m for m, _ in store.text_search(A, "上海", 5)] == [other.id]


@pytest.mark.fulltext
def test_text_search_type_filter(store, mk):
    fact = mk(A, "cats are great", type="fact")
    pref = mk(A, "prefers cats over dogs", type="preference")
    store.insert_memories([fact, pref])
    assert [m for m, _ in store.text_search(A, "cats", 5, types=["preference"])] == [pref.id]
    assert len(store.text_search(A, "cats", 5, types=["fact", "preference"])) == 2
    assert store.text_search(A, "cats", 5, types=["task"]) == []
