"""One chat turn, in order: retrieve → prompt → stream → learn → summarise (``run_turn``).

Front ends call it the same way: ``run_turn`` in one go (the terminal chat, an HTTP API),
or its two halves when the learning runs elsewhere — ``start_turn`` (= ``Memory.chat``)
then iterate the ``ChatTurn`` for the reply and call ``turn.changes()`` (the web app runs
that in a background pool). Every step is a named function below; constructors do no I/O.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterator

from memory.search import past
from memory.llm.errors import LLMError, LocalModelRestarted, one_line
from memory.chat.images import attach_images, with_descriptions
from memory.write.pipeline import learn_changes
from memory.chat.prompt import build_prompt, summarize_thread, title_of
from memory.safety.sanitize import (LIMITS, clean_id, clean_message, clean_metadata,
                             clean_model_text, keep_raw_transcripts)
from memory.types import Change, Message, SearchResult, Thread, new_id, utcnow
from memory.safety.users import check_user_id
from memory.safety.validate import check_message

log = logging.getLogger(__name__)


def run_turn(mem, user_id: str, text: str, thread_id: str | None = None, *,
             images: list[tuple[str, bytes]] = (), metadata: dict | None = None,
             on_token: Callable[[str], None] | None = None, learn: bool = True) -> "ChatTurn":
    """Run one whole chat turn of ``user_id`` and return the finished ChatTurn.

    ``text``: the user's message (may be "" when ``images`` are attached);
    ``images``: ``[(file name, bytes)]``, described by the vision model and linked from
    the message and the memories learned from it; ``on_token`` gets each reply delta as
    it streams; ``learn=False`` stops after the reply (call ``turn.changes()`` later).
    Raises ValueError for bad input and LLMError when an image cannot be described —
    both before anything is stored. A failing reply or extraction does not raise: see
    ``turn.error``, ``turn.retrieval_error`` and ``turn.changes_error``.
    """
    turn = start_turn(mem, user_id, text, thread_id, images=images, metadata=metadata)
    for token in turn:                      # stream (the reply is stored when it ends)
        if on_token:
            on_token(token)
    if learn:
        turn.changes()                      # learn, then summarise the thread
    return turn


def start_turn(mem, user_id: str, text: str, thread_id: str | None = None, *,
               images: list[tuple[str, bytes]] = (), metadata: dict | None = None
               ) -> "ChatTurn":
    """First half of a turn: check the input, attach the images, open the thread, store
    the user message, retrieve memories and build the prompt. Returns the ChatTurn to
    iterate for the reply. The stored message is PII-redacted unless
    ``MEMORY_KEEP_RAW_TRANSCRIPTS`` (``memory.safety.sanitize.clean_message``); the model is
    given the message as typed. Raises ValueError (bad user id, thread id, metadata,
    empty/over-long message, bad image; ``memory.safety.pii.PIIError`` when redaction fails)
    or LLMError (image not described) before anything is stored."""
    uid = check_user_id(user_id)
    limit = mem.config.memory_max_message_chars
    said = check_message(text, limit) if (text and str(text).strip()) or not images else ""
    meta = clean_metadata(metadata)
    keep_raw = keep_raw_transcripts(mem.config)
    if said:
        clean_message(said, keep_raw=keep_raw, max_len=limit)  # fail closed before any write
    attachments = attach_images(mem.llm, mem.config.memory_data_dir, uid, list(images)) \
        if images else []
    if attachments:
        meta["image_path"] = str(attachments[0].path)
        if len(attachments) > 1:
            meta["image_paths"] = [str(a.path) for a in attachments]
    message = with_descriptions(said, attachments)
    content = clean_message(message, keep_raw=keep_raw, max_len=max(limit, LIMITS["reply"]))
    thread = open_thread(mem.store, uid, thread_id, said or ("Image" if attachments else message))
    stored = mem.store.add_message(Message(id=new_id(), thread_id=thread.id, user_id=uid,
                                           role="user", content=content, metadata=meta))
    history = recent_messages(mem, uid, thread, stored.id)
    used, retrieval_error = retrieve(mem, uid, message)
    prompt = build_prompt(thread, message, used, history)
    context = history[-1].content if history and history[-1].role == "assistant" else ""
    return ChatTurn(mem, uid, thread, message, meta, used=used, prompt=prompt,
                    context=context, retrieval_error=retrieval_error)


def open_thread(store, uid: str, thread_id: str | None, first_text: str) -> Thread:
    """Return ``uid``'s thread ``thread_id``, created (titled from ``first_text``) when
    it is None or unknown; an untitled empty thread gets its title now. Raises
    ValueError for a malformed ``thread_id``."""
    thread = store.get_thread(uid, clean_id(thread_id, "thread_id")) if thread_id else None
    if thread is None:
        thread = Thread(id=thread_id or new_id(), user_id=uid, title=title_of(first_text))
        store.upsert_thread(thread)
    elif thread.title in ("New chat", "") and not store.get_messages(uid, thread.id, limit=1):
        thread.title = title_of(first_text)
        store.upsert_thread(thread)
    return thread


def recent_messages(mem, uid: str, thread: Thread, exclude_id: str) -> list[Message]:
    """The thread's messages not yet folded into its summary, without the new one, at
    most the last ``MEMORY_HISTORY_TURNS``."""
    msgs = mem.store.get_messages(uid, thread.id, after_seq=thread.summarized_upto - 1)
    return [m for m in msgs if m.id != exclude_id][-mem.config.memory_history_turns:]


def retrieve(mem, uid: str, text: str) -> tuple[SearchResult, str | None]:
    """Return ``(memories + profile for the reply, None)``, or ``(empty result, one-line
    reason)`` when the search fails: the chat goes on and the reason is shown with the
    reply. Memories given to the model get their recall counters touched. A message
    about the user's past also gets the nearest past memories (``used.past``,
    ``memory.search.past``)."""
    try:
        used = mem.search(text, uid, limit=mem.config.memory_search_limit)
    except Exception as exc:  # noqa: BLE001 - retrieval trouble must not kill the chat
        log.warning("memory retrieval failed: %s", exc)
        return SearchResult([], ""), f"Memories could not be searched for this reply: {one_line(exc)}"
    if used.memories:
        mem.store.touch_memories(uid, [m.id for m in used.memories], utcnow())
    try:
        used.past = past.recall(mem, uid, text)
    except Exception as exc:  # noqa: BLE001 - the past is extra: the reply goes on without it
        log.warning("past memories could not be searched: %s", exc)
    return used, None


def stream_reply(turn: "ChatTurn") -> Iterator[str]:
    """Yield the reply's text deltas (``clean_model_text``: no NUL, no lone surrogate);
    when the stream ends (or fails: ``turn.error``), store the reply — PII-redacted
    unless ``MEMORY_KEEP_RAW_TRANSCRIPTS`` — with what it was given (``used``
    ids/texts, profile, errors, ``notice``). A reply that cannot be cleaned (a
    redaction failure) is not stored and ``turn.error`` says why.

    When the local model server crashed and was restarted (``turn.notice`` says so in
    one line), the message is answered anyway: before any delta the request is simply
    sent again; after some deltas, a line with the notice is yielded and the whole reply
    is asked for again, and only the new reply is stored."""
    parts: list[str] = []

    def restarted(notice: str) -> None:
        turn.notice = notice

    try:
        for attempt in range(2):
            try:
                for delta in turn.mem.llm.stream_chat(
                        turn.prompt, on_restart=restarted,
                        max_tokens=turn.mem.config.llm_reply_max_tokens):
                    delta = clean_model_text(delta)
                    parts.append(delta)
                    yield delta
                break
            except LocalModelRestarted as exc:
                turn.notice = exc.notice
                if attempt:
                    raise
                parts.clear()
                yield f"\n\n*({exc.notice} Answering again.)*\n\n"
    except LLMError as exc:
        turn.error = str(exc)
    finally:
        turn.reply = "".join(parts)
        turn.done = True
        _store_reply(turn)


def _store_reply(turn: "ChatTurn") -> None:
    """Store the turn's finished reply (see ``stream_reply``)."""
    if not turn.reply.strip():
        return
    try:
        content = clean_message(turn.reply, "reply", max_len=LIMITS["reply"],
                                keep_raw=keep_raw_transcripts(turn.mem.config))
    except ValueError as exc:
        turn.error = f"The reply was not saved: {one_line(exc)}"
        log.warning("%s", turn.error)
        return
    turn.mem.store.add_message(Message(
        id=new_id(), thread_id=turn.thread.id, user_id=turn.user_id, role="assistant",
        content=content,
        metadata={"used": [m.id for m in turn.used.memories],
                  "used_texts": [m.text for m in turn.used.memories],
                  "profile": turn.used.profile, "error": turn.error,
                  "notice": turn.notice,
                  "retrieval_error": turn.retrieval_error}))


def learn_from(turn: "ChatTurn") -> list[Change]:
    """Extract and store memories from the turn's user message, then summarise the
    thread. Returns the ``Changes`` (with ``turn_id`` for undo). Sets ``turn.changes_error`` instead of raising for LLM trouble; after a
    failed reply nothing is asked of the LLM (it just failed)."""
    mem = turn.mem
    if turn.error:
        turn.changes_error = "Memory extraction skipped: the reply failed"
        return []
    changes = learn_changes(mem, turn.user_id, turn.thread.id, turn.text, turn.context,
                            turn.metadata, utcnow())
    turn.changes_error = changes.error
    summarize_thread(mem.store, mem.llm, turn.user_id, turn.thread.id,
                     mem.config.memory_history_turns)
    return changes


class ChatTurn:
    """One chat turn in progress (built by ``start_turn``; its constructor only stores).

    Iterate it for the reply's text deltas (str). Then: ``reply`` (full text), ``used``
    (SearchResult given to the model), ``prompt`` (messages sent), ``thread`` (Thread),
    ``error`` (one line if the reply failed), ``notice`` (one line if the local model
    crashed and was restarted for this reply), ``retrieval_error`` (one line if memories
    could not be searched; the reply was made without them). ``changes()`` extracts and
    stores memories (may run in another thread); ``changes_error`` then holds this
    turn's extraction failure, if any."""

    def __init__(self, mem, user_id: str, thread: Thread, text: str, metadata: dict, *,
                 used: SearchResult, prompt: list[dict], context: str = "",
                 retrieval_error: str | None = None):
        self.mem, self.user_id, self.thread, self.text = mem, user_id, thread, text
        self.metadata, self.used, self.prompt, self.context = metadata, used, prompt, context
        self.retrieval_error = retrieval_error
        self.reply = ""
        self.error: str | None = None
        self.notice: str | None = None
        self.changes_error: str | None = None
        self.done = False

    def __iter__(self) -> Iterator[str]:
        return stream_reply(self)

    def run(self) -> str:
        """Consume the stream and return the full reply ("" on error)."""
        for _ in self:
            pass
        return self.reply

    def changes(self) -> list[Change]:
        """Learn from this turn (streaming the reply first if nobody did) and return the
        changes; never raises for LLM trouble (see ``changes_error``)."""
        if not self.done:
            self.run()
        return learn_from(self)
