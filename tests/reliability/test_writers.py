"""Concurrent writers: 8 processes, 4 users, one SQLite file; nothing is lost.

Each process is ``writer.py`` (public ``memory.Memory`` API, its own connection) for one
of four users, two processes per user. All are released together; afterwards every add,
update and delete a process reported (it reports after the call returned) is on disk
exactly once, nothing else is, and memories = FTS rows = vector rows.
"""
from __future__ import annotations

import subprocess
import sys
from collections import defaultdict

from tests.reliability.helpers import ROOT, WORKER, child_env, consistency, raw

WRITERS = 8
USERS = 4
ROUNDS = 9
BATCH = 3


def test_eight_writers_lose_nothing(tmp_path, llm):
    env = child_env(tmp_path, llm)
    procs = [subprocess.Popen([sys.executable, str(WORKER), f"user-{n % USERS}", f"w{n}",
                               str(ROUNDS), str(BATCH)], cwd=ROOT, env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for n in range(WRITERS)]
    try:
        for p in procs:                       # every writer has its store open
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        for p in procs:                       # release them together
            p.stdin.write("go\n")
            p.stdin.flush()
        outputs = [p.communicate(timeout=150) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0 and out.rstrip().endswith("done"), err[-2000:]

    expected: dict[str, dict[str, str | None]] = defaultdict(dict)  # user -> id -> text
    for n, (out, _) in enumerate(outputs):
        user = f"user-{n % USERS}"
        for line in out.splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "added":
                for mid in rest.split():
                    expected[user][mid] = "?"
            elif kind == "updated":
                mid, text = rest.split(" ", 1)
                expected[user][mid] = text
            elif kind == "deleted":
                expected[user][rest] = None
    on_disk: dict[str, dict[str, str]] = defaultdict(dict)
    for mid, user, text in raw(tmp_path, "SELECT id, user_id, text FROM memories"):
        on_disk[user][mid] = text
    adds = sum(len(v) for v in expected.values())
    assert adds == WRITERS * ROUNDS * BATCH
    for user, items in expected.items():
        live = {mid: text for mid, text in items.items() if text is not None}
        assert set(on_disk[user]) == set(live), user
        for mid, text in live.items():
            if text != "?":
                assert on_disk[user][mid] == text
    assert set(on_disk) <= set(expected)
    deletes = sum(1 for v in expected.values() for t in v.values() if t is None)
    assert deletes == WRITERS * (ROUNDS // 3)
    # every write left its history event: ADD per memory, UPDATE per round, DELETE per delete
    events = dict(raw(tmp_path, "SELECT event, count(*) FROM history GROUP BY event"))
    assert events == {"ADD": adds, "UPDATE": WRITERS * ROUNDS, "DELETE": deletes}
    ok, mems, fts, vec = consistency(tmp_path)
    assert (ok, mems, fts, vec) == ("ok", adds - deletes, adds - deletes, adds - deletes)
    print(f"\nwriters: {WRITERS} processes, {USERS} users, {adds} adds, "
          f"{WRITERS * ROUNDS} updates, {deletes} deletes, nothing lost")
