"""Input checks of the public API: chat messages, message lists for ``add``, limits, queries."""
from __future__ import annotations

from typing import Any, Iterable

from memory.types import as_utc

#: largest ``limit`` of ``Memory.list`` / ``Memory.threads``, and of ``Memory.search``
MAX_LIST_LIMIT = 10_000
MAX_SEARCH_LIMIT = 1_000


def check_message(text: Any, max_chars: int) -> str:
    """Return a chat message stripped and without NUL characters.

    Raises ValueError when it is not a string, is empty, or is longer than ``max_chars``
    (``MEMORY_MAX_MESSAGE_CHARS``, 20,000 by default)."""
    if not isinstance(text, str):
        raise ValueError("message must be text")
    text = text.replace("\x00", "").strip()
    if not text:
        raise ValueError("message is empty")
    if len(text) > max_chars:
        raise ValueError(f"message is too long ({len(text):,} characters; the limit is "
                         f"{max_chars:,}, set by MEMORY_MAX_MESSAGE_CHARS)")
    return text


def check_int(value: Any, name: str, low: int, high: int) -> int:
    """Return ``value`` as an int if it is a whole number in ``low..high``; raise
    ValueError ("limit must be a whole number between 1 and 1000") otherwise. Floats,
    bools and strings are refused rather than rounded."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number between {low} and {high:,}")
    return value


def check_query(query: Any, max_chars: int) -> str:
    """Return a search query stripped and cut to ``max_chars``; raise ValueError when it
    is not a string or is empty."""
    if not isinstance(query, str):
        raise ValueError("search query must be text")
    q = query.strip()[:max_chars]
    if not q:
        raise ValueError("search query is empty")
    return q


def normalize_messages(messages: str | Iterable[dict], max_chars: int) -> list[dict]:
    """Return ``Memory.add``'s ``messages`` as ``[{"role", "content", "metadata"?,
    "created_at"?}]``: a string is one user message, system messages and empty contents
    are dropped. Raises ValueError for a malformed item or when nothing is left."""
    if isinstance(messages, str):
        return [{"role": "user", "content": check_message(messages, max_chars)}]
    out = []
    for m in messages or []:
        if isinstance(m, str):
            m = {"role": "user", "content": m}
        if not isinstance(m, dict) or "content" not in m:
            raise ValueError("each message must be a dict with 'role' and 'content'")
        role = str(m.get("role") or "user")
        if role == "system":
            continue  # never learn from system prompts
        content = m["content"]
        if not isinstance(content, str) or not content.strip():
            continue
        item = {"role": role, "content": check_message(content, max_chars)}
        if m.get("metadata") is not None:
            if not isinstance(m["metadata"], dict):
                raise ValueError("a message's 'metadata' must be a dict")
            item["metadata"] = m["metadata"]
        if m.get("created_at") is not None:
            try:
                item["created_at"] = as_utc(m["created_at"])
            except (TypeError, ValueError):
                raise ValueError("a message's 'created_at' must be an ISO-8601 date") from None
        out.append(item)
    if not out:
        raise ValueError("no message with content to add")
    return out


def context_before_user(msgs: list[dict]) -> str:
    """The assistant message right before the first user message of ``msgs`` (what a
    short user answer replies to), or ""."""
    for i, m in enumerate(msgs):
        if m["role"] == "user":
            return msgs[i - 1]["content"] if i and msgs[i - 1]["role"] == "assistant" else ""
    return ""
