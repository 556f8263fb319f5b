"""FastAPI dependencies: who is calling (from the API key) and the shared engine/key store.

``current_user`` reads ``Authorization: Bearer <key>`` and returns the key's Principal
(401 otherwise); the user id of every data route comes from here and nowhere else.
``require_admin`` checks the bearer against ``MEMORY_ADMIN_KEY`` in constant time (403
when the server has no admin key).
"""
from __future__ import annotations

import hmac

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from memory.api.engine import Engine
from memory.api.errors import ApiError
from memory.api.keys import KeyStore, Principal

_bearer = HTTPBearer(auto_error=False, description="a user API key (mk_…) or the admin key")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def engine(request: Request) -> Engine:
    """The process's Engine."""
    return request.app.state.engine


def keystore(request: Request) -> KeyStore:
    """The process's KeyStore."""
    return request.app.state.keys


def authenticate(keys: KeyStore, header_value: str | None) -> Principal:
    """Return the Principal for an ``Authorization`` header value; raise ApiError 401
    for a missing, malformed, unknown, revoked or wrong key (one message for all)."""
    scheme, _, token = (header_value or "").partition(" ")
    if not token or scheme.lower() != "bearer":
        raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'",
                       headers=_CHALLENGE)
    principal = keys.verify(token.strip())
    if principal is None:
        raise ApiError(401, "invalid or revoked API key", headers=_CHALLENGE)
    return principal


def current_user(request: Request,
                 creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
    """The caller's Principal (user id + key id); 401 without a valid user key."""
    header = f"{creds.scheme} {creds.credentials}" if creds else request.headers.get("authorization")
    principal = authenticate(request.app.state.keys, header)
    request.state.user_id = principal.user_id
    request.state.key_id = principal.key_id
    return principal


def require_admin(request: Request,
                  creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    """Pass only for ``Authorization: Bearer $MEMORY_ADMIN_KEY``."""
    admin = request.app.state.admin_key
    if not admin:
        raise ApiError(403, "the admin API is off: start the server with MEMORY_ADMIN_KEY set, "
                            "or create users and keys with 'python -m memory.api user|key'")
    if creds is None or not hmac.compare_digest(creds.credentials.encode(), admin.encode()):
        raise ApiError(401, "admin key required", headers=_CHALLENGE)
    request.state.user_id = "(admin)"
