"""The one sanitising boundary for everything persisted: text cleaning, size limits,
importance, tags, metadata, ids and dates, and PII redaction (via ``memory.safety.pii``).

Pure functions; nothing here touches a store. Every rule is the same for every field:

* **Type**: a text field takes a ``str`` only (``ValueError`` otherwise; ``123`` is not
  silently turned into ``"123"``).
* **Lone surrogates** (``"\\ud800"``, which JSON can carry but UTF-8 cannot store) are
  *refused*: ``ValueError`` naming the field. They are never silently replaced, so what
  is stored is what was sent, or nothing.
* **NUL** (``"\\x00"``) is *removed* (SQLite and MySQL drivers cut or reject text at it;
  it is never meaningful in chat text).
* **Invisible controls** are *removed* (:func:`strip_invisible`): bidi embeddings,
  overrides and isolates (U+202A–U+202E, U+2066–U+2069), which make stored text display
  in another order than it reads (``"\\u202egnp.exe"`` shows as ``exe.png``);
  zero-width characters (U+200B–U+200D, U+2060, U+FEFF), which make equal-looking texts
  differ; and C1 controls (U+0080–U+009F). This holds for every text field (memory
  texts, history, titles, summaries, tags, metadata, chat messages) and for resource
  file names. Other characters are kept (tabs and newlines too).
* **NFC**: text is normalised to Unicode NFC (``"e\\u0301"`` → ``"é"``), so equal-looking
  texts compare, deduplicate and search alike.
* **Size**: after the steps above, ``len(text)`` (code points) must not exceed the
  field's limit in :data:`LIMITS`; a longer value is refused (never cut) with
  ``ValueError("<field>: too long (N characters; the limit is M)")``.
* **PII**: :func:`redact` (``memory.safety.pii``) on every persisted text — memory text,
  history texts, tags, metadata string values and keys, thread titles and summaries,
  and chat messages unless ``MEMORY_KEEP_RAW_TRANSCRIPTS`` is set (:func:`keep_raw_transcripts`).
  A detector failure raises ``memory.safety.pii.PIIError`` (a ValueError): the write is refused.

Errors are ``ValueError`` whose one-line message starts with the field path, e.g.
``metadata.note: contains a lone surrogate (U+D800) at position 3`` or
``memories[301].importance: must be a number``; callers pass the path as ``field``.
"""
from __future__ import annotations

import json
import math
import re
import unicodedata
from datetime import datetime
from typing import Any

from memory.safety import pii
from memory.types import as_utc

#: Per-field size limits in characters (code points), applied after NFC and NUL removal.
LIMITS: dict[str, int] = {
    "message": 20_000,        # a chat message: MEMORY_MAX_MESSAGE_CHARS' default
    "reply": 100_000,         # an assistant reply (a model may answer at length)
    "text": 20_000,           # a memory's text (a raw add stores a message verbatim)
    "history": 20_000,        # a history event's old_text / new_text (memory texts)
    "metadata_value": 20_000,  # one string value inside metadata (e.g. "context")
    "metadata_key": 64,
    "tag": 64,
    "title": 200,             # a thread title
    "summary": 4_000,         # a thread summary (core cuts the model's summary there)
    "id": 128,                # a memory / thread / message id
}
#: Other metadata bounds: the whole object as compact JSON, nesting, items per container.
METADATA_MAX_JSON_CHARS = 65_536
METADATA_MAX_DEPTH = 5
METADATA_MAX_ITEMS = 1_000
#: At most this many tags per memory.
MAX_TAGS = 32
#: Importance scale (README: 1 trivia … 5 identity-level) and the default for None.
IMPORTANCE_MIN, IMPORTANCE_MAX, IMPORTANCE_DEFAULT = 1, 5, 3
_INT64 = 2 ** 63 - 1
_ISO_EXAMPLE = "ISO-8601, e.g. 2024-05-08T10:00:00+00:00"
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Removed from every stored text (see the module doc): bidi embeddings/overrides/isolates,
#: zero-width characters and the byte-order mark, C1 controls.
INVISIBLE = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A),
                                       *range(0x200B, 0x200E), 0x2060, 0xFEFF,
                                       *range(0x80, 0xA0)))
_INVISIBLE_TABLE = dict.fromkeys(map(ord, INVISIBLE))


def _limit(field: str, max_len: int | None) -> int | None:
    if max_len is not None:
        return max_len
    leaf = field.rsplit(".", 1)[-1].split("[", 1)[0]
    return LIMITS.get(leaf)


def strip_invisible(text: str) -> str:
    """Return ``text`` without the characters of :data:`INVISIBLE` (bidi controls,
    zero-width characters, BOM, C1 controls); everything else is kept. Takes a str."""
    return text.translate(_INVISIBLE_TABLE)


def clean_text(value: Any, field: str, max_len: int | None = None, *,
               required: bool = False, strip: bool = False) -> str:
    """Return ``value`` cleaned by the module's rules (str only, lone surrogates refused,
    NUL and invisible controls removed, NFC, size checked). No PII redaction (see
    :func:`redact`).

    ``field``: the path used in error messages (``"metadata.note"``); ``max_len``: the
    limit in characters, default ``LIMITS[<last part of field>]`` (no limit when the
    field is not in LIMITS). ``strip``: trim surrounding whitespace; ``required``: an
    empty result is a ValueError. Raises ValueError naming ``field``.
    """
    if not isinstance(value, str):
        raise ValueError(f"{field}: must be text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{field}: contains a lone surrogate (U+{ord(value[exc.start]):04X}) "
                         f"at position {exc.start}") from None
    text = unicodedata.normalize("NFC", strip_invisible(value.replace("\x00", "")))
    if strip:
        text = text.strip()
    if required and not text.strip():
        raise ValueError(f"{field}: is empty")
    limit = _limit(field, max_len)
    if limit is not None and len(text) > limit:
        raise ValueError(f"{field}: too long ({len(text):,} characters; the limit is {limit:,})")
    return text


def redact(text: str, field: str = "text") -> str:
    """Return ``text`` with PII replaced by placeholders (``memory.safety.pii.redact``: [PHONE],
    [EMAIL], [ID_NUMBER], [BANK_CARD]). The single entry point for redaction.

    Raises ``memory.safety.pii.PIIError`` (a ValueError) prefixed with ``field`` when a detector
    fails — fail closed: the caller must not store the text — and ValueError for a
    non-str.
    """
    if not isinstance(text, str):
        raise ValueError(f"{field}: must be text, got {type(text).__name__}")
    try:
        return pii.redact(text)[0]
    except pii.PIIError as exc:
        raise pii.PIIError(f"{field}: {exc}") from exc


def keep_raw_transcripts(config: Any) -> bool:
    """True when the deployment keeps chat messages unredacted
    (``MEMORY_KEEP_RAW_TRANSCRIPTS=true`` in ``memory.config.Config``; default False).
    Takes a Config (or any object; a missing attribute means False)."""
    return bool(getattr(config, "memory_keep_raw_transcripts", False))


def clean_memory_text(value: Any, field: str = "text") -> str:
    """A memory's text: cleaned, trimmed, non-empty, at most ``LIMITS["text"]``, PII
    redacted. Raises ValueError naming ``field``."""
    return redact(clean_text(value, field, LIMITS["text"], required=True, strip=True), field)


def clean_message(value: Any, field: str = "message", *, keep_raw: bool = False,
                  max_len: int | None = None) -> str:
    """A chat message's content: cleaned, trimmed, non-empty, at most ``max_len``
    (default ``LIMITS["message"]``; an assistant reply: ``LIMITS["reply"]``); PII
    redacted unless ``keep_raw`` (pass ``keep_raw_transcripts(config)``). Raises
    ValueError naming ``field``."""
    text = clean_text(value, field, max_len or LIMITS["message"], required=True, strip=True)
    return text if keep_raw else redact(text, field)


def clean_model_text(value: str) -> str:
    """Text generated by the language model (a streamed reply delta): NUL removed and
    lone surrogates replaced by U+FFFD, as a UTF-8 decoder does with
    ``errors="replace"``. Model output is decoded leniently because there is nobody
    to refuse it to; what is *stored* still goes through :func:`clean_message`."""
    return _SURROGATE.sub("\ufffd", value.replace("\x00", ""))


def clean_history_text(value: Any, field: str = "history.old_text") -> str | None:
    """A history event's ``old_text``/``new_text``: None stays None (an ADD has no old
    text, a DELETE no new one); a str is cleaned (``LIMITS["history"]``) and redacted.
    Raises ValueError naming ``field`` for any other type."""
    if value is None:
        return None
    return redact(clean_text(value, field, LIMITS["history"]), field)


def clean_title(value: Any, field: str = "title") -> str:
    """A thread title: cleaned, whitespace runs (newlines too) collapsed to one space,
    non-empty, at most ``LIMITS["title"]``, PII redacted (titles are shown in lists and
    exported even when raw transcripts are kept). Raises ValueError naming ``field``."""
    text = " ".join(clean_text(value, field, LIMITS["title"]).split())
    if not text:
        raise ValueError(f"{field}: is empty")
    return redact(text, field)


def clean_summary(value: Any, field: str = "summary") -> str:
    """A thread summary: cleaned (may be empty), at most ``LIMITS["summary"]``, PII
    redacted. Raises ValueError naming ``field``."""
    return redact(clean_text(value, field, LIMITS["summary"], strip=True), field)


def clamp_importance(value: Any, field: str = "importance",
                     default: int = IMPORTANCE_DEFAULT) -> int:
    """Return ``value`` as an int clamped to 1..5 (``99`` → 5, ``-5`` → 1, ``10**30`` →
    5, ``2.6`` → 3 by rounding half to even, ``"4"`` → 4); None gives ``default``.

    Raises ValueError naming ``field`` for a bool, NaN/infinity, or anything that is not
    a number or a numeric string (``"abc"``)."""
    if value is None:
        return default
    if isinstance(value, bool):
        raise ValueError(f"{field}: must be a number {IMPORTANCE_MIN}..{IMPORTANCE_MAX}, got bool")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"{field}: must be a number {IMPORTANCE_MIN}..{IMPORTANCE_MAX}, "
                             f"got {value[:20]!r}") from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{field}: must be a finite number")
        value = round(value)
    if not isinstance(value, int):
        raise ValueError(f"{field}: must be a number {IMPORTANCE_MIN}..{IMPORTANCE_MAX}, "
                         f"got {type(value).__name__}")
    return min(IMPORTANCE_MAX, max(IMPORTANCE_MIN, value))


def clean_tags(value: Any, field: str = "tags") -> list[str]:
    """Return ``value`` as a list of tags: None → []; otherwise a list/tuple of strings
    only (a bare string such as ``"abc"`` is refused, never split into letters). Each tag
    is cleaned, whitespace-collapsed and PII-redacted (at most ``LIMITS["tag"]``); empty
    tags are dropped and duplicates removed, order kept; at most ``MAX_TAGS``.
    Raises ValueError naming the field (``tags[2]: must be text, got int``)."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{field}: must be a list of strings, got {type(value).__name__}")
    out: list[str] = []
    for i, tag in enumerate(value):
        text = " ".join(clean_text(tag, f"{field}[{i}]", LIMITS["tag"]).split())
        text = redact(text, f"{field}[{i}]")
        if text and text not in out:
            out.append(text)
    if len(out) > MAX_TAGS:
        raise ValueError(f"{field}: too many tags ({len(out)}; the limit is {MAX_TAGS})")
    return out


def clean_metadata(value: Any, field: str = "metadata") -> dict:
    """Return ``value`` as a JSON-ready dict: None → {}; otherwise a JSON object (dict
    with str keys) whose values are str, int (64-bit), finite float, bool, None, lists
    or objects, nested at most ``METADATA_MAX_DEPTH`` deep with at most
    ``METADATA_MAX_ITEMS`` items per container. String values are cleaned (at most
    ``LIMITS["metadata_value"]``) and PII-redacted; keys are cleaned (at most
    ``LIMITS["metadata_key"]``) and redacted too; the compact JSON must fit in
    ``METADATA_MAX_JSON_CHARS``. Raises ValueError naming the path
    (``metadata.note: …``, ``metadata.items[3]: …``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{field}: must be a JSON object, got {type(value).__name__}")
    out = _clean_json(value, field, 1)
    size = len(json.dumps(out, ensure_ascii=False, separators=(",", ":")))
    if size > METADATA_MAX_JSON_CHARS:
        raise ValueError(f"{field}: too large ({size:,} characters as JSON; the limit is "
                         f"{METADATA_MAX_JSON_CHARS:,})")
    return out


def _clean_json(value: Any, path: str, depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return redact(clean_text(value, path, LIMITS["metadata_value"]), path)
    if isinstance(value, int):
        if abs(value) > _INT64:
            raise ValueError(f"{path}: number out of range (64-bit integers only)")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: must be a finite number")
        return value
    if isinstance(value, (dict, list, tuple)):
        if depth > METADATA_MAX_DEPTH:
            raise ValueError(f"{path}: nested too deep (the limit is {METADATA_MAX_DEPTH} levels)")
        if len(value) > METADATA_MAX_ITEMS:
            raise ValueError(f"{path}: too many items ({len(value):,}; the limit is "
                             f"{METADATA_MAX_ITEMS:,})")
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ValueError(f"{path}: keys must be text, got {type(key).__name__}")
                name = redact(clean_text(key, f"{path} key", LIMITS["metadata_key"],
                                         required=True), f"{path} key")
                if name in out:
                    raise ValueError(f"{path}.{name}: duplicate key")
                out[name] = _clean_json(item, f"{path}.{name}", depth + 1)
            return out
        return [_clean_json(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    raise ValueError(f"{path}: not a JSON value ({type(value).__name__})")


def clean_id(value: Any, field: str = "id") -> str:
    """An id (memory, thread, message): a non-empty str of at most ``LIMITS["id"]``
    printable characters, taken as is (no trimming, no normalisation: ids are compared
    byte for byte). Raises ValueError naming ``field`` (``threads[0].id: must be text,
    got dict``)."""
    if not isinstance(value, str):
        raise ValueError(f"{field}: must be text, got {type(value).__name__}")
    if not value or len(value) > LIMITS["id"]:
        raise ValueError(f"{field}: must be 1..{LIMITS['id']} characters")
    if not value.isprintable():
        raise ValueError(f"{field}: must hold printable characters only")
    clean_text(value, field)  # lone surrogates
    return value


def clean_datetime(value: Any, field: str = "created_at") -> datetime | None:
    """A timestamp: None stays None; a datetime or an ISO-8601 string becomes an aware
    UTC datetime (``memory.types.as_utc``). Raises ValueError naming ``field`` for
    anything else (``threads[0].created_at: not an ISO date``)."""
    if value is None:
        return None
    if not isinstance(value, (str, datetime)):
        raise ValueError(f"{field}: not an ISO date (got {type(value).__name__}; {_ISO_EXAMPLE})")
    try:
        return as_utc(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{field}: not an ISO date ({_ISO_EXAMPLE})") from None
