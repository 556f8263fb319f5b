"""The API's one error shape ``{"error": {"code", "message"}}`` and the handlers that
turn every failure (validation, HTTP, engine, unexpected) into it, never a traceback."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from memory.api.engine import EngineUnavailable, UploadRefused
from memory.api.keys import KeyStoreError
from memory.llm.errors import one_line

log = logging.getLogger(__name__)

#: status → default error code
CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
         415: "unsupported_media_type", 422: "invalid_request", 500: "internal_error",
         503: "unavailable"}


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with ``status``.
    ``headers`` (e.g. ``WWW-Authenticate``) are added to the response."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = one_line(message)
        self.headers = headers


def error_body(status: int, message: str, code: str | None = None) -> dict:
    """The JSON body for an error."""
    return {"error": {"code": code or CODES.get(status, "error"), "message": one_line(message)}}


def error_response(status: int, message: str, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSONResponse in the error shape."""
    return JSONResponse(error_body(status, message, code), status_code=status, headers=headers)


def not_found(what: str = "memory") -> ApiError:
    """404 for an id the caller does not own (same answer as a missing id)."""
    return ApiError(404, f"no such {what}")


def _validation_message(exc: RequestValidationError) -> str:
    """``body.query: Field required`` — the first problem, naming its field."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body" or len(first["loc"]) == 1)
    msg = first.get("msg", "invalid value")
    if first.get("type") == "json_invalid":
        return f"malformed JSON body: {first.get('ctx', {}).get('error', msg)}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{loc or 'request'}: {msg}{more}"


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        return error_response(422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(EngineUnavailable)
    async def _unavailable(_: Request, exc: EngineUnavailable):
        return error_response(503, str(exc))

    @app.exception_handler(UploadRefused)
    async def _upload_refused(_: Request, exc: UploadRefused):
        return error_response(exc.status, str(exc))

    @app.exception_handler(KeyStoreError)
    async def _keys(_: Request, exc: KeyStoreError):
        status = 409 if "already exists" in str(exc) else 404
        return error_response(status, str(exc))

    @app.exception_handler(ValueError)
    async def _bad_input(_: Request, exc: ValueError):
        return error_response(400, one_line(exc))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        log.exception("unhandled API error")
        return error_response(500, f"internal error ({type(exc).__name__}); see the server log")
