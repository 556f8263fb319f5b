"""Settings page: health, configuration (secrets masked), storage, and backup / restore of the current user.

The public API has no database-wide backup; a backup here is the current user's full
export (``mem.export``: memories, history, profile, chats), and a restore is
``mem.import_`` of such a file, optionally replacing the user's memories in the same
transaction. A whole-database copy would expose every user's data, so it is left to the
operator (copy ``memory.db`` while the app is stopped)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

import webui as ui
from memory.llm.errors import hide_paths
from webui.login import login_required


def config_frame(mem: Any) -> pd.DataFrame:
    """Return the effective configuration (``mem.config.masked()``) as a two-column
    table ``setting, value`` (values as text; secrets are ``***``)."""
    masked = mem.config.masked()
    return pd.DataFrame([{"setting": k, "value": "" if v is None else str(v)}
                         for k, v in sorted(masked.items())], columns=["setting", "value"])


def main() -> None:
    """Render the page."""
    mem = ui.get_memory()
    user = ui.page_header(mem, "Settings & status", ":material/settings:")
    shared = login_required(mem)  # MEMORY_WEB_LOGIN: signed-in users are not the operator

    st.subheader("Health")
    fresh = st.button("Check again", key="health_refresh", icon=":material/refresh:")
    report = ui.health(mem, fresh=fresh)
    names = ui.model_names(mem)
    cols = st.columns(3)
    for col, (key, label) in zip(cols, (("llm", "LLM"), ("embedder", "Embedder"),
                                        ("store", "Store"))):
        info = report.get(key) or {}
        ok = bool(info.get("ok"))
        lat = info.get("latency_ms")
        with col.container(border=True, key=f"health_{key}"):
            st.markdown(f"{':green[●]' if ok else ':red[●]'} **{label}** "
                        f"{':green-badge[ok]' if ok else ':red-badge[down]'}")
            st.caption(f"`{names[key]}`")
            st.metric("Latency", f"{lat:.0f} ms" if isinstance(lat, (int, float)) else "—",
                      label_visibility="visible")
            detail = str(info.get("detail") or "")
            if shared:  # with web login on, users do not learn the server's file layout
                detail = hide_paths(detail)
            if detail:
                (st.caption if ok else st.error)(detail[:300])
    st.caption("Results are reused for 30 s; “Check again” re-tests now.")

    st.subheader("Storage")
    data_dir = Path(mem.config.memory_data_dir).resolve()
    c1, c2, c3 = st.columns(3)
    c1.metric("Data directory size", ui.human_bytes(ui.dir_size(data_dir)))
    c2.metric("Store", names["store"])
    c3.metric("Your memories", mem.count(user))
    if not shared:
        st.code(str(data_dir), language=None)

    st.subheader("Configuration")
    if shared:
        st.caption("This Memory Chat is shared (MEMORY_WEB_LOGIN): the server's "
                   "configuration and paths are shown to its operator only.")
    else:
        st.caption("Effective settings from the environment and `.env` (documented in "
                   "`.env.example`). Secrets are masked.")
        st.dataframe(config_frame(mem), hide_index=True, width="stretch",
                     column_config={"setting": st.column_config.TextColumn("Setting", width="medium"),
                                    "value": st.column_config.TextColumn("Value", width="large")})

    st.subheader("Backup & restore")
    st.caption(f"A backup holds everything of **{ui.md_escape(user)}**: memories with their "
               "history, the profile and the chats. Other users are never included.")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")
    st.download_button("Download backup", key="backup_dl", icon=":material/backup:",
                       data=lambda: ui.export_json_text(mem.export(user)),
                       file_name=f"memory-chat-backup-{user}-{stamp}.json",
                       mime="application/json", on_click="ignore")
    up = st.file_uploader("Restore from a backup file", type=["json"], key="restore_file")
    replace = st.checkbox("Delete my current memories first (exact restore)",
                          key="restore_replace",
                          help="Otherwise the backup is merged: memories you already have "
                               "are skipped.")
    if st.button("Restore", key="restore_go", type="primary", disabled=up is None,
                 icon=":material/settings_backup_restore:"):
        restore(mem, user, up.getvalue(), replace)
    result = st.session_state.get("restore_result")
    if result:
        st.success(f"Restored **{result.get('imported', 0)}** memories"
                   + (f" (after deleting {result['deleted']})" if result.get("deleted") else "")
                   + f", skipped **{result.get('skipped', 0)}** duplicates"
                   + (f", restored **{result['threads']}** chats" if result.get("threads") else "")
                   + ".", icon=":material/check_circle:")


def restore(mem: Any, user: str, raw: bytes, replace: bool) -> None:
    """Validate a backup file and import it into ``user``; with ``replace`` the user's
    memories are deleted and the backup written in ONE transaction (``mem.import_(...,
    replace=True)``), so a failure leaves everything as it was."""
    try:
        data = ui.parse_export(raw, max_chars=mem.config.memory_max_message_chars)
        result = mem.import_(data, user, replace=replace)
    except ValueError as exc:
        st.error(f"Nothing was restored: {exc}", icon=":material/block:")
        return
    st.session_state["restore_result"] = result


with ui.store_errors_shown():
    main()
