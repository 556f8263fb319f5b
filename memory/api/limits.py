"""Request-body guards: the size limit (413), the media type (415) and, on upload routes,
the key (401) — all before a byte of the body is read.

A declared ``Content-Length`` over the limit is refused before a byte of the body is
read; a body without one is counted as it arrives and refused (an HTTPException 413
raised from ``receive``, which FastAPI passes to the API's error handler) the moment it
passes the limit, so an oversized body is never held whole. The limit is
``MEMORY_API_MAX_BODY_BYTES`` (default 4 MiB: an export of ~10k memories fits) for JSON
routes; an upload route (``/v1/resources``) takes ``multipart/form-data`` up to its
own limit, ``MEMORY_MAX_UPLOAD_MB`` plus :data:`MULTIPART_SLACK` for the form's framing,
and only with a valid key: an unauthenticated upload is a 401 before its (up to 20 MB)
body is received or spooled. The limit is ``MEMORY_API_MAX_BODY_BYTES`` from the
config (``memory.config``: environment or ``.env``).
"""
from __future__ import annotations

import json
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

DEFAULT_MAX_BODY = 4 * 1024 * 1024
#: Bytes allowed on top of an upload's file size for the multipart framing (boundaries,
#: part headers, the file name); a file over the limit itself is refused by the route.
MULTIPART_SLACK = 64 * 1024
_BODY_METHODS = {"POST", "PUT", "PATCH"}


def upload_body_limit(max_upload_bytes: int) -> int:
    """The body limit in bytes of an upload route whose file may have
    ``max_upload_bytes`` (``MEMORY_MAX_UPLOAD_MB`` in bytes): that plus
    :data:`MULTIPART_SLACK` for the form's framing."""
    return int(max_upload_bytes) + MULTIPART_SLACK


async def _send_error(send: Any, status: int, code: str, message: str,
                      extra_headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in (extra_headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyGuardMiddleware:
    """ASGI middleware run before any route: 413 for a body over the limit (declared or
    counted), 415 for a body of the wrong media type, 401 for an upload without a valid
    key.

    JSON routes (POST/PUT/PATCH under ``/v1``): ``application/json`` up to ``max_body``
    bytes. ``uploads``: exact paths of upload routes → their body limit in bytes (see
    :func:`upload_body_limit`); those take ``multipart/form-data`` only and, when
    ``authenticate`` is given, only from a caller it accepts: ``authenticate(header)``
    is called (in a worker thread: it may run argon2) with the ``Authorization`` header
    value or None, and raises an exception with ``status``, ``message`` and ``headers``
    (``memory.api.errors.ApiError``) to refuse.
    """

    def __init__(self, app: Any, max_body: int = DEFAULT_MAX_BODY,
                 uploads: dict[str, int] | None = None,
                 authenticate: Callable[[str | None], Any] | None = None) -> None:
        self.app = app
        self.max_body = max_body
        self.uploads = dict(uploads or {})
        self.authenticate = authenticate

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") in _BODY_METHODS:
            headers = dict(scope.get("headers") or [])
            path = scope.get("path", "")
            upload = path.rstrip("/") in self.uploads
            if upload and self.authenticate is not None and not await self._authorized(
                    headers, send):
                return  # no valid key: 401 before the size, the type or a byte of the body
            limit = self.uploads[path.rstrip("/")] if upload else self.max_body
            too_large = (f"the upload is larger than the limit of {limit:,} bytes "
                         "(MEMORY_MAX_UPLOAD_MB plus the form's framing)" if upload else
                         f"request body is larger than the limit of {limit:,} bytes")
            declared = headers.get(b"content-length", b"0")
            if not declared.isdigit():
                await _send_error(send, 400, "bad_request", "Content-Length is not a number")
                return
            if int(declared) > limit:
                await _send_error(send, 413, "payload_too_large", too_large)
                return
            has_body = declared != b"0" or b"transfer-encoding" in headers
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            wrong = _wrong_media_type(ctype, upload) if has_body and path.startswith("/v1/") else None
            if wrong:
                await _send_error(send, 415, "unsupported_media_type", wrong)
                return
            receive = _counting(receive, limit, too_large)
        await self.app(scope, receive, send)

    async def _authorized(self, headers: dict, send: Any) -> bool:
        """True if ``authenticate`` accepts the request's key; else send its error."""
        raw = headers.get(b"authorization")
        try:
            await run_in_threadpool(self.authenticate, raw.decode("latin-1") if raw else None)
        except Exception as exc:  # noqa: BLE001 - any refusal is the caller's error answer
            status = getattr(exc, "status", None)
            if not isinstance(status, int):
                raise
            await _send_error(send, status, getattr(exc, "code", "unauthorized"),
                              getattr(exc, "message", str(exc)), getattr(exc, "headers", None))
            return False
        return True


def _wrong_media_type(ctype: bytes, upload: bool) -> str | None:
    """The 415 message for a body of media type ``ctype`` (lower-case, no parameters),
    or None when it is right for the route."""
    shown = ctype.decode("latin-1")
    if upload:
        return None if ctype == b"multipart/form-data" else (
            f"send the file as multipart/form-data (field 'file'), not {shown or 'no content type'}")
    if ctype and ctype != b"application/json" and not ctype.endswith(b"+json"):
        return f"send the body as application/json, not {shown}"
    return None


def _counting(receive: Any, limit: int, message: str) -> Any:
    """``receive`` that raises HTTPException 413 (``message``) once more than ``limit``
    body bytes have arrived."""
    seen = 0

    async def limited() -> dict:
        nonlocal seen
        msg = await receive()
        if msg["type"] == "http.request":
            seen += len(msg.get("body", b""))
            if seen > limit:
                raise HTTPException(413, message)
        return msg
    return limited
