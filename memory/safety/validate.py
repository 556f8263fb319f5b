"""Input checks of the public API: chat messages, message lists for ``add``, limits, queries."""
from __future__ import annotations

from typing import Any, Iterable

from memory.safety.sanitize import clean_datetime, clean_metadata, clean_text

#: largest ``limit`` of ``Memory.list`` / ``Memory.threads``, and of ``Memory.search``
MAX_LIST_LIMIT = 10_000
MAX_SEARCH_LIMIT = 1_000


def check_message(text: Any, max_chars: int, field: str = "message") -> str:
    """Return a chat message cleaned by ``memory.safety.sanitize.clean_text`` (NUL removed, NFC)
    and stripped; not PII-redacted (the caller redacts what it stores).

    Raises ValueError naming ``field`` when it is not a string, holds a lone surrogate,
    is empty, or is longer than ``max_chars`` (``MEMORY_MAX_MESSAGE_CHARS``, 20,000 by
    default)."""
    text = clean_text(text, field, 2**62, strip=True)
    if not text:
        raise ValueError(f"{field}: is empty")
    if len(text) > max_chars:
        raise ValueError(f"{field}: too long ({len(text):,} characters; the limit is "
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
    """Return a search query cleaned (``clean_text``: NUL removed, NFC), stripped and cut
    to ``max_chars``; raise ValueError when it is not a string, holds a lone surrogate
    or is empty."""
    if not isinstance(query, str):
        raise ValueError(f"search query must be text, got {type(query).__name__}")
    q = clean_text(query, "query", 2**62, strip=True)[:max_chars]
    if not q:
        raise ValueError("search query is empty")
    return q


def normalize_messages(messages: str | Iterable[dict], max_chars: int) -> list[dict]:
    """Return ``Memory.add``'s ``messages`` as ``[{"role", "content", "metadata"?,
    "created_at"?}]``: a string is one user message, system messages and empty contents
    are dropped. Raises ValueError for a malformed item or when nothing is left."""
    if isinstance(messages, str):
        return [{"role": "user", "content": check_message(messages, max_chars)}]
    if isinstance(messages, dict) or not isinstance(messages, Iterable | None):
        raise ValueError(f"messages must be a string or a list of dicts, got "
                         f"{type(messages).__name__}")
    out = []
    for i, m in enumerate(messages or []):
        if isinstance(m, str):
            m = {"role": "user", "content": m}
        if not isinstance(m, dict) or "content" not in m:
            raise ValueError(f"messages[{i}]: must be a dict with 'role' and 'content'")
        role = m.get("role") or "user"
        if not isinstance(role, str):
            raise ValueError(f"messages[{i}].role: must be text, got {type(role).__name__}")
        if role == "system":
            continue  # never learn from system prompts
        content = m["content"]
        if not isinstance(content, str) or not content.strip():
            continue
        item = {"role": role, "content": check_message(content, max_chars,
                                                       f"messages[{i}].content")}
        if m.get("metadata") is not None:
            item["metadata"] = clean_metadata(m["metadata"], f"messages[{i}].metadata")
        if m.get("created_at") is not None:
            item["created_at"] = clean_datetime(m["created_at"], f"messages[{i}].created_at")
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
