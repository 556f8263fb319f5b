"""Store contract: ``store.transaction()`` — one database transaction for the calling thread's store calls, committed on a normal exit, rolled back on an exception, re-entrant."""
from __future__ import annotations

import threading

import pytest

from memory.types import Message, Thread, new_id, utcnow

A, B = "alice", "bob"


class Boom(Exception):
    pass


def in_other_thread(fn):
    """Run ``fn`` in another thread, wait for it (bounded) and return its result."""
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(timeout=60)
    assert not t.is_alive(), "the other thread was blocked by the open transaction"
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_commit_makes_every_write_visible(store, mk, event):
    r1, r2 = mk(A, "likes green tea"), mk(A, "lives in Nantes")
    with store.transaction():
        store.insert_memories([r1], [event(r1)])
        store.insert_memories([r2])
        store.set_profile(A, "Alice, tea", utcnow())
    assert {m.id for m in store.list_memories(A)} == {r1.id, r2.id}
    assert len(store.history(A, r1.id)) == 1
    assert store.get_profile(A)[0] == "Alice, tea"


def test_exception_rolls_every_row_back(store, mk, vec, event):
    kept = mk(A, "kept memory about tea", seed=5)
    store.insert_memories([kept])
    store.set_profile(A, "before", utcnow())
    new = mk(A, "new memory about tea", seed=6)
    thread = Thread(id=new_id(), user_id=A, title="chat")
    with pytest.raises(Boom):
        with store.transaction():
            store.insert_memories([new], [event(new)])
            assert store.update_memory(A, kept.id, text="changed", embedding=vec(7))
            store.delete_user_memories(B)
            store.set_profile(A, "after", utcnow())
            store.upsert_thread(thread)
            store.add_message(Message(id=new_id(), thread_id=thread.id, user_id=A,
                                      role="user", content="hi"))
            assert store.delete_memory(A, kept.id)
            raise Boom()
    assert [m.id for m in store.list_memories(A)] == [kept.id]
    assert store.get_memory(A, kept.id).text == "kept memory about tea"
    assert store.history(A, new.id) == []
    assert store.get_profile(A)[0] == "before"
    assert store.list_threads(A) == []
    assert [m for m, _ in store.vector_search(A, vec(6), 5)] == [kept.id]


@pytest.mark.fulltext
def test_exception_rolls_the_text_rows_back(store, mk, vec):
    kept = mk(A, "kept memory about tea", seed=5)
    store.insert_memories([kept])
    with pytest.raises(Boom):
        with store.transaction():
            store.insert_memories([mk(A, "new memory about tea", seed=6)])
            assert store.update_memory(A, kept.id, text="changed coffee", embedding=vec(7))
            raise Boom()
    assert [m for m, _ in store.text_search(A, "memory tea", 5)] == [kept.id]
    assert store.text_search(A, "coffee", 5) == []


def test_the_thread_sees_its_own_writes_inside(store, mk, vec):
    r = mk(A, "green tea in the morning", seed=3)
    with store.transaction():
        store.insert_memories([r])
        assert store.get_memory(A, r.id) is not None
        assert [m for m, _ in store.vector_search(A, vec(3), 1)] == [r.id]
        assert store.count_memories(A) == 1


@pytest.mark.fulltext
def test_the_thread_sees_its_own_text_rows_inside(store, mk):
    r = mk(A, "green tea in the morning", seed=3)
    with store.transaction():
        store.insert_memories([r])
        assert [m for m, _ in store.text_search(A, "green tea", 1)] == [r.id]


def test_nested_blocks_join_the_outer_transaction(store, mk):
    r1, r2 = mk(A, "outer"), mk(A, "inner")
    with pytest.raises(Boom):
        with store.transaction():
            store.insert_memories([r1])
            with store.transaction():
                store.insert_memories([r2])
            # the inner block did not commit on its own
            assert in_other_thread(lambda: store.count_memories(A)) == 0
            raise Boom()
    assert store.count_memories(A) == 0
    with store.transaction():
        store.insert_memories([r1])
        with store.transaction():
            store.insert_memories([r2])
    assert store.count_memories(A) == 2


def test_other_threads_read_committed_rows_without_waiting(store, mk):
    before = mk(A, "committed before")
    store.insert_memories([before])
    with store.transaction():
        store.insert_memories([mk(A, "not yet committed")])
        assert in_other_thread(lambda: [m.id for m in store.list_memories(A)]) == [before.id]
        assert in_other_thread(lambda: store.get_profile(B)) == ("", None)
    assert in_other_thread(lambda: store.count_memories(A)) == 2
