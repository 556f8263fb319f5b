"""The one place the API and the MCP server call the memory engine (``memory.Memory``).

Every route and MCP tool goes through ``Engine``; a chat turn is the engine's own
``memory.chat.turn.start_turn`` (the same turn the web app and the terminal run). Results are
returned as JSON-ready dicts/lists (the engine's own ``to_dict()`` shapes).

Errors: ``ValueError`` for bad input (the engine's one-line message),
``EngineUnavailable`` when the LLM or the store cannot do the work (the API answers
503). An LLM failure on the write path stores nothing: ``Memory.add`` returns an empty
``Changes`` list whose ``error`` names the reason (per call, so concurrent requests
never read each other's error).
"""
from __future__ import annotations

import time
from typing import Any, Iterator

from memory.llm.errors import LLMError, one_line
from memory.store.base import StoreError


class EngineUnavailable(RuntimeError):
    """A part the request needs (LLM, store) is down; ``str(exc)`` is one line."""


class UploadRefused(ValueError):
    """An upload the engine will not take; ``status`` is the HTTP answer (413: over
    ``MEMORY_MAX_UPLOAD_MB``; 415: an unsupported or disguised type, or audio without
    ``TRANSCRIPTION_MODEL``) and ``str(exc)`` the engine's one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(one_line(message))
        self.status = status


class Engine:
    """Adapter over one ``memory.Memory`` shared by all requests of a process.

    ``Engine(memory)``; ``Engine.from_env()`` builds the Memory from the environment.
    All methods take the caller's ``user_id`` first (it always comes from the API key).
    """

    def __init__(self, memory: Any) -> None:
        self.memory = memory

    @classmethod
    def from_env(cls, **overrides: Any) -> "Engine":
        """An Engine over ``Memory.from_env(**overrides)`` (reads .env / environment)."""
        from memory import Memory
        return cls(Memory.from_env(**overrides))

    @property
    def data_dir(self):
        """The engine's ``MEMORY_DATA_DIR`` (a Path); keys.db and the request log live there."""
        return self.memory.config.memory_data_dir

    def close(self) -> None:
        """Close the engine's store."""
        self.memory.close()

    # ---- memories -----------------------------------------------------------------------
    def add(self, user_id: str, messages: str | list[dict], *, infer: bool = True,
            thread_id: str | None = None, metadata: dict | None = None,
            memory_type: str | None = None, importance: int | None = None,
            tags: list[str] | None = None) -> dict:
        """Add memories (``Memory.add``); returns ``{"changes": [{"event", "id", "text",
        "old_text", "type", "reason"}], "turn_id"}`` (the id undo takes). Raises EngineUnavailable with
        the LLM's one-line reason when extraction failed (nothing was stored)."""
        if not infer:
            changes = _guard(lambda: self.memory.add(
                messages, user_id, thread_id=thread_id, infer=False, metadata=metadata,
                memory_type=memory_type, importance=importance, tags=tags))
            return _changes(changes)
        changes = _guard(lambda: self.memory.add(messages, user_id, thread_id=thread_id,
                                                 infer=True, metadata=metadata))
        failed = getattr(changes, "error", None)
        if failed and not changes:
            raise EngineUnavailable(one_line(failed))
        return _changes(changes)

    def undo(self, user_id: str, turn_id: str | None = None) -> dict:
        """Undo one turn (``Memory.undo``): ``{"changes": [...], "turn_id"}``. Raises
        ``memory.write.undo.UndoError`` when it cannot be undone."""
        return _changes(_guard(lambda: self.memory.undo(user_id, turn_id)))

    def past(self, user_id: str, limit: int = 100, forgotten: bool = False) -> list[dict]:
        """The user's past (superseded, ended) or forgotten memories as dicts."""
        return [r.to_dict() for r in
                _guard(lambda: self.memory.past(user_id, limit, forgotten=forgotten))]

    def search(self, user_id: str, query: str, limit: int = 10,
               filters: dict | None = None, scope: str = "all") -> dict:
        """Hybrid search; returns ``{"memories": [scored memory dicts], "profile": str}``.
        ``scope``: ``"all"``, ``"chat"`` or ``"resource:<id>"`` (ValueError otherwise)."""
        res = _guard(lambda: self.memory.search(query, user_id, limit=limit, filters=filters,
                                                scope=scope))
        return {"memories": [m.to_dict() for m in res.memories], "profile": res.profile}

    def list(self, user_id: str, *, limit: int = 100, offset: int = 0,
             types: list[str] | None = None, since: Any = None, until: Any = None,
             order: str = "created_desc") -> tuple[list[dict], int]:
        """One page of memories and the user's total count (of ``types``)."""
        rows = _guard(lambda: self.memory.list(user_id, limit=limit, offset=offset, types=types,
                                               since=since, until=until, order=order))
        return [r.to_dict() for r in rows], _guard(lambda: self.memory.count(user_id, types))

    def get(self, user_id: str, memory_id: str) -> dict | None:
        """One memory of ``user_id`` or None (unknown or another user's)."""
        rec = _guard(lambda: self.memory.get(memory_id, user_id))
        return rec.to_dict() if rec else None

    def update(self, user_id: str, memory_id: str, text: str | None, **fields: Any) -> dict | None:
        """Edit a memory (``Memory.update``); None if the user has no such memory."""
        rec = _guard(lambda: self.memory.update(memory_id, text, user_id, actor="api", **fields))
        return rec.to_dict() if rec else None

    def delete(self, user_id: str, memory_id: str) -> bool:
        """Delete one memory; False if the user has no such memory."""
        return _guard(lambda: self.memory.delete(memory_id, user_id))

    def delete_all(self, user_id: str) -> int:
        """Delete all of the user's memories; returns how many."""
        return _guard(lambda: self.memory.delete_all(user_id))

    def history(self, user_id: str, memory_id: str) -> list[dict]:
        """The change history of one memory ([] if unknown)."""
        return [e.to_dict() for e in _guard(lambda: self.memory.history(memory_id, user_id))]

    def profile(self, user_id: str) -> str:
        """The user's profile text."""
        return _guard(lambda: self.memory.profile(user_id))

    # ---- resources (uploaded files) -------------------------------------------------------
    @property
    def max_upload_bytes(self) -> int:
        """The largest file an upload may carry: ``MEMORY_MAX_UPLOAD_MB`` in bytes."""
        return int(float(self.memory.config.memory_max_upload_mb) * 2**20)

    def add_resource(self, user_id: str, file: Any, *, filename: str | None = None,
                     mime: str | None = None, size: int | None = None) -> dict:
        """Store an uploaded file (a binary file object, read from its start) as a
        resource of ``user_id`` and learn from it (``Memory.add_resource``; blocking,
        one LLM call per batch of chunks). ``size``: its length in bytes when known,
        checked before anything is read. Returns the resource dict (``status``
        ``ready`` or ``failed`` with ``error``; ``duplicate`` true for a file the user
        already gave, nothing learned again). Raises UploadRefused (413 too large,
        415 refused type; nothing stored), EngineUnavailable when the store fails."""
        limit = self.max_upload_bytes
        if size is not None and size > limit:
            raise UploadRefused(413, f"{filename or 'the upload'} is too large "
                                     f"({size / 2**20:.1f} MB; the limit is {limit / 2**20:g} MB, "
                                     "set by MEMORY_MAX_UPLOAD_MB)")
        try:
            res = _guard(lambda: self.memory.add_resource(file, user_id, filename=filename,
                                                          mime=mime))
        except UploadRefused:
            raise
        except ValueError as exc:  # size checked above: what is left is the type
            status = 413 if "MEMORY_MAX_UPLOAD_MB" in str(exc) else 415
            raise UploadRefused(status, str(exc)) from None
        return res.to_dict()

    def resources(self, user_id: str, include_deleted: bool = False) -> list[dict]:
        """The user's resources, newest first, each with ``status`` and ``memory_count``;
        soft-deleted ones only with ``include_deleted``."""
        rows = _guard(lambda: self.memory.resources(user_id, include_deleted=include_deleted))
        return [r.to_dict() for r in rows]

    def resource(self, user_id: str, resource_id: str) -> dict | None:
        """One live resource of ``user_id`` or None (unknown, deleted or another user's)."""
        res = _guard(lambda: self.memory.resource(user_id, resource_id))
        return res.to_dict() if res is not None else None

    def resource_memories(self, user_id: str, resource_id: str) -> list[dict] | None:
        """The live memories learned from one resource, in document order; None when
        the user has no such live resource."""
        if self.resource(user_id, resource_id) is None:
            return None
        recs = _guard(lambda: self.memory.resource_memories(user_id, resource_id))
        return [r.to_dict() for r in recs]

    def delete_resource(self, user_id: str, resource_id: str) -> bool:
        """Soft-delete a resource (its memories leave search and lists; history keeps
        why); False if the user has no such live resource."""
        return _guard(lambda: self.memory.delete_resource(user_id, resource_id))

    # ---- threads ------------------------------------------------------------------------
    def threads(self, user_id: str, limit: int = 100) -> list[dict]:
        """The user's threads, most recent first."""
        return [t.to_dict() for t in _guard(lambda: self.memory.threads(user_id, limit))]

    def new_thread(self, user_id: str, title: str) -> dict:
        """Create a thread."""
        return _guard(lambda: self.memory.new_thread(user_id, title)).to_dict()

    def thread_exists(self, user_id: str, thread_id: str) -> bool:
        """True if ``user_id`` has a thread ``thread_id``."""
        return _guard(lambda: self.memory.store.get_thread(user_id, thread_id)) is not None

    def thread_messages(self, user_id: str, thread_id: str) -> list[dict]:
        """A thread's messages in order."""
        return [m.to_dict() for m in _guard(lambda: self.memory.thread_messages(user_id, thread_id))]

    def rename_thread(self, user_id: str, thread_id: str, title: str) -> bool:
        """Rename; False if unknown."""
        return _guard(lambda: self.memory.rename_thread(user_id, thread_id, title))

    def delete_thread(self, user_id: str, thread_id: str) -> bool:
        """Delete a thread and its messages; False if unknown."""
        return _guard(lambda: self.memory.delete_thread(user_id, thread_id))

    # ---- chat ---------------------------------------------------------------------------
    def chat(self, user_id: str, message: str, thread_id: str | None = None) -> "Turn":
        """Start a chat turn (stores the user message, retrieves memories). Returns a Turn."""
        from memory.chat.turn import start_turn
        return Turn(_guard(lambda: start_turn(self.memory, user_id, message, thread_id)))

    # ---- export / import / health ---------------------------------------------------------
    def export(self, user_id: str) -> dict:
        """Everything of the user as the engine's export dict."""
        return _guard(lambda: self.memory.export(user_id))

    def import_(self, user_id: str, data: dict) -> dict:
        """Import an export dict; ``{"imported", "skipped", "threads"}``."""
        return _guard(lambda: self.memory.import_(data, user_id))

    def health(self) -> dict:
        """``{"llm"|"embedder"|"store": {"ok", "detail", "latency_ms"}}``; never raises.
        The store's latency is measured here when the store does not report one."""
        out = {}
        for name, part in (("llm", self.memory.llm), ("embedder", self.memory.embedder),
                           ("store", self.memory.store)):
            t0 = time.perf_counter()
            try:
                info = dict(part.health())
            except Exception as exc:  # noqa: BLE001 - health never raises
                info = {"ok": False, "detail": one_line(exc)}
            info.setdefault("latency_ms", round((time.perf_counter() - t0) * 1000, 1))
            out[name] = {"ok": bool(info.get("ok")), "detail": one_line(info.get("detail", "")),
                         "latency_ms": info.get("latency_ms")}
        return out


class Turn:
    """A chat turn in progress: iterate for reply deltas (str); then ``reply``,
    ``error`` (one line or None), ``notice`` (local model restarted, or None), ``thread_id``, ``used`` (memory dicts given to the
    model) and ``learn()`` → ``(changes as dicts, changes_error or None)``."""

    def __init__(self, turn: Any) -> None:
        self._turn = turn

    def __iter__(self) -> Iterator[str]:
        return iter(self._turn)

    @property
    def thread_id(self) -> str:
        return self._turn.thread.id

    @property
    def reply(self) -> str:
        return self._turn.reply

    @property
    def error(self) -> str | None:
        return self._turn.error

    @property
    def notice(self) -> str | None:
        """One line when the local model crashed and was restarted for this reply."""
        return self._turn.notice

    @property
    def used(self) -> list[dict]:
        return [m.to_dict() for m in self._turn.used.memories]

    def learn(self) -> tuple[dict, str | None]:
        """Extract and store this turn's memories (blocking; one LLM call at most):
        ``({"changes": [...], "turn_id"}, error or None)``."""
        changes = self._turn.changes()
        return _changes(changes), self._turn.changes_error


def _changes(changes) -> dict:
    """``{"changes": [dicts], "turn_id"}`` of a ``Changes``."""
    return {"changes": [c.to_dict() for c in changes],
            "turn_id": getattr(changes, "turn_id", None)}


def _guard(call):
    """Run ``call``; LLMError/StoreError become EngineUnavailable (ValueError passes)."""
    try:
        return call()
    except (LLMError, StoreError) as exc:
        raise EngineUnavailable(one_line(exc)) from None
