"""``/v1/admin``: users and their API keys, for the holder of ``MEMORY_ADMIN_KEY`` only.

A new or rotated key is in the response once and stored only as an argon2id hash.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from memory.api import schemas as s
from memory.api.deps import keystore, require_admin
from memory.api.errors import not_found
from memory.api.keys import KeyStore

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])
Keys = Annotated[KeyStore, Depends(keystore)]


@router.post("/users", response_model=s.UserOut, status_code=201, responses={409: {}})
def create_user(body: s.UserCreate, keys: Keys):
    """Create a user (409 if the id is taken)."""
    uid = keys.create_user(body.user_id)
    return next(u for u in keys.users() if u["user_id"] == uid)


@router.get("/users", response_model=s.UserList)
def list_users(keys: Keys):
    """All users with their number of active keys."""
    return {"users": keys.users()}


@router.post("/users/{user_id}/keys", response_model=s.NewKey, status_code=201,
             responses={404: {}})
def create_key(user_id: str, keys: Keys, body: s.KeyCreate | None = None):
    """Issue a key for a user; the response holds the key, shown this once."""
    key, info = keys.create_key(user_id, (body.label if body else ""))
    return {"key": key, **info.__dict__}


@router.get("/users/{user_id}/keys", response_model=s.KeyList, responses={404: {}})
def list_keys(user_id: str, keys: Keys):
    """A user's keys (ids, labels, dates; never secrets)."""
    if not keys.has_user(user_id):
        raise not_found("user")
    return {"keys": [k.__dict__ for k in keys.keys(user_id)]}


@router.delete("/keys/{key_id}", status_code=204, responses={404: {}})
def revoke_key(key_id: str, keys: Keys):
    """Revoke a key at once (also for other server processes on the same keys.db)."""
    if not keys.revoke(key_id):
        raise not_found("active key")
    return Response(status_code=204)


@router.post("/keys/{key_id}/rotate", response_model=s.NewKey, status_code=201,
             responses={404: {}})
def rotate_key(key_id: str, keys: Keys):
    """Revoke a key and issue its replacement (same user and label) in one step."""
    key, info = keys.rotate(key_id)
    return {"key": key, **info.__dict__}
