"""``Memory``: the public API of the memory engine (see API.md) — a small facade.

Where the work is done: a chat turn in ``memory/chat/turn.py`` (retrieve → prompt → stream →
learn → summarise), learning in ``memory/write/pipeline.py``, search in ``memory/search/hybrid.py``,
export/import in ``memory/backup.py``, input checks in ``memory/safety/validate.py`` and
``memory/safety/users.py``. Every method takes ``user_id`` and passes it to the store, which
filters inside its queries; an id owned by another user behaves like an unknown id.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from memory.backup import EMBED_BATCH, export_user, import_user
from memory.config import Config, load_config
from memory.write.pipeline import learn_changes
from memory.write.profile import refresh_profile
from memory.search.hybrid import SearchWeights, hybrid_search
from memory.resources import ingest
from memory.resources.model import name_history
from memory.resources.scope import scoped_search
from memory.safety.sanitize import (clamp_importance, clean_datetime, clean_id, clean_memory_text,
                             clean_metadata, clean_tags, clean_title)
from memory.chat.turn import ChatTurn, start_turn
from memory.types import (MEMORY_TYPES, PAST_STATUSES, Change, Changes, HistoryEvent,
                          MemoryRecord, Message, SearchResult, Thread, as_utc, new_id, utcnow)
from memory.write.undo import undo_turn
from memory.safety.users import UserLocks, check_user_id
from memory.safety.validate import (MAX_LIST_LIMIT, MAX_SEARCH_LIMIT, check_int, check_query,
                             context_before_user, normalize_messages)

__all__ = ["Memory", "ChatTurn", "Changes", "check_user_id"]


class Memory:
    """Per-user long-term memory over a store, an embedder and an LLM.

    ``Memory(config)`` builds the parts from a ``Config``; tests and benchmarks may pass
    ready-made ``embedder``/``store``/``llm`` objects instead. Raises ConfigError for bad
    settings, StoreError/EmbedderMismatchError when the store cannot be opened.
    ``user_locks`` (``memory.safety.users.UserLocks``) serialises each user's writes; the write
    path (``memory.write.pipeline``, ``memory.resources.ingest``) takes it from here.
    """

    def __init__(self, config: Config | None = None, *, embedder=None, store=None, llm=None):
        self.config = config or load_config()
        if embedder is None:
            from memory.embed.embedder import make_embedder
            embedder = make_embedder(self.config)
        self.embedder = embedder
        if store is None:
            from memory.store import open_store
            store = open_store(self.config, self.embedder.id, self.embedder.dim)
        self.store = store
        if llm is None:
            from memory.llm.client import LLM
            llm = LLM(self.config)
        self.llm = llm
        self.user_locks = UserLocks()

    @classmethod
    def from_env(cls, env_file: str | None = ".env", **overrides: Any) -> "Memory":
        """Build a Memory from the environment and ``.env`` (``MEMORY_DATA_DIR`` etc.);
        ``overrides`` are Config field names. Raises ConfigError on invalid settings."""
        return cls(load_config(env_file=env_file, **overrides))

    def close(self) -> None:
        """Close the store. Safe to call twice."""
        self.store.close()

    # ---- writing ----------------------------------------------------------------------
    def add(self, messages: str | list[dict], user_id: str, thread_id: str | None = None,
            infer: bool = True, metadata: dict | None = None,
            created_at: datetime | str | None = None, *, memory_type: str | None = None,
            importance: int | None = None, tags: list[str] | None = None) -> "Changes":
        """Turn messages into memories of ``user_id``.

        ``messages``: a string (one user message) or a list of ``{"role", "content"}``.
        ``infer=True``: extract facts from the *user* messages with the LLM and reconcile
        them with stored ones → ADD/UPDATE/DELETE/NONE changes (``[]`` for a turn with
        nothing to learn, or — with a logged warning and the reason in the result's
        ``.error`` — when the LLM fails; nothing is half-written). Assistant messages are never learned
        from; one right before the first user message is context for a short answer.
        A forget request ("forget that I like sushi", "别记这个") deletes instead.
        ``infer=False``: every message's content is stored verbatim as one memory
        (type ``memory_type`` or "fact"), embedded in batches of 256, keeping
        ``metadata`` and ``created_at`` (old chats keep their dates); a message dict may
        carry its own ``metadata`` (merged over the call's) and ``created_at``.

        Everything stored goes through ``memory.safety.sanitize``: texts cleaned and
        PII-redacted (``clean_memory_text``), every metadata string value redacted
        (``clean_metadata``), ``tags`` a list of strings (``clean_tags``: ``"abc"`` is
        refused, not split), ``importance`` clamped to 1..5. All items are checked before
        the first write. Raises ValueError naming the field for an empty/invalid message
        list, user id, thread id, metadata, tags or type, and ``memory.safety.pii.PIIError`` (a
        ValueError) when redaction fails: nothing is written then.
        """
        uid = check_user_id(user_id)
        thread_id = None if thread_id is None else clean_id(thread_id, "thread_id")
        msgs = normalize_messages(messages, self.config.memory_max_message_chars)
        meta = clean_metadata(metadata)
        when = clean_datetime(created_at) or utcnow()
        if not infer:
            mtype = memory_type or "fact"
            if mtype not in MEMORY_TYPES:
                raise ValueError(f"unknown memory type {mtype!r}; use one of "
                                 f"{', '.join(MEMORY_TYPES)}")
            items = [(clean_memory_text(m["content"], f"messages[{i}].content"),
                      {**meta, **(m.get("metadata") or {})}, m.get("created_at") or when)
                     for i, m in enumerate(msgs)]
            return Changes(self._add_raw(uid, thread_id, items, mtype,
                                         clamp_importance(importance), clean_tags(tags)))
        user_text = "\n".join(m["content"] for m in msgs if m["role"] == "user")
        return learn_changes(self, uid, thread_id, user_text, context_before_user(msgs),
                             meta, when)

    def _add_raw(self, uid, thread_id, items, mtype, importance, tags):
        """Store ``items`` = ``[(text, metadata, created_at)]`` (already cleaned and
        redacted) verbatim, embedded and written in batches of ``EMBED_BATCH`` (each
        batch one store write)."""
        def _has_context(meta: dict) -> bool:
            ctx = meta.get("context") if isinstance(meta, dict) else None
            return isinstance(ctx, str) and bool(ctx.strip())

        changes: list[Change] = []
        conversation = thread_id or (new_id() if len(items) > 1 else None)  # memory.search.neighbours
        for start in range(0, len(items), EMBED_BATCH):
            chunk = items[start:start + EMBED_BATCH]
            # a chat import's conversational context (metadata["context"], e.g. the
            # question a turn answers) is embedded with the text but not stored in it
            vectors = self.embedder.embed_documents(
                [f"{t} {meta['context']}" if _has_context(meta) else t for t, meta, _ in chunk])
            records, events = [], []
            for (text, meta, when), vec in zip(chunk, vectors):
                rec = MemoryRecord(id=new_id(), user_id=uid, text=text, type=mtype,
                                   thread_id=thread_id, importance=importance,
                                   tags=list(tags), source="raw", metadata=dict(meta),
                                   created_at=when, updated_at=when, embedding=vec.tolist(),
                                   conversation_id=conversation)
                records.append(rec)
                events.append(HistoryEvent(rec.id, uid, "ADD", None, text, "user", at=utcnow()))
                changes.append(Change("ADD", rec.id, text, type=mtype))
            self.store.insert_memories(records, events)
        if mtype in ("profile", "preference"):
            refresh_profile(self.store, uid, utcnow())
        return changes

    # ---- reading ----------------------------------------------------------------------
    def search(self, query: str, user_id: str, limit: int = 10,
               filters: dict | None = None, *, weights: SearchWeights | None = None,
               scope: str = "all") -> SearchResult:
        """Hybrid search of ``user_id``'s memories.

        ``filters``: optional ``{"types": [...], "since": datetime, "until": datetime}``.
        ``weights``: SearchWeights for ablations (default: the tuned hybrid). ``scope``:
        ``"all"``, ``"chat"`` (not learned from a file) or ``"resource:<id>"`` (learned
        from that file; see ``memory.resources.scope``). Returns a SearchResult with
        ranked ``memories`` and the ``profile`` text. Raises ValueError for a query that
        is not text or is empty, a limit outside 1..1000, or an unknown scope.
        """
        if scope != "all":
            return scoped_search(self, query, user_id, limit, scope, filters=filters,
                                 weights=weights)
        uid = check_user_id(user_id)
        q = check_query(query, self.config.memory_max_message_chars)
        limit = check_int(limit, "limit", 1, MAX_SEARCH_LIMIT)
        f = filters or {}
        types = f.get("types") or None
        w = weights or SearchWeights()
        emb = self.embedder.embed_query(q) if w.vector > 0 else None
        hits = hybrid_search(self.store, uid, q, emb, int(limit), types=types,
                             since=as_utc(f.get("since")), until=as_utc(f.get("until")), weights=w)
        return SearchResult(hits, self.store.get_profile(uid)[0])

    # ---- resources: files the user gave (memory/resources/) ----------------------------
    def add_resource(self, source, user_id: str, filename: str | None = None,
                     mime: str | None = None, *, progress=None):
        """Store a file (path, bytes or binary file object) of ``user_id`` as a resource
        and learn what it says about them; ``progress(done, total)`` after each batch.
        Returns the ``Resource`` (``ready`` or ``failed`` with its reason; the same file
        again returns the existing one). Raises ValueError for a file over
        ``MEMORY_MAX_UPLOAD_MB``, a refused or disguised type; StoreError.
        See ``memory.resources.ingest.add_resource``."""
        return ingest.add_resource(self, source, user_id, filename, mime, progress=progress)

    def resources(self, user_id: str, *, include_deleted: bool = False) -> list:
        """The user's resources, newest first, with ``memory_count``."""
        return ingest.resources(self, user_id, include_deleted=include_deleted)

    def resource(self, user_id: str, resource_id: str):
        """One resource of the user, or None (unknown or another user's)."""
        return ingest.resource(self, user_id, resource_id)

    def resource_memories(self, user_id: str, resource_id: str) -> list[MemoryRecord]:
        """The live memories learned from one of the user's resources."""
        return ingest.resource_memories(self, user_id, resource_id)

    def delete_resource(self, user_id: str, resource_id: str) -> bool:
        """Soft-delete a resource: its memories leave search and lists (history keeps
        why); False if the user has no such resource."""
        return ingest.delete_resource(self, user_id, resource_id)

    def list(self, user_id: str, limit: int = 100, offset: int = 0,
             types: list[str] | None = None, since: datetime | None = None,
             until: datetime | None = None, order: str = "created_desc") -> list[MemoryRecord]:
        """Return ``user_id``'s live memories (newest first by default); see
        ``Store.list_memories`` for ``order`` values. Raises ValueError for a ``limit``
        outside 1..10,000 or a negative ``offset``."""
        uid = check_user_id(user_id)
        limit = check_int(limit, "limit", 1, MAX_LIST_LIMIT)
        offset = check_int(offset, "offset", 0, 2**62)
        return self.store.list_memories(uid, limit=limit, offset=offset,
                                        types=types, since=as_utc(since), until=as_utc(until),
                                        order=order)

    def count(self, user_id: str, types: list[str] | None = None) -> int:
        """Return how many live memories ``user_id`` has."""
        return self.store.count_memories(check_user_id(user_id), types)

    def get(self, memory_id: str, user_id: str) -> MemoryRecord | None:
        """Return one memory of ``user_id`` or None (also for another user's id)."""
        return self.store.get_memory(check_user_id(user_id), clean_id(memory_id, "memory_id"))

    def update(self, memory_id: str, text: str | None, user_id: str, actor: str = "user",
               **fields: Any) -> MemoryRecord | None:
        """Edit one memory (a user edit, recorded in history with ``actor``).

        ``text``: new text (whitespace collapsed, cleaned and PII-redacted by
        ``memory.safety.sanitize.clean_memory_text``, re-embedded) or None to keep it;
        ``fields``: any of type, importance (clamped 1..5), tags (``clean_tags``),
        metadata (``clean_metadata``), expires_at (``clean_datetime``). Returns the
        updated record, or None if ``user_id`` has no such memory. Raises ValueError
        naming the field for bad text or an unknown type/field (PIIError when
        redaction fails), before anything is written.
        """
        uid = check_user_id(user_id)
        old = self.store.get_memory(uid, clean_id(memory_id, "memory_id"))
        if old is None:
            return None
        allowed = {"type", "importance", "tags", "metadata", "expires_at"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update field(s): {', '.join(sorted(bad))}")
        if "type" in fields and fields["type"] not in MEMORY_TYPES:
            raise ValueError(f"type: unknown memory type {fields['type']!r}")
        cleaners = {"importance": clamp_importance, "tags": clean_tags,
                    "metadata": clean_metadata, "expires_at": clean_datetime}
        for name, clean in cleaners.items():
            if name in fields:
                fields[name] = clean(fields[name], name)
        now = utcnow()
        fields["updated_at"] = now
        new_text, vec = None, None
        if text is not None:
            new_text = " ".join(clean_memory_text(text).split())
            if new_text != old.text:
                vec = self.embedder.embed_documents([new_text])[0].tolist()
            else:
                new_text = None
        event = HistoryEvent(old.id, uid, "UPDATE", old.text, new_text or old.text, actor, at=now)
        self.store.update_memory(uid, old.id, text=new_text, embedding=vec, fields=fields,
                                 history=event)
        new = self.store.get_memory(uid, old.id)
        if {old.type, new.type if new else old.type} & {"profile", "preference"}:
            refresh_profile(self.store, uid, now)
        return new

    def delete(self, memory_id: str, user_id: str) -> bool:
        """Erase one memory of ``user_id`` for good — current, past or forgotten — with
        its earlier versions (privacy: no retention; history keeps a DELETE event).
        Returns False if the user has no such memory."""
        uid = check_user_id(user_id)
        old = self.store.get_any_memory(uid, clean_id(memory_id, "memory_id"))
        if old is None:
            return False
        ok = self.store.delete_memory(
            uid, old.id, history=HistoryEvent(old.id, uid, "DELETE", old.text, None, "user"))
        if ok and old.type in ("profile", "preference"):
            refresh_profile(self.store, uid, utcnow())
        return ok

    def undo(self, user_id: str, turn_id: str | None = None) -> Changes:
        """Take back every change one turn made (``memory.write.undo``): ``turn_id`` from
        ``Changes.turn_id``, default the user's latest turn not undone yet. Returns the
        reversed changes (``UNDO``/``RESTORE``; empty when there is nothing to undo).
        Raises ``memory.write.undo.UndoError`` (a ValueError) when the turn is not the user's,
        was undone already or a later turn changed its memories."""
        uid = check_user_id(user_id)
        tid = None if turn_id is None else clean_id(turn_id, "turn_id")
        return undo_turn(self, uid, tid)

    def past(self, user_id: str, limit: int = 100, *, forgotten: bool = False
             ) -> list[MemoryRecord]:
        """``user_id``'s memories that are no longer current — superseded and ended
        values, most recently ended first, each with ``invalid_at``, ``superseded_by``
        and ``invalid_reason`` — or, with ``forgotten``, the forgotten ones still
        restorable by undo. ``limit`` 1..MAX_LIST_LIMIT (ValueError otherwise)."""
        uid = check_user_id(user_id)
        limit = check_int(limit, "limit", 1, MAX_LIST_LIMIT)
        statuses = ("forgotten",) if forgotten else PAST_STATUSES
        return self.store.past_memories(uid, statuses=statuses, limit=limit)

    def delete_all(self, user_id: str) -> int:
        """Delete every memory, history event and the profile of ``user_id`` only (chat
        threads are kept). Returns the number of memories deleted."""
        return self.store.delete_user_memories(check_user_id(user_id))

    def history(self, memory_id: str, user_id: str) -> list[HistoryEvent]:
        """Return the change history of one memory of ``user_id``, oldest first; a
        change a file made names it (``HistoryEvent.resource``, the file name)."""
        uid = check_user_id(user_id)
        return name_history(self.store, uid, self.store.history(uid, clean_id(memory_id, "memory_id")))

    def profile(self, user_id: str) -> str:
        """Return the profile text of ``user_id`` ("" if none yet)."""
        return self.store.get_profile(check_user_id(user_id))[0]

    # ---- export / import (memory/backup.py) ---------------------------------------------
    def export(self, user_id: str) -> dict:
        """Return everything of ``user_id`` as a JSON-ready dict (``memory.backup.export_user``)."""
        return export_user(self, user_id)

    def import_(self, data: dict, user_id: str, *, replace: bool = False) -> dict:
        """Import an ``export`` dict into ``user_id``, all or nothing, after validating
        the whole of it (ValueError ``memories[3].importance: must be 1..5``); ``replace``
        first deletes the user's memories in the same transaction. Returns
        ``{"imported", "skipped", "threads"}`` (+ ``"deleted"``); see
        ``memory.backup.import_user``."""
        return import_user(self, user_id, data, replace=replace)

    # ---- threads (short-term memory) ------------------------------------------------------
    def new_thread(self, user_id: str, title: str = "New chat") -> Thread:
        """Create and return an empty chat thread of ``user_id``. ``title`` is cleaned
        and PII-redacted (``memory.safety.sanitize.clean_title``: one line, at most 200
        characters); ValueError for a bad user id or title."""
        uid = check_user_id(user_id)
        t = Thread(id=new_id(), user_id=uid, title=clean_title(title or "New chat"))
        self.store.upsert_thread(t)
        return t

    def threads(self, user_id: str, limit: int = 100) -> list[Thread]:
        """Return ``user_id``'s threads, most recently updated first (``limit``
        1..10,000)."""
        uid = check_user_id(user_id)
        return self.store.list_threads(uid, check_int(limit, "limit", 1, MAX_LIST_LIMIT))

    def thread_messages(self, user_id: str, thread_id: str) -> list[Message]:
        """Return all messages of one thread of ``user_id`` in order ([] if unknown)."""
        return self.store.get_messages(check_user_id(user_id), clean_id(thread_id, "thread_id"))

    def rename_thread(self, user_id: str, thread_id: str, title: str) -> bool:
        """Rename a thread of ``user_id``. Returns False if it does not exist. Raises
        ValueError for an empty or over-long title (``memory.safety.sanitize.clean_title``:
        one line, at most 200 characters, PII-redacted)."""
        uid = check_user_id(user_id)
        title = clean_title(title if title is not None else "")
        t = self.store.get_thread(uid, clean_id(thread_id, "thread_id"))
        if t is None:
            return False
        t.title = title
        self.store.upsert_thread(t)
        return True

    def delete_thread(self, user_id: str, thread_id: str) -> bool:
        """Delete a thread of ``user_id`` and its messages (memories stay)."""
        return self.store.delete_thread(check_user_id(user_id), clean_id(thread_id, "thread_id"))

    # ---- chat (memory/chat/turn.py) -------------------------------------------------------------
    def chat(self, user_message: str, user_id: str, thread_id: str | None = None,
             metadata: dict | None = None, *, images: list[tuple[str, bytes]] = ()
             ) -> ChatTurn:
        """Start one chat turn (``memory.chat.turn.start_turn``): attach ``images`` (``[(file
        name, bytes)]``, described by ``VISION_MODEL``), store the user message in the
        thread (created if ``thread_id`` is None or unknown), retrieve memories + profile
        and return the ChatTurn to iterate for the streamed reply; ``turn.changes()``
        then learns from it. ``metadata`` is kept on the message and on memories learned
        from it. Raises ValueError (empty/over-long message, bad image) or LLMError (an
        image could not be described) before anything is stored."""
        return start_turn(self, user_id, user_message, thread_id, images=images,
                          metadata=metadata)

    # ---- maintenance ------------------------------------------------------------------
    def health(self) -> dict:
        """Return ``{"llm": {...}, "embedder": {...}, "store": {...}}``, each with ``ok``
        (bool) and ``detail`` (str). Never raises."""
        out = {}
        for name, part in (("llm", self.llm), ("embedder", self.embedder), ("store", self.store)):
            try:
                out[name] = part.health()
            except Exception as exc:  # noqa: BLE001 - health never raises
                out[name] = {"ok": False, "detail": str(exc)}
        return out
