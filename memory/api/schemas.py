"""Pydantic models for every API request and response (shown in the OpenAPI docs).

Request models forbid unknown fields, so a stray ``user_id`` in a body is a 422 naming
it: the user always comes from the API key. ``importance`` is a strict integer: JSON
``true`` is not 1.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

MemoryType = Literal["profile", "preference", "fact", "task", "summary", "episode"]
Order = Literal["created_desc", "created_asc", "accessed_desc"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatMessage(_Request):
    """One message of a conversation given to ``POST /v1/memories``."""
    role: Literal["user", "assistant", "system"] = "user"
    content: str = Field(min_length=1)
    metadata: dict[str, Any] | None = None
    created_at: datetime | None = None


class AddRequest(_Request):
    """Add memories: ``infer=true`` extracts facts from the user's messages with the LLM
    (and may update/delete stored ones); ``infer=false`` stores each message verbatim."""
    messages: str | list[ChatMessage | str] = Field(
        description="one user message, or a list of {role, content} messages (a bare "
                    "string in the list is a user message)")
    infer: bool = True
    thread_id: str | None = Field(default=None, max_length=64)
    metadata: dict[str, Any] | None = None
    memory_type: MemoryType | None = Field(default=None, description="infer=false only")
    importance: StrictInt | None = Field(default=None, ge=1, le=5,
                                         description="infer=false only; an integer 1..5 "
                                                     "(true/false, 2.5 or \"3\" are refused)")
    tags: list[str] | None = Field(default=None, max_length=20, description="infer=false only")


class Change(BaseModel):
    """What one add did to one memory. ``reason``: None, or one line saying why the
    change may be wrong (the reconciliation call failed so it was added; the known
    memories could not be searched)."""
    event: Literal["ADD", "UPDATE", "END", "FORGET", "DELETE", "UNDO", "RESTORE", "NONE"] = Field(
        description="ADD new; UPDATE value replaced (the earlier value is kept as a superseded "
                    "memory); END no longer current (kept as past); FORGET forgotten on request "
                    "(restorable by undo until purged); DELETE erased; UNDO/RESTORE an undo; "
                    "NONE nothing")
    id: str | None
    text: str
    old_text: str | None = None
    type: str | None = None
    reason: str | None = None


class AddResponse(BaseModel):
    changes: list[Change]
    turn_id: str | None = Field(default=None, description="give it to POST /v1/memories/undo "
                                "to take back this call's changes; None when nothing changed")


class UndoRequest(_Request):
    """Which turn to undo: ``turn_id`` from an add (or chat) response; omitted = the
    caller's latest turn that changed a memory and was not undone."""
    turn_id: str | None = Field(default=None, max_length=64)


class Memory(BaseModel):
    """A stored memory."""
    model_config = ConfigDict(extra="allow")
    id: str
    text: str
    type: str
    importance: int
    tags: list[str]
    source: str
    metadata: dict[str, Any]
    thread_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    expires_at: str | None = None
    status: str = Field(default="current", description="current, superseded (a newer value "
                        "replaced it), ended (no longer holds) or forgotten")
    valid_from: str | None = None
    invalid_at: str | None = Field(default=None, description="when it stopped being current")
    superseded_by: str | None = None
    invalid_reason: str | None = Field(default=None, description="what ended it: llm, "
                                       "rule:<name>, user or resource:<file>")


class PastPage(BaseModel):
    memories: list[Memory]


class ScoredMemory(Memory):
    """A search hit: a memory and its relevance score."""
    score: float


class SearchRequest(_Request):
    """Hybrid (vector + full-text) search of the caller's memories."""
    query: str = Field(min_length=1, max_length=20000)
    limit: int = Field(default=10, ge=1, le=100)
    types: list[MemoryType] | None = None
    since: datetime | None = None
    until: datetime | None = None
    scope: str = Field(default="all", max_length=200,
                       description="all; chat (not learned from a file); or resource:<id> "
                                   "(learned from that uploaded file)")

    @field_validator("scope")
    @classmethod
    def _known_scope(cls, value: str) -> str:
        from memory.resources.scope import parse_scope
        kind, rid = parse_scope(value)  # ValueError → 422 naming the field
        return f"resource:{rid}" if rid else kind


class SearchResponse(BaseModel):
    memories: list[ScoredMemory]
    profile: str


class MemoryPage(BaseModel):
    memories: list[Memory]
    total: int = Field(description="the caller's memories matching the type filter")
    limit: int
    offset: int


class UpdateRequest(_Request):
    """Fields to change; omitted ones are kept. ``text`` is re-embedded."""
    text: str | None = Field(default=None, min_length=1, max_length=20000)
    type: MemoryType | None = None
    importance: StrictInt | None = Field(default=None, ge=1, le=5,
                                         description="an integer 1..5 (not a boolean)")
    tags: list[str] | None = Field(default=None, max_length=20)
    metadata: dict[str, Any] | None = None
    expires_at: datetime | None = None


class HistoryEvent(BaseModel):
    model_config = ConfigDict(extra="allow")
    memory_id: str
    event: str
    old_text: str | None
    new_text: str | None
    actor: str
    at: str | None


class HistoryResponse(BaseModel):
    events: list[HistoryEvent]


class Deleted(BaseModel):
    deleted: int


class Profile(BaseModel):
    profile: str


class Thread(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    title: str
    created_at: str | None = None
    updated_at: str | None = None


class ThreadList(BaseModel):
    threads: list[Thread]


class ThreadCreate(_Request):
    title: str = Field(default="New chat", min_length=1, max_length=200)


class ThreadRename(_Request):
    title: str = Field(min_length=1, max_length=200)


class MessageOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    role: str
    content: str
    created_at: str | None = None


class MessageList(BaseModel):
    messages: list[MessageOut]


class ChatRequest(_Request):
    """One chat turn. The reply streams as Server-Sent Events."""
    message: str = Field(min_length=1, max_length=20000)
    thread_id: str | None = Field(default=None, max_length=64,
                                  description="continue this thread; omitted: a new one")
    learn: bool = Field(default=True, description="extract memories after the reply")


class Resource(BaseModel):
    """An uploaded file and what became of it (``memory.resources.Resource``)."""
    id: str
    filename: str
    mime: str = Field(description="detected from the content, never from the name")
    size: int = Field(description="bytes")
    sha256: str
    status: Literal["pending", "ready", "failed"]
    error: str | None = Field(default=None, description="one line, when failed")
    memory_count: int | None = Field(default=None, description="live memories learned from it")
    duplicate: bool = Field(default=False, description="this upload was a file already given; "
                                                       "nothing was learned again")
    detail: dict[str, Any] = Field(default_factory=dict,
                                   description="pages, chunks, chunks_used, batches, "
                                               "llm_calls, seconds, changes")
    created_at: str | None = None
    updated_at: str | None = None
    deleted_at: str | None = None


class ResourceList(BaseModel):
    resources: list[Resource]


class ResourceMemories(BaseModel):
    memories: list[Memory]


class ImportResult(BaseModel):
    imported: int
    skipped: int
    threads: int = 0


class PartHealth(BaseModel):
    ok: bool
    detail: str | None = None
    latency_ms: float | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    degraded: list[str] = Field(description="names of the parts that are down")
    parts: dict[str, PartHealth]


class Me(BaseModel):
    user_id: str
    key_id: str


# ---- admin --------------------------------------------------------------------------------
class UserCreate(_Request):
    user_id: str = Field(min_length=1, max_length=128)


class UserOut(BaseModel):
    user_id: str
    created_at: str
    active_keys: int = 0


class UserList(BaseModel):
    users: list[UserOut]


class KeyCreate(_Request):
    label: str = Field(default="", max_length=100)


class KeyOut(BaseModel):
    key_id: str
    user_id: str
    label: str
    created_at: str
    revoked_at: str | None = None
    last_used_at: str | None = None


class NewKey(KeyOut):
    """A freshly issued key: ``key`` is shown this once and never stored."""
    key: str


class KeyList(BaseModel):
    keys: list[KeyOut]
