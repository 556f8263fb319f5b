"""Memory Chat — the Streamlit app: chat on the left, the live memory panel on the right.

Run with ``streamlit run app.py``. Everything goes through the public ``Memory`` API
(API.md); the shared UI glue lives in the ``webui`` package (``webui/panel.py`` draws the
memory panel).

Flow of one message — ``memory.chat.turn.run_turn`` split across two threads: ``mem.chat``
(images, thread, retrieve, prompt), ``st.write_stream`` over the turn (stream), then
``turn.changes()`` (learn, summarise) submitted to a background pool so the next message
is never blocked; a fragment polling once a second (only while something is pending)
refreshes the panel when it is done.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Iterator

import streamlit as st

import webui as ui
from memory.llm.errors import LLMError, one_line
from memory.chat.images import IMAGE_MARK
from webui.panel import extract_changes, render_panel
from webui.session import flash, flash_outcome

st.set_page_config(page_title="Memory Chat", page_icon=":material/psychology:", layout="wide")

#: threads listed in the sidebar
SIDEBAR_THREADS = 40
#: pixel height of the scrolling chat area
CHAT_HEIGHT = 560


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
        flash("A chat title cannot be empty.", ":material/warning:")
        return
    flash_outcome(lambda: mem.rename_thread(user, thread_id, title[:80]),
                  "Could not rename the chat", "Chat renamed.", "That chat no longer exists.",
                  icon=":material/check_circle:", gone_icon=":material/warning:")


def _delete_thread(mem: Any, user: str, thread_id: str) -> None:
    ok = flash_outcome(lambda: mem.delete_thread(user, thread_id), "Could not delete the chat",
                       "Chat deleted.", "That chat no longer exists.")
    if ok is not None and st.session_state.get(ui.THREAD_KEY) == thread_id:
        st.session_state[ui.THREAD_KEY] = None


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
            if (msg.metadata or {}).get("notice"):
                st.info(msg.metadata["notice"], icon=":material/restart_alt:")
            if (msg.metadata or {}).get("retrieval_error"):
                st.warning(msg.metadata["retrieval_error"], icon=":material/warning:")
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


def _images_of(mem: Any, text: str, thread_id: str | None, files: list[Any]) -> list[tuple[str, bytes]]:
    """The attached files as ``(name, bytes)`` for ``mem.chat``; [] with a toast when no
    vision model is configured and there is text to send without them (without text,
    the message is refused and put back)."""
    if not files or mem.config.vision_model:
        return [(f.name, f.getvalue()) for f in files[:1]]
    msg = ("I can't look at images: no vision model is configured. Set `VISION_MODEL` "
           "(an OpenAI-compatible vision model, e.g. `gpt-4o-mini`) in `.env` to let me "
           "describe and remember pictures.")
    if not text:
        _fail_before_send(text, thread_id, msg)
    flash(msg + " Your text was sent without the image.", ":material/image:")
    return []


def handle_submit(mem: Any, user: str, thread_id: str | None, box: Any, prompt: Any) -> None:
    """Send one chat-input submission: ``mem.chat`` (with the attached image), the
    streamed reply, then background extraction. Always ends with ``st.rerun()`` (history
    is redrawn from the stored thread)."""
    text = str(getattr(prompt, "text", prompt) or "").strip()
    st.session_state.pop("last_error", None)
    if len(text) > mem.config.memory_max_message_chars:
        _fail_before_send(text, thread_id,
                          f"Your message is {len(text)} characters long; the limit is "
                          f"{mem.config.memory_max_message_chars}.")
    images = _images_of(mem, text, thread_id, list(getattr(prompt, "files", None) or []))
    if not text and not images:
        return
    try:
        with st.spinner("Looking at the image…") if images else nullcontext():
            turn = mem.chat(text, user, thread_id, images=images)
    except Exception as exc:  # noqa: BLE001 - ValueError/LLMError/StoreError: shown, text kept
        prefix = "The image could not be described: " if isinstance(exc, LLMError) else ""
        _fail_before_send(text, thread_id, prefix + one_line(exc))
    thread_id = turn.thread.id          # chat() creates the thread of a new chat
    st.session_state[ui.THREAD_KEY] = thread_id

    with box:
        with st.chat_message("user"):
            st.markdown(text or "_(image)_")
            if images:
                st.image(images[0][1], width=240)
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
        {"future": future, "user_id": user, "thread_id": thread_id,
         "image_path": turn.metadata.get("image_path")})
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
