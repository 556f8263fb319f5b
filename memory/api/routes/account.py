"""The caller's own account: ``/v1/me``, profile, export/import, rotating its key, and
``/v1/health`` (``ok``/``degraded`` with the LLM, embedder and store and their latencies)."""
from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from memory.api import schemas as s
from memory.api.deps import authenticate, current_user, engine, keystore
from memory.api.engine import Engine
from memory.api.errors import ApiError
from memory.api.keys import KeyStore, KeyStoreError, Principal
from memory.llm.errors import hide_paths

router = APIRouter(tags=["account"])
User = Annotated[Principal, Depends(current_user)]
Eng = Annotated[Engine, Depends(engine)]


@router.get("/v1/me", response_model=s.Me)
def me(user: User):
    """Who the key belongs to."""
    return {"user_id": user.user_id, "key_id": user.key_id}


@router.get("/v1/profile", response_model=s.Profile)
def profile(user: User, eng: Eng):
    """The caller's profile (derived from profile and preference memories)."""
    return {"profile": eng.profile(user.user_id)}


@router.get("/v1/export")
def export(user: User, eng: Eng) -> dict[str, Any]:
    """Everything of the caller (memories, history, profile, threads) as one JSON
    document that ``POST /v1/import`` restores."""
    return eng.export(user.user_id)


@router.post("/v1/import", response_model=s.ImportResult)
def import_(user: User, eng: Eng, data: Annotated[dict[str, Any], Body(
        description="a document from GET /v1/export (its user_id is ignored)")]):
    """Import an export into the caller's memory; duplicates are skipped."""
    return eng.import_(user.user_id, data)


@router.post("/v1/keys/rotate", response_model=s.NewKey, status_code=201,
             responses={401: {"description": "the key was revoked or rotated meanwhile "
                                             "(of concurrent rotations only one succeeds)"}})
def rotate_own_key(user: User, keys: Annotated[KeyStore, Depends(keystore)]):
    """Revoke the key used for this request and return a new one (shown once)."""
    try:
        key, info = keys.rotate(user.key_id, user_id=user.user_id)
    except KeyStoreError:  # revoked or rotated by a concurrent request: no longer a key
        raise ApiError(401, "invalid or revoked API key",
                       headers={"WWW-Authenticate": "Bearer"}) from None
    return {"key": key, **info.__dict__}


@router.get("/v1/health", response_model=s.Health, responses={503: {"model": s.Health}})
async def health(request: Request):
    """``ok`` when the LLM, the embedder and the store all answer, else ``degraded``
    with the parts that do not (HTTP 503). Without a key: status and latencies only; a
    user key also gets each part's detail with server file paths hidden; the admin key
    gets the details as they are."""
    parts = await run_in_threadpool(request.app.state.engine.health)
    caller = await run_in_threadpool(_caller, request)
    down = [name for name, part in parts.items() if not part["ok"]]
    if caller is None:
        parts = {name: {"ok": p["ok"], "latency_ms": p["latency_ms"]} for name, p in parts.items()}
    elif caller == "user":
        parts = {name: {**p, "detail": hide_paths(p.get("detail") or "")}
                 for name, p in parts.items()}
    body = {"status": "degraded" if down else "ok", "degraded": down, "parts": parts}
    return JSONResponse(body, status_code=503 if down else 200)


def _caller(request: Request) -> str | None:
    """``"admin"`` for the admin key, ``"user"`` for a valid user key, else None."""
    header = request.headers.get("authorization", "")
    token = header.partition(" ")[2].strip()
    admin = request.app.state.admin_key
    if admin and token and hmac.compare_digest(token.encode(), admin.encode()):
        return "admin"
    try:
        authenticate(request.app.state.keys, header)
    except ApiError:
        return None
    return "user"
