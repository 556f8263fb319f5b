"""Store migration on two real SQLite files with the real default embedder: full copy,
idempotent re-run, interrupted run + resume, embedder mismatch, count check."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from memory.embed.embedder import USEEmbedder
from memory.migrate import MigrationError, migrate, store_label, user_counts
from memory.store.base import StoreError
from memory.store.sqlite import SQLiteStore
from memory.types import HistoryEvent, MemoryRecord, Message, Thread, new_id, utcnow

USERS = {
    "alice": ["I live in Lisbon", "My sister is called Marta", "I am allergic to peanuts",
              "I prefer green tea over coffee", "I work as a nurse", "我喜欢打羽毛球",
              "My dog is named Bolt", "Dentist appointment on Friday"],
    "bob": ["Bob plays the cello", "Bob's favourite city is Kyoto", "Bob is vegetarian"],
}


@pytest.fixture(scope="module")
def embedder():
    return USEEmbedder()


def _open(path, embedder) -> SQLiteStore:
    store = SQLiteStore(path)
    store.open(embedder.id, embedder.dim)
    return store


def _populate(store: SQLiteStore, embedder) -> None:
    now = utcnow()
    for user, texts in USERS.items():
        vectors = embedder.embed_documents(texts)
        records = []
        for i, (text, vec) in enumerate(zip(texts, vectors)):
            records.append(MemoryRecord(
                id=new_id(), user_id=user, text=text, type="fact" if i % 2 else "preference",
                importance=1 + i % 5, tags=[f"t{i}"], metadata={"i": i},
                created_at=now - timedelta(days=len(texts) - i), updated_at=now,
                # one expired memory per user: migration copies it too
                expires_at=now - timedelta(hours=1) if i == 1 else None,
                embedding=[float(x) for x in vec]))
        history = [HistoryEvent(r.id, user, "ADD", None, r.text, "llm", at=r.created_at)
                   for r in records]
        store.insert_memories(records, history)
        first = records[0]
        new_vec = [float(x) for x in embedder.embed_documents([first.text + " (updated)"])[0]]
        store.update_memory(user, first.id, text=first.text + " (updated)", embedding=new_vec,
                            history=HistoryEvent(first.id, user, "UPDATE", first.text,
                                                 first.text + " (updated)", "user"))
        store.set_profile(user, f"{user} profile text", now)
        for t in range(2):
            thread = Thread(id=new_id(), user_id=user, title=f"{user} chat {t}",
                            created_at=now - timedelta(days=3), updated_at=now - timedelta(days=3))
            store.upsert_thread(thread)
            for i in range(5):
                store.add_message(Message(id=new_id(), thread_id=thread.id, user_id=user,
                                          role="user" if i % 2 == 0 else "assistant",
                                          content=f"{user} message {t}.{i}",
                                          created_at=now - timedelta(days=2, minutes=-i)))
            thread.summary, thread.summarized_upto = f"summary {t}", 2
            thread.updated_at = now - timedelta(days=1, hours=t)
            store.upsert_thread(thread)
    # a user who only has a profile
    store.set_profile("carol", "carol likes jazz", now)


@pytest.fixture
def stores(tmp_path, embedder):
    src = _open(tmp_path / "src.db", embedder)
    _populate(src, embedder)
    dst = _open(tmp_path / "dst.db", embedder)
    yield src, dst
    src.close()
    dst.close()


def _snapshot(store: SQLiteStore) -> dict:
    """Everything a user owns, in comparable form (vectors rounded to float32 noise)."""
    out = {}
    for user in store.user_ids():
        mems = sorted((m for page in store.iter_memories(user) for m in page), key=lambda m: m.id)
        threads = sorted(store.list_threads(user, limit=1000), key=lambda t: t.id)
        out[user] = {
            "memories": [(m.to_dict(), np.round(np.asarray(m.embedding), 5).tolist()) for m in mems],
            "history": sorted((e.to_dict() for e in store.all_history(user)), key=lambda d: d["id"]),
            "profile": store.get_profile(user),
            "threads": [t.to_dict() for t in threads],
            "messages": {t.id: [m.to_dict() for m in store.get_messages(user, t.id)] for t in threads},
        }
    return out


def test_full_copy_preserves_everything(stores, embedder, capsys):
    src, dst = stores
    before = _snapshot(src)
    report = migrate(src, dst, progress=True, batch=3)
    assert "migrate" in capsys.readouterr().err  # the tqdm bar
    assert report["users"] == 3 and report["skipped_users"] == 0 and report["mismatches"] == {}
    assert report["copied"] == {"memories": 11, "history": 13, "profiles": 3, "threads": 4,
                                "messages": 20}
    assert report["totals"] == {"memories": 11, "history": 13, "threads": 4, "messages": 20}
    assert _snapshot(dst) == before
    assert _snapshot(src) == before, "the source is never modified"
    # the copy is searchable: same nearest memory for a query in both stores
    q = [float(x) for x in embedder.embed_query("what instrument does he play?")]
    assert dst.vector_search("bob", q, 3) == pytest.approx(src.vector_search("bob", q, 3))
    assert dst.vector_search("bob", q, 1)[0][0] == src.vector_search("bob", q, 1)[0][0]
    assert dst.count_memories("alice") == src.count_memories("alice") == 7  # one expired
    assert dst.get_meta(f"migrate:{store_label(src)}:alice") == "done"


def test_rerun_copies_nothing_twice(stores):
    src, dst = stores
    migrate(src, dst, progress=False)
    expected = _snapshot(src)
    again = migrate(src, dst, progress=False)
    assert again["skipped_users"] == 3
    assert set(again["copied"].values()) == {0}
    assert _snapshot(dst) == expected
    # even with the checkpoints gone, the copy is idempotent (stable ids)
    for user in src.user_ids():
        dst.set_meta(f"migrate:{store_label(src)}:{user}", "")
    third = migrate(src, dst, progress=False)
    assert third["skipped_users"] == 0
    assert third["copied"]["history"] == 0 and third["copied"]["messages"] == 0
    assert _snapshot(dst) == expected


# users are copied in order alice, bob, carol; batch=3 -> alice's 8 memories take 3 calls
@pytest.mark.parametrize("method, fail_on_call, users_done", [
    ("insert_memories", 3, 0),   # alice's third memory batch
    ("add_history", 2, 0),       # alice's second history batch
    ("upsert_thread", 4, 0),     # after alice's second thread's messages
    ("add_message", 13, 1),      # bob's third message: alice is complete
])
def test_interrupted_run_resumes_to_equal_counts(stores, monkeypatch, method, fail_on_call,
                                                 users_done):
    src, dst = stores
    expected = _snapshot(src)
    real = getattr(dst, method)
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == fail_on_call:
            raise StoreError("connection lost (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(dst, method, flaky)
    with pytest.raises(StoreError, match="simulated"):
        migrate(src, dst, progress=False, batch=3)
    partial = {u: user_counts(dst, u) for u in src.user_ids()}
    assert partial != {u: user_counts(src, u) for u in src.user_ids()}, "the run was cut short"
    assert _snapshot(src) == expected
    monkeypatch.setattr(dst, method, real)
    report = migrate(src, dst, progress=False, batch=3)
    assert report["mismatches"] == {}
    assert report["skipped_users"] == users_done  # checkpointed users are not redone
    assert _snapshot(dst) == expected
    for user in src.user_ids():
        assert user_counts(dst, user) == user_counts(src, user)


def test_different_embedder_dimension_is_refused(tmp_path, stores):
    src, _ = stores
    other = SQLiteStore(tmp_path / "other.db")
    other.open("some-other-model", 8)
    try:
        with pytest.raises(MigrationError, match="512 dimensions.*8"):
            migrate(src, other, progress=False)
        assert other.user_ids() == []
        with pytest.raises(MigrationError, match="same store"):
            migrate(src, src, progress=False)
    finally:
        other.close()


def test_count_check_reports_and_raises(stores, embedder):
    src, dst = stores
    vec = [float(x) for x in embedder.embed_documents(["bob's extra memory"])[0]]
    dst.insert_memories([MemoryRecord(id=new_id(), user_id="bob", text="bob's extra memory",
                                      embedding=vec)])
    with pytest.raises(MigrationError, match="bob") as err:
        migrate(src, dst, progress=False)
    mismatch = err.value.report["mismatches"]["bob"]
    assert mismatch["source"]["memories"] == 3 and mismatch["destination"]["memories"] == 4
    assert set(err.value.report["mismatches"]) == {"bob"}
