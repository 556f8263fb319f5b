"""Malformed imports: each is refused with a ValueError naming the problem, and nothing
is written (every row of every table, FTS and vector counts unchanged).

The target user already has a memory and a thread; each case mutates a valid export of
another user (300 good memories, so a late failure would show as a partial write).
"""
from __future__ import annotations

import copy
import json

import pytest

from tests.reliability.helpers import open_memory, run_cli, snapshot


def _set(path, value):
    """A mutation setting ``data[path...] = value`` (path: keys and indexes)."""
    def mutate(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def _append_memory(item):
    return lambda data: data["memories"].append(item)


CASES = [  # (id, mutation or replacement, words the error must contain)
    ("not-an-object", lambda d: [1, 2], "object"),
    ("a-string", lambda d: "export", "object"),
    ("no-memories", lambda d: d.pop("memories"), "memories"),
    ("memories-is-dict", _set(["memories"], {"a": 1}), "memories"),
    ("item-is-int", _append_memory(5), "memories[300]"),
    ("text-is-int", _set(["memories", 299, "text"], 123), "memories[299]"),
    ("unknown-type", _set(["memories", 7, "type"], "bogus"), "memories[7]"),
    ("created-at-not-date", _set(["memories", 3, "created_at"], "not a date"), "created_at"),
    ("expires-at-int", _set(["memories", 3, "expires_at"], 12345), "expires_at"),
    ("importance-huge", _append_memory({"text": "late bad one", "importance": 10 ** 30}),
     "importance"),
    ("importance-abc", _set(["memories", 5, "importance"], "abc"), "memories[5].importance"),
    ("importance-list", _set(["memories", 5, "importance"], [3]), "memories[5].importance"),
    ("metadata-int", _set(["memories", 2, "metadata"], 5), "memories[2].metadata"),
    ("metadata-str", _set(["memories", 2, "metadata"], "x"), "memories[2].metadata"),
    ("metadata-nan", _set(["memories", 2, "metadata"], {"x": float("nan")}), "metadata"),
    ("tags-str", _set(["memories", 4, "tags"], "abc"), "memories[4].tags"),
    ("tags-ints", _set(["memories", 4, "tags"], [1, 2]), "memories[4].tags"),
    ("thread-id-dict", _set(["memories", 1, "thread_id"], {"x": 1}), "memories[1].thread_id"),
    ("id-dict", _set(["memories", 299, "id"], {"x": 1}), "memories[299].id"),
    ("text-surrogate", _set(["memories", 299, "text"], "bad \ud800 text"), "memories[299].text"),
    ("text-5mb", _set(["memories", 299, "text"], "x" * 5_000_000), "memories[299].text"),
    ("history-not-list", _set(["history"], "x"), "history"),
    ("history-old-text-int", _set(["history", 0, "old_text"], 123), "history[0].old_text"),
    ("history-at-not-date", _set(["history", 0, "at"], "not a date"), "history[0].at"),
    ("threads-not-list", _set(["threads"], "x"), "threads"),
    ("thread-created-not-date", _set(["threads", 0, "created_at"], "not a date"),
     "threads[0].created_at"),
    ("thread-title-dict", _set(["threads", 0, "title"], {"x": 1}), "threads[0].title"),
    ("thread-messages-int", _set(["threads", 0, "messages"], 5), "threads[0].messages"),
    ("message-1mb", _set(["threads", 0, "messages", 0, "content"], "y" * 1_000_000),
     "threads[0].messages[0].content"),
    ("message-content-int", _set(["threads", 0, "messages", 0, "content"], 5),
     "threads[0].messages[0].content"),
    ("message-role-bogus", _set(["threads", 0, "messages", 0, "role"], {"r": 1}),
     "threads[0].messages[0].role"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory, llm):
    """A store with the target user's memory and thread, and a valid export to mutate."""
    data_dir = tmp_path_factory.mktemp("imports")
    mem = open_memory(data_dir, llm)
    mem.add("Target already likes tea", "target", infer=False)
    mem.chat("hello there", "target").run()
    mem.add([f"source fact {i}" for i in range(300)], "source", infer=False)
    mem.chat("source chat", "source").run()
    export = mem.export("source")
    yield mem, data_dir, export
    mem.close()


@pytest.mark.parametrize("case_id, mutate, words", [
    pytest.param(c[0], c[1], c[2], id=c[0]) for c in CASES])
def test_malformed_import_writes_nothing(world, case_id, mutate, words):
    mem, data_dir, export = world
    data = copy.deepcopy(export)
    replaced = mutate(data)
    if replaced is not None and not isinstance(replaced, dict) and case_id != "no-memories":
        data = replaced
    before = snapshot(data_dir)
    with pytest.raises(ValueError) as info:
        mem.import_(data, "target")
    after = snapshot(data_dir)
    assert after == before, f"{case_id}: rows were written before the error"
    assert words in str(info.value) and "\n" not in str(info.value)


def test_valid_export_imports(world):
    """The unmutated export is fine (so the cases above fail for their one fault)."""
    mem, _, export = world
    out = mem.import_(copy.deepcopy(export), "control")
    assert out["imported"] == 300 and out["threads"] == 1
    assert mem.delete_all("control") == 300


def test_cli_malformed_import_exits_2_and_writes_nothing(world, llm, tmp_path):
    mem, data_dir, export = world
    data = copy.deepcopy(export)
    data["memories"].append({"text": "late bad one", "importance": 10 ** 30})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    before = snapshot(data_dir)
    r = run_cli(data_dir, llm, "memories", "import", str(path), "--user", "target")
    assert snapshot(data_dir) == before
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "importance" in r.stderr


def test_case_count():
    assert len(CASES) >= 25
