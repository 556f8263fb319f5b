"""Streamlit session glue shared by ``app.py`` and ``pages/*``: the engine, the current user, health, the sidebar.

Everything that touches memories goes through the public ``Memory`` API (API.md). Here:

* one ``Memory`` per process (``st.cache_resource``) and a small thread pool for
  memory extraction running after a reply (``get_memory`` / ``get_executor``);
* the current user (``st.session_state["user_id"]``), the user switcher and the list of
  recently used ids kept in ``<MEMORY_DATA_DIR>/recent_users.json``;
* the health status line (``mem.health()`` cached ~30 s) and the sidebar head.
"""
from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import streamlit as st

from memory.llm.errors import hide_paths
from memory.safety.users import check_user_id
from webui.format import md_escape

#: session_state key of the current user id (shared by every page)
USER_KEY = "user_id"
#: session_state key of the open chat thread id (None: a new chat not created yet)
THREAD_KEY = "thread_id"
#: user id used when nobody has been chosen yet
DEFAULT_USER = "me"
#: how many user ids the sidebar remembers
RECENT_USERS_MAX = 12
#: how long a health check result is reused, in seconds
HEALTH_TTL_S = 30


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
                "requirements (`pip install -r reqs.txt`) and reload.")
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
    """Return the user id typed by a person if the engine's one rule
    (``memory.safety.users.check_user_id``, API.md) accepts it, NFC-normalised; raise
    ValueError with the rule's one-line reason otherwise (``" bob"`` is refused, not
    trimmed)."""
    return check_user_id(raw)


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
                      help="Any name up to 128 characters, e.g. John Smith; press Enter.")
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
            if getattr(mem.config, "memory_web_login", False):  # shared: no server paths
                detail = hide_paths(detail)
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
    "Chat", not "app") and the user box — or, with ``MEMORY_WEB_LOGIN`` on, the sign-in
    form (``webui/login.py``). Returns the current user id."""
    with st.sidebar:
        st.markdown("### :material/psychology: Memory Chat")
        for script, label, icon in PAGES:
            st.page_link(script, label=label, icon=icon)
        st.divider()
    from webui import login

    if login.login_required(mem):
        uid = login.signed_in_user(mem)   # stops the page at the sign-in form until then
        if st.session_state.get(USER_KEY) != uid:
            switch_user(mem, uid)
        login.sign_out_button()
        return uid
    uid = user_switcher(mem)
    login.unauthenticated_note()
    return uid


def page_header(mem: Any, title: str, icon: str = "") -> str:
    """Common top of the secondary pages: sidebar (navigation, user box, status), a
    title and a caption naming the current user. Returns the current user id."""
    uid = sidebar_top(mem)
    sidebar_status(mem)
    st.title(f"{icon} {title}".strip())
    st.caption(f"Showing data of user **{md_escape(uid)}** only.")
    return uid




def flash(text: str, icon: str = ":material/check_circle:") -> None:
    """Queue a toast shown on the next run of the page (callbacks cannot draw)."""
    st.session_state.setdefault("_flash", []).append((text, icon))


def flash_outcome(action: Callable[[], Any], failed: str, done: str, gone: str,
                  icon: str = ":material/delete:", gone_icon: str | None = None) -> bool | None:
    """Run ``action()`` (a ``Memory`` call that returns truthy when it changed something,
    falsy when the row was already gone) from a widget callback and queue its toast:
    ``"{failed}: {error}"`` with a warning icon if it raises (the error is shown, not
    re-raised), ``done`` with ``icon`` if truthy, else ``gone`` with ``gone_icon``
    (default ``icon``). Returns ``bool(result)``, or None when the action raised."""
    try:
        ok = bool(action())
    except Exception as exc:  # noqa: BLE001 - shown to the user
        flash(f"{failed}: {exc}", ":material/warning:")
        return None
    flash(done if ok else gone, icon if ok else (gone_icon or icon))
    return ok
