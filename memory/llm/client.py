"""The chat-model client: any OpenAI-compatible endpoint through the ``openai`` SDK
(OpenAI, DashScope/Qwen, DeepSeek, Ollama, vLLM, llama.cpp), or the offline local
llama.cpp server (``memory.llm.local_server``) when neither ``OPENAI_BASE_URL`` nor
``OPENAI_API_KEY`` is set.

Every failure surfaces as ``memory.llm.errors.LLMError`` (one user-facing line, made by
``memory.llm.retry.translate``); ``complete_json`` raises ``LLMOutputError`` when the
model keeps answering invalid JSON (requests and checks: ``memory.llm.json_output``).
Transient failures are retried ``LLM_MAX_RETRIES`` times with back-off
(``memory.llm.retry``). A timeout is *not* retried: each request is bounded by
``LLM_TIMEOUT`` seconds (for streams: the gap between two chunks), so a slow endpoint is
reported after about ``LLM_TIMEOUT`` s, not ``(LLM_MAX_RETRIES + 1) × LLM_TIMEOUT``.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Callable, Iterator
from urllib.parse import urlparse

import httpx
import jsonschema
import openai

from memory.config import Config
from memory.llm.errors import LLMError, LLMOutputError, LocalModelRestarted, one_line
from memory.llm.retry import FAILURES as _FAILURES
from memory.llm.retry import rejects_response_format, retrying, translate
from memory.llm.health import probe
from memory.llm.media import MediaRequests
from memory.llm.json_output import json_messages, parse_answer, response_format
from memory.llm.json_output import schema_skeleton, strip_fences  # noqa: F401 - re-exported

__all__ = ["LLM", "strip_fences", "schema_skeleton", "DEFAULT_OPENAI_MODEL"]

log = logging.getLogger(__name__)
#: what a broken connection mid-stream raises (httpx errors reach us unwrapped there)
_STREAM_FAILURES = _FAILURES + (httpx.TransportError,)
Notice = Callable[[str], None]

#: model used for api.openai.com when LLM_MODEL is empty
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
#: seconds allowed for a TCP connect
CONNECT_TIMEOUT = 5.0

class LLM(MediaRequests):
    """Thread-safe client for one configured chat model.

    Build it from a ``Config``; nothing touches the network until the first call. For
    the offline default (``config.uses_local_llm``) the first call starts (or reuses)
    the local llama.cpp server via ``memory.llm.local_server.ensure_server``.

    Counters for benchmarks (read them any time; updated under a lock): ``calls``
    (chat/JSON/vision requests sent, retries by the SDK not counted separately),
    ``prompt_tokens`` and ``completion_tokens`` (summed from ``usage`` when the server
    reports it; llama-cpp-python does not report usage for streams).
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.restarts = 0   # local server restarts after a crash
        self._lock = threading.Lock()       # counters
        self._init_lock = threading.Lock()  # client creation (may start the local server)
        self._client: openai.OpenAI | None = None
        self._memory_client: openai.OpenAI | None = None
        self._model: str | None = config.llm_model
        self._stream_usage = True   # cleared if the server rejects stream_options
        self._json_fallback = False  # set if the server rejects our response_format
        #: the Config of the server that does memory work (JSON, summaries): for the
        #: local model a second process paused while replies stream (memory.chat.reply_priority)
        self.memory_config = config
        if config.uses_local_llm:
            from memory.llm import local_server as local_llm
            self.base_url = local_llm.base_url(config)
            self._model = local_llm.model_alias(config)
            self.memory_config = local_llm.memory_config(config)
        elif config.openai_base_url:
            self.base_url = config.openai_base_url
        else:
            self.base_url = "https://api.openai.com/v1"
            self._model = self._model or DEFAULT_OPENAI_MODEL

    # ------------------------------------------------------------------ plumbing
    @property
    def model(self) -> str | None:
        """The chat model name sent with each request (None until resolved for an
        endpoint without ``LLM_MODEL``: the first model it lists is used)."""
        return self._model

    @property
    def is_local(self) -> bool:
        """True when the offline local llama.cpp server is used."""
        return self.config.uses_local_llm

    def _timeout(self, total: float | None = None) -> openai.Timeout:
        total = total or self.config.llm_timeout
        return openai.Timeout(total, connect=min(CONNECT_TIMEOUT, total))

    def _get_client(self, memory_work: bool = False) -> openai.OpenAI:
        """The SDK client for replies, or with ``memory_work`` for memory work (the same
        one unless the local model runs a separate memory server). Creating one starts
        (or reuses) the local server it talks to."""
        separate = memory_work and self.memory_config is not self.config
        with self._init_lock:
            if separate and self._memory_client is None:
                from memory.llm import local_server as local_llm
                from memory.chat import reply_priority
                url = local_llm.ensure_server(self.memory_config)
                reply_priority.resume(self.config)  # never left paused by a dead process
                self._memory_client = self._new_client(
                    url, reply_priority.MEMORY_WORK_TIMEOUT)
            if not separate and self._client is None:
                if self.is_local:
                    from memory.llm import local_server as local_llm
                    self.base_url = local_llm.ensure_server(self.config)
                self._client = self._new_client(self.base_url, None)
            client = self._memory_client if separate else self._client
        if self._model is None:
            self._model = self._first_model(client)
        return client

    def _new_client(self, url: str, timeout: float | None) -> openai.OpenAI:
        return openai.OpenAI(base_url=url, api_key=self.config.openai_api_key or "not-needed",
                             timeout=self._timeout(timeout),
                             max_retries=0)   # retried by _send (tenacity), timeouts not at all

    def _send(self, request, *args: Any, on_restart: Notice | None = None,
              server: Config | None = None, **kwargs: Any) -> Any:
        """``request(*args, **kwargs)`` (one SDK call), retried ``LLM_MAX_RETRIES``
        times when ``llm_errors.transient`` says so; the last error is re-raised. When
        the local server died (connection refused or cut), it is restarted once and the
        request sent again; ``on_restart`` (default: the log) gets the notice line.
        ``server``: the Config of the local server addressed (default: the chat one)."""
        try:
            return retrying(self.config.llm_max_retries)(request, *args, **kwargs)
        except _STREAM_FAILURES as exc:
            notice = self._restart_if_crashed(exc, server)
            if notice is None:
                raise
            (on_restart or log.warning)(notice)
        return retrying(self.config.llm_max_retries)(request, *args, **kwargs)

    def _restart_if_crashed(self, exc: BaseException,
                            server: Config | None = None) -> str | None:
        """For the local server and a lost connection (not a timeout): restart the
        server if it died and return the notice line; None when nothing was restarted.
        Raises LocalModelError when it crashed again within a minute
        (``local_llm.restart_after_crash``)."""
        if not self.is_local or isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException)):
            return None
        if not isinstance(exc, (openai.APIConnectionError, httpx.TransportError)):
            return None
        from memory.llm import local_server as local_llm
        notice = local_llm.restart_after_crash(server or self.config)
        if notice:
            log.warning("%s", notice)
            with self._lock:
                self.restarts += 1
        return notice

    def _first_model(self, client: openai.OpenAI) -> str:
        try:
            ids = [m.id for m in self._send(client.models.list)]
        except _FAILURES as exc:
            raise self._wrap(exc) from None
        if not ids:
            raise LLMError(f"LLM_MODEL is not set and {self.base_url} lists no models; "
                           "set LLM_MODEL")
        return ids[0]

    def _count(self, usage: Any) -> None:
        with self._lock:
            if usage is not None:
                self.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
                self.completion_tokens += int(getattr(usage, "completion_tokens", 0) or 0)

    def _count_call(self) -> None:
        with self._lock:
            self.calls += 1

    def stats(self) -> dict[str, int]:
        """Return ``{"calls", "prompt_tokens", "completion_tokens"}`` (a snapshot)."""
        with self._lock:
            return {"calls": self.calls, "prompt_tokens": self.prompt_tokens,
                    "completion_tokens": self.completion_tokens}

    def _wrap(self, exc: BaseException) -> LLMError:
        """Translate an SDK exception into a one-line LLMError (``llm_errors.translate``)."""
        return translate(exc, base_url=self.base_url, timeout=self.config.llm_timeout,
                         is_local=self.is_local, model=self._model)

    # ------------------------------------------------------------------ chat
    def stream_chat(self, messages: list[dict[str, Any]], *, temperature: float | None = None,
                    max_tokens: int | None = None,
                    on_restart: Notice | None = None) -> Iterator[str]:
        """Stream the assistant's reply to ``messages`` (OpenAI chat format, a list of
        ``{"role", "content"}`` dicts) as text deltas (non-empty ``str`` pieces, in order).

        ``temperature`` defaults to ``LLM_TEMPERATURE``; ``max_tokens`` None lets the
        server decide. If the local server dies before the first delta it is restarted
        and the request sent again (``on_restart`` gets the notice line). Raises
        LocalModelRestarted when it died after some deltas (restarted; the caller may
        ask again), LLMError (one line) on connection errors, timeouts and HTTP errors,
        also mid-stream, and when the stream ends without a finish reason (cut).
        """
        client = self._get_client()
        kwargs: dict[str, Any] = {
            "model": self._model, "messages": messages, "stream": True,
            "temperature": self.config.llm_temperature if temperature is None else temperature,
        }
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        self._count_call()
        finished = said = False
        with self._replying():
            for attempt in range(2):
                try:
                    stream = self._create_stream(client, kwargs, on_restart)
                    with stream:
                        for chunk in stream:
                            if getattr(chunk, "usage", None):
                                self._count(chunk.usage)
                            for choice in chunk.choices or ():
                                piece = choice.delta.content if choice.delta else None
                                if piece:
                                    said = True
                                    yield piece
                                if choice.finish_reason:
                                    finished = True
                    break
                except _STREAM_FAILURES as exc:
                    notice = self._restart_if_crashed(exc) if attempt == 0 else None
                    if notice is None:
                        raise self._wrap(exc) from None
                    if said:
                        raise LocalModelRestarted(notice) from None
                    (on_restart or log.warning)(notice)
        if not said and not finished:
            raise LLMError(f"The language model at {self.base_url} sent an empty answer "
                           "(the stream held no text). Check the server (or its log).")
        if not finished:
            raise LLMError(f"The language model at {self.base_url} stopped mid-answer "
                           "(the stream ended without a finish reason).")

    def _replying(self):
        """While a reply streams, the local memory-work server is paused
        (``memory.chat.reply_priority``); a no-op for one shared server or an endpoint."""
        if self.memory_config is self.config:
            return contextlib.nullcontext()
        from memory.chat import reply_priority
        return reply_priority.replying(self.config)

    def _create_stream(self, client: openai.OpenAI, kwargs: dict[str, Any],
                       on_restart: Notice | None) -> Any:
        if self._stream_usage:
            try:
                return self._send(client.chat.completions.create, on_restart=on_restart,
                                  **kwargs, stream_options={"include_usage": True})
            except openai.BadRequestError as exc:
                if "stream_options" not in str(exc):
                    raise
                self._stream_usage = False
        return self._send(client.chat.completions.create, on_restart=on_restart, **kwargs)

    def chat(self, messages: list[dict[str, Any]], *, temperature: float | None = None,
             max_tokens: int | None = None) -> str:
        """Return the assistant's full reply to ``messages`` (non-streaming request).

        Same arguments and errors as ``stream_chat``; the reply may be "". Sent to the
        memory-work server (summaries and other background work use it).
        """
        client = self._get_client(memory_work=True)
        kwargs: dict[str, Any] = {
            "model": self._model, "messages": messages,
            "temperature": self.config.llm_temperature if temperature is None else temperature,
        }
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        return self._complete(client, kwargs, self.memory_config)

    def _complete(self, client: openai.OpenAI, kwargs: dict[str, Any],
                  server: Config | None = None) -> str:
        self._count_call()
        try:
            resp = self._send(client.chat.completions.create, server=server, **kwargs)
        except _FAILURES as exc:
            raise self._wrap(exc) from None
        self._count(getattr(resp, "usage", None))
        if not getattr(resp, "choices", None):
            raise LLMError(f"The language model at {self.base_url} answered without choices")
        return resp.choices[0].message.content or ""

    # ------------------------------------------------------------------ JSON
    def json_mode(self) -> str:
        """Return the effective JSON mode: ``LLM_JSON_MODE`` unless ``auto``, which means
        ``json_object+schema`` for the local llama.cpp server (its grammar then
        constrains the output to the schema), ``json_schema`` for api.openai.com
        (structured outputs) and ``json_object`` for other endpoints."""
        mode = self.config.llm_json_mode
        if self._json_fallback:
            return "none"
        if mode != "auto":
            return mode
        if self.is_local:
            return "json_object+schema"
        host = urlparse(self.base_url).hostname or ""
        return "json_schema" if host == "api.openai.com" else "json_object"

    def complete_json(self, messages: list[dict[str, Any]], schema: dict[str, Any], *,
                      name: str, max_tokens: int = 512) -> dict[str, Any]:
        """Ask for a JSON object matching the JSON Schema ``schema`` and return it parsed.

        ``name`` labels the schema (``[a-zA-Z0-9_-]``, used by OpenAI structured
        outputs). How JSON is requested depends on ``json_mode()``; except with OpenAI
        structured outputs or the local grammar, the schema is also described in the
        system prompt. The reply is stripped of ``` fences, parsed and validated with
        ``jsonschema``; on failure the model is told what was wrong and asked once more.
        Temperature is 0.

        Raises LLMOutputError when the second answer is still invalid, LLMError on
        transport errors, ValueError if ``schema`` itself is not a valid JSON Schema.
        """
        jsonschema.validators.validator_for(schema).check_schema(schema)
        validator = jsonschema.validators.validator_for(schema)(schema)
        client = self._get_client(memory_work=True)
        convo = json_messages(self.json_mode(), messages, schema)
        base_len = len(convo)
        raw, problem = "", ""
        for attempt in range(2):
            kwargs: dict[str, Any] = {"model": self._model, "messages": convo,
                                      "temperature": 0, "max_tokens": max_tokens}
            fmt = response_format(self.json_mode(), schema, name)
            if fmt is not None:
                kwargs["response_format"] = fmt
            try:
                raw = self._complete(client, kwargs, self.memory_config)
            except LLMError as exc:
                if fmt is None or not rejects_response_format(exc):
                    raise
                # HTTP 400 about response_format: this server lacks it, so from now on
                # describe the schema in the prompt instead (json_mode() -> "none")
                self._json_fallback = True
                convo = json_messages(self.json_mode(), messages, schema) + convo[base_len:]
                kwargs.pop("response_format", None)
                raw = self._complete(client, kwargs | {"messages": convo}, self.memory_config)
            data, problem = parse_answer(raw, validator)
            if not problem:
                return data
            if attempt == 0:
                convo = convo + [
                    {"role": "assistant", "content": raw},
                    {"role": "user", "content":
                        f"Your reply was rejected because {one_line(problem, 300)}. Reply "
                        "again with only one JSON object that matches the schema, no prose."},
                ]
        raise LLMOutputError(f"The language model returned invalid JSON for {name} twice "
                             f"({one_line(problem, 160)})", raw=raw)

    # ------------------------------------------------------------------ health
    def health(self) -> dict[str, Any]:
        """Probe the endpoint with ``GET /models`` (``HEALTH_TIMEOUT`` s, no retries).

        Returns ``{"ok": bool, "detail": str, "model": str|None, "base_url": str,
        "latency_ms": float|None}``; never raises, never starts the local server
        (``memory.llm.health.probe``)."""
        return probe(self.base_url, self.config.openai_api_key, self._model, self._wrap)

    def close(self) -> None:
        """Close the HTTP connection pools (the local servers keep running)."""
        with self._init_lock:
            for client in (self._client, self._memory_client):
                if client is not None:
                    client.close()
            self._client = self._memory_client = None
