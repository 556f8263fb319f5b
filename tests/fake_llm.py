"""ScriptedLLM: a small OpenAI-compatible HTTP server on 127.0.0.1 for tests.

It serves real HTTP (stdlib ``ThreadingHTTPServer`` in a thread, on a free port):

* ``GET  /v1/models``            -> ``{"object": "list", "data": [{"id": <model>}]}``
* ``POST /v1/chat/completions``  -> a chat completion, or SSE chunks when ``stream: true``
  (role chunk, one chunk per word, a finish chunk, a usage chunk when
  ``stream_options.include_usage``, then ``data: [DONE]``)
* ``POST /v1/embeddings``        -> deterministic 16-dim (or ``dimensions``) unit vectors

What each chat request gets comes from the *script*: first the FIFO filled by
``push(...)``, else the ``responder(request_json)`` callable, else ``default``. A reply
is one of

* ``str``   -> the assistant text, verbatim (use it for deliberately invalid JSON too);
* ``dict`` / ``list`` -> JSON-serialised as the assistant text (for ``complete_json``);
* a directive: ``HTTPError(500)``, ``HTTPError(429, retry_after=0)``, ``Malformed()``
  (HTTP 200 with a body that is not JSON), ``Drop("partial text")`` (stream those words,
  then cut the connection mid-body; ``clean=True``: end the body without finishing), ``Delay(seconds, reply)`` (answer late, for timeouts);
* a callable ``(request_json) -> reply`` (evaluated when the request arrives).

Every request is recorded in ``requests`` (``Request(path, method, body, headers)``).
Helpers ``is_json_request``, ``system_text``, ``last_user_text``, ``has_image`` and
``route`` let a responder tell the kinds of calls apart (JSON extraction vs. chat vs.
vision); they live in tests/fake_llm_requests.py and are re-exported here.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import socket
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from tests.fake_llm_requests import (_text, has_image, is_json_request, last_user_text, route,
                                     system_text)

__all__ = ["HTTPError", "Malformed", "Drop", "Delay", "Request", "Reply", "ScriptedLLM",
           "scripted_config", "is_json_request", "system_text", "last_user_text", "has_image",
           "route"]


# ------------------------------------------------------------------ directives
@dataclass
class HTTPError:
    """Answer with HTTP ``status`` and an OpenAI-style error body; ``retry_after``
    (seconds) adds a ``Retry-After`` header (the SDK honours it when retrying)."""

    status: int = 500
    message: str = "scripted failure"
    retry_after: float | None = None


@dataclass
class Malformed:
    """Answer HTTP 200 with ``body`` that is not valid JSON (non-stream requests), or a
    broken SSE data line (stream requests)."""

    body: str = '{"id": "broken", "choices": [ {"message": '


@dataclass
class Drop:
    """Stream the words of ``text`` (stream requests) then close the connection in the
    middle of the chunked body; a non-stream request gets its connection closed before
    any response."""

    text: str = "partial answer"
    #: True: end the HTTP body properly instead (no finish chunk, no ``[DONE]``), like
    #: a server that gives up silently
    clean: bool = False


@dataclass
class Delay:
    """Wait ``seconds`` before answering with ``reply`` (to exercise client timeouts)."""

    seconds: float
    reply: Any = "late reply"


@dataclass
class Request:
    """One recorded HTTP request: path (e.g. ``/v1/chat/completions``), method, the
    parsed JSON body (``{}`` for GET or invalid JSON) and the headers (lower-case keys)."""

    path: str
    method: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


Reply = Any  # str | dict | list | HTTPError | Malformed | Drop | Delay | callable

# One module object whether imported as ``tests.fake_llm`` or ``fake_llm`` (pytest puts
# tests/ on sys.path too), so ``isinstance`` checks on directives always agree.
sys.modules.setdefault("tests.fake_llm", sys.modules[__name__])
sys.modules.setdefault("fake_llm", sys.modules[__name__])


# ------------------------------------------------------------------ helpers
def _words(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text) or [""]


def scripted_config(data_dir: Any, llm: "ScriptedLLM", **overrides: Any) -> Any:
    """Return a ``memory.config.Config`` pointed at ``llm``: data in ``data_dir``, no
    .env file, key ``test``, model ``scripted``, and short ``llm_timeout`` (10 s) and
    ``llm_max_retries`` (1) so a failing test fails fast. ``overrides`` win."""
    from memory.config import load_config

    settings: dict[str, Any] = {
        "memory_data_dir": data_dir, "openai_base_url": llm.base_url,
        "openai_api_key": "test", "llm_model": llm.model,
        "llm_timeout": 10.0, "llm_max_retries": 1,
    }
    settings.update(overrides)
    return load_config(env_file=None, **settings)


# ------------------------------------------------------------------ the server
class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that gave up (timeout test, dropped stream) is expected; stay quiet
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class ScriptedLLM:
    """An OpenAI-compatible HTTP server whose answers come from a script.

    ``ScriptedLLM(responder=None, model="scripted", default="ok")``; ``start()`` binds a
    free port on 127.0.0.1 and serves in a daemon thread; ``stop()`` shuts it down
    (also usable as a context manager). ``base_url`` is ``http://127.0.0.1:PORT/v1``.
    """

    def __init__(self, responder: Callable[[dict[str, Any]], Reply] | None = None, *,
                 model: str = "scripted", default: Reply = "ok") -> None:
        self.responder = responder
        self.model = model
        self.default = default
        #: seconds GET /models waits before answering (a busy llama.cpp server)
        self.models_delay = 0.0
        self.requests: list[Request] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> "ScriptedLLM":
        """Start serving; returns self."""
        handler = type("Handler", (_Handler,), {"owner": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "ScriptedLLM":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "ScriptedLLM is not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- script
    def push(self, *replies: Reply) -> None:
        """Queue replies; each chat request takes the oldest one (before the responder)."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """How many pushed replies are still queued."""
        with self._lock:
            return len(self._queue)

    def chat_requests(self) -> list[dict[str, Any]]:
        """Return the JSON bodies of all chat-completion requests received so far."""
        with self._lock:
            return [r.body for r in self.requests if r.path.endswith("/chat/completions")]

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            reply = self._queue.popleft() if self._queue else None
        if reply is None:
            reply = self.responder(body) if self.responder else self.default
        while callable(reply) and not isinstance(reply, type):
            reply = reply(body)
        return reply

    def _record(self, req: Request) -> None:
        with self._lock:
            self.requests.append(req)


class _Handler(BaseHTTPRequestHandler):
    owner: ScriptedLLM
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: object) -> None:  # keep pytest output clean
        pass

    # -- plumbing
    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self._send_raw(status, data, headers)

    def _send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _cut(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- routes
    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self.owner._record(Request(self.path, "GET", {}, {k.lower(): v for k, v in self.headers.items()}))
        if self.path.rstrip("/").endswith("/models"):
            if self.owner.models_delay:
                time.sleep(self.owner.models_delay)  # simulated busy server
            self._send_json(200, {"object": "list", "data": [
                {"id": self.owner.model, "object": "model", "created": 0, "owned_by": "scripted"}]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        self.owner._record(Request(self.path, "POST", body,
                                   {k.lower(): v for k, v in self.headers.items()}))
        path = self.path.rstrip("/")
        if path.endswith("/chat/completions"):
            self._chat(body)
        elif path.endswith("/embeddings"):
            self._embeddings(body)
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def _embeddings(self, body: dict[str, Any]) -> None:
        inputs = body.get("input", [])
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        dim = int(body.get("dimensions") or 16)
        data = []
        for i, text in enumerate(inputs):
            seed = hashlib.sha256(str(text).encode()).digest()
            vec = [((seed[j % 32] + j * 7) % 255) / 127.0 - 1.0 for j in range(dim)]
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            data.append({"object": "embedding", "index": i, "embedding": [v / norm for v in vec]})
        self._send_json(200, {"object": "list", "data": data, "model": body.get("model", "scripted"),
                              "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}})

    def _chat(self, body: dict[str, Any]) -> None:
        reply = self.owner._next_reply(body)
        while isinstance(reply, Delay):
            time.sleep(reply.seconds)  # simulated slowness, not synchronisation
            reply = reply.reply
        if isinstance(reply, HTTPError):
            headers = {}
            if reply.retry_after is not None:
                headers["Retry-After"] = f"{reply.retry_after:g}"
            self._send_json(reply.status, {"error": {"message": reply.message,
                                                     "type": "scripted", "code": reply.status}},
                            headers)
            return
        stream = bool(body.get("stream"))
        if isinstance(reply, Malformed):
            if stream:
                self._stream_start()
                self._chunk(f"data: {reply.body}\n\n".encode())
                self._chunk(b"data: [DONE]\n\n")
                self._chunk(b"")
            else:
                self._send_raw(200, reply.body.encode())
            return
        if isinstance(reply, Drop):
            if not stream:
                self._cut()
                return
            self._stream_start()
            self._stream_words(body, reply.text)
            if reply.clean:
                self._chunk(b"")
            else:
                self._cut()
            return
        text = reply if isinstance(reply, str) else json.dumps(reply)
        prompt_tokens = sum(len(_text(m.get("content")).split()) for m in body.get("messages", []))
        completion_tokens = len(text.split())
        if not stream:
            self._send_json(200, {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
                "created": int(time.time()), "model": body.get("model", self.owner.model),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens},
            })
            return
        self._stream_start()
        cid = self._stream_words(body, text)
        self._event(body, cid, {}, "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            self._chunk(self._sse({
                "id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model", self.owner.model), "choices": [],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}))
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")  # terminating zero-length chunk

    # -- SSE helpers
    def _stream_start(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    @staticmethod
    def _sse(payload: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(payload)}\n\n".encode()

    def _event(self, body: dict[str, Any], cid: str, delta: dict[str, Any],
               finish: str | None) -> None:
        self._chunk(self._sse({
            "id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body.get("model", self.owner.model),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))

    def _stream_words(self, body: dict[str, Any], text: str) -> str:
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        self._event(body, cid, {"role": "assistant", "content": ""}, None)
        for word in _words(text):
            if word:
                self._event(body, cid, {"content": word}, None)
        return cid
