"""Request-body guards: the size limit (413) and the media type (415).

A declared ``Content-Length`` over the limit is refused before a byte of the body is
read; a body without one is counted as it arrives and refused (an HTTPException 413
raised from ``receive``, which FastAPI passes to the API's error handler) the moment it
passes the limit, so an oversized body is never held whole. The limit is
``MEMORY_API_MAX_BODY_BYTES`` (default 4 MiB: an export of ~10k memories fits).
"""
from __future__ import annotations

import json
import os
from typing import Any

from starlette.exceptions import HTTPException

DEFAULT_MAX_BODY = 4 * 1024 * 1024
_BODY_METHODS = {"POST", "PUT", "PATCH"}


def max_body_from_env() -> int:
    """``MEMORY_API_MAX_BODY_BYTES`` as int (default 4 MiB). Raises ValueError naming the
    variable for a value that is not a positive integer."""
    raw = os.environ.get("MEMORY_API_MAX_BODY_BYTES", "").strip()
    if not raw:
        return DEFAULT_MAX_BODY
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"MEMORY_API_MAX_BODY_BYTES: must be a positive integer, not {raw!r}")
    return value


async def _send_error(send: Any, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyGuardMiddleware:
    """ASGI middleware run before any route: 413 for a body over ``max_body`` bytes
    (declared or counted), 415 for a body that is not ``application/json`` on a JSON
    route (POST/PUT/PATCH under ``/v1``)."""

    def __init__(self, app: Any, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") in _BODY_METHODS:
            headers = dict(scope.get("headers") or [])
            declared = headers.get(b"content-length", b"0")
            if not declared.isdigit():
                await _send_error(send, 400, "bad_request", "Content-Length is not a number")
                return
            if int(declared) > self.max_body:
                await _send_error(send, 413, "payload_too_large",
                                  f"request body is larger than the limit of {self.max_body:,} bytes")
                return
            has_body = declared != b"0" or b"transfer-encoding" in headers
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if (has_body and scope.get("path", "").startswith("/v1/") and ctype
                    and ctype != b"application/json" and not ctype.endswith(b"+json")):
                await _send_error(send, 415, "unsupported_media_type",
                                  f"send the body as application/json, not {ctype.decode('latin-1')}")
                return
            receive = self._counting(receive)
        await self.app(scope, receive, send)

    def _counting(self, receive: Any) -> Any:
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise HTTPException(413, f"request body is larger than the limit of "
                                             f"{self.max_body:,} bytes")
            return message
        return limited
