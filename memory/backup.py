"""Export and import of one user's data: the one import validator, then an all-or-nothing write.

Covers memories, history, profile and threads; restore-with-replace is the same import
with the delete in its transaction. Every front end (CLI, web app) uses this module."""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from memory.write.intents import normalize
from memory.write.profile import refresh_profile
from memory.safety.sanitize import (IMPORTANCE_MAX, IMPORTANCE_MIN, LIMITS, clamp_importance,
                             clean_datetime, clean_history_text, clean_id, clean_metadata,
                             clean_summary, clean_tags, clean_text, clean_title,
                             keep_raw_transcripts, redact)
from memory.types import (MEMORY_STATUSES, MEMORY_TYPES, HistoryEvent, MemoryRecord, Message,
                          Thread, new_id, utcnow)
from memory.safety.users import check_user_id

EXPORT_VERSION = 1
#: memories embedded per embedder call
EMBED_BATCH = 256
#: largest accepted export file, in bytes (50 MiB)
MAX_IMPORT_BYTES = 50 * 1024 * 1024
#: default longest memory text and thread message: MEMORY_MAX_MESSAGE_CHARS' default
MAX_TEXT_CHARS = LIMITS["message"]
#: longest actor / source name in an import
NAME_CHARS = 64
HISTORY_EVENTS = ("ADD", "UPDATE", "END", "FORGET", "RESTORE", "UNDO", "DELETE", "NONE")
MESSAGE_ROLES = ("user", "assistant", "system")
_DATES = ("created_at", "updated_at", "expires_at", "last_accessed_at", "valid_from",
          "invalid_at")


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


# ---- validation: the one import validator --------------------------------------------------
def parse_export(raw: bytes, max_bytes: int = MAX_IMPORT_BYTES,
                 max_chars: int = MAX_TEXT_CHARS) -> dict:
    """Decode an export file's bytes (UTF-8, BOM allowed) and ``validate_export`` it.
    Returns the decoded dict (as in the file; ``import_user`` cleans it again); raises
    ValueError naming the problem (size, encoding, JSON position, or the item and field)."""
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


def validate_export(data: Any, max_chars: int = MAX_TEXT_CHARS, *,
                    keep_raw: bool = False) -> dict:
    """Check and clean a whole export before anything is written; return the cleaned
    copy that ``import_user`` writes.

    Every field goes through ``memory.safety.sanitize`` (the one boundary): texts are str only,
    lone surrogates refused, NUL removed, NFC; memory texts, history texts, tags,
    metadata string values, thread titles and summaries are PII-redacted, and message
    contents too unless ``keep_raw`` (``MEMORY_KEEP_RAW_TRANSCRIPTS``). Limits: memory
    texts and messages ``max_chars`` (assistant replies ``LIMITS["reply"]``), the rest
    ``memory.safety.sanitize.LIMITS``. Importance must already be a whole number 1..5 (an
    export never holds another). Raises ValueError ``"<path>: <problem>"``, e.g.
    ``memories[301].importance: must be 1..5``, ``threads[0].created_at: not an
    ISO date``, ``memories[4].tags: must be a list of strings, got str``; a
    redaction failure is a ``memory.safety.pii.PIIError`` (a ValueError) naming the field."""
    if not isinstance(data, dict):
        raise ValueError("import data must be a JSON object (a Memory Chat export)")
    if not isinstance(data.get("memories"), list):
        raise ValueError("import data has no 'memories' list")
    out: dict[str, Any] = {"user_id": data.get("user_id")}
    _opt(data, "profile", "", lambda v, f: clean_text(v, f, MAX_IMPORT_BYTES))
    out["memories"] = [_memory(item, f"memories[{i}]", max_chars)
                       for i, item in enumerate(data["memories"])]
    for name, check in (("history", _event), ("threads", _thread)):
        items = data.get(name)
        if items is not None and not isinstance(items, list):
            raise ValueError(f"{name}: must be a list, got {type(items).__name__}")
        out[name] = [check(item, f"{name}[{i}]", max_chars, keep_raw)
                     for i, item in enumerate(items or [])]
    return out


def _memory(item: Any, where: str, max_chars: int) -> dict:
    _object(item, where)
    out = {"text": _req(item, "text", where, lambda v, f: _text(v, f, max_chars))}
    for key, check in (("id", clean_id), ("thread_id", clean_id),
                       ("conversation_id", clean_id), ("source", _name),
                       ("type", _choice(MEMORY_TYPES)), ("importance", _importance),
                       ("access_count", _count), ("tags", clean_tags),
                       ("metadata", clean_metadata), ("status", _choice(MEMORY_STATUSES)),
                       ("superseded_by", clean_id), ("invalid_reason", _name),
                       *((key, clean_datetime) for key in _DATES)):
        out[key] = _opt(item, key, where, check)
    if out["status"] not in (None, "current") and out["invalid_at"] is None:
        raise ValueError(f"{where}.invalid_at: a {out['status']} memory needs invalid_at")
    return out


def _event(item: Any, where: str, max_chars: int, keep_raw: bool) -> dict:
    _object(item, where)
    out = {"memory_id": _req(item, "memory_id", where, clean_id)}
    for key, check in (("event", _choice(HISTORY_EVENTS)), ("old_text", clean_history_text),
                       ("new_text", clean_history_text), ("actor", _name),
                       ("at", clean_datetime), ("turn_id", clean_id)):
        out[key] = _opt(item, key, where, check)
    return out


def _thread(item: Any, where: str, max_chars: int, keep_raw: bool) -> dict:
    _object(item, where)
    out = {}
    for key, check in (("id", clean_id), ("title", clean_title), ("summary", clean_summary),
                       ("summarized_upto", _count), ("created_at", clean_datetime),
                       ("updated_at", clean_datetime)):
        out[key] = _opt(item, key, where, check)
    messages = item.get("messages")
    if messages is not None and not isinstance(messages, list):
        raise ValueError(f"{where}.messages: must be a list, got {type(messages).__name__}")
    out["messages"] = [_message(m, f"{where}.messages[{j}]", max_chars, keep_raw)
                       for j, m in enumerate(messages or [])]
    return out


def _message(m: Any, where: str, max_chars: int, keep_raw: bool) -> dict:
    _object(m, where)
    role = _opt(m, "role", where, _choice(MESSAGE_ROLES)) or "user"
    limit = max(max_chars, LIMITS["reply"]) if role == "assistant" else max_chars

    def content(value: Any, field: str) -> str:
        text = clean_text(value, field, limit, required=True, strip=True)
        return text if keep_raw else redact(text, field)
    return {"role": role, "content": _req(m, "content", where, content),
            "created_at": _opt(m, "created_at", where, clean_datetime),
            "metadata": _opt(m, "metadata", where, clean_metadata)}


def _object(item: Any, where: str) -> None:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: must be an object, got {type(item).__name__}")


def _req(item: dict, key: str, where: str, check) -> Any:
    if item.get(key) is None:
        raise ValueError(f"{_at(where, key)}: is missing")
    return _opt(item, key, where, check)


def _opt(item: dict, key: str, where: str, check) -> Any:
    """``check(item[key], "<where>.<key>")`` (a memory.safety.sanitize cleaner), or None when
    the key is absent or null."""
    return None if item.get(key) is None else check(item[key], _at(where, key))


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _text(value: Any, field: str, limit: int) -> str:
    """A memory text: cleaned, trimmed, non-empty, at most ``limit``, PII-redacted."""
    return redact(clean_text(value, field, limit, required=True, strip=True), field)


def _name(value: Any, field: str) -> str:
    return clean_text(value, field, NAME_CHARS, required=True, strip=True)


def _importance(value: Any, field: str) -> int:
    """1..5 exactly (``clamp_importance`` for the type check; an import never clamps)."""
    try:
        level = clamp_importance(value, field)
    except ValueError:
        level = None
    if isinstance(value, bool) or not isinstance(value, int) or value != level:
        shown = repr(value) if isinstance(value, (int, float, str)) else type(value).__name__
        raise ValueError(f"{field}: must be {IMPORTANCE_MIN}..{IMPORTANCE_MAX}, got {shown[:20]}")
    return level


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**62:
        raise ValueError(f"{field}: must be a whole number ≥ 0")
    return value


def _choice(options: tuple[str, ...]):
    def check(value: Any, field: str) -> str:
        if not isinstance(value, str) or value not in options:
            raise ValueError(f"{field}: must be one of {', '.join(options)}")
        return value
    return check


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
    clean = validate_export(data, mem.config.memory_max_message_chars,
                            keep_raw=keep_raw_transcripts(mem.config))
    fresh_ids = clean["user_id"] not in (None, uid)   # another user's ids would clash
    try:
        return _import(mem, uid, clean, replace, fresh_ids)
    except ValueError as exc:
        if fresh_ids or "another user" not in str(exc):
            raise
        return _import(mem, uid, clean, replace, True)    # rolled back: retry with new ids


def _import(mem, uid: str, data: dict, replace: bool, fresh_ids: bool) -> dict:
    """Write the cleaned export ``data`` (``validate_export``'s result) in ONE
    ``store.transaction()``; embeddings are computed before it opens."""
    store = mem.store
    have_ids, have_texts = set(), set()
    if not replace:
        for batch in store.iter_memories(uid, with_embedding=False):
            for r in batch:
                have_ids.add(r.id)
                have_texts.add(normalize(r.text))
    fresh, skipped, renamed = [], 0, {}
    for item in data["memories"]:
        rec = MemoryRecord.from_dict({k: v for k, v in item.items() if v is not None},
                                     user_id=uid)
        key = normalize(rec.text)
        if rec.id in have_ids or key in have_texts or not key:
            skipped += 1
            continue
        if fresh_ids:
            old_id, rec.id = rec.id, new_id()
            renamed[rec.id] = old_id
        have_ids.add(rec.id)
        have_texts.add(key)
        fresh.append(rec)
    new_of = {old: new for new, old in renamed.items()}
    for rec in fresh:  # an earlier value points at its memory under its new id
        if rec.superseded_by in new_of:
            rec.superseded_by = new_of[rec.superseded_by]
    for start in range(0, len(fresh), EMBED_BATCH):
        chunk = fresh[start:start + EMBED_BATCH]
        for rec, vec in zip(chunk, mem.embedder.embed_documents([r.text for r in chunk])):
            rec.embedding = vec.tolist()
    events = _history(uid, fresh, data["history"], renamed)
    threads = _threads(store, uid, data["threads"], fresh_ids)
    with store.transaction():
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
    """The history events of each imported memory (its exported ones, else one ADD);
    without turn ids: an imported turn is not undone as one."""
    by_old_id: dict[str, list[dict]] = defaultdict(list)
    for ev in items:
        by_old_id[ev["memory_id"]].append(ev)
    out = {}
    for rec in fresh:
        past = by_old_id.get(renamed.get(rec.id, rec.id)) or []
        out[rec.id] = [HistoryEvent(rec.id, uid, ev.get("event") or "ADD", ev.get("old_text"),
                                    ev.get("new_text"), ev.get("actor") or "import",
                                    at=ev.get("at") or utcnow(), turn_id=None)
                       for ev in past] \
            or ([] if rec.superseded_by else  # an earlier value's history is its memory's
                [HistoryEvent(rec.id, uid, "ADD", None, rec.text, "import", turn_id=None)])
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
        title = t.get("title") or "Chat"
        created = t.get("created_at")
        if created and (title, created.isoformat()) in have:
            continue
        have.add(t["id"])
        thread = Thread(id=new_id() if fresh_ids else t["id"], user_id=uid, title=title,
                        created_at=created or utcnow(), updated_at=t.get("updated_at") or utcnow(),
                        summary=t.get("summary") or "",
                        summarized_upto=int(t.get("summarized_upto") or 0))
        messages = [Message(id=new_id(), thread_id=thread.id, user_id=uid, role=m["role"],
                            content=m["content"], created_at=m.get("created_at") or utcnow(),
                            metadata=m.get("metadata") or {})
                    for m in t["messages"]]
        out.append((thread, messages))
    return out
