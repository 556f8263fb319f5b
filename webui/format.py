"""Formatting and table helpers of the web app: times, badges, safe Markdown, sizes, table edits, export files."""
from __future__ import annotations

import io
import json
import os
import re
from datetime import date, datetime, time, timezone
from typing import Any, Iterable


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """Return a short relative time such as ``just now``, ``5 min ago``, ``3 h ago``,
    ``2 d ago`` or an ISO date for anything older than 30 days ('' for None)."""
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    secs = (now - when).total_seconds()
    if secs < 45:
        return "just now"
    if secs < 3600:
        return f"{int(secs // 60) or 1} min ago"
    if secs < 86400:
        return f"{int(secs // 3600)} h ago"
    if secs < 30 * 86400:
        return f"{int(secs // 86400)} d ago"
    return when.date().isoformat()


#: badge colour per change event
EVENT_COLORS = {"ADD": "green", "UPDATE": "orange", "END": "violet", "FORGET": "red",
                "DELETE": "red", "UNDO": "gray", "RESTORE": "blue", "NONE": "gray"}
EVENT_LABELS = {"ADD": "added", "UPDATE": "updated", "END": "no longer current",
                "FORGET": "forgotten", "DELETE": "deleted", "UNDO": "undone",
                "RESTORE": "restored", "NONE": "kept"}
#: the events a turn's card lists (NONE is left out)
SHOWN_EVENTS = ("ADD", "UPDATE", "END", "FORGET", "DELETE", "UNDO", "RESTORE")
#: badge colour per memory type
TYPE_COLORS = {"profile": "violet", "preference": "blue", "fact": "green", "task": "orange",
               "summary": "gray", "episode": "yellow"}


def md_escape(text: str) -> str:
    """Escape Markdown control characters so memory text is shown literally."""
    return re.sub(r"([\\`*_{}\[\]<>()#+\-!|~$:])", r"\\\1", str(text))


def profile_markdown(text: str) -> str:
    """Render the engine's profile text (sections such as ``About:`` followed by
    ``- item`` lines) as safe Markdown: bold section titles and bulleted items whose
    text is escaped. Other lines are shown escaped, one per line."""
    out: list[str] = []
    for raw in str(text or "").splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith(("- ", "* ", "• ")):
            out.append(f"- {md_escape(line[2:].strip())}")
        elif line.endswith((":", "：")) and len(line) <= 40:
            out.append(("\n" if out else "") + f"**{md_escape(line[:-1])}**")
        else:
            out.append(md_escape(line) + "  ")
    return "\n".join(out)


def event_badge(event: str) -> str:
    """Return the Markdown badge of a change event, e.g. ``:green-badge[added]``."""
    event = (event or "NONE").upper()
    return f":{EVENT_COLORS.get(event, 'gray')}-badge[{EVENT_LABELS.get(event, event.lower())}]"


def type_badge(mtype: str) -> str:
    """Return the Markdown badge of a memory type, e.g. ``:blue-badge[preference]``."""
    return f":{TYPE_COLORS.get(mtype, 'gray')}-badge[{md_escape(mtype)}]"


def importance_stars(importance: int | None) -> str:
    """Return ``★★★☆☆`` for an importance from 1 to 5 (clamped)."""
    n = max(1, min(5, int(importance or 3)))
    return "★" * n + "☆" * (5 - n)


def changes_summary(changes: Iterable[Any]) -> dict[str, int]:
    """Count change events in :data:`SHOWN_EVENTS` order: ``{"ADD": n, "UPDATE": n,
    "END": n, …}`` (NONE and unknown events ignored)."""
    out = dict.fromkeys(SHOWN_EVENTS, 0)
    for ch in changes:
        ev = str(getattr(ch, "event", "") or "").upper()
        if ev in out:
            out[ev] += 1
    return out


def dir_size(path: str | os.PathLike[str]) -> int:
    """Return the total size in bytes of the regular files under ``path`` (0 if
    missing). Symlinks are not followed."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def human_bytes(n: int) -> str:
    """Return ``n`` bytes as ``12.3 KB`` / ``4.5 MB`` (powers of 1024)."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"



def date_range(value: Any) -> tuple[datetime | None, datetime | None]:
    """Turn a ``st.date_input`` range value (``()``, ``(d,)`` or ``(d0, d1)``) into
    aware UTC ``(since, until)`` covering whole days; ``(None, None)`` when empty."""
    days = [d for d in (value if isinstance(value, (list, tuple)) else [value])
            if isinstance(d, date)]
    if not days:
        return None, None
    since = datetime.combine(days[0], time.min, tzinfo=timezone.utc)
    until = datetime.combine(days[-1], time.max, tzinfo=timezone.utc)
    return since, until


def parse_tags(value: Any) -> list[str]:
    """Split a comma-separated tags cell into clean, unique tags (at most 8, each cut
    to 40 characters)."""
    out: list[str] = []
    for tag in str(value or "").split(","):
        tag = " ".join(tag.split())[:40]
        if tag and tag not in out:
            out.append(tag)
    return out[:8]


def apply_edits(mem: Any, user: str, edits: dict[str, Any], ids: list[str],
                originals: dict[str, dict[str, Any]]) -> tuple[int, int, list[str]]:
    """Apply a ``st.data_editor`` edit state to the user's memories.

    ``edits["edited_rows"]`` maps a row number to ``{column: new value}``; ``ids`` gives
    the memory id of each row; ``originals`` the shown ``{"text", "type"}`` per id.
    Changes of text/type/importance/tags call ``mem.update(..., actor="user")`` (so the
    history records a user edit); a ticked ``delete`` calls ``mem.delete``. Returns
    ``(updated, deleted, errors)``; an invalid edit (e.g. empty text) is reported in
    ``errors`` and does not stop the others.
    """
    updated = deleted = 0
    errors: list[str] = []
    for row, change in (edits.get("edited_rows") or {}).items():
        try:
            mid = ids[int(row)]
        except (ValueError, IndexError):
            continue
        before = originals.get(mid, {})
        label = str(before.get("text", mid))[:40]
        try:
            if change.get("delete"):
                deleted += bool(mem.delete(mid, user))
                continue
            fields: dict[str, Any] = {}
            text = None
            if "text" in change and str(change["text"] or "").strip() != before.get("text"):
                text = str(change["text"] or "")
            if "type" in change and change["type"] and change["type"] != before.get("type"):
                fields["type"] = change["type"]
            if "importance" in change and change["importance"] is not None:
                fields["importance"] = int(change["importance"])
            if "tags" in change:
                fields["tags"] = parse_tags(change["tags"])
            if text is None and not fields:
                continue
            if mem.update(mid, text, user, actor="user", **fields) is not None:
                updated += 1
            else:
                errors.append(f"“{label}”: it no longer exists")
        except ValueError as exc:
            errors.append(f"“{label}”: {exc}")
    return updated, deleted, errors


def export_json_text(export: dict[str, Any]) -> str:
    """Return a ``mem.export`` dict as indented UTF-8 JSON text."""
    return json.dumps(export, ensure_ascii=False, indent=2)


#: columns of the CSV export, in order
CSV_COLUMNS = ["id", "text", "type", "importance", "tags", "source", "created_at",
               "updated_at", "access_count", "metadata"]


def export_csv_text(export: dict[str, Any]) -> str:
    """Return the memories of a ``mem.export`` dict as CSV text: one row per memory,
    columns ``CSV_COLUMNS``, tags joined by ``;``, metadata as JSON."""
    import pandas as pd

    df = pd.DataFrame(export.get("memories") or [], columns=CSV_COLUMNS)
    if not df.empty:
        df["tags"] = df["tags"].map(lambda t: ";".join(t or []))
        df["metadata"] = df["metadata"].map(lambda m: json.dumps(m or {}, ensure_ascii=False))
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()


