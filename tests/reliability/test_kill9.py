"""kill -9 loop: a writer subprocess is killed at random moments; after each kill the
SQLite file passes ``PRAGMA integrity_check``, memories = FTS rows = vector rows, every
write the writer reported as done is there, and the store still opens and writes.

"Random moment": after a random number (1–12) of reported writes, plus a random number
(0–2000) of busy-loop iterations so the kill also lands mid-transaction. No sleeps.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys

from tests.reliability.helpers import (ROOT, WORKER, child_env, consistency, open_memory,
                                       raw)

KILLS = 6


def record(reported: dict[str, str | None], line: str) -> str | None:
    """Apply one writer line to ``reported``; return the id whose delete may have
    committed unprinted (the writer's next step after "updated X" can delete X)."""
    kind, _, rest = line.partition(" ")
    if kind == "added":
        reported.update(dict.fromkeys(rest.split(), "?"))
    elif kind == "updated":
        mid, text = rest.split(" ", 1)
        reported[mid] = text
        return mid
    elif kind == "deleted":
        reported[rest] = None
    return None


def test_kill_nine_loop(tmp_path, llm):
    rng = random.Random(9)
    env = child_env(tmp_path, llm)
    reported: dict[str, str | None] = {}   # id -> text (None: deleted), as reported
    for k in range(KILLS):
        maybe_deleted = None
        p = subprocess.Popen([sys.executable, str(WORKER), "victim", f"k{k}", "1000", "4"],
                             cwd=ROOT, env=env, text=True, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert p.stdout.readline().strip() == "ready"
            p.stdin.write("go\n")
            p.stdin.flush()
            for _ in range(rng.randint(1, 12)):
                line = p.stdout.readline().strip()
                assert line, p.stderr.read()[-2000:]
                maybe_deleted = record(reported, line)
            for _ in range(rng.randint(0, 2000)):
                pass
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
            # the writer went on while we read: its later lines were written (and
            # flushed) before the kill, so they are reported writes too
            for line in p.stdout.read().splitlines():
                if line.strip():
                    maybe_deleted = record(reported, line.strip())
        finally:
            if p.poll() is None:
                p.kill()
        assert p.returncode == -signal.SIGKILL
        ok, mems, fts, vec = consistency(tmp_path)
        assert ok == "ok" and mems == fts == vec, (k, ok, mems, fts, vec)
        on_disk = dict(raw(tmp_path, "SELECT id, text FROM memories"))
        for mid, text in reported.items():
            if text is None:
                assert mid not in on_disk
            elif mid == maybe_deleted and mid not in on_disk:
                pass  # its delete committed, the kill came before "deleted" was printed
            else:
                assert mid in on_disk and text in ("?", on_disk[mid]), (k, mid)
    mem = open_memory(tmp_path, llm)        # the store still opens and writes
    try:
        before = mem.count("victim")
        mem.add("after the kills", "victim", infer=False)
        assert mem.count("victim") == before + 1
    finally:
        mem.close()
    ok, mems, fts, vec = consistency(tmp_path)
    assert ok == "ok" and mems == fts == vec
    print(f"\nkill -9: {KILLS} kills, {len(reported)} reported writes all durable, "
          f"{mems} memories = FTS = vector rows")
