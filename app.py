"""Memory Chat — the Streamlit app: chat on the left, the live memory panel on the right.

Run with ``streamlit run app.py``. Everything goes through the public ``Memory`` API
(API.md); the shared UI glue lives in ``memory/ui_state.py``.

Flow of one message: the reply is streamed with ``st.write_stream`` over
``mem.chat(...)``; memory extraction (``turn.changes()``) is then submitted to a
background thread pool so the next message is never blocked, and a fragment polling
once a second (only while something is pending) refreshes the panel when it is done.
"""
from __future__ import annotations

from typing import Any, Iterator

import streamlit as st

from memory import ui_state as ui

st.set_page_config(page_title="Memory Chat", page_icon=":material/psychology:", layout="wide")

#: memories shown in the live panel (the Memories page shows everything)
PANEL_LIMIT = 50
#: threads listed in the sidebar
SIDEBAR_THREADS = 40
#: pixel height of the scrolling chat and memory areas
CHAT_HEIGHT = 560
PANEL_LIST_HEIGHT = 380
#: how an image description is appended to the user's message (sent to the model and
#: stored in the thread, so memory extraction sees it too)
IMAGE_MARK = "[Attached image: "
#: what the vision model is asked about an attached image (its answer is sent with the
#: user's text, so the chat model and memory extraction see it)
IMAGE_PROMPT = ("Describe this image in one to three sentences so it can be remembered "
                "later: what or who is shown, any visible names or text, notable details. "
                "Be factual; do not guess names that are not visible.")


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def serialize_used(used: Any) -> dict[str, Any]:
    """Return the JSON-ready part of a ``SearchResult`` shown under a reply:
    ``{"profile": str, "memories": [{"id", "text", "type", "score", "importance"}]}``."""
    if used is None:
        return {"profile": "", "memories": []}
    return {
        "profile": getattr(used, "profile", "") or "",
        "memories": [{"id": m.id, "text": m.text, "type": m.type,
                      "score": float(getattr(m, "score", 0.0) or 0.0),
                      "importance": getattr(m, "importance", 3)}
                     for m in (getattr(used, "memories", None) or [])],
    }


def used_for_message(msg: Any) -> dict[str, Any] | None:
    """Return what was given to the model for an assistant message, as
    ``{"profile", "memories": [{"id", "text", "type"?, "score"?}]}``.

    Prefers the detailed copy recorded in session state right after the reply (types
    and scores); otherwise rebuilds it from the message metadata the engine stores
    (``used`` ids, ``used_texts``, ``profile``). None when neither is known.
    """
    detailed = st.session_state.get("used_by_msg", {}).get(msg.id)
    if detailed is not None:
        return detailed
    meta = getattr(msg, "metadata", None) or {}
    if not isinstance(meta.get("used"), list):
        return None
    ids = [str(i) for i in meta["used"]]
    texts = meta.get("used_texts") if isinstance(meta.get("used_texts"), list) else []
    return {"profile": str(meta.get("profile") or ""),
            "memories": [{"id": i, "text": str(texts[n]) if n < len(texts) else i}
                         for n, i in enumerate(ids)]}


def _short(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    line = " ".join(str(text or "").split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _flash(text: str, icon: str = ":material/check_circle:") -> None:
    st.session_state.setdefault("_flash", []).append((text, icon))


# ---------------------------------------------------------------------------------------
# callbacks (run before the script reruns)
# ---------------------------------------------------------------------------------------
def _new_chat() -> None:
    st.session_state[ui.THREAD_KEY] = None
    st.session_state.pop("last_error", None)


def _open_thread(thread_id: str) -> None:
    st.session_state[ui.THREAD_KEY] = thread_id
    st.session_state.pop("last_error", None)


def _rename_thread(mem: Any, user: str, thread_id: str) -> None:
    title = " ".join(str(st.session_state.get(f"title_{thread_id}", "")).split())
    if not title:
        _flash("A chat title cannot be empty.", ":material/warning:")
        return
    try:
        ok = mem.rename_thread(user, thread_id, title[:80])
    except Exception as exc:  # noqa: BLE001 - shown to the user
        _flash(f"Could not rename the chat: {exc}", ":material/warning:")
        return
    _flash("Chat renamed." if ok else "That chat no longer exists.",
           ":material/check_circle:" if ok else ":material/warning:")


def _delete_thread(mem: Any, user: str, thread_id: str) -> None:
    try:
        ok = mem.delete_thread(user, thread_id)
    except Exception as exc:  # noqa: BLE001
        _flash(f"Could not delete the chat: {exc}", ":material/warning:")
        return
    if st.session_state.get(ui.THREAD_KEY) == thread_id:
        st.session_state[ui.THREAD_KEY] = None
    _flash("Chat deleted." if ok else "That chat no longer exists.", ":material/delete:")


def _delete_memory(mem: Any, user: str, memory_id: str) -> None:
    try:
        ok = mem.delete(memory_id, user)
    except Exception as exc:  # noqa: BLE001
        _flash(f"Could not delete the memory: {exc}", ":material/warning:")
        return
    _flash("Memory deleted." if ok else "That memory was already gone.", ":material/delete:")


def _restore_input(text: str) -> None:
    st.session_state["chat_input"] = text


# ---------------------------------------------------------------------------------------
# sidebar
# ---------------------------------------------------------------------------------------
def sidebar_threads(mem: Any, user: str) -> list[Any]:
    """Render "New chat" and the user's threads (newest first); return the threads."""
    current = st.session_state.get(ui.THREAD_KEY)
    threads = mem.threads(user)
    with st.sidebar:
        st.button("New chat", icon=":material/edit_square:", on_click=_new_chat,
                  key="new_chat", width="stretch",
                  type="primary" if current is None else "secondary")
        if threads:
            st.caption("Chats")
        for t in threads[:SIDEBAR_THREADS]:
            title = t.title or "Untitled"
            short = _short(title, 30)
            c1, c2 = st.columns([0.8, 0.2], gap="small", vertical_alignment="center")
            c1.button(short, key=f"open_{t.id}", on_click=_open_thread, args=(t.id,),
                      type="primary" if t.id == current else "tertiary", width="stretch",
                      help=f"{title} — updated {ui.ago(t.updated_at)}")
            with c2.popover("", icon=":material/more_horiz:", key=f"pop_{t.id}"):
                st.text_input("Title", value=title, key=f"title_{t.id}", max_chars=80)
                st.button("Rename", key=f"ren_{t.id}", icon=":material/edit:",
                          on_click=_rename_thread, args=(mem, user, t.id), width="stretch")
                st.button("Delete chat", key=f"delt_{t.id}", icon=":material/delete:",
                          on_click=_delete_thread, args=(mem, user, t.id), width="stretch")
        if len(threads) > SIDEBAR_THREADS:
            st.caption(f"{len(threads) - SIDEBAR_THREADS} older chats not shown.")
    return threads


# ---------------------------------------------------------------------------------------
# live memory panel
# ---------------------------------------------------------------------------------------
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
        _flash(f"Could not delete your memories: {exc}", ":material/warning:")
        return
    st.session_state.pop("last_changes", None)
    _flash(f"Deleted {deleted} {'memory' if deleted == 1 else 'memories'}.", ":material/delete:")


@st.dialog("Clear all my memories?", on_dismiss=_cancel_clear)
def _confirm_clear(mem: Any, user: str) -> None:
    """Confirmation dialog. State-driven (``confirm_clear``) so the buttons work as
    plain callbacks whether the dialog reruns alone or with the whole app."""
    if not st.session_state.get("confirm_clear"):
        st.rerun()          # answered: close the dialog
    n = mem.count(user)
    st.markdown(f"This permanently deletes **all {n} memories** and the profile of user "
                f"**{ui.md_escape(user)}**. Your chats are kept; other users are not "
                "affected.")
    c1, c2 = st.columns(2)
    c1.button("Yes, delete them all", type="primary", key="clear_yes", width="stretch",
              on_click=_do_clear, args=(mem, user))
    c2.button("Cancel", key="clear_no", width="stretch", on_click=_cancel_clear)


def render_changes(last: dict[str, Any]) -> dict[str, str]:
    """Show what the last turn changed; return ``{memory_id: event}`` to highlight."""
    highlight: dict[str, str] = {}
    with st.container(border=True, key="last_changes_box"):
        st.markdown("**Last message changed**")
        if last.get("error"):
            st.warning(f"Memories were not updated: {last['error']}", icon=":material/warning:")
            return highlight
        real = [c for c in last.get("changes", []) if c.get("event") in ("ADD", "UPDATE", "DELETE")]
        if not real:
            st.caption("Nothing new to remember from the last message.")
            return highlight
        counts = ui.changes_summary(type("C", (), {"event": c["event"]}) for c in real)
        st.caption(" · ".join(f"{n} {ui.EVENT_LABELS[k]}" for k, n in counts.items() if n))
        for c in real:
            ev = c["event"]
            text = ui.md_escape(c.get("text") or "")
            if ev == "UPDATE" and c.get("old_text"):
                body = f"~~{ui.md_escape(c['old_text'])}~~ → {text}"
            elif ev == "DELETE":
                body = f"~~{text}~~"
            else:
                body = text
            st.markdown(f"{ui.event_badge(ev)} {body}")
            if c.get("id"):
                highlight[c["id"]] = ev
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
            st.markdown(ui.profile_markdown(profile))
        else:
            st.caption("Nothing yet — tell me about yourself.")

    last = st.session_state.get("last_changes")
    highlight = render_changes(last) if last and last.get("user_id") == user else {}

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
                    a.markdown(f"{ui.type_badge(r.type)}{mark} {ui.md_escape(r.text)}")
                    img = ui.image_path_of_user(mem.config.memory_data_dir, user,
                                                (r.metadata or {}).get("image_path"))
                    meta = f"{ui.importance_stars(r.importance)} · {ui.ago(r.created_at)}"
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


# ---------------------------------------------------------------------------------------
# chat
# ---------------------------------------------------------------------------------------
def render_message(mem: Any, user: str, msg: Any) -> None:
    """Draw one stored message; under an assistant reply, the collapsed list of the
    memories (and profile) that were given to the model."""
    role = "user" if msg.role == "user" else "assistant"
    with st.chat_message(role):
        img = ui.image_path_of_user(mem.config.memory_data_dir, user,
                                    (msg.metadata or {}).get("image_path"))
        text, seen = msg.content, ""
        if img and IMAGE_MARK in text:
            text, _, seen = text.partition(IMAGE_MARK)
            seen = seen.rstrip().removesuffix("]")
        if text.strip():
            st.markdown(text)
        if img:
            st.image(str(img), width=240)
            if seen:
                st.caption(f":material/visibility: {ui.md_escape(seen)}")
        if role == "assistant":
            used = used_for_message(msg)
            if used is not None:
                mems = used.get("memories") or []
                with st.expander(f"Memories used ({len(mems)})", expanded=False,
                                 icon=":material/psychology:"):
                    if used.get("profile"):
                        st.caption("Profile")
                        st.markdown(ui.profile_markdown(used["profile"]))
                    if mems:
                        st.caption("Memories (most relevant first)")
                    for m in mems:
                        badge = ui.type_badge(m["type"]) + " " if m.get("type") else ""
                        st.markdown(f"{badge}{ui.md_escape(m.get('text', ''))}")
                    if not mems and not used.get("profile"):
                        st.caption("No memories were given to the model for this reply.")


def _stream(turn: Any, errors: list[str]) -> Iterator[str]:
    """Yield the reply tokens of a ChatTurn; an exception ends the stream and is
    recorded in ``errors`` (one line) instead of breaking the page."""
    try:
        for token in turn:
            if token:
                yield token
    except Exception as exc:  # noqa: BLE001 - shown in the chat
        errors.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _fail_before_send(text: str, thread_id: str | None, error: str) -> None:
    """Nothing was sent: show ``error`` and put ``text`` back into the input box."""
    st.session_state["last_error"] = {"thread_id": thread_id, "text": text,
                                      "error": error, "restored": True}
    if text:
        st.session_state["_restore_input"] = text
    st.rerun()


def _prepare_image(mem: Any, user: str, file: Any, text: str,
                   thread_id: str | None) -> tuple[str | None, str | None, bytes | None]:
    """Validate, describe and store an attached image.

    Returns ``(description, image_path, data)``; all None when the image cannot be
    used but the text can still be sent (a warning is queued). Reruns with an error
    (text put back) when the image is invalid.
    """
    data = file.getvalue()
    try:
        ext = ui.validate_image(file.name, data)
    except ValueError as exc:
        _fail_before_send(text, thread_id, str(exc))
    if not mem.config.vision_model:
        msg = ("I can't look at images: no vision model is configured. Set `VISION_MODEL` "
               "(an OpenAI-compatible vision model, e.g. `gpt-4o-mini`) in `.env` to let me "
               "describe and remember pictures.")
        if not text:
            _fail_before_send(text, thread_id, msg)
        _flash(msg + " Your text was sent without the image.", ":material/image:")
        return None, None, None
    try:
        with st.spinner("Looking at the image…"):
            description = mem.llm.describe_image(data, ui.image_mime(ext), IMAGE_PROMPT)
    except Exception as exc:  # noqa: BLE001 - LLMError and friends, shown to the user
        _fail_before_send(text, thread_id, f"The image could not be described: {exc}")
    try:
        path = ui.save_image(mem.config.memory_data_dir, user, data, ext)
    except OSError as exc:
        _fail_before_send(text, thread_id, f"The image could not be saved: {exc}")
    return str(description).strip(), str(path), data


def handle_submit(mem: Any, user: str, thread_id: str | None, box: Any, prompt: Any) -> None:
    """Send one chat-input submission: optional image, the streamed reply, then
    background extraction. Always ends with ``st.rerun()`` (history is redrawn from the
    stored thread)."""
    text = str(getattr(prompt, "text", prompt) or "").strip()
    files = list(getattr(prompt, "files", None) or [])
    st.session_state.pop("last_error", None)
    if len(text) > mem.config.memory_max_message_chars:
        _fail_before_send(text, thread_id,
                          f"Your message is {len(text)} characters long; the limit is "
                          f"{mem.config.memory_max_message_chars}.")
    description = image_path = image_data = None
    if files:
        description, image_path, image_data = _prepare_image(mem, user, files[0], text, thread_id)
    if not text and not description:
        return
    message = text
    if description:
        message = (f"{text}\n\n" if text else "") + f"{IMAGE_MARK}{description}]"

    try:
        if thread_id is None and description:
            # title the new chat from the user's words, not the image description
            thread_id = mem.new_thread(user, title=_short(text or "Image", 48)).id
            st.session_state[ui.THREAD_KEY] = thread_id
        turn = mem.chat(message, user, thread_id,
                        metadata={"image_path": image_path} if image_path else None)
    except Exception as exc:  # noqa: BLE001 - ValueError/StoreError: shown, text kept
        _fail_before_send(text, thread_id, str(exc).splitlines()[0] if str(exc) else
                          type(exc).__name__)
    thread_id = turn.thread.id          # chat() creates the thread of a new chat
    st.session_state[ui.THREAD_KEY] = thread_id

    with box:
        with st.chat_message("user"):
            st.markdown(text or "_(image)_")
            if image_data:
                st.image(image_data, width=240)
        with st.chat_message("assistant"):
            errors: list[str] = []
            st.write_stream(_stream(turn, errors))
    error = getattr(turn, "error", None) or (errors[0] if errors else None)
    if error:
        st.session_state["last_error"] = {"thread_id": thread_id, "text": text,
                                          "error": error, "restored": False}
        st.rerun()

    # remember what the model was given, keyed by the stored assistant message
    try:
        msgs = mem.thread_messages(user, thread_id)
        last_assistant = next((m for m in reversed(msgs) if m.role == "assistant"), None)
        if last_assistant is not None:
            st.session_state.setdefault("used_by_msg", {})[last_assistant.id] = \
                serialize_used(getattr(turn, "used", None))
    except Exception:  # noqa: BLE001 - the expander is a nicety
        pass

    future = ui.get_executor().submit(extract_changes, turn)
    st.session_state.setdefault("pending", []).append(
        {"future": future, "user_id": user, "thread_id": thread_id, "image_path": image_path})
    st.rerun()


def render_chat(mem: Any, user: str, thread: Any | None) -> None:
    """The left column: the open thread's messages and the chat input."""
    thread_id = thread.id if thread else None
    st.subheader(_short(thread.title, 60) if thread else "New chat")
    box = st.container(height=CHAT_HEIGHT, border=True, key="chat_box")
    msgs = mem.thread_messages(user, thread_id) if thread_id else []
    with box:
        if not msgs:
            st.markdown(
                f"#### :material/waving_hand: Hi {ui.md_escape(user)}\n"
                "I'm a chat assistant with a long-term memory. Tell me about yourself — "
                "your name, what you like, what you're working on — and I'll remember it "
                "in every chat. The panel on the right shows what I remember; you can "
                "delete anything there.\n\n"
                "Try: *“I'm Lin, I live in Hangzhou and I'm allergic to peanuts.”* — then "
                "open a **New chat** and ask *“Who am I?”*")
        for m in msgs:
            render_message(mem, user, m)
        err = st.session_state.get("last_error")
        if err and err.get("thread_id") == thread_id:
            st.error(err["error"], icon=":material/warning:")
            if err.get("text") and not err.get("restored"):
                st.button("Put my message back in the box", key="restore_msg",
                          icon=":material/undo:", on_click=_restore_input,
                          args=(err["text"],))

    if "_restore_input" in st.session_state:
        st.session_state["chat_input"] = st.session_state.pop("_restore_input")
    vision = bool(mem.config.vision_model)
    prompt = st.chat_input(
        "Message Memory Chat… (+ attaches an image)" if vision else
        "Message Memory Chat…",
        key="chat_input", accept_file=True, file_type=list(ui.IMAGE_TYPES),
        max_chars=mem.config.memory_max_message_chars,
        max_upload_size=ui.MAX_IMAGE_BYTES // (1024 * 1024), submit_mode="disable")
    if prompt:
        handle_submit(mem, user, thread_id, box, prompt)


# ---------------------------------------------------------------------------------------
# page
# ---------------------------------------------------------------------------------------
def main() -> None:
    """Build the Chat page: sidebar (navigation, user, chats, status), chat column and
    the live memory panel."""
    mem = ui.get_memory()
    user = ui.sidebar_top(mem)
    with ui.store_errors_shown():
        page(mem, user)
    ui.sidebar_status(mem)


def page(mem: Any, user: str) -> None:
    """The body of the Chat page (sidebar chats, chat column, memory panel)."""
    threads = sidebar_threads(mem, user)

    for text, icon in st.session_state.pop("_flash", []):
        st.toast(text, icon=icon)

    thread_id = st.session_state.get(ui.THREAD_KEY)
    thread = next((t for t in threads if t.id == thread_id), None)
    if thread_id and thread is None:   # deleted, or not this user's: start fresh
        st.session_state[ui.THREAD_KEY] = None

    chat_col, panel_col = st.columns([0.6, 0.4], gap="large")
    with panel_col:   # drawn first so it stays fresh while a reply streams
        render_panel(mem, user)
    with chat_col:
        render_chat(mem, user, thread)


main()
