"""The chat-model client's retry policy and error translation: which SDK failures are retried and how long to wait, and the one-line LLMError each failure becomes.

Transient failures (connection errors, HTTP 408/409/429/5xx) are retried
``LLM_MAX_RETRIES`` times (tenacity; the SDK's own retries are off) with exponential
backoff (0.5 s doubling, capped at 8 s, honouring ``Retry-After`` up to 60 s), never
forever. A timeout is *not* retried: the endpoint already had ``LLM_TIMEOUT`` seconds.
"""
from __future__ import annotations

from typing import Any

import openai
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from memory.llm.errors import LLMError, one_line

#: what a request can raise that means "the endpoint failed" (the SDK raises plain
#: ValueError/JSONDecodeError for a body or SSE chunk that is not JSON)
FAILURES = (openai.OpenAIError, ValueError)


def retrying(max_retries: int) -> Retrying:
    """A tenacity ``Retrying`` that calls a request once plus up to ``max_retries``
    retries while :func:`transient` says so, waiting :func:`retry_wait` in between, and
    re-raises the last error. Use as ``retrying(n)(request, *args, **kwargs)``."""
    return Retrying(stop=stop_after_attempt(max_retries + 1), wait=retry_wait,
                    retry=retry_if_exception(transient), reraise=True)


def transient(exc: BaseException) -> bool:
    """True for a failure worth retrying: a connection error (not a timeout: the
    endpoint already had ``LLM_TIMEOUT`` seconds) or HTTP 408/409/429/5xx."""
    if isinstance(exc, openai.APITimeoutError):
        return False
    if isinstance(exc, openai.APIConnectionError):
        return True
    return isinstance(exc, openai.APIStatusError) and (
        exc.status_code in (408, 409, 429) or exc.status_code >= 500)


def retry_wait(state: Any) -> float:
    """Seconds before retry number ``state.attempt_number`` (a tenacity RetryCallState):
    the server's ``Retry-After`` (seconds, at most 60) if given, else 0.5 s doubling,
    capped at 8 s."""
    exc = state.outcome.exception() if state.outcome else None
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            after = float(response.headers.get("retry-after", ""))
            if 0 <= after <= 60:
                return after
        except ValueError:
            pass
    return min(0.5 * 2 ** (state.attempt_number - 1), 8.0)


def translate(exc: BaseException, *, base_url: str, timeout: float, is_local: bool,
              model: str | None) -> LLMError:
    """Translate an SDK exception into a one-line LLMError naming the endpoint
    (``base_url``), with the fix: ``timeout`` is ``LLM_TIMEOUT`` in seconds,
    ``is_local`` selects the hint for the offline server, ``model`` is named on a 404.
    An LLMError is returned unchanged."""
    where = f"The language model at {base_url}"
    hint = ("Start it with ./run.sh or set OPENAI_BASE_URL." if is_local
            else "Check OPENAI_BASE_URL and that the server is running.")
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return LLMError(f"{where} did not answer within {timeout:g}s "
                        "(timeout). Raise LLM_TIMEOUT or check the server.")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        reason = one_line(cause or exc.message, 120)
        low = reason.lower()
        if "refused" in low:
            reason = "connection refused"
        elif "peer closed" in low or "disconnected" in low or "incomplete" in low:
            return LLMError(f"{where} closed the connection before finishing its "
                            "answer. Check the server (or its log) and try again.")
        return LLMError(f"{where} is not reachable ({reason}). {hint}")
    if isinstance(exc, ValueError):  # undecodable body / chunk (JSON, schema)
        return LLMError(f"{where} sent a malformed response ({one_line(exc, 120)}).")
    if isinstance(exc, openai.APIStatusError):
        detail = one_line(error_message(exc), 160)
        code = exc.status_code
        if code == 401 or code == 403:
            return LLMError(f"{where} rejected the API key (HTTP {code}: {detail}). "
                            "Check OPENAI_API_KEY.")
        if code == 404:
            return LLMError(f"{where} answered HTTP 404 for model {model!r} "
                            f"({detail}). Check LLM_MODEL and OPENAI_BASE_URL.")
        if code == 429:
            return LLMError(f"{where} is rate-limiting or out of quota (HTTP 429: "
                            f"{detail}). Try again later.")
        return LLMError(f"{where} answered HTTP {code}: {detail}")
    if isinstance(exc, openai.APIError):
        return LLMError(f"{where} failed: {one_line(exc.message, 160)}")
    return LLMError(f"{where} failed: {one_line(repr(exc), 160)}")


def error_message(exc: openai.APIStatusError) -> str:
    """The server's own message in an HTTP error answer (``{"error": {"message"}}``,
    ``{"error": "..."}`` or ``{"detail"}``), else the SDK's message or ``HTTP <code>``."""
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if body.get("detail"):
            return str(body["detail"])
    return exc.message or f"HTTP {exc.status_code}"


def rejects_response_format(exc: LLMError) -> bool:
    """True for an HTTP 400/422/500 answer that complains about ``response_format``
    (llama-cpp-python answers HTTP 500 "Input should be 'text' or 'json_object'" to
    ``json_schema``; others answer 400)."""
    text = str(exc).lower()
    return (any(f"http {code}" in text for code in (400, 422, 500))
            and ("response_format" in text or "json_schema" in text or "json_object" in text))
