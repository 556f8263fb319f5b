"""Export and import of one user's data: the one import validator, then an all-or-nothing write.

Covers memories, history, profile and threads; restore-with-replace is the same import
with the delete in its transaction. Every front end (CLI, web app) uses this module."""
from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from typing import Any

from memory.intents import normalize
from memory.pii import redact
from memory.profile import refresh_profile
from memory.types import (MEMORY_TYPES, HistoryEvent, MemoryRecord, Message, Thread, as_utc,
                          new_id, utcnow)
from memory.users import check_user_id

EXPORT_VERSION = 1
#: memories embedded per embedder call
EMBED_BATCH = 256
#: largest accepted export file, in bytes (50 MiB)
MAX_IMPORT_BYTES = 50 * 1024 * 1024
#: default longest text (memory text, history text, thread message): MEMORY_MAX_MESSAGE_CHARS
MAX_TEXT_CHARS = 20_000
#: at most this many tags per memory, each at most TAG_CHARS characters
MAX_TAGS, TAG_CHARS = 50, 100
#: longest id, title, summary, actor / source / role in an import
ID_CHARS, TITLE_CHARS, SUMMARY_CHARS, NAME_CHARS = 128, 200, 20_000, 64
HISTORY_EVENTS = ("ADD", "UPDATE", "DELETE", "NONE")
MESSAGE_ROLES = ("user", "assistant", "system")
_DATES = ("created_at", "updated_at", "expires_at", "last_accessed_at")


# ---- export ------------------------------------------------------------------------------
def export_user(mem, user_id: str) -> dict:
    """Return everything of ``user_id`` as a JSON-ready dict: ``version``, ``user_id``,
    ``exported_at``, ``embedder``, ``profile``, ``memories``, ``history``, ``threads``
    (each with its ``messages``). ``import_user`` restores it losslessly."""
    uid = check_user_id(user_id)
    store = mem.store
    memories = [r.to_dict() for batch in store.iter_memories(uid, with_embedding=False)
                for r in batch]
    threads = []
    for t in store.list_threads(uid, limit=100000):
        item = t.to_dict()
        item["messages"] = [m.to_dict() for m in store.get_messages(uid, t.id)]
        threads.append(item)
    return {"version": EXPORT_VERSION, "user_id": uid, "exported_at": utcnow().isoformat(),
            "embedder": mem.embedder.id, "profile": store.get_profile(uid)[0],
            "memories": memories, "history": [e.to_dict() for e in store.all_history(uid)],
            "threads": threads}


# ---- validation --------------------------------------------------------------------------
def parse_export(raw: bytes, max_bytes: int = MAX_IMPORT_BYTES,
                 max_chars: int = MAX_TEXT_CHARS) -> dict:
    """Decode an export file's bytes (UTF-8, BOM allowed) and ``validate_export`` it.
    Returns the dict; raises ValueError naming the problem (size, encoding, JSON
    position, or the item and field)."""
    if len(raw) > max_bytes:
        raise ValueError(f"the file is {len(raw) / 2**20:.1f} MB; the limit is "
                         f"{max_bytes / 2**20:.1f} MB")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"the file is not valid JSON (line {exc.lineno}, column "
                         f"{exc.colno}: {exc.msg})") from None
    validate_export(data, max_chars)
    return data


def validate_export(data: Any, max_chars: int = MAX_TEXT_CHARS) -> None:
    """Check a whole export dict before anything is written. Raises ValueError
    ``"<where>: <problem>"``, e.g. ``memories[301].importance: must be 1..5``,
    ``threads[0].created_at: not an ISO date``, ``memories[2].metadata: must be an
    object``, ``memories[4].tags: must be a list of strings``. Limits: texts and
    messages ``max_chars``; tags ``MAX_TAGS`` × ``TAG_CHARS``; ids ``ID_CHARS``."""
    if not isinstance(data, dict):
        raise ValueError("import data must be a JSON object (a Memory Chat export)")
    if not isinstance(data.get("memories"), list):
        raise ValueError("import data has no 'memories' list")
    _opt(data, "profile", "", _text(max_chars))
    for i, item in enumerate(data["memories"]):
        _memory(item, f"memories[{i}]", max_chars)
    for name, check in (("history", _event), ("threads", _thread)):
        items = data.get(name)
        if items is not None and not isinstance(items, list):
            raise ValueError(f"{name}: must be a list")
        for i, item in enumerate(items or []):
            check(item, f"{name}[{i}]", max_chars)


def _memory(item: Any, where: str, max_chars: int) -> None:
    _object(item, where)
    _req(item, "text", where, _text(max_chars))
    for key in ("id", "thread_id"):
        _opt(item, key, where, _text(ID_CHARS))
    _opt(item, "source", where, _text(NAME_CHARS))
    _opt(item, "type", where, _choice(MEMORY_TYPES))
    _opt(item, "importance", where, _int(1, 5))
    _opt(item, "access_count", where, _int(0, 2**62))
    _opt(item, "tags", where, _tags)
    _opt(item, "metadata", where, _json_object)
    for key in _DATES:
        _opt(item, key, where, _date)


def _event(item: Any, where: str, max_chars: int) -> None:
    _object(item, where)
    _req(item, "memory_id", where, _text(ID_CHARS))
    _opt(item, "event", where, _choice(HISTORY_EVENTS))
    for key in ("old_text", "new_text"):
        _opt(item, key, where, _text(max_chars))
    _opt(item, "actor", where, _text(NAME_CHARS))
    _opt(item, "at", where, _date)


def _thread(item: Any, where: str, max_chars: int) -> None:
    _object(item, where)
    _opt(item, "id", where, _text(ID_CHARS))
    _opt(item, "title", where, _text(TITLE_CHARS * 5))
    _opt(item, "summary", where, _text(SUMMARY_CHARS))
    _opt(item, "summarized_upto", where, _int(0, 2**62))
    for key in ("created_at", "updated_at"):
        _opt(item, key, where, _date)
    messages = item.get("messages")
    if messages is not None and not isinstance(messages, list):
        raise ValueError(f"{where}.messages: must be a list")
    for j, m in enumerate(messages or []):
        at = f"{where}.messages[{j}]"
        _object(m, at)
        _req(m, "content", at, _text(max_chars))
        _opt(m, "role", at, _choice(MESSAGE_ROLES))
        _opt(m, "created_at", at, _date)
        _opt(m, "metadata", at, _json_object)


def _object(item: Any, where: str) -> None:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: must be an object")


def _req(item: dict, key: str, where: str, check) -> None:
    if item.get(key) is None:
        raise ValueError(f"{_at(where, key)}: is missing")
    _opt(item, key, where, check)


def _opt(item: dict, key: str, where: str, check) -> None:
    if item.get(key) is not None:
        problem = check(item[key])
        if problem:
            raise ValueError(f"{_at(where, key)}: {problem}")


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _text(limit: int):
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return "must be a string"
        if len(value) > limit:
            return f"is too long ({len(value):,} characters; at most {limit:,})"
        return _unicode(value)
    return check


def _unicode(value: str) -> str | None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains invalid Unicode (a lone surrogate)"
    return None


def _int(low: int, high: int):
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return f"must be {low}..{high}" if high < 1000 else f"must be a whole number ≥ {low}"
        return None
    return check


def _choice(options: tuple[str, ...]):
    def check(value: Any) -> str | None:
        return None if value in options else f"must be one of {', '.join(options)}"
    return check


def _tags(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        return "must be a list of strings"
    if len(value) > MAX_TAGS or any(len(t) > TAG_CHARS for t in value):
        return f"at most {MAX_TAGS} tags of at most {TAG_CHARS} characters"
    return next(filter(None, map(_unicode, value)), None)


def _json_object(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be an object"
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):
        return "must hold only JSON values (no NaN)"
    except UnicodeEncodeError:
        return "contains invalid Unicode (a lone surrogate)"
    return None


def _date(value: Any) -> str | None:
    if not isinstance(value, str):
        return "not an ISO date"
    try:
        as_utc(value)
    except (ValueError, OverflowError):
        return "not an ISO date"
    return None


# ---- import ------------------------------------------------------------------------------
def import_user(mem, user_id: str, data: dict, *, replace: bool = False) -> dict:
    """Import an export dict into ``user_id`` (who may differ from the exporter).

    ``validate_export`` checks the whole file first (ValueError naming item and field,
    nothing written). Memories whose id or normalised text the user already has are
    skipped; the rest are re-embedded and written with their dates, history and
    metadata; threads not yet present are restored with their messages. All of it is
    ONE store transaction, preceded by ``delete_user_memories`` when ``replace`` (an
    exact restore): a failure leaves the user's data as it was. Ids that belong to
    another user are replaced by new ones. Returns ``{"imported", "skipped",
    "threads"}`` (+ ``"deleted"`` when ``replace``)."""
    uid = check_user_id(user_id)
    validate_export(data, mem.config.memory_max_message_chars)
    fresh_ids = data.get("user_id") not in (None, uid)   # another user's ids would clash
    try:
        return _import(mem, uid, data, replace, fresh_ids)
    except ValueError as exc:
        if fresh_ids or "another user" not in str(exc):
            raise
        return _import(mem, uid, data, replace, True)    # rolled back: retry with new ids


def transaction(store):
    """``store.transaction()`` (one all-or-nothing write), or a no-op context for a
    store that does not offer it yet."""
    tx = getattr(store, "transaction", None)
    return tx() if callable(tx) else contextlib.nullcontext()


def _import(mem, uid: str, data: dict, replace: bool, fresh_ids: bool) -> dict:
    store = mem.store
    have_ids, have_texts = set(), set()
    if not replace:
        for batch in store.iter_memories(uid, with_embedding=False):
            for r in batch:
                have_ids.add(r.id)
                have_texts.add(normalize(r.text))
    fresh, skipped, renamed = [], 0, {}
    for item in data["memories"]:
        rec = MemoryRecord.from_dict(item, user_id=uid)
        key = normalize(rec.text)
        if rec.id in have_ids or key in have_texts or not key:
            skipped += 1
            continue
        if fresh_ids:
            old_id, rec.id = rec.id, new_id()
            renamed[rec.id] = old_id
        rec.text = redact(rec.text)[0]
        rec.source = rec.source or "import"
        have_ids.add(rec.id)
        have_texts.add(key)
        fresh.append(rec)
    for start in range(0, len(fresh), EMBED_BATCH):
        chunk = fresh[start:start + EMBED_BATCH]
        for rec, vec in zip(chunk, mem.embedder.embed_documents([r.text for r in chunk])):
            rec.embedding = vec.tolist()
    events = _history(uid, fresh, data.get("history") or [], renamed)
    threads = _threads(store, uid, data.get("threads") or [], fresh_ids)
    with transaction(store):
        deleted = store.delete_user_memories(uid) if replace else 0
        for start in range(0, len(fresh), EMBED_BATCH):
            chunk = fresh[start:start + EMBED_BATCH]
            store.insert_memories(chunk, [e for r in chunk for e in events[r.id]])
        for thread, messages in threads:
            store.upsert_thread(thread)
            for m in messages:
                store.add_message(m)
            store.upsert_thread(thread)  # keep the exported updated_at
        if replace or any(r.type in ("profile", "preference") for r in fresh):
            refresh_profile(store, uid, utcnow())
    report = {"imported": len(fresh), "skipped": skipped, "threads": len(threads)}
    return {**report, "deleted": deleted} if replace else report


def _history(uid: str, fresh: list[MemoryRecord], items: list[dict],
             renamed: dict[str, str]) -> dict[str, list[HistoryEvent]]:
    """The history events of each imported memory (its exported ones, else one ADD)."""
    by_old_id: dict[str, list[dict]] = defaultdict(list)
    for ev in items:
        by_old_id[ev["memory_id"]].append(ev)
    out = {}
    for rec in fresh:
        past = by_old_id.get(renamed.get(rec.id, rec.id)) or []
        out[rec.id] = [HistoryEvent(rec.id, uid, ev.get("event") or "ADD", ev.get("old_text"),
                                    ev.get("new_text"), ev.get("actor") or "import",
                                    at=as_utc(ev.get("at")) or utcnow()) for ev in past] \
            or [HistoryEvent(rec.id, uid, "ADD", None, rec.text, "import")]
    return out


def _threads(store, uid: str, items: list[dict], fresh_ids: bool) -> list[tuple[Thread, list[Message]]]:
    """The exported threads the user does not have yet (same id, or same title and
    creation time), with their messages, ready to write."""
    mine = store.list_threads(uid, limit=100000)
    have = {t.id for t in mine} | {(t.title, t.created_at.isoformat()) for t in mine}
    out = []
    for t in items:
        if not t.get("id") or t["id"] in have:
            continue
        title = (t.get("title") or "Chat")[:TITLE_CHARS]
        created = as_utc(t.get("created_at"))
        if created and (title, created.isoformat()) in have:
            continue
        have.add(t["id"])
        thread = Thread(id=new_id() if fresh_ids else t["id"], user_id=uid, title=title,
                        created_at=created or utcnow(),
                        updated_at=as_utc(t.get("updated_at")) or utcnow(),
                        summary=t.get("summary") or "",
                        summarized_upto=int(t.get("summarized_upto") or 0))
        messages = [Message(id=new_id(), thread_id=thread.id, user_id=uid,
                            role=m.get("role") or "user", content=m["content"],
                            created_at=as_utc(m.get("created_at")) or utcnow(),
                            metadata=dict(m.get("metadata") or {}))
                    for m in t.get("messages") or []]
        out.append((thread, messages))
    return out
