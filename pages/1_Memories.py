"""Memories page: search, filter, edit, delete, history, export and import of the current user's memories.

Only the public ``Memory`` API is used."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import streamlit as st

import webui as ui
from memory.types import MEMORY_TYPES

#: rows per page of the table
PAGE_SIZE = 100


def records_frame(rows: list[tuple[Any, float | None]]) -> pd.DataFrame:
    """Return the editable table for ``(MemoryRecord, score_or_None)`` rows."""
    return pd.DataFrame([{
        "text": r.text,
        "type": r.type,
        "importance": int(r.importance),
        "tags": ", ".join(r.tags),
        "created": r.created_at,
        "updated": r.updated_at,
        "recalled": int(r.access_count),
        "score": score,
        "delete": False,
        "id": r.id,
    } for r, score in rows], columns=["text", "type", "importance", "tags", "created",
                                      "updated", "recalled", "score", "delete", "id"])


def _save(mem: Any, user: str, key: str) -> None:
    ids = st.session_state.get("mem_editor_ids", [])
    originals = st.session_state.get("mem_editor_orig", {})
    edits = st.session_state.get(key) or {}
    updated, deleted, errors = ui.apply_edits(mem, user, edits, ids, originals)
    st.session_state["mem_editor_nonce"] = st.session_state.get("mem_editor_nonce", 0) + 1
    st.session_state["mem_flash"] = (updated, deleted, errors)


def _discard() -> None:
    st.session_state["mem_editor_nonce"] = st.session_state.get("mem_editor_nonce", 0) + 1


def _delete_one(mem: Any, user: str, memory_id: str) -> None:
    ok = mem.delete(memory_id, user)
    st.session_state["mem_flash"] = (0, int(bool(ok)), [] if ok else ["already deleted"])


def main() -> None:
    """Render the page."""
    mem = ui.get_memory()
    user = ui.page_header(mem, "Memories", ":material/database:")

    flash = st.session_state.pop("mem_flash", None)
    if flash:
        updated, deleted, errors = flash
        if updated or deleted:
            st.toast(f"Saved: {updated} updated, {deleted} deleted.", icon=":material/check_circle:")
        for err in errors:
            st.error(f"Not saved — {err}")

    tab_browse, tab_past, tab_files, tab_io = st.tabs([":material/table: Browse & edit",
                                                       ":material/history: Earlier values",
                                                       ":material/description: Files",
                                                       ":material/swap_vert: Export / import"])
    with tab_browse:
        browse(mem, user)
    with tab_past:
        earlier(mem, user)
    with tab_files:
        files(mem, user)
    with tab_io:
        export_import(mem, user)


def browse(mem: Any, user: str) -> None:
    """Search/filter bar, the editable table and the per-memory history."""
    c1, c2, c3 = st.columns([0.5, 0.25, 0.25], vertical_alignment="bottom")
    query = c1.text_input("Search", key="mem_search", placeholder="Words or meaning, e.g. “pets”",
                          help="Hybrid search: meaning (vectors) + keywords (BM25).")
    types = c2.multiselect("Types", list(MEMORY_TYPES), key="mem_types",
                           placeholder="All types")
    since, until = ui.date_range(c3.date_input("Created between", value=[], key="mem_dates",
                                            format="YYYY-MM-DD"))
    sources = {"all": "Chat and files", "chat": "Chat only"}
    sources.update({f"resource:{r.id}": f"File: {r.filename}" for r in mem.resources(user)})
    scope = st.selectbox("From", list(sources), format_func=sources.get, key="mem_scope",
                         help="Only memories learned from the chat, or from one file.")

    rows: list[tuple[Any, float | None]] = []
    more = False
    if scope.startswith("resource:") and not query.strip():
        recs = mem.resource_memories(user, scope.split(":", 1)[1])
        rows = [(r, None) for r in recs if (not types or r.type in types)][:PAGE_SIZE]
        caption = f"{len(rows)} memories from {sources[scope][6:]}"
    elif query.strip():
        try:
            res = mem.search(query, user, limit=PAGE_SIZE, scope=scope,
                             filters={"types": types or None, "since": since, "until": until})
            rows = [(hit.record, round(float(hit.score), 4)) for hit in res.memories]
        except ValueError as exc:
            st.error(str(exc))
        caption = f"{len(rows)} best matches for “{query.strip()}”"
    else:
        page = int(st.session_state.get("mem_page", 1))
        recs = mem.list(user, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE,
                        types=types or None, since=since, until=until)
        more = len(recs) > PAGE_SIZE
        rows = [(r, None) for r in recs[:PAGE_SIZE]
                if scope == "all" or r.source != "resource"]
        total = mem.count(user, types or None)
        caption = (f"{total} memories" + (f" · page {page}" if page > 1 or more else "")
                   + (" · filtered by date" if since else ""))
    st.caption(caption)

    if not rows:
        st.info("No memories match." if (query.strip() or types or since) else
                "No memories yet — chat a little and they will appear here.", icon=":material/database:")
        if not query.strip() and int(st.session_state.get("mem_page", 1)) > 1:
            st.number_input("Page", min_value=1, step=1, key="mem_page")
        return

    ids = [r.id for r, _ in rows]
    st.session_state["mem_editor_ids"] = ids
    st.session_state["mem_editor_orig"] = {r.id: {"text": r.text, "type": r.type}
                                           for r, _ in rows}
    key = f"mem_editor_{st.session_state.get('mem_editor_nonce', 0)}"
    df = records_frame(rows)
    st.data_editor(
        df, key=key, hide_index=True, num_rows="fixed", width="stretch",
        height=min(38 + 35 * len(df), 520),
        disabled=["created", "updated", "recalled", "score", "id"],
        column_order=["text", "type", "importance", "tags", "created", "recalled",
                      *(["score"] if query.strip() else []), "delete"],
        column_config={
            "text": st.column_config.TextColumn("Memory", width="large", required=True,
                                                max_chars=mem.config.memory_max_message_chars),
            "type": st.column_config.SelectboxColumn("Type", options=list(MEMORY_TYPES),
                                                     required=True, width="small"),
            "importance": st.column_config.NumberColumn("Importance", min_value=1,
                                                        max_value=5, step=1, width=100,
                                                        help="1 = trivia … 5 = identity"),
            "tags": st.column_config.TextColumn("Tags", help="Comma-separated"),
            "created": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD HH:mm"),
            "recalled": st.column_config.NumberColumn("Recalled", help="Times given to the model"),
            "score": st.column_config.NumberColumn("Score", format="%.4f"),
            "delete": st.column_config.CheckboxColumn("Delete", width="small"),
        })
    pending = st.session_state.get(key) or {}
    n_edits = len(pending.get("edited_rows") or {})
    b1, b2, b3 = st.columns([0.2, 0.2, 0.6], vertical_alignment="center")
    b1.button(f"Save changes ({n_edits})" if n_edits else "Save changes", type="primary",
              key="mem_save", icon=":material/save:", disabled=not n_edits,
              on_click=_save, args=(mem, user, key), width="stretch")
    b2.button("Discard", key="mem_discard", on_click=_discard, disabled=not n_edits,
              width="stretch")
    if more or int(st.session_state.get("mem_page", 1)) > 1:
        b3.number_input("Page", min_value=1, step=1, key="mem_page",
                        label_visibility="collapsed", help="Page of the table")

    st.divider()
    st.subheader("History of a memory")
    by_id = {r.id: r for r, _ in rows}
    if st.session_state.get("history_pick") not in by_id:
        st.session_state.pop("history_pick", None)
    pick = st.selectbox("Memory", ids, key="history_pick",
                        format_func=lambda i: by_id[i].text[:90] + ("…" if len(by_id[i].text) > 90 else ""))
    if pick:
        rec = by_id[pick]
        events = mem.history(pick, user)
        if events:
            st.dataframe(pd.DataFrame([{"when": e.at, "event": e.event, "by": e.who,
                                        "before": e.old_text or "", "after": e.new_text or ""}
                                       for e in events]),
                         hide_index=True, width="stretch",
                         column_config={
                             "when": st.column_config.DatetimeColumn(
                                 "When", format="YYYY-MM-DD HH:mm:ss"),
                             "event": st.column_config.TextColumn("Event", width="small"),
                             "by": st.column_config.TextColumn("By", width="small",
                                                               help="user, llm, import, or the file it came from"),
                             "before": st.column_config.TextColumn("Before", width="large"),
                             "after": st.column_config.TextColumn("After", width="large")})
        else:
            st.caption("No recorded history for this memory.")
        img = ui.image_path_of_user(mem.config.memory_data_dir, user,
                                    (rec.metadata or {}).get("image_path"))
        if img:
            st.image(str(img), width=200, caption="Linked image")
        with st.expander("Details"):
            st.json({k: v for k, v in rec.to_dict().items() if k != "user_id"})
        st.button("Delete this memory", key="mem_delete_one", icon=":material/delete:",
                  on_click=_delete_one, args=(mem, user, pick))


def _erase(mem: Any, user: str, memory_id: str) -> None:
    ok = mem.delete(memory_id, user)
    st.session_state["mem_flash"] = (0, 1 if ok else 0, [] if ok else ["it was already gone"])


def earlier(mem: Any, user: str) -> None:
    """What is no longer current: earlier values and ended memories (the user's past,
    used to answer questions about it), and memories forgotten on request, which the
    chat's Undo can still bring back until they are erased for good."""
    past = mem.past(user, limit=500)
    st.caption("When something you said changes, the earlier value is kept here with its "
               "period instead of being deleted, so questions about the past can be "
               "answered. Use **Undo** under the chat's “Last message changed” to take a "
               "change back.")
    if past:
        st.dataframe(pd.DataFrame([{
            "memory": r.text, "status": r.status,
            "from": r.valid_from or r.created_at, "until": r.invalid_at,
            "why": r.invalid_reason or ""} for r in past]), hide_index=True, width="stretch",
            key="past_table", column_config={
                "memory": st.column_config.TextColumn("Memory", width="large"),
                "status": st.column_config.TextColumn(
                    "Status", width="small",
                    help="superseded: a newer value replaced it; ended: no longer holds"),
                "from": st.column_config.DatetimeColumn("From", format="YYYY-MM-DD"),
                "until": st.column_config.DatetimeColumn("Until", format="YYYY-MM-DD"),
                "why": st.column_config.TextColumn(
                    "Decided by", width="small",
                    help="llm (the model), rule:<name> (a rule of the write path), user, "
                         "or resource:<file>")})
    else:
        st.caption("No earlier values yet.")
    gone = mem.past(user, limit=200, forgotten=True)
    st.subheader("Forgotten on request")
    hours = mem.config.memory_forget_retention_hours
    st.caption(f"Out of search and replies already; erased for good {hours:g} h after "
               "you asked (Undo can bring them back until then).")
    if not gone:
        st.caption("Nothing forgotten recently.")
    for r in gone:
        a, b = st.columns([0.8, 0.2], vertical_alignment="center")
        a.markdown(f"~~{ui.md_escape(r.text)}~~ · {ui.ago(r.invalid_at)}")
        b.button("Erase now", key=f"erase_{r.id}", icon=":material/delete_forever:",
                 on_click=_erase, args=(mem, user, r.id))


def upload_limit_mb(mem: Any) -> float:
    """The largest file the Files tab takes, in MB: ``MEMORY_MAX_UPLOAD_MB``, or
    Streamlit's ``server.maxUploadSize`` (.streamlit/config.toml, 20 like the default
    of ``MEMORY_MAX_UPLOAD_MB``) when that is lower, since Streamlit refuses a larger
    upload before the page sees it."""
    return min(float(mem.config.memory_max_upload_mb), float(st.get_option("server.maxUploadSize")))


def files(mem: Any, user: str) -> None:
    """Upload a file to learn from (with progress), and the list of files with their
    status, memory counts and a delete button."""
    limit = upload_limit_mb(mem)
    st.caption("A CV, a travel plan, a saved web page, a photo: the assistant remembers what "
               f"the file says about you. Up to {limit:g} MB; text, "
               "Markdown, HTML, PDF, DOCX, images (with a vision model), audio (with a "
               "transcription model).")
    up = st.file_uploader("File", key="resource_file", max_upload_size=max(1, math.ceil(limit)))
    if st.button("Learn from this file", key="resource_go", type="primary", disabled=up is None,
                 icon=":material/upload_file:"):
        bar = st.progress(0.0, text="Reading the file…")

        def progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"Learning: part {done} of {total}")
        try:
            res = mem.add_resource(up.getvalue(), user, filename=up.name, mime=up.type,
                                   progress=progress)
        except ValueError as exc:
            bar.empty()
            st.error(f"Not stored: {exc}", icon=":material/block:")
        else:
            bar.progress(1.0, text="Done")
            if res.duplicate and res.status == "pending":
                st.info(f"{res.filename} is being read right now (another upload of it "
                        "started first); its memories appear here when it is done.")
            elif res.duplicate:
                st.info(f"You already gave me {res.filename}; nothing new to learn.")
            elif res.status == "failed":
                st.error(f"{res.filename}: {res.error}", icon=":material/error:")
            else:
                st.success(f"Learned {res.memory_count or 0} memories from {res.filename}.",
                           icon=":material/check_circle:")
    items = mem.resources(user)
    if not items:
        st.info("No files yet.", icon=":material/description:")
        return
    st.dataframe(pd.DataFrame([{
        "file": r.filename, "type": r.mime, "size (KB)": round(r.size / 1024, 1),
        "status": r.status + (f": {r.error}" if r.error else ""),
        "memories": r.memory_count or 0, "added": r.created_at} for r in items]),
        hide_index=True, width="stretch",
        column_config={"added": st.column_config.DatetimeColumn("Added", format="YYYY-MM-DD HH:mm")})
    names = {r.id: r.filename for r in items}
    pick = st.selectbox("File", list(names), format_func=names.get, key="resource_pick")
    if st.button("Delete this file and what was learned from it", key="resource_delete",
                 icon=":material/delete:"):
        mem.delete_resource(user, pick)
        st.rerun()


def export_import(mem: Any, user: str) -> None:
    """Download buttons (JSON export, CSV) and the JSON import."""
    st.subheader("Export")
    st.caption(f"Everything of **{ui.md_escape(user)}**: memories, their history, the "
               "profile and the chats (JSON), or just the memories (CSV).")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")
    c1, c2, _ = st.columns([0.25, 0.25, 0.5])
    c1.download_button("Export JSON", data=lambda: ui.export_json_text(mem.export(user)),
                       file_name=f"memory-chat-{user}-{stamp}.json", mime="application/json",
                       icon=":material/download:", on_click="ignore", key="dl_json",
                       width="stretch")
    c2.download_button("Export CSV", data=lambda: ui.export_csv_text(mem.export(user)),
                       file_name=f"memory-chat-{user}-{stamp}.csv", mime="text/csv",
                       icon=":material/table:", on_click="ignore", key="dl_csv",
                       width="stretch")

    st.subheader("Import")
    st.caption("A Memory Chat JSON export (from this or another user). Memories you already "
               "have (same id or same text) are skipped; missing chats are restored.")
    up = st.file_uploader("Export file", type=["json"], key="import_file")
    if st.button("Import", key="import_go", type="primary", disabled=up is None,
                 icon=":material/upload:"):
        try:
            data = ui.parse_export(up.getvalue(), max_chars=mem.config.memory_max_message_chars)
            result = mem.import_(data, user)
        except ValueError as exc:
            st.error(f"Nothing was imported: {exc}", icon=":material/block:")
        else:
            st.session_state["import_result"] = result
    result = st.session_state.get("import_result")
    if result:
        st.success(f"Imported **{result.get('imported', 0)}** memories, skipped "
                   f"**{result.get('skipped', 0)}** duplicates"
                   + (f", restored **{result['threads']}** chats" if result.get("threads") else "")
                   + ".", icon=":material/check_circle:")


with ui.store_errors_shown():
    main()
