"""``/v1/memories``: add, undo, past, search, list, get, update, delete, delete-all-mine, history.

Every route takes the user from the API key; another user's memory id answers 404,
exactly like an id that does not exist.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from memory.api import schemas as s
from memory.api.deps import current_user, engine
from memory.api.engine import Engine
from memory.api.errors import ApiError, not_found
from memory.api.keys import Principal
from memory.write.undo import UndoError

router = APIRouter(prefix="/v1/memories", tags=["memories"])
User = Annotated[Principal, Depends(current_user)]
Eng = Annotated[Engine, Depends(engine)]
_503 = {503: {"description": "the LLM (infer) or the store is down; nothing was stored"}}


@router.post("", response_model=s.AddResponse, status_code=201, responses=_503)
def add_memories(body: s.AddRequest, user: User, eng: Eng):
    """Add memories from messages (``infer=true``: LLM extraction + reconciliation;
    ``infer=false``: each message stored verbatim)."""
    messages = body.messages if isinstance(body.messages, str) else [
        m if isinstance(m, str) else m.model_dump(exclude_none=True) for m in body.messages]
    if body.infer and (body.memory_type or body.importance or body.tags):
        raise ApiError(422, "memory_type, importance and tags apply to infer=false only")
    return eng.add(user.user_id, messages, infer=body.infer, thread_id=body.thread_id,
                   metadata=body.metadata, memory_type=body.memory_type,
                   importance=body.importance, tags=body.tags)


@router.post("/undo", response_model=s.AddResponse, responses={409: {}})
def undo_turn(body: s.UndoRequest, user: User, eng: Eng):
    """Take back every change one turn made (``turn_id`` from an add or chat response;
    omitted: the caller's latest turn not undone yet): added memories are erased, updated
    ones get their earlier value back, ended and forgotten ones are current again. 409
    when it was undone already or a later turn changed its memories."""
    try:
        return eng.undo(user.user_id, body.turn_id)
    except UndoError as exc:
        raise ApiError(409, str(exc)) from None


@router.get("/past", response_model=s.PastPage)
def past_memories(user: User, eng: Eng, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  forgotten: bool = False):
    """The caller's memories that are no longer current — earlier values (superseded) and
    ended ones, most recently ended first — or, with ``forgotten=true``, the ones
    forgotten on request that undo can still restore."""
    return {"memories": eng.past(user.user_id, limit, forgotten)}


@router.post("/search", response_model=s.SearchResponse)
def search_memories(body: s.SearchRequest, user: User, eng: Eng):
    """Hybrid search (vector + full text, fused and re-scored) of the caller's memories;
    ``scope`` limits it to the chat's (``chat``) or one uploaded file's
    (``resource:<id>``) memories."""
    filters = {"types": body.types, "since": body.since, "until": body.until}
    return eng.search(user.user_id, body.query, body.limit, filters, scope=body.scope)


@router.get("", response_model=s.MemoryPage)
def list_memories(user: User, eng: Eng,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  offset: Annotated[int, Query(ge=0)] = 0,
                  types: Annotated[list[s.MemoryType] | None, Query()] = None,
                  since: datetime | None = None, until: datetime | None = None,
                  order: s.Order = "created_desc"):
    """One page of the caller's memories (newest first by default)."""
    rows, total = eng.list(user.user_id, limit=limit, offset=offset, types=types,
                           since=since, until=until, order=order)
    return {"memories": rows, "total": total, "limit": limit, "offset": offset}


@router.delete("", response_model=s.Deleted)
def delete_all_memories(user: User, eng: Eng,
                        confirm: Annotated[str | None, Query(
                            description="must be exactly true")] = None):
    """Delete ALL of the caller's memories (threads stay). Needs exactly
    ``?confirm=true``: ``yes``, ``1``, ``on`` or ``True`` are refused (400)."""
    if confirm != "true":
        raise ApiError(400, "deleting all your memories needs exactly ?confirm=true")
    return {"deleted": eng.delete_all(user.user_id)}


@router.get("/{memory_id}", response_model=s.Memory, responses={404: {}})
def get_memory(memory_id: str, user: User, eng: Eng):
    """One memory of the caller."""
    rec = eng.get(user.user_id, memory_id)
    if rec is None:
        raise not_found()
    return rec


@router.patch("/{memory_id}", response_model=s.Memory, responses={404: {}})
def update_memory(memory_id: str, body: s.UpdateRequest, user: User, eng: Eng):
    """Edit a memory's text and/or fields (recorded in its history)."""
    fields = body.model_dump(exclude_unset=True)
    text = fields.pop("text", None)
    if text is None and not fields:
        raise ApiError(422, "nothing to update: give text or a field")
    rec = eng.update(user.user_id, memory_id, text, **fields)
    if rec is None:
        raise not_found()
    return rec


@router.delete("/{memory_id}", status_code=204, responses={404: {}})
def delete_memory(memory_id: str, user: User, eng: Eng):
    """Erase one memory for good, with its earlier values (its history keeps a DELETE
    event); also a past or forgotten one."""
    if not eng.delete(user.user_id, memory_id):
        raise not_found()
    return Response(status_code=204)


@router.get("/{memory_id}/history", response_model=s.HistoryResponse, responses={404: {}})
def memory_history(memory_id: str, user: User, eng: Eng):
    """The change history of one memory, oldest first (also after it was deleted)."""
    events = eng.history(user.user_id, memory_id)
    if not events:
        raise not_found()
    return {"events": events}

