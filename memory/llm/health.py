"""The chat-model endpoint's health probe: ``GET /models`` with a short timeout, for the
status dots, ``/health`` and ``Settings`` (``LLM.health`` calls ``probe``)."""
from __future__ import annotations

import socket
import time
from typing import Any, Callable
from urllib.parse import urlparse

import openai

#: seconds allowed for the whole ``GET /models`` request
HEALTH_TIMEOUT = 3.0


def probe(base_url: str, api_key: str | None, model: str | None,
          wrap: Callable[[BaseException], Exception]) -> dict[str, Any]:
    """Probe the OpenAI-compatible endpoint at ``base_url`` with ``GET /models``
    (``HEALTH_TIMEOUT`` s, no retries); ``model`` is the name requests use, ``wrap``
    turns an SDK error into its one-line message (``LLM._wrap``).

    Returns ``{"ok": bool, "detail": str, "model": str|None, "base_url": str,
    "latency_ms": float|None}``. Never raises; never starts the local server (a stopped
    local server is reported as down with how to start it). A server that accepts
    connections but does not answer in time counts as ok ("busy"): the local
    llama.cpp server answers ``/models`` only between generations.
    """
    out: dict[str, Any] = {"ok": False, "detail": "", "model": model,
                           "base_url": base_url, "latency_ms": None}
    client = openai.OpenAI(base_url=base_url, max_retries=0,
                           api_key=api_key or "not-needed",
                           timeout=openai.Timeout(HEALTH_TIMEOUT, connect=HEALTH_TIMEOUT))
    start = time.perf_counter()
    try:
        ids = [m.id for m in client.models.list()]
        out["latency_ms"] = round((time.perf_counter() - start) * 1000, 1)
        out["ok"] = True
        if model and ids and model not in ids:
            out["detail"] = (f"reachable, but {model!r} is not among its "
                             f"{len(ids)} listed models")
        else:
            out["detail"] = f"reachable ({len(ids)} model(s) listed)"
    except openai.NotFoundError:
        out["latency_ms"] = round((time.perf_counter() - start) * 1000, 1)
        out["ok"] = True
        out["detail"] = "reachable (no /models endpoint)"
    except openai.APITimeoutError as exc:
        out["latency_ms"] = round((time.perf_counter() - start) * 1000, 1)
        if accepts_connections(base_url):
            # e.g. llama-cpp-python answers /models only between generations
            out["ok"] = True
            out["detail"] = (f"reachable but busy (no answer to /models within "
                             f"{HEALTH_TIMEOUT:g}s)")
        else:
            out["detail"] = str(wrap(exc))
    except Exception as exc:  # noqa: BLE001 - health must never raise
        out["latency_ms"] = round((time.perf_counter() - start) * 1000, 1)
        out["detail"] = str(wrap(exc))
    finally:
        client.close()
    return out


def accepts_connections(url: str, timeout: float = 1.0) -> bool:
    """True when the host:port of ``url`` accepts a TCP connection within ``timeout`` s."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False
