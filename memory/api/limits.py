"""Request-body guards: the size limit (413) and the media type (415).

The size limit is FastAPI's own ``max_body_size`` (Starlette's RequestBodyLimitMiddleware):
a declared ``Content-Length`` over it is refused before a byte of the body is read, a
chunked body the moment it passes it, so an oversized body is never held whole. Its
value is ``MEMORY_API_MAX_BODY_BYTES`` (default 4 MiB: an export of ~10k memories fits).
"""
from __future__ import annotations

import json
import os
from typing import Any

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


class ContentTypeMiddleware:
    """ASGI middleware: 415 for a request body that is not ``application/json`` on a JSON
    route (every POST/PUT/PATCH under ``/v1``), before the body is read."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (scope["type"] == "http" and scope.get("method") in _BODY_METHODS
                and scope.get("path", "").startswith("/v1/")):
            headers = dict(scope.get("headers") or [])
            has_body = headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if has_body and ctype and ctype != b"application/json" and not ctype.endswith(b"+json"):
                await _send_error(send, 415, "unsupported_media_type",
                                  f"send the body as application/json, not {ctype.decode('latin-1')}")
                return
        await self.app(scope, receive, send)
