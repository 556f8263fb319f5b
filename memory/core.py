"""``Memory``: the public API of the memory engine (see API.md).

One turn of chat::

    retrieve (hybrid search + profile) → prompt → stream reply → store the thread
        → extract (1 LLM call, skipped for trivial turns) → reconcile (0–1 LLM call)
        → write ADD/UPDATE/DELETE with history → refresh the profile

Every method takes ``user_id`` and passes it to the store, which filters inside its
queries; an id owned by another user behaves exactly like an unknown id.
"""
from __future__ import annotations

import logging
import threading
from collections import defaultdict
from datetime import datetime
from typing import Any, Iterable, Iterator

import numpy as np

from memory import prompts
from memory.config import Config, load_config
from memory.errors import LLMError
from memory.pii import redact
from memory.intents import normalize
from memory.learn import learn_turn
from memory.profile import refresh_profile
from memory.retrieval import SearchWeights, hybrid_search
from memory.types import (MEMORY_TYPES, Change, HistoryEvent, MemoryRecord, Message,
                          ScoredMemory, SearchResult, Thread, as_utc, new_id, utcnow)

log = logging.getLogger(__name__)

EXPORT_VERSION = 1
EMBED_BATCH = 256
MAX_USER_ID = 128
PROMPT_MESSAGE_CHARS = 2000


def check_user_id(user_id: str) -> str:
    """Return ``user_id`` stripped; raise ValueError if empty, over 128 chars or holding
    control characters (ids are shown in the UI and used in file names)."""
    uid = (user_id or "").strip() if isinstance(user_id, str) else ""
    if not uid:
        raise ValueError("user_id must be a non-empty string")
    if len(uid) > MAX_USER_ID or any(ord(c) < 32 for c in uid):
        raise ValueError("user_id must be at most 128 printable characters")
    return uid


class Memory:
    """Per-user long-term memory over a store, an embedder and an LLM.

    ``Memory(config)`` builds the parts from a ``Config``; tests and benchmarks may pass
    ready-made ``embedder``/``store``/``llm`` objects instead. Raises ConfigError for bad
    settings, StoreError/EmbedderMismatchError when the store cannot be opened.
    """

    def __init__(self, config: Config | None = None, *, embedder=None, store=None, llm=None):
        self.config = config or load_config()
        if embedder is None:
            from memory.embedder import make_embedder
            embedder = make_embedder(self.config)
        self.embedder = embedder
        if store is None:
            from memory.store import open_store
            store = open_store(self.config, self.embedder.id, self.embedder.dim)
        self.store = store
        if llm is None:
            from memory.llm import LLM
            llm = LLM(self.config)
        self.llm = llm
        self._user_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()
        self.last_error: str | None = None

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
            importance: int | None = None, tags: list[str] | None = None) -> list[Change]:
        """Turn messages into memories of ``user_id``.

        ``messages``: a string (one user message) or a list of ``{"role", "content"}``.
        ``infer=True``: extract facts from the *user* messages with the LLM and reconcile
        them with stored ones → ADD/UPDATE/DELETE/NONE changes (``[]`` for a turn with
        nothing to learn, or — with a logged warning and ``self.last_error`` set — when
        the LLM fails; nothing is half-written). Assistant messages are never learned
        from; one right before the first user message is context for a short answer.
        A forget request ("forget that I like sushi", "别记这个") deletes instead.
        ``infer=False``: every message's content is stored verbatim as one memory
        (type ``memory_type`` or "fact"), embedded in batches of 256, keeping
        ``metadata`` and ``created_at`` (old chats keep their dates); a message dict may
        carry its own ``metadata`` (merged over the call's) and ``created_at``.
        Raises ValueError for an empty/invalid message list or user id.
        """
        uid = check_user_id(user_id)
        msgs = _normalize_messages(messages, self.config.memory_max_message_chars)
        when = as_utc(created_at) or utcnow()
        if not infer:
            items = [(m["content"], {**(metadata or {}), **(m.get("metadata") or {})},
                      as_utc(m.get("created_at")) or when) for m in msgs]
            return self._add_raw(uid, thread_id, items, memory_type or "fact",
                                 importance or 3, tags or [])
        user_text = "\n".join(m["content"] for m in msgs if m["role"] == "user")
        try:
            return self._learn(uid, thread_id, user_text, _context_before_user(msgs),
                               metadata or {}, when)
        except _ExtractionFailed:
            return []

    def _add_raw(self, uid, thread_id, items, mtype, importance, tags):
        """Store ``items`` = ``[(text, metadata, created_at)]`` verbatim, in batches."""
        if mtype not in MEMORY_TYPES:
            raise ValueError(f"unknown memory type {mtype!r}; use one of {', '.join(MEMORY_TYPES)}")
        def _has_context(meta: dict) -> bool:
            ctx = meta.get("context") if isinstance(meta, dict) else None
            return isinstance(ctx, str) and bool(ctx.strip())

        # metadata["context"] (the conversation around an imported message) is redacted
        # like the text: it is embedded and full-text indexed with it (store: FTS column
        # ``context``), while the stored/shown text stays the message itself
        items = [(redact(t)[0], {**meta, "context": redact(meta["context"])[0]}
                  if _has_context(meta) else meta, when) for t, meta, when in items]
        changes: list[Change] = []
        for start in range(0, len(items), EMBED_BATCH):
            chunk = items[start:start + EMBED_BATCH]
            # a chat import's conversational context (metadata["context"], e.g. the
            # question a turn answers) is embedded with the text but not stored in it
            vectors = self.embedder.embed_documents(
                [f"{t} {meta['context']}" if _has_context(meta) else t for t, meta, _ in chunk])
            records, events = [], []
            for (text, meta, when), vec in zip(chunk, vectors):
                rec = MemoryRecord(id=new_id(), user_id=uid, text=text, type=mtype,
                                   thread_id=thread_id, importance=int(importance),
                                   tags=list(tags), source="raw", metadata=dict(meta),
                                   created_at=when, updated_at=when, embedding=vec.tolist())
                records.append(rec)
                events.append(HistoryEvent(rec.id, uid, "ADD", None, text, "user", at=utcnow()))
                changes.append(Change("ADD", rec.id, text, type=mtype))
            self.store.insert_memories(records, events)
        if mtype in ("profile", "preference"):
            refresh_profile(self.store, uid, utcnow())
        return changes

    def _user_lock(self, uid: str) -> threading.Lock:
        with self._locks_guard:
            return self._user_locks[uid]

    def _learn(self, uid: str, thread_id: str | None, user_text: str, context: str,
               metadata: dict, when: datetime) -> list[Change]:
        """Run ``memory.learn.learn_turn``; an LLM failure becomes _ExtractionFailed
        (with ``last_error`` set) so nothing is half-written."""
        try:
            changes = learn_turn(self, uid, thread_id, user_text, context, metadata, when)
        except LLMError as exc:
            self.last_error = f"Memory extraction skipped: {exc}"
            log.warning("%s", self.last_error)
            raise _ExtractionFailed(self.last_error) from None
        self.last_error = None
        return changes

    # ---- reading ----------------------------------------------------------------------
    def search(self, query: str, user_id: str, limit: int = 10,
               filters: dict | None = None, *, weights: SearchWeights | None = None
               ) -> SearchResult:
        """Hybrid search of ``user_id``'s memories.

        ``filters``: optional ``{"types": [...], "since": datetime, "until": datetime}``.
        ``weights``: SearchWeights for ablations (default: the tuned hybrid). Returns a
        SearchResult with ranked ``memories`` and the ``profile`` text. Raises ValueError
        for an empty query or a limit outside 1..1000.
        """
        uid = check_user_id(user_id)
        q = (query or "").strip()[: self.config.memory_max_message_chars]
        if not q:
            raise ValueError("search query is empty")
        if not 1 <= int(limit) <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        f = filters or {}
        types = f.get("types") or None
        w = weights or SearchWeights()
        emb = self.embedder.embed_query(q) if w.vector > 0 else None
        hits = hybrid_search(self.store, uid, q, emb, int(limit), types=types,
                             since=as_utc(f.get("since")), until=as_utc(f.get("until")), weights=w)
        return SearchResult(hits, self.store.get_profile(uid)[0])

    def list(self, user_id: str, limit: int = 100, offset: int = 0,
             types: list[str] | None = None, since: datetime | None = None,
             until: datetime | None = None, order: str = "created_desc") -> list[MemoryRecord]:
        """Return ``user_id``'s live memories (newest first by default); see
        ``Store.list_memories`` for ``order`` values."""
        return self.store.list_memories(check_user_id(user_id), limit=limit, offset=offset,
                                        types=types, since=as_utc(since), until=as_utc(until),
                                        order=order)

    def count(self, user_id: str, types: list[str] | None = None) -> int:
        """Return how many live memories ``user_id`` has."""
        return self.store.count_memories(check_user_id(user_id), types)

    def get(self, memory_id: str, user_id: str) -> MemoryRecord | None:
        """Return one memory of ``user_id`` or None (also for another user's id)."""
        return self.store.get_memory(check_user_id(user_id), str(memory_id))

    def update(self, memory_id: str, text: str | None, user_id: str, actor: str = "user",
               **fields: Any) -> MemoryRecord | None:
        """Edit one memory (a user edit, recorded in history with ``actor``).

        ``text``: new text (PII-redacted and re-embedded) or None to keep it; ``fields``:
        any of type, importance, tags, metadata, expires_at. Returns the updated record, or
        None if ``user_id`` has no such memory. Raises ValueError for empty text or an
        unknown type/field.
        """
        uid = check_user_id(user_id)
        old = self.store.get_memory(uid, str(memory_id))
        if old is None:
            return None
        allowed = {"type", "importance", "tags", "metadata", "expires_at"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update field(s): {', '.join(sorted(bad))}")
        if "type" in fields and fields["type"] not in MEMORY_TYPES:
            raise ValueError(f"unknown memory type {fields['type']!r}")
        if "importance" in fields:
            fields["importance"] = min(5, max(1, int(fields["importance"])))
        if "expires_at" in fields:
            fields["expires_at"] = as_utc(fields["expires_at"])
        now = utcnow()
        fields["updated_at"] = now
        new_text, vec = None, None
        if text is not None:
            new_text = " ".join(str(text).split())
            if not new_text:
                raise ValueError("memory text is empty")
            if len(new_text) > self.config.memory_max_message_chars:
                raise ValueError("memory text is too long")
            new_text = redact(new_text)[0]
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
        """Delete one memory of ``user_id`` (history keeps a DELETE event). Returns False
        if the user has no such memory."""
        uid = check_user_id(user_id)
        old = self.store.get_memory(uid, str(memory_id))
        if old is None:
            return False
        ok = self.store.delete_memory(
            uid, old.id, history=HistoryEvent(old.id, uid, "DELETE", old.text, None, "user"))
        if ok and old.type in ("profile", "preference"):
            refresh_profile(self.store, uid, utcnow())
        return ok

    def delete_all(self, user_id: str) -> int:
        """Delete every memory, history event and the profile of ``user_id`` only (chat
        threads are kept). Returns the number of memories deleted."""
        return self.store.delete_user_memories(check_user_id(user_id))

    def history(self, memory_id: str, user_id: str) -> list[HistoryEvent]:
        """Return the change history of one memory of ``user_id``, oldest first."""
        return self.store.history(check_user_id(user_id), str(memory_id))

    def profile(self, user_id: str) -> str:
        """Return the profile text of ``user_id`` ("" if none yet)."""
        return self.store.get_profile(check_user_id(user_id))[0]

    # ---- export / import ----------------------------------------------------------------
    def export(self, user_id: str) -> dict:
        """Return everything of ``user_id`` as a JSON-ready dict: ``version``, ``user_id``,
        ``exported_at``, ``embedder``, ``profile``, ``memories``, ``history``, ``threads``
        (each with its ``messages``). ``import_`` restores it losslessly."""
        uid = check_user_id(user_id)
        memories = [r.to_dict() for batch in self.store.iter_memories(uid, with_embedding=False)
                    for r in batch]
        threads = []
        for t in self.store.list_threads(uid, limit=100000):
            item = t.to_dict()
            item["messages"] = [m.to_dict() for m in self.store.get_messages(uid, t.id)]
            threads.append(item)
        return {
            "version": EXPORT_VERSION,
            "user_id": uid,
            "exported_at": utcnow().isoformat(),
            "embedder": self.embedder.id,
            "profile": self.store.get_profile(uid)[0],
            "memories": memories,
            "history": [e.to_dict() for e in self.store.all_history(uid)],
            "threads": threads,
        }

    def import_(self, data: dict, user_id: str) -> dict:
        """Import an ``export`` dict into ``user_id`` (which may differ from the exporter).

        Validates the shape (raises ValueError naming the first problem, before writing
        anything). Memories whose id or normalised text the user already has are skipped;
        the rest are re-embedded with the current embedder and inserted with their dates,
        history and metadata. Threads not yet present are restored with their messages.
        Returns ``{"imported": n, "skipped": n, "threads": n}``.
        """
        uid = check_user_id(user_id)
        items = _validate_export(data)
        existing_ids: set[str] = set()
        existing_texts: set[str] = set()
        for batch in self.store.iter_memories(uid, with_embedding=False):
            for r in batch:
                existing_ids.add(r.id)
                existing_texts.add(normalize(r.text))
        fresh: list[MemoryRecord] = []
        skipped = 0
        for item in items:
            rec = MemoryRecord.from_dict(item, user_id=uid)
            key = normalize(rec.text)
            if rec.id in existing_ids or key in existing_texts or not key:
                skipped += 1
                continue
            rec.text = redact(rec.text)[0]
            rec.source = rec.source or "import"
            existing_ids.add(rec.id)
            existing_texts.add(key)
            fresh.append(rec)
        history_by_mem: dict[str, list[dict]] = defaultdict(list)
        for ev in data.get("history") or []:
            if isinstance(ev, dict) and ev.get("memory_id"):
                history_by_mem[str(ev["memory_id"])].append(ev)
        for start in range(0, len(fresh), EMBED_BATCH):
            chunk = fresh[start:start + EMBED_BATCH]
            vecs = self.embedder.embed_documents([r.text for r in chunk])
            for rec, vec in zip(chunk, vecs):
                rec.embedding = vec.tolist()
            try:
                self.store.insert_memories(chunk, self._import_history(uid, chunk, history_by_mem))
            except ValueError:
                # an id is owned by another user: give these memories new ids
                for rec in chunk:
                    old_id, rec.id = rec.id, new_id()
                    history_by_mem[rec.id] = history_by_mem.pop(old_id, [])
                self.store.insert_memories(chunk, self._import_history(uid, chunk, history_by_mem))
        threads = self._import_threads(uid, data.get("threads") or [])
        if any(r.type in ("profile", "preference") for r in fresh):
            refresh_profile(self.store, uid, utcnow())
        return {"imported": len(fresh), "skipped": skipped, "threads": threads}

    @staticmethod
    def _import_history(uid, chunk, history_by_mem) -> list[HistoryEvent]:
        events = []
        for rec in chunk:
            past = history_by_mem.get(rec.id) or []
            for ev in past:
                events.append(HistoryEvent(rec.id, uid, str(ev.get("event") or "ADD"),
                                           ev.get("old_text"), ev.get("new_text"),
                                           str(ev.get("actor") or "import"),
                                           at=as_utc(ev.get("at")) or utcnow()))
            if not past:
                events.append(HistoryEvent(rec.id, uid, "ADD", None, rec.text, "import"))
        return events

    def _import_threads(self, uid: str, threads: list) -> int:
        mine = self.store.list_threads(uid, limit=100000)
        have = {t.id for t in mine} | {(t.title, t.created_at.isoformat()) for t in mine}
        count = 0
        for t in threads:
            if not isinstance(t, dict) or not t.get("id") or t["id"] in have:
                continue
            created = as_utc(t.get("created_at"))
            if created and (str(t.get("title") or "Chat")[:200], created.isoformat()) in have:
                continue
            thread = Thread(id=str(t["id"]), user_id=uid, title=str(t.get("title") or "Chat")[:200],
                            created_at=as_utc(t.get("created_at")) or utcnow(),
                            updated_at=as_utc(t.get("updated_at")) or utcnow(),
                            summary=str(t.get("summary") or ""),
                            summarized_upto=int(t.get("summarized_upto") or 0))
            try:
                self.store.upsert_thread(thread)
            except ValueError:
                thread.id = new_id()
                self.store.upsert_thread(thread)
            for m in t.get("messages") or []:
                if isinstance(m, dict) and isinstance(m.get("content"), str):
                    self.store.add_message(Message(
                        id=new_id(), thread_id=thread.id, user_id=uid,
                        role=str(m.get("role") or "user"), content=m["content"],
                        created_at=as_utc(m.get("created_at")) or utcnow(),
                        metadata=dict(m.get("metadata") or {})))
            self.store.upsert_thread(thread)  # keep the exported updated_at
            count += 1
        return count

    # ---- threads (short-term memory) ------------------------------------------------------
    def new_thread(self, user_id: str, title: str = "New chat") -> Thread:
        """Create and return an empty chat thread of ``user_id``."""
        t = Thread(id=new_id(), user_id=check_user_id(user_id), title=title[:200] or "New chat")
        self.store.upsert_thread(t)
        return t

    def threads(self, user_id: str, limit: int = 100) -> list[Thread]:
        """Return ``user_id``'s threads, most recently updated first."""
        return self.store.list_threads(check_user_id(user_id), limit)

    def thread_messages(self, user_id: str, thread_id: str) -> list[Message]:
        """Return all messages of one thread of ``user_id`` in order ([] if unknown)."""
        return self.store.get_messages(check_user_id(user_id), thread_id)

    def rename_thread(self, user_id: str, thread_id: str, title: str) -> bool:
        """Rename a thread of ``user_id``. Returns False if it does not exist. Raises
        ValueError for an empty title."""
        uid = check_user_id(user_id)
        title = " ".join((title or "").split())[:200]
        if not title:
            raise ValueError("thread title is empty")
        t = self.store.get_thread(uid, thread_id)
        if t is None:
            return False
        t.title = title
        self.store.upsert_thread(t)
        return True

    def delete_thread(self, user_id: str, thread_id: str) -> bool:
        """Delete a thread of ``user_id`` and its messages (memories stay)."""
        return self.store.delete_thread(check_user_id(user_id), thread_id)

    # ---- chat -------------------------------------------------------------------------
    def chat(self, user_message: str, user_id: str, thread_id: str | None = None,
             metadata: dict | None = None) -> "ChatTurn":
        """Start one chat turn: stores the user message in the thread (created if
        ``thread_id`` is None or unknown), retrieves memories + profile, and returns a
        ChatTurn to iterate for the streamed reply. Call ``turn.changes()`` afterwards to
        extract and store memories. ``metadata`` (e.g. ``{"image_path": …}``) is kept on
        the message and on memories learned from it. Raises ValueError for an empty or
        over-long message (nothing is stored then)."""
        uid = check_user_id(user_id)
        text = _check_message(user_message, self.config.memory_max_message_chars)
        thread = self.store.get_thread(uid, thread_id) if thread_id else None
        if thread is None:
            thread = Thread(id=thread_id or new_id(), user_id=uid, title=_title(text))
            self.store.upsert_thread(thread)
        elif thread.title in ("New chat", "") and not self.store.get_messages(uid, thread.id, limit=1):
            thread.title = _title(text)
            self.store.upsert_thread(thread)
        return ChatTurn(self, uid, thread, text, dict(metadata or {}))

    def build_prompt(self, uid: str, thread: Thread, text: str, used: SearchResult,
                     history: list[Message]) -> list[dict]:
        """Return the chat messages sent to the LLM: system prompt with today's date, the
        profile and the retrieved memories; the thread summary; the last
        ``MEMORY_HISTORY_TURNS`` messages (each cut to 2,000 chars); the new message."""
        lines = []
        if used.profile:
            lines.append("Profile:\n" + used.profile + "\n")
        in_profile = set(used.profile.splitlines())
        extra = [m for m in used.memories if f"- {m.text}" not in in_profile]
        if extra:
            lines.append("Memories (most relevant first; newer wins over older):")
            for m in extra:
                lines.append(f"- [{m.created_at:%Y-%m-%d}] {m.text}")
        knowledge = ("What you know about the user:\n" + "\n".join(lines)) if lines else prompts.KNOWLEDGE_NONE
        system = prompts.CHAT_SYSTEM.format(today=utcnow().strftime("%Y-%m-%d (%A)"), knowledge=knowledge)
        out = [{"role": "system", "content": system}]
        if thread.summary:
            out.append({"role": "system", "content": prompts.THREAD_SUMMARY.format(summary=thread.summary)})
        for m in history:
            if m.role in ("user", "assistant") and m.content:
                out.append({"role": m.role, "content": m.content[:PROMPT_MESSAGE_CHARS]})
        out.append({"role": "user", "content": text})
        return out

    def maybe_summarize(self, uid: str, thread_id: str) -> bool:
        """Fold messages that have scrolled out of the prompt window into the thread's
        summary (one LLM call) once at least 8 such messages have accumulated, so the
        prompt stays bounded in long threads. Returns True if it summarised."""
        thread = self.store.get_thread(uid, thread_id)
        if thread is None:
            return False
        msgs = self.store.get_messages(uid, thread_id)
        window = self.config.memory_history_turns
        cutoff = len(msgs) - window
        if cutoff - thread.summarized_upto < 8:
            return False
        old = msgs[thread.summarized_upto:cutoff]
        convo = "\n".join(f"{m.role}: {m.content[:PROMPT_MESSAGE_CHARS]}" for m in old)
        prev = f"Previous summary: {thread.summary}\n\n" if thread.summary else ""
        try:
            summary = self.llm.chat([{"role": "system", "content": prompts.SUMMARY_SYSTEM},
                                     {"role": "user", "content": prev + convo}], max_tokens=300)
        except LLMError as exc:
            log.warning("thread summary skipped: %s", exc)
            return False
        thread.summary = summary.strip()[:4000]
        thread.summarized_upto = cutoff
        self.store.upsert_thread(thread)
        return True

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


class ChatTurn:
    """One chat turn in progress. Iterate it for the reply's text deltas (str). After the
    iteration: ``reply`` (full text), ``used`` (the SearchResult given to the model),
    ``error`` (one-line message if the LLM failed, else None), ``thread`` (Thread).
    ``changes()`` then extracts and stores memories (may run in a background thread);
    if extraction failed, ``changes_error`` holds this turn's one-line reason."""

    def __init__(self, mem: Memory, uid: str, thread: Thread, text: str, metadata: dict):
        self.mem, self.user_id, self.thread, self.text = mem, uid, thread, text
        self.metadata = metadata
        self.reply = ""
        self.error: str | None = None
        self.changes_error: str | None = None
        self.done = False
        self.user_message = mem.store.add_message(Message(
            id=new_id(), thread_id=thread.id, user_id=uid, role="user", content=text,
            metadata=metadata))
        history = mem.store.get_messages(uid, thread.id, after_seq=thread.summarized_upto - 1)
        history = [m for m in history if m.id != self.user_message.id][-mem.config.memory_history_turns:]
        #: the assistant message this one answers (context for a short answer)
        self.context = history[-1].content if history and history[-1].role == "assistant" else ""
        try:
            self.used = mem.search(text, uid, limit=mem.config.memory_search_limit)
        except Exception as exc:  # noqa: BLE001 - retrieval trouble must not kill the chat
            log.warning("memory retrieval failed: %s", exc)
            self.used = SearchResult([], "")
        if self.used.memories:
            mem.store.touch_memories(uid, [m.id for m in self.used.memories], utcnow())
        self.prompt = mem.build_prompt(uid, thread, text, self.used, history)

    def __iter__(self) -> Iterator[str]:
        parts: list[str] = []
        try:
            for delta in self.mem.llm.stream_chat(self.prompt):
                parts.append(delta)
                yield delta
        except LLMError as exc:
            self.error = str(exc)
        finally:
            self.reply = "".join(parts)
            self.done = True
            if self.reply.strip():
                self.mem.store.add_message(Message(
                    id=new_id(), thread_id=self.thread.id, user_id=self.user_id,
                    role="assistant", content=self.reply,
                    metadata={"used": [m.id for m in self.used.memories],
                              "used_texts": [m.text for m in self.used.memories],
                              "profile": self.used.profile,
                              "error": self.error}))

    def run(self) -> str:
        """Consume the stream and return the full reply ("" on error)."""
        for _ in self:
            pass
        return self.reply

    def changes(self) -> list[Change]:
        """Extract and store memories from this turn (user message + reply), then
        summarise the thread if it has grown past the prompt window. Returns the changes;
        never raises for LLM trouble (see ``Memory.last_error``)."""
        if not self.done:
            self.run()
        try:
            changes = self.mem._learn(self.user_id, self.thread.id, self.text, self.context,
                                      self.metadata, utcnow())
            self.changes_error = None
        except _ExtractionFailed as exc:
            changes, self.changes_error = [], str(exc)
        self.mem.maybe_summarize(self.user_id, self.thread.id)
        return changes


# ---- helpers ----------------------------------------------------------------------------
class _ExtractionFailed(Exception):
    """Internal: extraction failed for this turn (message = the user-facing reason)."""


def _check_message(text: Any, max_chars: int) -> str:
    if not isinstance(text, str):
        raise ValueError("message must be text")
    text = text.replace("\x00", "").strip()
    if not text:
        raise ValueError("message is empty")
    if len(text) > max_chars:
        raise ValueError(f"message is too long ({len(text):,} characters; the limit is "
                         f"{max_chars:,}, set by MEMORY_MAX_MESSAGE_CHARS)")
    return text


def _normalize_messages(messages: str | Iterable[dict], max_chars: int) -> list[dict]:
    if isinstance(messages, str):
        return [{"role": "user", "content": _check_message(messages, max_chars)}]
    out = []
    for m in messages or []:
        if isinstance(m, str):
            m = {"role": "user", "content": m}
        if not isinstance(m, dict) or "content" not in m:
            raise ValueError("each message must be a dict with 'role' and 'content'")
        role = str(m.get("role") or "user")
        if role == "system":
            continue  # never learn from system prompts
        content = m["content"]
        if not isinstance(content, str) or not content.strip():
            continue
        item = {"role": role, "content": _check_message(content, max_chars)}
        if m.get("metadata") is not None:
            if not isinstance(m["metadata"], dict):
                raise ValueError("a message's 'metadata' must be a dict")
            item["metadata"] = m["metadata"]
        if m.get("created_at") is not None:
            try:
                item["created_at"] = as_utc(m["created_at"])
            except (TypeError, ValueError):
                raise ValueError("a message's 'created_at' must be an ISO-8601 date") from None
        out.append(item)
    if not out:
        raise ValueError("no message with content to add")
    return out


def _context_before_user(msgs: list[dict]) -> str:
    """The assistant message right before the first user message of ``msgs`` (what a
    short user answer replies to), or ""."""
    for i, m in enumerate(msgs):
        if m["role"] == "user":
            return msgs[i - 1]["content"] if i and msgs[i - 1]["role"] == "assistant" else ""
    return ""


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line[:48] + ("…" if len(line) > 48 else "")


def _validate_export(data: Any) -> list[dict]:
    if not isinstance(data, dict):
        raise ValueError("import data must be a JSON object (a Memory Chat export)")
    items = data.get("memories")
    if not isinstance(items, list):
        raise ValueError("import data has no 'memories' list")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise ValueError(f"memories[{i}] needs a 'text' string")
        if item.get("type") is not None and item["type"] not in MEMORY_TYPES:
            raise ValueError(f"memories[{i}] has unknown type {item['type']!r}")
        for key in ("created_at", "updated_at", "expires_at", "last_accessed_at"):
            if item.get(key) is not None:
                try:
                    as_utc(item[key])
                except (TypeError, ValueError):
                    raise ValueError(f"memories[{i}].{key} is not an ISO-8601 date") from None
    return items
