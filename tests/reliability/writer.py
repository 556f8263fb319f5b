"""A writer subprocess for the reliability suite (concurrent writers, kill -9 loop).

``python writer.py USER TAG COUNT BATCH`` with the settings in the environment (see
``helpers.child_env``). It opens ``memory.Memory``, prints ``ready``, waits for one line
on stdin (the start signal, so all writers start together), then COUNT times: adds BATCH
raw memories for USER in one call and prints ``added <id> …``; updates the first of them
and prints ``updated <id> <text>``; every third round deletes that memory and prints
``deleted <id>``. Each line is printed after the write returned (committed). ``done`` at
the end. The parent checks every printed write against the database file.
"""
from __future__ import annotations

import sys


def main() -> None:
    user, tag, count, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    from memory import Memory
    mem = Memory.from_env(env_file=None)
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        msgs = [{"role": "user", "content": f"{tag} round {i} item {j} likes tea"}
                for j in range(batch)]
        changes = mem.add(msgs, user, infer=False)
        print("added " + " ".join(c.id for c in changes), flush=True)
        first = changes[0].id
        text = f"{tag} round {i} item 0 likes green tea"
        mem.update(first, text, user)
        print(f"updated {first} {text}", flush=True)
        if i % 3 == 2:
            mem.delete(first, user)
            print(f"deleted {first}", flush=True)
    mem.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
