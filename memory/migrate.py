"""Copy every user's data from one store to another (SQLite -> TiDB or back).

Used by ``python main.py migrate --to tidb|sqlite``: the CLI opens both stores with the
*same* embedder (``store.open(embedder.id, embedder.dim)``) and calls
``migrate(src, dst)``; it prints the returned report and exits non-zero on
``MigrationError``. Example::

    from memory.migrate import migrate
    report = migrate(sqlite_store, tidb_store, progress=True, batch=500)
    # {"source": "sqlite:/…/memory.db", "destination": "tidb:…", "users": 3,
    #  "skipped_users": 0, "copied": {"memories": 120, "history": 150, "profiles": 2,
    #  "threads": 4, "messages": 61}, "totals": {...}, "mismatches": {}}

Guarantees:

* **Source untouched**: ``src`` is only read.
* **Nothing lost on interruption**: every destination write is one store call, i.e. one
  transaction (memories go ``batch`` at a time with their embeddings; a history batch, a
  thread, a message, a profile each in their own). A crash leaves whole batches behind.
* **Idempotent**: ids are stable across stores. ``insert_memories`` replaces same-id rows;
  history events and messages already in ``dst`` (same id) are skipped; threads and the
  profile are upserts. Re-running copies nothing twice.
* **Resumable**: when a user is fully copied, ``dst`` records the meta key
  ``migrate:<source id>:<user id>`` = ``done``; a re-run skips such users whose counts
  still match and redoes the others (the copy itself is idempotent).
* **Checked**: at the end, for every user, the numbers of memories (expired included),
  history events, threads and messages, and the profile text, must be equal in ``src``
  and ``dst``; any difference is listed in ``report["mismatches"]`` and raises
  ``MigrationError`` (which carries the report).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tqdm import tqdm

from memory.store.base import Store, StoreError

__all__ = ["migrate", "MigrationError", "store_label", "user_counts", "ALL_THREADS"]

#: ``list_threads`` limit used to mean "all of them" (the interface has no unlimited form).
ALL_THREADS = 1_000_000

_COUNT_KEYS = ("memories", "history", "threads", "messages")


class MigrationError(StoreError):
    """Migration refused or incomplete. ``report`` holds what was done so far (same shape
    as ``migrate``'s return value, with ``mismatches`` filled)."""

    def __init__(self, message: str, report: dict[str, Any] | None = None):
        super().__init__(message)
        self.report = report or {}


def store_label(store: Store) -> str:
    """A stable identifier of a store, used in checkpoint keys and the report: the
    store's ``store_id`` meta if it records one (TiDB does), else ``sqlite:<absolute
    path>`` for a store with a ``path``, else its ``name``. Never contains a password."""
    sid = store.get_meta("store_id")
    if sid:
        return f"{store.name}:{sid}"
    path = getattr(store, "path", None)
    if path is not None:
        return f"{store.name}:{Path(path).resolve()}"
    return store.name


def user_counts(store: Store, user_id: str) -> dict[str, Any]:
    """Return ``{"memories", "history", "threads", "messages", "profile"}`` of one user:
    counts of memories (expired included), history events, threads and messages, and the
    profile text ("" when none)."""
    memories = sum(len(page) for page in store.iter_memories(user_id, with_embedding=False))
    threads = store.list_threads(user_id, limit=ALL_THREADS)
    return {
        "memories": memories,
        "history": len(store.all_history(user_id)),
        "threads": len(threads),
        "messages": sum(len(store.get_messages(user_id, t.id)) for t in threads),
        "profile": store.get_profile(user_id)[0],
    }


def _check_embedders(src: Store, dst: Store) -> None:
    src_id, src_dim = src.get_meta("embedder_id"), src.get_meta("dim")
    dst_id, dst_dim = dst.get_meta("embedder_id"), dst.get_meta("dim")
    if src_dim is None or dst_dim is None:
        raise MigrationError("both stores must be opened (store.open(embedder_id, dim)) "
                             "before migrating")
    if str(src_dim) != str(dst_dim) or src_id != dst_id:
        raise MigrationError(
            f"embedders differ: the source holds vectors of {src_id} ({src_dim} dimensions), "
            f"the destination expects {dst_id} ({dst_dim}); open both stores with the same "
            "EMBEDDER (or run `python main.py reembed` on the source first)")


def _copy_user(src: Store, dst: Store, user_id: str, batch: int,
               copied: dict[str, int]) -> None:
    """Copy one user's memories, history, profile, threads and messages (idempotent)."""
    for page in src.iter_memories(user_id, batch=batch, with_embedding=True):
        missing = [m.id for m in page if m.embedding is None]
        if missing:
            raise MigrationError(f"memory {missing[0]} of user {user_id!r} has no embedding "
                                 "(an interrupted re-embedding?): run `python main.py "
                                 "reembed` on the source first")
        dst.insert_memories(page)
        copied["memories"] += len(page)

    have = {e.id for e in dst.all_history(user_id)}
    events = [e for e in src.all_history(user_id) if e.id not in have]
    for start in range(0, len(events), batch):
        dst.add_history(events[start:start + batch])
    copied["history"] += len(events)

    text, at = src.get_profile(user_id)
    if at is not None:
        dst.set_profile(user_id, text, at)
        copied["profiles"] += 1

    for thread in src.list_threads(user_id, limit=ALL_THREADS):
        dst.upsert_thread(thread)
        have = {m.id for m in dst.get_messages(user_id, thread.id)}
        for message in src.get_messages(user_id, thread.id):
            if message.id not in have:
                dst.add_message(message)
                copied["messages"] += 1
        # add_message bumped updated_at: restore the source's title/summary/updated_at
        dst.upsert_thread(thread)
        copied["threads"] += 1


def migrate(src: Store, dst: Store, *, progress: bool = True, batch: int = 500) -> dict:
    """Copy every user of ``src`` (``src.user_ids()``) into ``dst``.

    Both stores must be open with the same embedder. ``progress`` shows a tqdm bar (one
    step per user) on stderr; ``batch`` is the number of memories (and history events)
    per destination transaction.

    Returns the report ``{"source", "destination", "users", "skipped_users", "copied":
    {"memories", "history", "profiles", "threads", "messages"}, "totals": {per-kind
    counts summed over users, equal in both stores}, "mismatches": {}}``.

    Raises MigrationError when the embedders differ, the stores are the same, a memory
    lacks its embedding, or the final count check finds a difference (the report, with
    ``mismatches[user] = {"source": counts, "destination": counts}``, is attached);
    StoreError/ValueError from the stores propagate (whole batches already written stay,
    and a re-run resumes).
    """
    if batch < 1:
        raise ValueError("batch must be >= 1")
    _check_embedders(src, dst)
    source, destination = store_label(src), store_label(dst)
    if source == destination:
        raise MigrationError(f"source and destination are the same store ({source})")
    users = src.user_ids()
    copied = dict.fromkeys(("memories", "history", "profiles", "threads", "messages"), 0)
    report: dict[str, Any] = {"source": source, "destination": destination,
                              "users": len(users), "skipped_users": 0, "copied": copied,
                              "totals": dict.fromkeys(_COUNT_KEYS, 0), "mismatches": {}}
    bar = tqdm(users, desc="migrate", unit="user", disable=not progress)
    for user_id in bar:
        key = f"migrate:{source}:{user_id}"
        expected = user_counts(src, user_id)
        if dst.get_meta(key) == "done" and user_counts(dst, user_id) == expected:
            report["skipped_users"] += 1
        else:
            _copy_user(src, dst, user_id, batch, copied)
            got = user_counts(dst, user_id)
            if got != expected:
                report["mismatches"][user_id] = {"source": expected, "destination": got}
            else:
                dst.set_meta(key, "done")
        for k in _COUNT_KEYS:
            report["totals"][k] += expected[k]
        bar.set_postfix(memories=copied["memories"], messages=copied["messages"])
    bar.close()
    if report["mismatches"]:
        users_off = ", ".join(sorted(report["mismatches"]))
        raise MigrationError(f"count check failed for {len(report['mismatches'])} user(s): "
                             f"{users_off}", report)
    return report
