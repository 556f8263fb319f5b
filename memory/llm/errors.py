"""Errors raised by the language-model layer (``memory.llm.client`` and ``memory.llm.local_server``),
and ``one_line()``, the one helper that turns any error or text into a one-line message.

Every message is one line meant for the user, e.g. ``The language model at
http://127.0.0.1:8766/v1 is not reachable (connection refused). Start it with ./run.sh
or set OPENAI_BASE_URL.`` Callers may show ``str(exc)`` as is.
"""
from __future__ import annotations

import re

# an absolute or home-relative file path inside a message (not a URL's path: "://host/x")
_PATH = re.compile(r"(?<![\w/:.~-])~?/[^\s'\",;:()]+")


class LLMError(RuntimeError):
    """The language model could not be used: endpoint down, timeout, HTTP error,
    rejected key, missing model or vision model. ``str(exc)`` is one user-facing line."""


class LLMOutputError(LLMError):
    """The model answered, but (even after one corrective retry) not with JSON that
    validates against the requested schema. ``raw`` holds the last reply text."""

    def __init__(self, message: str, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


class LocalModelError(LLMError):
    """The offline llama.cpp model could not be assembled, verified or started
    (missing part package, sha256 mismatch, server crashed or never became ready)."""


class LocalModelRestarted(LLMError):
    """The local model server died mid-answer and was restarted; the partial answer is
    lost and the request may be sent again. ``notice`` (also ``str(exc)``) is the one
    line to show the user."""

    def __init__(self, notice: str) -> None:
        super().__init__(notice)
        self.notice = notice


def one_line(text: object, limit: int = 300) -> str:
    """Return ``text`` (any object; for an exception, its ``orig`` driver error if it has
    one, as SQLAlchemy errors do) as one line of at most ``limit`` characters.

    Whitespace runs, newlines included, collapse to one space; a longer line is cut and
    ends with "…". An exception with an empty message gives its class name. Used for
    every user-facing error line (LLM, embedder, both stores).
    """
    if isinstance(text, BaseException):
        orig = getattr(text, "orig", None) or text
        line = " ".join(str(orig).split()) or type(orig).__name__
    else:
        line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: max(limit - 1, 0)] + "…"


def hide_paths(text: str, placeholder: str = "[path]") -> str:
    """Return ``text`` with absolute file paths (``/srv/data/memory.db``, ``~/x``)
    replaced by ``placeholder``; URLs (``http://127.0.0.1:8766/v1``) are kept. For
    messages shown to people who should not learn the server's layout (a user key's
    ``/v1/health``, the web app with login on). Takes and returns a str."""
    return _PATH.sub(placeholder, text)
