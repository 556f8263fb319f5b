"""The store interface: what the memory engine needs from a database.

Every method that touches user data takes ``user_id`` and must apply it *inside* the
query (never filter in Python after a global top-k). An id that belongs to another user
behaves exactly like an id that does not exist. No method may delete rows of more than
one user; there is deliberately no "clear the table" operation.

Two implementations exist: ``SQLiteStore`` (embedded default, sqlite-vec + FTS5) and
``TiDBStore`` (pytidb). Both must pass ``tests/contract/``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterator

from memory.types import HistoryEvent, MemoryRecord, Message, Thread

if TYPE_CHECKING:
    from memory.resources.model import Resource
    from memory.store.migrations import MigrationStatus


def require_user(user_id: Any) -> str:
    """Return ``user_id`` if it is a non-empty str; raise ValueError otherwise. Every store
    method that touches user data validates its user with this before querying."""
    if not isinstance(user_id, str) or not user_id:
        raise ValueError("user_id must be a non-empty string")
    return user_id


def require_text(value: Any, what: str) -> str:
    """Return ``value`` if it is a str that UTF-8 can encode (no lone surrogates); raise
    ValueError naming ``what`` otherwise (before anything is written)."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} contains invalid Unicode (lone surrogate)") from None
    return value


class StoreError(RuntimeError):
    """A store operation failed (locked database, lost connection…). The message is one
    line meant for the user; nothing was half-written."""


class EmbedderMismatchError(StoreError):
    """The store was built with another embedder (model name or dimension) than the one
    configured now. Fix: ``python main.py reembed`` (or configure the old embedder)."""


class Store(ABC):
    """Abstract persistent store for memories, their history, profiles and threads."""

    #: short name shown in the status line, e.g. "sqlite" or "tidb"
    name: str = "store"

    # ---- lifecycle / metadata -------------------------------------------------------
    @abstractmethod
    def open(self, embedder_id: str, dim: int) -> None:
        """Create tables if needed and check the recorded embedder.

        ``embedder_id`` names the embedding model, ``dim`` its vector dimension. A new
        store records both. Raises EmbedderMismatchError if the store holds vectors of
        another embedder/dimension (unless it holds no memories yet, in which case the
        vector index is rebuilt for the new dimension).
        """

    @abstractmethod
    def migrate(self) -> list[str]:
        """Apply the pending named schema migrations in order (each in its own
        transaction, recorded in ``schema_migrations(id, applied_at)``) and return their
        ids ([] when up to date). Called by ``open``. Raises StoreError when a migration
        fails or the store was migrated by a newer version."""

    @abstractmethod
    def migration_status(self) -> list["MigrationStatus"]:
        """Every migration this code knows, in order, with ``applied_at`` (None while
        pending): what ``python main.py migrate --status`` prints."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """A context manager: store calls made inside it *by the same thread* join one
        database transaction; a normal exit commits, an exception rolls every row back
        and re-raises. Re-entrant (a nested block joins the outer one). Outside it every
        store call is its own transaction. Other threads are not blocked forever: they
        read the last committed state, and their writes either proceed or fail with
        StoreError after the store's lock timeout. Example::

            with store.transaction():
                store.delete_user_memories(u); store.insert_memories(recs)
        """

    @abstractmethod
    def close(self) -> None:
        """Release connections. Safe to call twice."""

    @abstractmethod
    def get_meta(self, key: str) -> str | None:
        """Return a store-wide setting (e.g. ``embedder_id``, ``dim``) or None."""

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None:
        """Set a store-wide setting."""

    def health(self) -> dict[str, Any]:
        """Return ``{"ok": bool, "detail": str, ...}`` for the status page. Never raises."""
        try:
            self.get_meta("embedder_id")
            return {"ok": True, "detail": self.name}
        except Exception as exc:  # noqa: BLE001 - health must not raise
            return {"ok": False, "detail": f"{self.name}: {exc}"}

    # ---- memories -------------------------------------------------------------------
    @abstractmethod
    def insert_memories(self, records: list[MemoryRecord],
                        history: list[HistoryEvent] | None = None) -> None:
        """Insert records (each with ``embedding`` set) and history events atomically:
        base row, vector row and full-text row of every record in one transaction.
        Raises StoreError (nothing written) on failure, ValueError on a record without
        an embedding, of the wrong dimension, non-finite or all zeros (one rule for every
        vector a store takes: ``memory.store.common.vector_values``). An id that already exists is replaced
        only if it belongs to the same user (imports/migrations are idempotent)."""

    @abstractmethod
    def update_memory(self, user_id: str, memory_id: str, *, text: str | None = None,
                      embedding: list[float] | None = None,
                      fields: dict[str, Any] | None = None,
                      history: HistoryEvent | None = None) -> bool:
        """Change one memory of ``user_id``: new text (with its new embedding, required
        when text changes), and/or other ``fields`` (type, importance, tags, metadata,
        expires_at, updated_at). Writes the history event in the same transaction.
        Returns False if no such memory for this user."""

    @abstractmethod
    def delete_memory(self, user_id: str, memory_id: str,
                      history: HistoryEvent | None = None) -> bool:
        """Erase one memory of ``user_id`` for good, whatever its status, with the
        earlier versions it superseded (``superseded_by`` = its id; base, vector and text
        rows), and record the history event. Returns False if no such memory for this
        user."""

    # ---- validity (supersede instead of delete; memory.types.MEMORY_STATUSES) ---------
    @abstractmethod
    def invalidate_memory(self, user_id: str, memory_id: str, *, status: str, at: datetime,
                          reason: str, superseded_by: str | None = None,
                          history: HistoryEvent | None = None) -> bool:
        """Make one *current* memory of ``user_id`` ``superseded`` (a newer memory,
        ``superseded_by``, replaced its value), ``ended`` (it no longer holds) or
        ``forgotten`` (a tombstone: the user asked to forget it), from ``at`` on, because
        of ``reason`` (``llm``, ``rule:<name>``, ``user``, ``resource:<file>``), with the
        history event, in one transaction. The row and its vector stay; search, lists,
        counts and ``get_memory`` no longer return it. Returns False (nothing written)
        when the user has no such current memory. ValueError for another status."""

    @abstractmethod
    def restore_memory(self, user_id: str, memory_id: str,
                       history: HistoryEvent | None = None) -> bool:
        """Make a superseded, ended or forgotten memory of ``user_id`` current again
        (undo), with the history event. False when there is no such non-current memory."""

    @abstractmethod
    def get_any_memory(self, user_id: str, memory_id: str,
                       with_embedding: bool = False) -> MemoryRecord | None:
        """One memory of ``user_id`` whatever its status or expiry, or None."""

    @abstractmethod
    def past_memories(self, user_id: str, *, statuses: tuple[str, ...] = ("superseded", "ended"),
                      limit: int = 200, with_embedding: bool = False) -> list[MemoryRecord]:
        """``user_id``'s memories with one of ``statuses`` (default: the past, superseded
        and ended; ``("forgotten",)`` for tombstones), most recently invalidated first,
        at most ``limit``."""

    @abstractmethod
    def purge_forgotten(self, user_id: str, before: datetime) -> int:
        """Erase for good ``user_id``'s forgotten memories invalidated before ``before``
        and the versions they superseded (their history events stay). Returns how many
        rows were erased."""

    @abstractmethod
    def turn_history(self, user_id: str, turn_id: str) -> list[HistoryEvent]:
        """Every history event of one turn of ``user_id`` in the order written."""

    @abstractmethod
    def last_turn(self, user_id: str) -> str | None:
        """The id of ``user_id``'s latest turn with an ADD, UPDATE, END or FORGET event
        that was not undone (no UNDO/RESTORE event carries its id), or None."""

    @abstractmethod
    def delete_user_memories(self, user_id: str) -> int:
        """Delete every memory, history event and the profile of ``user_id`` only.
        Returns how many memories were deleted."""

    @abstractmethod
    def get_memory(self, user_id: str, memory_id: str,
                   with_embedding: bool = False) -> MemoryRecord | None:
        """Return one live (not expired) memory of ``user_id`` or None."""

    @abstractmethod
    def get_memories(self, user_id: str, ids: list[str]) -> list[MemoryRecord]:
        """Return the live memories of ``user_id`` among ``ids`` (any order)."""

    @abstractmethod
    def list_memories(self, user_id: str, *, limit: int = 100, offset: int = 0,
                      types: list[str] | None = None,
                      since: datetime | None = None, until: datetime | None = None,
                      order: str = "created_desc",
                      with_embedding: bool = False) -> list[MemoryRecord]:
        """Return live memories of ``user_id``, filtered by type and created_at range.
        ``order``: ``created_desc`` (newest first), ``created_asc``, ``accessed_desc``
        (most recalled first: access_count, then last_accessed_at)."""

    @abstractmethod
    def count_memories(self, user_id: str, types: list[str] | None = None) -> int:
        """Return how many live memories ``user_id`` has."""

    @abstractmethod
    def vector_search(self, user_id: str, embedding: list[float], k: int,
                      *, types: list[str] | None = None, since: datetime | None = None,
                      until: datetime | None = None) -> list[tuple[str, float]]:
        """Return up to ``k`` ``(memory_id, cosine_distance)`` of ``user_id``'s live
        memories, nearest first. The user, ``types`` and ``since <= created_at <=
        until`` (inclusive, either optional) filters are applied inside the query, before
        the limit, so a user gets k rows whenever they own k matching rows, however many
        other rows exist. Raises ValueError for a query vector of another dimension, with
        NaN/infinity or all zeros (``memory.store.common.vector_values``)."""

    @abstractmethod
    def text_search(self, user_id: str, query: str, k: int,
                    *, types: list[str] | None = None, since: datetime | None = None,
                    until: datetime | None = None) -> list[tuple[str, float]]:
        """Full-text (BM25) search: return up to ``k`` ``(memory_id, score)`` of
        ``user_id``'s live memories, best first (higher score is better), with the
        ``types``/``since``/``until`` filters inside the query as in ``vector_search``. ``query`` is
        the user's raw text: the store segments it (Chinese too) and quotes every term,
        so operators such as ``AND``, ``*``, ``"``, ``NEAR`` or ``-`` are plain text.
        Returns [] when the query has no searchable term."""

    @abstractmethod
    def message_neighbours(self, user_id: str, ids: list[str], window_s: float
                           ) -> dict[str, tuple[str | None, str | None]]:
        """The chat messages right before and right after some of ``user_id``'s.

        A message is a live memory with ``source == "raw"`` and a non-empty
        ``conversation_id`` (``Memory.add(..., infer=False)``: the thread, or the call
        itself). For each message among ``ids`` returns ``{id: (previous_id, next_id)}``:
        the adjacent live message of the same conversation in the order ``created_at``,
        then storage order (SQLite: insertion order; TiDB: id), each None when there is
        none or it lies more than ``window_s`` seconds away. Ids that are not live messages of ``user_id`` are
        absent. Only ids come back (search fetches the records it needs itself)."""

    @abstractmethod
    def touch_memories(self, user_id: str, ids: list[str], at: datetime) -> None:
        """Record that these memories were given to the model: set last_accessed_at and
        increment access_count."""

    @abstractmethod
    def history(self, user_id: str, memory_id: str) -> list[HistoryEvent]:
        """Return the history of one memory of ``user_id``, oldest first ([] if none)."""

    @abstractmethod
    def add_history(self, events: list[HistoryEvent]) -> None:
        """Append history events (e.g. NONE decisions are not recorded; imports are)."""

    # ---- profile --------------------------------------------------------------------
    @abstractmethod
    def get_profile(self, user_id: str) -> tuple[str, datetime | None]:
        """Return ``(profile_text, updated_at)``; ``("", None)`` if none."""

    @abstractmethod
    def set_profile(self, user_id: str, text: str, at: datetime) -> None:
        """Store the profile text of ``user_id``."""

    # ---- threads (short-term memory) -------------------------------------------------
    @abstractmethod
    def upsert_thread(self, thread: Thread) -> None:
        """Insert or update a thread (title, updated_at, summary, summarized_upto)."""

    @abstractmethod
    def get_thread(self, user_id: str, thread_id: str) -> Thread | None:
        """Return one thread of ``user_id`` or None."""

    @abstractmethod
    def list_threads(self, user_id: str, limit: int = 100) -> list[Thread]:
        """Return ``user_id``'s threads, most recently updated first."""

    @abstractmethod
    def delete_thread(self, user_id: str, thread_id: str) -> bool:
        """Delete a thread of ``user_id`` and its messages. Returns False if absent."""

    @abstractmethod
    def add_message(self, message: Message) -> Message:
        """Append a message to its thread (assigning ``seq``) and bump the thread's
        updated_at. Returns the stored message."""

    @abstractmethod
    def get_messages(self, user_id: str, thread_id: str, *, after_seq: int = -1,
                     limit: int | None = None) -> list[Message]:
        """Return messages of one thread of ``user_id`` with seq > after_seq, in order;
        with ``limit``, the last ``limit`` of them."""

    # ---- admin (whole-store iteration, for migration and re-embedding only) -----------
    @abstractmethod
    def reset_vector_index(self, embedder_id: str, dim: int) -> None:
        """Drop every stored vector and recreate the vector index for ``dim``, recording
        ``embedder_id``/``dim``. Memories (text, history) are kept; callers must then
        ``set_embeddings`` for every memory (``python main.py reembed`` does both)."""

    @abstractmethod
    def set_embeddings(self, user_id: str, items: list[tuple[str, list[float]]]) -> None:
        """Write new embeddings ``(memory_id, vector)`` for memories of ``user_id``, in
        one transaction (re-embedding). Unknown ids are ignored."""

    @abstractmethod
    def user_ids(self) -> list[str]:
        """Return every user id that has memories, history, a profile or threads.
        Used by migration and re-embedding only; never shown to end users."""

    @abstractmethod
    def iter_memories(self, user_id: str, batch: int = 500,
                      with_embedding: bool = True) -> Iterator[list[MemoryRecord]]:
        """Yield all memories of ``user_id`` (including expired ones) in batches,
        ordered by id, for migration and re-embedding."""

    @abstractmethod
    def all_history(self, user_id: str) -> list[HistoryEvent]:
        """Return every history event of ``user_id`` (for export/migration)."""

    # ---- resources (uploaded files; memory.resources) ----------------------------------
    @abstractmethod
    def insert_resource(self, resource: "Resource") -> "Resource":
        """Insert a resource row. When ``resource.user_id`` already has a live (not
        deleted) resource with the same ``sha256``, nothing is written and that one is
        returned (the same file twice is one resource); else the inserted row. Raises
        ValueError for an invalid row."""

    @abstractmethod
    def update_resource(self, user_id: str, resource_id: str, **fields: Any) -> bool:
        """Change ``status``, ``error``, ``detail``, ``updated_at`` (default now) or
        ``deleted_at`` of one resource of ``user_id``. Returns False if it has none."""

    @abstractmethod
    def claim_resource(self, user_id: str, resource_id: str, seen_updated_at: datetime,
                       **fields: Any) -> bool:
        """``update_resource`` only if the row's ``updated_at`` is still
        ``seen_updated_at`` (a compare-and-set in one statement): of two uploads taking
        over the same abandoned ``pending`` resource at once, exactly one gets True and
        learns from it. Returns False when another writer changed the row first, or
        there is no such row."""

    @abstractmethod
    def get_resource(self, user_id: str, resource_id: str,
                     include_deleted: bool = False) -> "Resource | None":
        """One resource of ``user_id`` (a soft-deleted one only with
        ``include_deleted``) or None."""

    @abstractmethod
    def find_resource(self, user_id: str, sha256: str) -> "Resource | None":
        """The live resource of ``user_id`` with this content digest, or None."""

    @abstractmethod
    def list_resources(self, user_id: str, *, include_deleted: bool = False,
                       limit: int = 200, offset: int = 0) -> list["Resource"]:
        """``user_id``'s resources, newest first."""

    @abstractmethod
    def resource_memory_ids(self, user_id: str, resource_id: str) -> list[str]:
        """Ids of ``user_id``'s live memories whose ``metadata.resource_id`` is
        ``resource_id`` (filtered inside the query)."""

    @abstractmethod
    def resource_memory_counts(self, user_id: str) -> dict[str, int]:
        """``{resource_id: live memory count}`` over ``user_id``'s memories."""
