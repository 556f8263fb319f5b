"""Streamlit glue shared by ``app.py`` and ``pages/*``: UI state only, no SQL.

Everything that touches memories goes through the public ``Memory`` API (API.md).
This module holds what the pages have in common:

* one ``Memory`` per process (``st.cache_resource``) and a small thread pool for
  memory extraction running after a reply (``get_memory`` / ``get_executor``);
* the current user (``st.session_state["user_id"]``), the user switcher and the list of
  recently used ids kept in ``<MEMORY_DATA_DIR>/recent_users.json``;
* the health status line (``mem.health()`` cached ~30 s);
* small formatting helpers (relative times, change badges) and image checks.
"""
from __future__ import annotations

import io
import json
import os
import re
import tempfile
import unicodedata
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import streamlit as st

#: session_state key of the current user id (shared by every page)
USER_KEY = "user_id"
#: session_state key of the open chat thread id (None: a new chat not created yet)
THREAD_KEY = "thread_id"
#: user id used when nobody has been chosen yet
DEFAULT_USER = "me"
#: how many user ids the sidebar remembers
RECENT_USERS_MAX = 12
#: largest accepted image upload, in bytes (10 MiB); also set in .streamlit/config.toml
MAX_IMAGE_BYTES = 10 * 1024 * 1024
#: accepted image extensions (chat input ``file_type``)
IMAGE_TYPES = ("png", "jpg", "jpeg", "gif", "webp")
#: how long a health check result is reused, in seconds
HEALTH_TTL_S = 30

_USER_ID_RE = re.compile(r"^[\w.@+-]{1,64}$")  # \w is Unicode-aware: 张三 is fine

# Magic numbers of the accepted image formats (first bytes of the file).
_IMAGE_MAGIC = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpg": (b"\xff\xd8\xff",),
    "jpeg": (b"\xff\xd8\xff",),
    "gif": (b"GIF87a", b"GIF89a"),
    "webp": (b"RIFF",),
}
_IMAGE_MIME = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
               "gif": "image/gif", "webp": "image/webp"}


# ---------------------------------------------------------------------------------------
# Engine + executor (one per process)
# ---------------------------------------------------------------------------------------
def _close_memory(mem: Any) -> None:
    try:
        mem.close()
    except Exception:  # noqa: BLE001 - closing at cache release must never raise
        pass


@st.cache_resource(show_spinner="Opening the memory store…", on_release=_close_memory)
def _cached_memory() -> Any:
    from memory import Memory

    return Memory.from_env()


@st.cache_resource(on_release=lambda ex: ex.shutdown(wait=False, cancel_futures=True))
def get_executor() -> ThreadPoolExecutor:
    """Return the process-wide pool that runs memory extraction (``turn.changes()``)
    after a reply, so the next message is never blocked by it. Two workers: the
    machine has 2 cores and extraction is mostly waiting on the LLM."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="memory-extract")


def init_error_message(exc: BaseException) -> str:
    """Turn an exception raised while building ``Memory`` into a short Markdown
    message that says what is wrong and how to fix it (no traceback)."""
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    if name == "ConfigError":
        return (f"**Configuration error:** {text}\n\nFix this variable in `.env` (every "
                "variable is documented in `.env.example`) or in the environment, then reload "
                "the page.")
    if name == "EmbedderMismatchError":
        return (f"**The memory store was built with another embedder:** {text}\n\nRun "
                "`python main.py reembed` to re-embed the stored memories with the configured "
                "model, or set `EMBEDDER` back to the model the store was built with.")
    if name == "StoreError":
        return (f"**Could not open the memory store:** {text}\n\nCheck that `MEMORY_DATA_DIR` "
                "is writable and not locked by another process, or check the TiDB settings "
                "(`TIDB_HOST`, `DATABASE_URL`…).")
    if isinstance(exc, ImportError):
        return (f"**A required package is missing:** {text}\n\nInstall the project's "
                "requirements (`pip install -r requirements.txt`) and reload.")
    return f"**Memory Chat could not start** ({name}): {text}"


def get_memory() -> Any:
    """Return the process-wide ``Memory`` (``Memory.from_env()``, cached).

    On failure (ConfigError, StoreError, embedder mismatch, missing package…) show a
    clear ``st.error`` with the fix and stop the script; the failure is not cached, so
    fixing the configuration and reloading works without restarting the server.
    """
    try:
        return _cached_memory()
    except Exception as exc:  # noqa: BLE001 - shown to the user, not swallowed
        st.error(init_error_message(exc), icon=":material/block:")
        st.stop()


@contextmanager
def store_errors_shown() -> Iterator[None]:
    """Run a page body; a ``StoreError`` (locked database, lost TiDB connection…)
    becomes a clear ``st.error`` instead of a traceback. Streamlit's own control-flow
    exceptions (rerun, stop) pass through untouched."""
    from memory.store.base import StoreError

    try:
        yield
    except StoreError as exc:
        st.error(f"**The memory store is not available right now:** {exc}\n\nNothing was "
                 "lost. Reload the page to try again.", icon=":material/error:")


def reset_caches() -> None:
    """Drop the cached ``Memory``, executor and health results (tests, restore)."""
    _cached_memory.clear()
    get_executor.clear()
    _cached_health.clear()


# ---------------------------------------------------------------------------------------
# Current user + recent users
# ---------------------------------------------------------------------------------------
def normalize_user_id(raw: str) -> str:
    """Return a clean user id from user input: NFC-normalised and stripped.

    Raises ValueError with a readable message when it is empty, longer than 64
    characters or contains anything but letters, digits and ``. _ @ + -``.
    """
    value = unicodedata.normalize("NFC", str(raw or "")).strip()
    if not value:
        raise ValueError("User id is empty.")
    if len(value) > 64:
        raise ValueError("User id is too long (64 characters at most).")
    if not _USER_ID_RE.match(value):
        raise ValueError("User id may contain only letters, digits and . _ @ + - "
                         "(no spaces).")
    return value


def _recent_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / "recent_users.json"


def load_recent_users(data_dir: str | os.PathLike[str]) -> list[str]:
    """Return the recently used user ids (most recent first) from
    ``<data_dir>/recent_users.json``; [] if the file is missing or unreadable."""
    try:
        data = json.loads(_recent_path(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    out: list[str] = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, str):
            continue
        try:
            uid = normalize_user_id(item)
        except ValueError:
            continue
        if uid not in out:
            out.append(uid)
    return out[:RECENT_USERS_MAX]


def remember_user(data_dir: str | os.PathLike[str], user_id: str) -> list[str]:
    """Move ``user_id`` to the front of the recent users file (atomic write) and
    return the new list. I/O errors are ignored: the list is a convenience only."""
    users = [user_id] + [u for u in load_recent_users(data_dir) if u != user_id]
    users = users[:RECENT_USERS_MAX]
    path = _recent_path(data_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".recent_users.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(users, fh, ensure_ascii=False)
        os.replace(tmp, path)
    except OSError:
        pass
    return users


def forget_user(data_dir: str | os.PathLike[str], user_id: str) -> list[str]:
    """Remove ``user_id`` from the recent users file and return the new list."""
    users = [u for u in load_recent_users(data_dir) if u != user_id]
    path = _recent_path(data_dir)
    try:
        path.write_text(json.dumps(users, ensure_ascii=False), encoding="utf-8")
    except OSError:
        pass
    return users


def current_user(mem: Any) -> str:
    """Return the current user id from session state, initialising it on first use
    to the most recently used id (or ``DEFAULT_USER``)."""
    uid = st.session_state.get(USER_KEY)
    if not uid:
        recent = load_recent_users(mem.config.memory_data_dir)
        uid = recent[0] if recent else DEFAULT_USER
        st.session_state[USER_KEY] = uid
        remember_user(mem.config.memory_data_dir, uid)
    return uid


#: per-user session keys that must not survive a user switch
_PER_USER_KEYS = ("thread_id", "last_changes", "last_error", "used_by_msg",
                  "mem_search", "mem_page", "history_pick", "import_result",
                  "restore_result", "confirm_clear")


def switch_user(mem: Any, user_id: str) -> None:
    """Make ``user_id`` the current user: forget the open thread, the last turn's
    changes and every other per-user UI state, and remember the id."""
    st.session_state[USER_KEY] = user_id
    for key in _PER_USER_KEYS:
        st.session_state.pop(key, None)
    remember_user(mem.config.memory_data_dir, user_id)


def _on_pick_user(mem: Any) -> None:
    picked = st.session_state.get("_user_pick")
    if picked and picked != st.session_state.get(USER_KEY):
        switch_user(mem, picked)


def _on_new_user(mem: Any) -> None:
    raw = st.session_state.get("_user_new", "")
    try:
        uid = normalize_user_id(raw)
    except ValueError as exc:
        st.session_state["_user_error"] = str(exc)
        return
    st.session_state.pop("_user_error", None)
    st.session_state["_user_new"] = ""
    if uid != st.session_state.get(USER_KEY):
        switch_user(mem, uid)


def user_switcher(mem: Any) -> str:
    """Render the sidebar user box (recent users + "switch or create by id") and
    return the current user id."""
    uid = current_user(mem)
    recent = load_recent_users(mem.config.memory_data_dir)
    if uid not in recent:
        recent = [uid] + recent
    with st.sidebar:
        st.session_state["_user_pick"] = uid
        st.selectbox(":material/person: User", recent, key="_user_pick", on_change=_on_pick_user,
                     args=(mem,), help="Everything you see is scoped to this user.")
        st.text_input("Switch to / create user id", key="_user_new",
                      placeholder="e.g. alice", on_change=_on_new_user, args=(mem,),
                      help="Letters, digits and . _ @ + - ; press Enter.")
        if st.session_state.get("_user_error"):
            st.error(st.session_state["_user_error"])
    return st.session_state[USER_KEY]


# ---------------------------------------------------------------------------------------
# Health / status line
# ---------------------------------------------------------------------------------------
@st.cache_data(ttl=HEALTH_TTL_S, show_spinner=False)
def _cached_health(_mem: Any, nonce: int = 0) -> dict[str, Any]:
    return _mem.health()


def health(mem: Any, fresh: bool = False) -> dict[str, Any]:
    """Return ``mem.health()``, reused for ``HEALTH_TTL_S`` seconds unless ``fresh``.
    A failing health call becomes ``{"error": {"ok": False, "detail": ...}}``."""
    try:
        if fresh:
            _cached_health.clear()
        return _cached_health(mem)
    except Exception as exc:  # noqa: BLE001 - the status line must not crash the page
        return {"error": {"ok": False, "detail": f"health check failed: {exc}"}}


def model_names(mem: Any) -> dict[str, str]:
    """Return display names for the status line: ``{"llm", "embedder", "store"}``."""
    cfg = mem.config
    llm = getattr(getattr(mem, "llm", None), "model", None) or cfg.llm_model or (
        cfg.local_llm_model + " (local)" if cfg.uses_local_llm else "auto")
    emb = getattr(getattr(mem, "embedder", None), "id", None) or cfg.embedder
    store = getattr(getattr(mem, "store", None), "name", None) or cfg.store_kind
    return {"llm": str(llm), "embedder": str(emb), "store": str(store)}


def status_lines(mem: Any, report: dict[str, Any]) -> list[str]:
    """Return one Markdown line per component, e.g. ``:green[●] **LLM** qwen…``."""
    names = model_names(mem)
    labels = {"llm": "LLM", "embedder": "Embedder", "store": "Store"}
    lines = []
    for key, label in labels.items():
        info = report.get(key) or {}
        ok = bool(info.get("ok"))
        dot = ":green[●]" if ok else ":red[●]"
        lat = info.get("latency_ms")
        lat_s = f" · {lat:.0f} ms" if isinstance(lat, (int, float)) else ""
        line = f"{dot} **{label}** `{names[key]}`{lat_s}"
        if not ok:
            detail = str(info.get("detail") or "unreachable")
            line += f"  \n:red[{detail[:160]}]"
        lines.append(line)
    if "error" in report:
        lines.append(f":red[●] {report['error'].get('detail')}")
    return lines


def sidebar_status(mem: Any) -> None:
    """Render the small LLM / embedder / store status block in the sidebar."""
    with st.sidebar:
        st.caption("Status")
        st.markdown("  \n".join(status_lines(mem, health(mem))))


#: the app's pages for the sidebar navigation: (script, label, Material icon)
PAGES = (("app.py", "Chat", ":material/chat:"),
         ("pages/1_Memories.py", "Memories", ":material/database:"),
         ("pages/2_Insights.py", "Insights", ":material/insights:"),
         ("pages/3_Settings.py", "Settings", ":material/settings:"))


def sidebar_top(mem: Any) -> str:
    """Render the sidebar head shared by every page: the navigation links (Streamlit's
    own page list is hidden in .streamlit/config.toml so the main page is called
    "Chat", not "app") and the user box. Returns the current user id."""
    with st.sidebar:
        st.markdown("### :material/psychology: Memory Chat")
        for script, label, icon in PAGES:
            st.page_link(script, label=label, icon=icon)
        st.divider()
    return user_switcher(mem)


def page_header(mem: Any, title: str, icon: str = "") -> str:
    """Common top of the secondary pages: sidebar (navigation, user box, status), a
    title and a caption naming the current user. Returns the current user id."""
    uid = sidebar_top(mem)
    sidebar_status(mem)
    st.title(f"{icon} {title}".strip())
    st.caption(f"Showing data of user **{md_escape(uid)}** only.")
    return uid


# ---------------------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------------------
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
EVENT_COLORS = {"ADD": "green", "UPDATE": "orange", "DELETE": "red", "NONE": "gray"}
EVENT_LABELS = {"ADD": "added", "UPDATE": "updated", "DELETE": "deleted", "NONE": "kept"}
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
    """Count change events: ``{"ADD": n, "UPDATE": n, "DELETE": n}`` (NONE ignored)."""
    out = {"ADD": 0, "UPDATE": 0, "DELETE": 0}
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


# ---------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------
def image_ext(name: str) -> str:
    """Return the lower-case extension of a file name without the dot ('' if none)."""
    return Path(name or "").suffix.lower().lstrip(".")


def validate_image(name: str, data: bytes, max_bytes: int = MAX_IMAGE_BYTES) -> str:
    """Check an uploaded image and return its extension (``png``, ``jpg``…).

    Raises ValueError with a user-facing message when the file is empty, larger than
    ``max_bytes``, not one of ``IMAGE_TYPES`` or when its content does not start with
    the magic number of that format.
    """
    ext = image_ext(name)
    if ext not in IMAGE_TYPES:
        raise ValueError(f"“{name}” is not a supported image (use "
                         f"{', '.join(IMAGE_TYPES)}).")
    if not data:
        raise ValueError(f"“{name}” is empty.")
    if len(data) > max_bytes:
        raise ValueError(f"“{name}” is {human_bytes(len(data))}; images are limited to "
                         f"{human_bytes(max_bytes)}.")
    if not any(data.startswith(m) for m in _IMAGE_MAGIC[ext]) or (
            ext == "webp" and data[8:12] != b"WEBP"):
        raise ValueError(f"“{name}” does not look like a {ext.upper()} image.")
    return ext


def image_mime(ext: str) -> str:
    """Return the MIME type of an accepted image extension."""
    return _IMAGE_MIME.get(ext, "application/octet-stream")


def save_image(data_dir: str | os.PathLike[str], user_id: str, data: bytes, ext: str) -> Path:
    """Write an image to ``<data_dir>/images/<user_id>/<uuid>.<ext>`` and return the
    path. ``user_id`` must already be a valid id (``normalize_user_id``)."""
    folder = Path(data_dir) / "images" / normalize_user_id(user_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.{ext}"
    path.write_bytes(data)
    return path


def image_path_of_user(data_dir: str | os.PathLike[str], user_id: str, raw: str | None) -> Path | None:
    """Return ``raw`` as a Path if it is an existing image stored for ``user_id``
    under ``<data_dir>/images/<user_id>/``; otherwise None (never show another
    user's file)."""
    if not raw:
        return None
    try:
        path = Path(raw).resolve()
        base = (Path(data_dir) / "images" / user_id).resolve()
        if path.is_file() and base in path.parents:
            return path
    except (OSError, ValueError):
        return None
    return None


# ---------------------------------------------------------------------------------------
# Memories page: filters, table edits, export / import files
# ---------------------------------------------------------------------------------------
#: largest accepted import / restore file, in bytes (50 MiB)
MAX_IMPORT_BYTES = 50 * 1024 * 1024


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


def parse_export_file(raw: bytes, max_bytes: int = MAX_IMPORT_BYTES) -> dict[str, Any]:
    """Decode and check an uploaded Memory Chat export/backup file.

    Returns the parsed dict. Raises ValueError naming the first problem: file larger
    than ``max_bytes``, not UTF-8, not JSON, not an object with a ``memories`` list,
    or a memory without a ``text`` string, with an unknown ``type`` or a bad date.
    Nothing should be written (or deleted) before this passes.
    """
    from memory.types import MEMORY_TYPES, MemoryRecord

    if len(raw) > max_bytes:
        raise ValueError(f"the file is {human_bytes(len(raw))}; the limit is "
                         f"{human_bytes(max_bytes)}")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"the file is not valid JSON (line {exc.lineno}, column "
                         f"{exc.colno}: {exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("memories"), list):
        raise ValueError("the file is not a Memory Chat export (no 'memories' list)")
    for i, item in enumerate(data["memories"]):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise ValueError(f"memories[{i}] needs a 'text' string")
        if item.get("type") is not None and item["type"] not in MEMORY_TYPES:
            raise ValueError(f"memories[{i}] has unknown type {item['type']!r}")
        try:
            MemoryRecord.from_dict(item, user_id="check")
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"memories[{i}] is malformed ({exc})") from None
    return data
