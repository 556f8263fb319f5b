"""Store contract: ``message_neighbours``, the chat messages around a found one in its thread."""
from __future__ import annotations

from datetime import timedelta

from memory.types import utcnow

A, B = "alice", "bob"


def _chat(mk, user, thread, texts, start, step_s=60, **fields):
    return [mk(user, t, thread_id=thread, source="raw",
               created_at=start + timedelta(seconds=i * step_s), **fields)
            for i, t in enumerate(texts)]


def test_neighbours_are_the_adjacent_messages_of_the_same_thread(store, mk):
    t0 = utcnow().replace(microsecond=0) - timedelta(days=2)
    chat = _chat(mk, A, "t1", ["m0", "m1", "m2", "m3"], t0)
    other = _chat(mk, A, "t2", ["o0", "o1"], t0 + timedelta(seconds=30))  # interleaved
    fact = mk(A, "a learned fact", thread_id="t1", source="chat",
              created_at=t0 + timedelta(seconds=90))  # between m1 and m2, not a message
    loose = mk(A, "no thread", source="raw", created_at=t0 + timedelta(seconds=61))
    store.insert_memories([*chat, *other, fact, loose])
    ids = [r.id for r in chat]
    got = store.message_neighbours(A, [ids[0], ids[1], ids[3], other[1].id, fact.id,
                                       loose.id, "unknown"], 3600)
    assert got == {ids[0]: (None, ids[1]), ids[1]: (ids[0], ids[2]),
                   ids[3]: (ids[2], None), other[1].id: (other[0].id, None)}
    assert store.message_neighbours(A, [], 3600) == {}


def test_neighbours_stop_at_the_window_and_skip_expired_messages(store, mk):
    t0 = utcnow().replace(microsecond=0) - timedelta(days=2)
    first, second = _chat(mk, A, "t1", ["early", "two hours later"], t0, step_s=7200)
    gone = mk(A, "expired reply", thread_id="t1", source="raw",
              created_at=t0 + timedelta(seconds=7260), expires_at=utcnow() - timedelta(hours=1))
    last = mk(A, "after the expired one", thread_id="t1", source="raw",
              created_at=t0 + timedelta(seconds=7320))
    store.insert_memories([first, second, gone, last])
    got = store.message_neighbours(A, [first.id, second.id, gone.id], 3600)
    assert got == {first.id: (None, None), second.id: (None, last.id)}
    assert store.message_neighbours(A, [first.id], 7200)[first.id] == (None, second.id)


def test_neighbours_never_cross_users(store, mk):
    t0 = utcnow().replace(microsecond=0) - timedelta(days=2)
    mine = _chat(mk, A, "t1", ["a0", "a1"], t0)
    theirs = _chat(mk, B, "t1", ["b0", "b1"], t0 + timedelta(seconds=30))  # same thread id
    store.insert_memories([*mine, *theirs])
    assert store.message_neighbours(A, [mine[0].id, theirs[0].id], 3600) == \
        {mine[0].id: (None, mine[1].id)}
    assert store.message_neighbours(B, [theirs[1].id], 3600) == {theirs[1].id: (theirs[0].id, None)}


def test_messages_of_one_conversation_without_a_thread_are_neighbours(store, mk):
    """Issue 26: the messages of one ``Memory.add`` call share a ``conversation_id`` even
    without a thread; two calls are two conversations; a raw message stored with a
    thread and no conversation is in its thread's conversation."""
    t0 = utcnow().replace(microsecond=0) - timedelta(days=2)
    call1 = _chat(mk, A, None, ["c0", "c1", "c2"], t0, conversation_id="call-1")
    call2 = _chat(mk, A, None, ["d0", "d1"], t0 + timedelta(seconds=30),
                  conversation_id="call-2")  # interleaved in time
    threaded = _chat(mk, A, "t1", ["t0", "t1"], t0 + timedelta(seconds=10))
    store.insert_memories([*call1, *call2, *threaded])
    ids = [r.id for r in call1]
    got = store.message_neighbours(A, [ids[1], call2[0].id, threaded[1].id], 3600)
    assert got == {ids[1]: (ids[0], ids[2]), call2[0].id: (None, call2[1].id),
                   threaded[1].id: (threaded[0].id, None)}
    back = {r.id: r.conversation_id for r in store.get_memories(A, [ids[0], threaded[0].id])}
    assert back == {ids[0]: "call-1", threaded[0].id: "t1"}
    assert store.get_memory(A, ids[0]).thread_id is None
