"""The chat prompt of a turn and the thread summary that keeps long threads' prompts bounded.

Prompt = system (date, profile, retrieved memories) + thread summary + recent messages + the
new message."""
from __future__ import annotations

import logging

from memory.llm import prompts
from memory.llm.errors import LLMError
from memory.safety.sanitize import LIMITS, clean_summary, clean_title, redact
from memory.types import Message, SearchResult, Thread, utcnow

log = logging.getLogger(__name__)

#: each earlier message is cut to this many characters in the prompt and the summary input
PROMPT_MESSAGE_CHARS = 2000
#: a thread is summarised once this many messages have scrolled out of the prompt window
SUMMARY_BATCH = 8


def build_prompt(thread: Thread, text: str, used: SearchResult,
                 history: list[Message]) -> list[dict]:
    """Return the chat messages sent to the LLM (``[{"role", "content"}]``): the system
    prompt with today's date, the profile, the retrieved memories not already in the
    profile and, for a question about the past, the past memories with their period
    (``used.past``); the thread summary; ``history`` (user/assistant messages, each cut to
    ``PROMPT_MESSAGE_CHARS``); the new message ``text``."""
    lines = []
    if used.profile:
        # each fact names its owner, so a small model does not take it as its own
        lines.append("Profile of the user:\n" + "\n".join(
            f"- The user: {line[2:]}" if line.startswith("- ") else line
            for line in used.profile.splitlines()) + "\n")
    in_profile = set(used.profile.splitlines())
    extra = [m for m in used.memories if f"- {m.text}" not in in_profile]
    if extra:
        lines.append("Other memories (most relevant first; date = when the user said it):")
        for m in extra:
            lines.append(f"- [{m.created_at:%Y-%m-%d}] The user: {m.text}")
    if used.past:
        lines.append("No longer true — the user's past, only for questions about the past "
                     "(period = from when the user said it until it changed):")
        for m in used.past:
            rec = m.record
            start = rec.valid_from or rec.created_at
            lines.append(f"- [{start:%Y-%m} – {rec.invalid_at:%Y-%m}] Earlier, the user: {rec.text}")
    knowledge = ("Facts the user told you about themselves (the user is \"you\"; you are "
                 "not the user):\n" + "\n".join(lines)) if lines else prompts.KNOWLEDGE_NONE
    system = prompts.CHAT_SYSTEM.format(today=utcnow().strftime("%Y-%m-%d (%A)"), knowledge=knowledge)
    out = [{"role": "system", "content": system}]
    if thread.summary:
        out.append({"role": "system", "content": prompts.THREAD_SUMMARY.format(summary=thread.summary)})
    for m in history:
        if m.role in ("user", "assistant") and m.content:
            out.append({"role": m.role, "content": m.content[:PROMPT_MESSAGE_CHARS]})
    out.append({"role": "user", "content": text})
    return out


def summarize_thread(store, llm, uid: str, thread_id: str, window: int) -> bool:
    """Fold the messages of ``uid``'s thread that have scrolled out of the last
    ``window`` (``MEMORY_HISTORY_TURNS``) into the thread's summary (one LLM call, at
    most 300 tokens), once at least ``SUMMARY_BATCH`` such messages have accumulated.
    The summary is stored through ``memory.safety.sanitize.clean_summary`` (cut to
    ``LIMITS["summary"]``, PII-redacted). Returns True if it summarised; an LLM failure
    or a summary that cannot be cleaned (a lone surrogate, a redaction failure) is
    logged and gives False."""
    thread = store.get_thread(uid, thread_id)
    if thread is None:
        return False
    msgs = store.get_messages(uid, thread_id)
    cutoff = len(msgs) - window
    if cutoff - thread.summarized_upto < SUMMARY_BATCH:
        return False
    old = msgs[thread.summarized_upto:cutoff]
    convo = "\n".join(f"{m.role}: {m.content[:PROMPT_MESSAGE_CHARS]}" for m in old)
    prev = f"Previous summary: {thread.summary}\n\n" if thread.summary else ""
    try:
        summary = llm.chat([{"role": "system", "content": prompts.SUMMARY_SYSTEM},
                            {"role": "user", "content": prev + convo}], max_tokens=300)
        thread.summary = clean_summary(summary.strip()[:LIMITS["summary"]])
    except (LLMError, ValueError) as exc:
        log.warning("thread summary skipped: %s", exc)
        return False
    thread.summarized_upto = cutoff
    store.upsert_thread(thread)
    return True


def title_of(text: str) -> str:
    """A thread title from its first message: one line, PII-redacted before it is cut
    (a number cut in half would escape the detectors), at most 48 characters + "…",
    through ``memory.safety.sanitize.clean_title``. Raises ValueError (PIIError) when
    redaction fails."""
    line = redact(" ".join(text.split()), "title")
    return clean_title((line[:48] + ("…" if len(line) > 48 else "")) or "New chat")
