"""Store contract: embedder bookkeeping, re-embedding hooks, meta, user listing."""
from __future__ import annotations

import pytest

from memory.store.base import EmbedderMismatchError
from memory.types import Thread, new_id, utcnow

A, B = "alice", "bob"


def test_open_records_embedder(store, embedder):
    EMBEDDER, DIM = embedder
    assert store.get_meta("embedder_id") == EMBEDDER
    assert store.get_meta("dim") == str(DIM)
    store.open(EMBEDDER, DIM)  # reopening with the same embedder is fine
    assert store.health()["ok"] is True


def test_meta_round_trip(store):
    assert store.get_meta("no-such-key") is None
    store.set_meta("migrated_from", "sqlite")
    store.set_meta("migrated_from", "tidb")
    assert store.get_meta("migrated_from") == "tidb"


def test_embedder_mismatch_with_memories(store, mk, embedder):
    EMBEDDER, DIM = embedder
    store.insert_memories([mk(A, "kept")])
    with pytest.raises(EmbedderMismatchError, match="reembed"):
        store.open("another-model", DIM)
    with pytest.raises(EmbedderMismatchError, match="reembed"):
        store.open(EMBEDDER, DIM * 2)
    assert store.get_meta("embedder_id") == EMBEDDER  # nothing changed
    assert store.count_memories(A) == 1


def test_empty_store_rebuilds_for_new_dimension(store, vec):
    import numpy as np

    from memory.types import MemoryRecord

    store.open("bigger-model", 16)
    assert (store.get_meta("embedder_id"), store.get_meta("dim")) == ("bigger-model", "16")
    v = np.ones(16) / 4.0
    store.insert_memories([MemoryRecord(id=new_id(), user_id=A, text="sixteen", embedding=v.tolist())])
    assert len(store.vector_search(A, v.tolist(), 3)) == 1
    with pytest.raises(ValueError):
        store.vector_search(A, vec(1), 3)


def test_reset_vector_index_then_set_embeddings(store, mk, vec):
    import numpy as np

    a1, a2, b1 = mk(A, "alpha one", seed=1), mk(A, "alpha two", seed=2), mk(B, "beta", seed=3)
    store.insert_memories([a1, a2, b1])
    store.reset_vector_index("new-model", 4)
    assert (store.get_meta("embedder_id"), store.get_meta("dim")) == ("new-model", "4")
    # text survives; vectors are gone until re-embedded
    assert store.count_memories(A) == 2
    q = [1.0, 0.0, 0.0, 0.0]
    assert store.vector_search(A, q, 5) == []
    new = {a1.id: [1.0, 0.0, 0.0, 0.0], a2.id: [0.0, 1.0, 0.0, 0.0]}
    with pytest.raises(ValueError):
        store.set_embeddings(A, [(a1.id, vec(1))])  # old dimension
    store.set_embeddings(A, list(new.items()) + [("unknown-id", [0.5] * 4), (b1.id, q)])
    hits = store.vector_search(A, q, 5)
    assert [m for m, _ in hits] == [a1.id, a2.id]
    assert hits[0][1] == pytest.approx(0.0, abs=1e-5)
    assert hits[1][1] == pytest.approx(1.0, abs=1e-5)
    assert store.vector_search(B, q, 5) == []  # Bob's id was ignored under Alice
    got = store.get_memory(A, a2.id, with_embedding=True)
    assert np.allclose(got.embedding, new[a2.id])
    store.open("new-model", 4)  # consistent now


@pytest.mark.fulltext
def test_reset_vector_index_keeps_text_search(store, mk):
    a1, a2 = mk(A, "alpha one"), mk(A, "alpha two")
    store.insert_memories([a1, a2])
    store.reset_vector_index("new-model", 4)
    assert sorted(m for m, _ in store.text_search(A, "alpha", 5)) == sorted([a1.id, a2.id])


def test_user_ids_lists_every_kind_of_owner(store, mk, event):
    rec = mk("u-mem", "m")
    store.insert_memories([rec])
    store.add_history([event(mk("u-hist", "h"))])
    store.set_profile("u-prof", "p", utcnow())
    store.upsert_thread(Thread(id=new_id(), user_id="u-thread", title="t"))
    assert set(store.user_ids()) == {"u-mem", "u-hist", "u-prof", "u-thread"}
