"""``/v1/threads`` (list, create, rename, delete, messages) and ``POST /v1/chat``, the
chat turn streamed as Server-Sent Events (sse-starlette).

SSE events of one turn, in order: ``start`` ``{"thread_id", "used": [memories given to
the model]}``; ``token`` ``{"text"}`` per reply delta; ``error`` ``{"message"}`` if the
LLM fails mid-reply; ``notice`` ``{"message"}`` if the local model crashed and was
restarted to answer; ``memory`` ``{"changes", "turn_id", "error"}`` after the reply
(unless ``learn=false``; ``turn_id`` is what ``POST /v1/memories/undo`` takes); ``done`` ``{"thread_id", "reply"}``. An LLM that is down before the
first token answers 503 JSON instead of a stream (the user message stays in the thread,
as in the REPL and the web app).
"""
from __future__ import annotations

import json
from typing import Annotated, Iterator

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from memory.api import schemas as s
from memory.api.deps import current_user, engine
from memory.api.engine import Engine, EngineUnavailable, Turn
from memory.api.errors import not_found
from memory.api.keys import Principal

router = APIRouter(tags=["threads and chat"])
User = Annotated[Principal, Depends(current_user)]
Eng = Annotated[Engine, Depends(engine)]


@router.get("/v1/threads", response_model=s.ThreadList)
def list_threads(user: User, eng: Eng, limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    """The caller's chat threads, most recently updated first."""
    return {"threads": eng.threads(user.user_id, limit)}


@router.post("/v1/threads", response_model=s.Thread, status_code=201)
def create_thread(body: s.ThreadCreate, user: User, eng: Eng):
    """Create an empty thread."""
    return eng.new_thread(user.user_id, body.title)


@router.patch("/v1/threads/{thread_id}", status_code=204, responses={404: {}})
def rename_thread(thread_id: str, body: s.ThreadRename, user: User, eng: Eng):
    """Rename a thread."""
    if not eng.rename_thread(user.user_id, thread_id, body.title):
        raise not_found("thread")
    return Response(status_code=204)


@router.delete("/v1/threads/{thread_id}", status_code=204, responses={404: {}})
def delete_thread(thread_id: str, user: User, eng: Eng):
    """Delete a thread and its messages (memories learned from it stay)."""
    if not eng.delete_thread(user.user_id, thread_id):
        raise not_found("thread")
    return Response(status_code=204)


@router.get("/v1/threads/{thread_id}/messages", response_model=s.MessageList,
            responses={404: {}})
def thread_messages(thread_id: str, user: User, eng: Eng):
    """A thread's messages in order."""
    if not eng.thread_exists(user.user_id, thread_id):
        raise not_found("thread")
    return {"messages": eng.thread_messages(user.user_id, thread_id)}


@router.post("/v1/chat", responses={
    200: {"content": {"text/event-stream": {}},
          "description": "events start, token…, [notice], [error], [memory], done"},
    404: {}, 503: {"description": "the LLM is down (before the first token)"}})
async def chat(body: s.ChatRequest, user: User, eng: Eng):
    """One chat turn: retrieve memories, stream the reply as SSE, then learn from it."""
    if body.thread_id and not await run_in_threadpool(eng.thread_exists, user.user_id,
                                                       body.thread_id):
        raise not_found("thread")
    turn = await run_in_threadpool(eng.chat, user.user_id, body.message, body.thread_id)
    deltas = iter(turn)
    first = await run_in_threadpool(next, deltas, None)
    if first is None and turn.error:
        raise EngineUnavailable(turn.error)
    return EventSourceResponse(_events(turn, first, deltas, body.learn), ping=15)


def _events(turn: Turn, first: str | None, deltas: Iterator[str], learn: bool) -> Iterator[dict]:
    """The SSE events of a started turn (a sync generator: sse-starlette runs it in the
    thread pool, so the blocking LLM stream never holds the event loop)."""
    yield _event("start", {"thread_id": turn.thread_id, "used": turn.used})
    if first is not None:
        yield _event("token", {"text": first})
        for delta in deltas:
            yield _event("token", {"text": delta})
    if turn.notice:
        yield _event("notice", {"message": turn.notice})
    if turn.error:
        yield _event("error", {"message": turn.error})
    elif learn:
        learned, error = turn.learn()
        yield _event("memory", {**learned, "error": error})
    yield _event("done", {"thread_id": turn.thread_id, "reply": turn.reply})


def _event(name: str, data: dict) -> dict:
    return {"event": name, "data": json.dumps(data, ensure_ascii=False)}
