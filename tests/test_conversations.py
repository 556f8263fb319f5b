"""Implicit conversations (issue 26) through export and import: a one-call import's
``conversation_id`` survives a backup round trip, and an export written before the
field existed still gives a thread's raw messages their thread as conversation."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from memory import Memory, load_config
from memory.search.neighbours import thread_neighbours

DAY = datetime(2023, 5, 8, tzinfo=timezone.utc)


def _chat(texts: list[str]) -> list[dict]:
    """One message a minute: an export is ordered by id, so messages sharing one
    timestamp would come back in another order (the order of a conversation is
    ``created_at``, then storage order)."""
    return [{"role": "user", "content": t, "created_at": DAY + timedelta(minutes=i)}
            for i, t in enumerate(texts)]


def test_an_export_round_trip_keeps_one_calls_conversation(tmp_path):
    mem = Memory(load_config(env_file=None, memory_data_dir=str(tmp_path)), llm=object())
    try:
        ids = [c.id for c in mem.add(_chat(["Ann: Weekend?", "Bob: Went fishing!", "Ann: Nice."]),
                                     "u1", infer=False)]
        lone = mem.add("Likes tea", "u1", infer=False)[0].id
        data = mem.export("u1")
        conv = {m["id"]: m["conversation_id"] for m in data["memories"]}
        assert conv[ids[0]] == conv[ids[2]] is not None and conv[lone] is None
        assert mem.import_(data, "u1", replace=True)["imported"] == 4
        recs = {r.id: r for r in mem.store.get_memories("u1", ids)}
        assert {r.conversation_id for r in recs.values()} == {conv[ids[0]]}
        assert thread_neighbours(mem.store, "u1", [recs[ids[1]]]) == {ids[1]: (ids[0], ids[2])}
    finally:
        mem.close()


def test_an_export_from_before_conversations_keeps_thread_neighbours(tmp_path):
    mem = Memory(load_config(env_file=None, memory_data_dir=str(tmp_path)), llm=object())
    try:
        ids = [c.id for c in mem.add(_chat(["Ann: Weekend?", "Bob: Went fishing!"]), "u1",
                                     thread_id="t1", infer=False)]
        data = mem.export("u1")
        for item in data["memories"]:
            del item["conversation_id"]  # the shape older versions wrote
        assert mem.import_(data, "u1", replace=True)["imported"] == 2
        recs = {r.id: r for r in mem.store.get_memories("u1", ids)}
        assert {r.conversation_id for r in recs.values()} == {"t1"}
        assert thread_neighbours(mem.store, "u1", [recs[ids[0]]]) == {ids[0]: (None, ids[1])}
    finally:
        mem.close()
