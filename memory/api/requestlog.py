"""The request log: one JSON line per API request, with secrets redacted and no bodies.

A line holds ``time`` (UTC ISO-8601), ``duration_ms``, ``method``, ``path``, ``query``
(parameters whose names look secret — key, token, password, secret, auth — replaced
by ``[redacted]``), ``status``, ``user_id`` and ``key_id`` (from the verified key, or
null), ``request_bytes`` and ``response_bytes`` and ``client``. Header values and
request/response bodies are never written; an API key that somehow appears in a path or
query value (``mk_…``) is redacted too, and so is the admin key (``RequestLog.mask``),
which has no recognisable shape, in any parameter or path segment.
"""
from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Iterable
from urllib.parse import parse_qsl, urlencode

REDACTED = "[redacted]"
_SECRET_NAME = re.compile(r"key|token|passw|secret|auth|session|cookie|signature", re.I)
_KEY_VALUE = re.compile(r"mk_[0-9a-f]{12}_[A-Za-z0-9_-]+")


def redact_query(query: str, secrets: Iterable[str] = ()) -> str:
    """Return the query string with secret-named parameters' values, any API key and
    any of ``secrets`` (e.g. the admin key, in any parameter) replaced by
    ``[redacted]``. Values are compared decoded (``%2B`` and ``+`` as sent)."""
    if not query:
        return ""
    secrets = tuple(secrets)
    pairs = [(redact_text(k, secrets),
              REDACTED if _SECRET_NAME.search(k) else redact_text(v, secrets))
             for k, v in parse_qsl(query, keep_blank_values=True)]
    return urlencode(pairs, safe="[]")


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace anything shaped like an API key in ``text``, and every occurrence of each
    of ``secrets`` (empty ones ignored), by ``[redacted]``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _KEY_VALUE.sub(REDACTED, text)


class RequestLog:
    """Writes request lines to ``path`` (appended; created 0600, a missing folder 0700)
    and/or ``stream``.

    ``RequestLog(path=None, stream=None)``; ``write(record)`` is thread-safe.
    ``mask(secret)`` adds a secret (the admin key) that the middleware redacts from
    every logged path and query; ``secrets`` lists them.
    """

    def __init__(self, path: str | Path | None = None, stream: IO[str] | None = None) -> None:
        self.path = Path(path) if path else None
        self.stream = stream
        self.secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if self.path:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._file = open(fd, "a", encoding="utf-8", buffering=1)

    def mask(self, secret: str | None) -> None:
        """Redact ``secret`` (ignored when empty) wherever it appears in a logged path or
        query, whatever the parameter's name."""
        if secret and secret not in self.secrets:
            self.secrets += (secret,)

    def write(self, record: dict[str, Any]) -> None:
        """Write one record as a JSON line."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            for out in (self._file, self.stream):
                if out is not None:
                    out.write(line + "\n")
                    out.flush()

    def close(self) -> None:
        """Close the file (the stream is the caller's)."""
        with self._lock:
            if self._file:
                self._file.close()
                self._file = None


class RequestLogMiddleware:
    """ASGI middleware that writes one line per HTTP request to a ``RequestLog``.

    The user and key come from ``scope["state"]`` (``user_id``, ``key_id``), set by
    the authentication dependency; sizes are counted from the ASGI messages.
    """

    def __init__(self, app: Any, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        start = time.perf_counter()
        sizes = {"in": 0, "out": 0}
        status = {"code": 500}

        async def counting_receive():
            message = await receive()
            if message["type"] == "http.request":
                sizes["in"] += len(message.get("body", b""))
            return message

        async def counting_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "http.response.body":
                sizes["out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            state = scope.get("state") or {}
            client = scope.get("client")
            self.log.write({
                "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "duration_ms": round((time.perf_counter() - start) * 1000, 1),
                "method": scope.get("method"),
                "path": redact_text(scope.get("path", ""), self.log.secrets),
                "query": redact_query(scope.get("query_string", b"").decode("latin-1"),
                                      self.log.secrets),
                "status": status["code"],
                "user_id": state.get("user_id"),
                "key_id": state.get("key_id"),
                "request_bytes": sizes["in"],
                "response_bytes": sizes["out"],
                "client": client[0] if client else None,
            })


def default_log(data_dir: str | Path, echo: bool = True) -> RequestLog:
    """The server's log: ``<data_dir>/logs/api-requests.jsonl`` and, with ``echo``, stderr.
    ``logs/`` is made 0700, and an existing one (older versions made it 0755) loses its
    group/other access."""
    folder = Path(data_dir) / "logs"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        os.chmod(folder, 0o700)
    return RequestLog(folder / "api-requests.jsonl", sys.stderr if echo else None)
