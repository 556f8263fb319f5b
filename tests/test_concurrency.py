"""Several processes writing one SQLite file at once lose nothing.

Four processes (``spawn``: nothing inherited) each open their own ``SQLiteStore`` on the
same file and, released together by a barrier, insert memories for the *same* user,
update them, bump the access counter of one shared memory and append messages to one
shared thread. At the end every insert, update, history event, increment and message
must be there exactly once. Vectors come from the real embedder (computed once in the
parent, so the children stay light).
"""
from __future__ import annotations

import multiprocessing as mp
import traceback

import pytest

from memory.embed.embedder import USEEmbedder
from memory.store.sqlite import SQLiteStore
from memory.types import HistoryEvent, MemoryRecord, Message, Thread, utcnow

WORKERS = 4
ROUNDS = 12
USER = "shared-user"
SHARED_MEMORY = "s" * 32
THREAD = "t" * 32


def _mid(worker: int, i: int) -> str:
    return f"{worker:02d}{i:030d}"


def _texts(worker: int, i: int) -> tuple[str, str]:
    return f"worker {worker} fact {i}", f"worker {worker} fact {i}, corrected"


def worker(path: str, embedder_id: str, dim: int, number: int, vectors: dict,
           barrier, results) -> None:
    """One process: its own store on ``path``; ROUNDS x (insert, update the previous
    memory, touch the shared memory, append a message)."""
    try:
        store = SQLiteStore(path)
        store.open(embedder_id, dim)
        barrier.wait(timeout=60)
        for i in range(ROUNDS):
            first, second = _texts(number, i)
            mid = _mid(number, i)
            store.insert_memories(
                [MemoryRecord(id=mid, user_id=USER, text=first, embedding=vectors[first])],
                [HistoryEvent(mid, USER, "ADD", None, first, "llm")])
            store.touch_memories(USER, [SHARED_MEMORY], utcnow())
            store.add_message(Message(id=f"m{number:02d}{i:029d}", thread_id=THREAD, user_id=USER,
                                      role="user", content=f"{number}:{i}"))
            assert store.update_memory(
                USER, mid, text=second, embedding=vectors[second],
                history=HistoryEvent(mid, USER, "UPDATE", first, second, "user"))
        store.close()
        results.put((number, "ok"))
    except BaseException:  # noqa: BLE001 - report everything to the parent
        results.put((number, traceback.format_exc()))


@pytest.fixture(scope="module")
def embedder():
    return USEEmbedder()


def test_concurrent_writers_lose_nothing(tmp_path, embedder):
    path = tmp_path / "shared.db"
    texts = [t for w in range(WORKERS) for i in range(ROUNDS) for t in _texts(w, i)]
    vectors = {t: [float(x) for x in v]
               for t, v in zip(texts + ["shared"], embedder.embed_documents(texts + ["shared"]))}
    store = SQLiteStore(path)
    store.open(embedder.id, embedder.dim)
    store.insert_memories([MemoryRecord(id=SHARED_MEMORY, user_id=USER, text="shared",
                                        embedding=vectors["shared"])])
    store.upsert_thread(Thread(id=THREAD, user_id=USER, title="shared thread"))

    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(str(path), embedder.id, embedder.dim, n, vectors,
                                              barrier, results))
             for n in range(WORKERS)]
    for p in procs:
        p.start()
    outcomes = dict(results.get(timeout=240) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert outcomes == {n: "ok" for n in range(WORKERS)}, "\n".join(
        v for v in outcomes.values() if v != "ok")
    assert all(p.exitcode == 0 for p in procs)

    # every memory exactly once, each with its final text
    memories = {m.id: m for page in store.iter_memories(USER, with_embedding=False) for m in page}
    assert len(memories) == WORKERS * ROUNDS + 1
    assert store.count_memories(USER) == WORKERS * ROUNDS + 1
    for w in range(WORKERS):
        for i in range(ROUNDS):
            assert memories[_mid(w, i)].text == _texts(w, i)[1]
    # no lost increment on the memory everybody touched
    assert memories[SHARED_MEMORY].access_count == WORKERS * ROUNDS
    # complete history: one ADD and one UPDATE per memory, in order
    history = store.all_history(USER)
    assert len(history) == 2 * WORKERS * ROUNDS
    for w in range(WORKERS):
        for i in range(ROUNDS):
            events = store.history(USER, _mid(w, i))
            assert [(e.event, e.new_text) for e in events] == [("ADD", _texts(w, i)[0]),
                                                              ("UPDATE", _texts(w, i)[1])]
    # every message once, with distinct consecutive positions
    messages = store.get_messages(USER, THREAD)
    assert sorted(m.content for m in messages) == sorted(f"{w}:{i}" for w in range(WORKERS)
                                                         for i in range(ROUNDS))
    assert [m.seq for m in messages] == list(range(WORKERS * ROUNDS))
    # the vectors written by the other processes are searchable from this one
    hit = store.vector_search(USER, vectors[_texts(3, 5)[1]], 1)
    assert hit[0][0] == _mid(3, 5)
    store.close()
