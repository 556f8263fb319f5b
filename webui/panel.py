"""The Chat page's live memory panel: profile card, what the last turn changed, the memories, "Clear all"; and the background extraction jobs it waits for."""
from __future__ import annotations

from typing import Any

import streamlit as st

from memory.chat.images import image_path_of_user
from webui.format import (EVENT_LABELS, SHOWN_EVENTS, ago, changes_summary, event_badge,
                          importance_stars, md_escape, profile_markdown, type_badge)
from webui.session import flash, flash_outcome

#: memories shown in the live panel (the Memories page shows everything)
PANEL_LIMIT = 50
#: pixel height of the scrolling memory list
PANEL_LIST_HEIGHT = 380


def _delete_memory(mem: Any, user: str, memory_id: str) -> None:
    flash_outcome(lambda: mem.delete(memory_id, user), "Could not delete the memory",
                  "Memory deleted.", "That memory was already gone.")


def extract_changes(turn: Any) -> tuple[list[Any], str | None]:
    """Run in the executor: ``turn.changes()`` plus this turn's extraction error
    (``ChatTurn.changes_error``; changes() never raises for LLM trouble).
    Returns ``(changes, error_or_None)``."""
    changes = turn.changes()
    return changes, turn.changes_error


def _collect(job: dict[str, Any], user: str) -> None:
    """Store a finished extraction job's outcome as "what the last turn changed"."""
    try:
        changes, error = job["future"].result()
        last = {"user_id": job["user_id"], "error": error,
                "turn_id": getattr(changes, "turn_id", None),
                "changes": [c.to_dict() if hasattr(c, "to_dict") else dict(c)
                            for c in (changes or [])]}
    except Exception as exc:  # noqa: BLE001 - shown in the panel
        last = {"user_id": job["user_id"], "changes": [],
                "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    if job["user_id"] == user:
        st.session_state["last_changes"] = last


@st.fragment(run_every="1s")
def _poll_extraction(user: str) -> None:
    """While extraction jobs are pending, check them every second; when one finishes,
    record its changes and rerun the whole app so the panel shows them. Not rendered
    (so not polling) when nothing is pending."""
    jobs = st.session_state.get("pending", [])
    finished = [j for j in jobs if j["future"].done()]
    if finished:
        st.session_state["pending"] = [j for j in jobs if j not in finished]
        for job in finished:
            _collect(job, user)
        st.rerun()
    if any(j["user_id"] == user for j in jobs):
        st.markdown(":orange-badge[:material/sync: Updating memories from your last "
                    "message…]")


def _ask_clear() -> None:
    st.session_state["confirm_clear"] = True


def _cancel_clear() -> None:
    st.session_state["confirm_clear"] = False


def _do_clear(mem: Any, user: str) -> None:
    st.session_state["confirm_clear"] = False
    try:
        deleted = mem.delete_all(user)
    except Exception as exc:  # noqa: BLE001 - shown to the user
        flash(f"Could not delete your memories: {exc}", ":material/warning:")
        return
    st.session_state.pop("last_changes", None)
    flash(f"Deleted {deleted} {'memory' if deleted == 1 else 'memories'}.", ":material/delete:")


@st.dialog("Clear all my memories?", on_dismiss=_cancel_clear)
def _confirm_clear(mem: Any, user: str) -> None:
    """Confirmation dialog. State-driven (``confirm_clear``) so the buttons work as
    plain callbacks whether the dialog reruns alone or with the whole app."""
    if not st.session_state.get("confirm_clear"):
        st.rerun()          # answered: close the dialog
    n = mem.count(user)
    st.markdown(f"This permanently deletes **all {n} memories** and the profile of user "
                f"**{md_escape(user)}**. Your chats are kept; other users are not "
                "affected.")
    c1, c2 = st.columns(2)
    c1.button("Yes, delete them all", type="primary", key="clear_yes", width="stretch",
              on_click=_do_clear, args=(mem, user))
    c2.button("Cancel", key="clear_no", width="stretch", on_click=_cancel_clear)


def _undo_last(mem: Any, user: str, turn_id: str) -> None:
    """Undo every change of the last message (``Memory.undo``) and show what came back."""
    try:
        undone = mem.undo(user, turn_id)
    except Exception as exc:  # noqa: BLE001 - UndoError (already undone, changed since) or a store failure: shown
        flash(f"Could not undo: {exc}", ":material/warning:")
        return
    st.session_state["last_changes"] = {"user_id": user, "error": None, "turn_id": None,
                                        "undone": True,
                                        "changes": [c.to_dict() for c in undone]}
    flash(f"Undone: {len(undone)} {'change' if len(undone) == 1 else 'changes'} taken back.",
          ":material/undo:")


def render_changes(mem: Any, user: str, last: dict[str, Any]) -> dict[str, str]:
    """Show what the last turn changed, with an Undo button while it can be undone;
    return ``{memory_id: event}`` to highlight."""
    highlight: dict[str, str] = {}
    with st.container(border=True, key="last_changes_box"):
        st.markdown("**Undo took back**" if last.get("undone") else "**Last message changed**")
        if last.get("error"):
            st.warning(f"Memories were not updated: {last['error']}", icon=":material/warning:")
            return highlight
        real = [c for c in last.get("changes", []) if c.get("event") in SHOWN_EVENTS]
        if not real:
            st.caption("Nothing new to remember from the last message.")
            return highlight
        counts = changes_summary(type("C", (), {"event": c["event"]}) for c in real)
        st.caption(" · ".join(f"{n} {EVENT_LABELS[k]}" for k, n in counts.items() if n))
        for c in real:
            ev = c["event"]
            text = md_escape(c.get("text") or "")
            if ev in ("UPDATE", "UNDO") and c.get("old_text"):
                body = f"~~{md_escape(c['old_text'])}~~" + (f" → {text}" if text else "")
            elif ev in ("END", "FORGET", "DELETE"):
                body = f"~~{text}~~"
            else:
                body = text
            st.markdown(f"{event_badge(ev)} {body}")
            if c.get("id"):
                highlight[c["id"]] = ev
        if last.get("turn_id"):
            st.button("Undo", key="undo_last", icon=":material/undo:", type="secondary",
                      on_click=_undo_last, args=(mem, user, last["turn_id"]),
                      help="Take back every change this message made to your memories "
                           "(earlier values and forgotten memories come back).")
    return highlight


def render_panel(mem: Any, user: str) -> None:
    """The right-hand panel: profile, last changes, the memories (newest first) with a
    delete button each, the total and "Clear all my memories"."""
    st.subheader(":material/psychology: What I remember")
    if st.session_state.get("pending"):
        _poll_extraction(user)

    with st.container(border=True, key="profile_card"):
        st.markdown("**Profile**")
        profile = mem.profile(user)
        if profile:
            st.markdown(profile_markdown(profile))
        else:
            st.caption("Nothing yet — tell me about yourself.")

    last = st.session_state.get("last_changes")
    highlight = render_changes(mem, user, last) if last and last.get("user_id") == user else {}

    total = mem.count(user)
    st.markdown(f"**{total}** {'memory' if total == 1 else 'memories'}",
                help="Newest first. The Memories page can search, edit and export them.")
    if st.session_state.get("confirm_clear"):
        if total:
            _confirm_clear(mem, user)
        else:
            st.session_state["confirm_clear"] = False

    records = mem.list(user, limit=PANEL_LIMIT)
    if not records:
        st.caption("No memories yet.")
    else:
        box = st.container(height=PANEL_LIST_HEIGHT if len(records) > 4 else "content",
                           border=False, key="memory_list")
        with box:
            for r in records:
                with st.container(border=True, key=f"mem_{r.id}"):
                    a, b = st.columns([0.88, 0.12], vertical_alignment="center")
                    mark = ""
                    if r.id in highlight:
                        mark = " " + {"ADD": ":green-badge[new]",
                                      "UPDATE": ":orange-badge[updated]"}.get(highlight[r.id], "")
                    a.markdown(f"{type_badge(r.type)}{mark} {md_escape(r.text)}")
                    img = image_path_of_user(mem.config.memory_data_dir, user,
                                                (r.metadata or {}).get("image_path"))
                    meta = f"{importance_stars(r.importance)} · {ago(r.created_at)}"
                    if img:
                        meta += " · :material/image: image"
                    a.caption(meta)
                    b.button("", key=f"del_{r.id}", icon=":material/delete:", type="tertiary",
                             help="Delete this memory", on_click=_delete_memory,
                             args=(mem, user, r.id))
            if total > len(records):
                st.caption(f"Showing the newest {len(records)} of {total}. See the Memories "
                           "page for all of them.")
    st.button("Clear all my memories", key="clear_all", icon=":material/delete_sweep:",
              disabled=total == 0, width="stretch", on_click=_ask_clear,
              help=f"Delete every memory and the profile of {user}; chats are kept.")

