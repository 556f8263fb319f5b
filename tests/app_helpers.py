"""Helpers of the AppTest tests of the Streamlit app (tests/test_app.py,
tests/test_app_images.py, tests/test_pages.py; ``memory_responder`` also drives
tests/test_browser.py): the scripted model that answers from the memories in its system
prompt, and small drivers of ``streamlit.testing.v1.AppTest``.

The ``app_env`` fixture that starts the app's environment is in tests/conftest.py.
"""
from __future__ import annotations

import re
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

import webui as ui
import webui.session
from tests.fake_llm import has_image, last_user_text, system_text

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 60


# ---------------------------------------------------------------------------------------
# the scripted model
# ---------------------------------------------------------------------------------------
NAME_RE = re.compile(r"\b(?:I'm|I am|my name is)\s+([A-Z][a-z]+)")
CAT_RE = re.compile(r"\bmy cat(?: is)?(?: called| named)?\s+([A-Z][a-z]+)", re.IGNORECASE)
CITY_RE = re.compile(r"\bI live in\s+([A-Z][a-z]+)")


def facts_from(text: str) -> list[dict]:
    """What the scripted extractor 'finds' in a user message."""
    facts = []
    if m := NAME_RE.search(text):
        facts.append({"text": f"Name is {m.group(1)}", "topic": "name"})
    if m := CAT_RE.search(text):
        facts.append({"text": f"Has a cat named {m.group(1)}", "topic": "pet"})
    if m := CITY_RE.search(text):
        facts.append({"text": f"Lives in {m.group(1)}", "topic": "home"})
    return facts


def memory_responder(req: dict) -> object:
    """Scripted model: vision → a description; extraction → facts_from(user turn);
    reconciliation → ADD everything; chat → answers from the system prompt's memories."""
    system, user = system_text(req), last_user_text(req)
    if has_image(req):
        return "A small grey cat curled up on a blue sofa."
    if "You extract memories" in system:
        said = user.split("User:", 1)[-1].split("\nAssistant:", 1)[0]
        return {"memories": facts_from(said)}
    if "memory list correct" in system:
        n = len(re.findall(r"^NEW \d+:", user, re.MULTILINE))
        return {"decisions": [{"fact": i, "action": "ADD"} for i in range(1, n + 1)]}
    low = user.lower()
    if "who am i" in low:
        m = re.search(r"[Nn]ame is (\w+)", system)
        return f"You are {m.group(1)}." if m else "I don't know your name yet."
    if "pet" in low:
        m = re.search(r"cat named (\w+)", system)
        return f"Your pet is called {m.group(1)}." if m else "You haven't told me about a pet."
    return "Nice to meet you! I will remember that."


def chat_prompts(llm) -> list[str]:
    """System prompts of the streamed chat requests the scripted model received."""
    return [system_text(b) for b in llm.chat_requests() if b.get("stream")]


# ---------------------------------------------------------------------------------------
# fixtures / helpers
# ---------------------------------------------------------------------------------------
def reset_streamlit_caches() -> None:
    """Drop the cached Memory (closing it), executor and health results."""
    st.cache_resource.clear()
    st.cache_data.clear()


def engine():
    """The app's own process-wide Memory (same cache_resource object)."""
    return webui.session._cached_memory()


def new_app(user: str | None = None) -> AppTest:
    """Run app.py once in AppTest (as ``user`` when given) and return it."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if user:
        at.session_state[ui.USER_KEY] = user
    return at.run()


def no_exceptions(at: AppTest) -> None:
    """Fail with the exception texts if the last run of ``at`` raised any."""
    assert not at.exception, [e.value for e in at.exception]


def send(at: AppTest, text: str) -> AppTest:
    """Type ``text`` into the chat input, run, check no exception; return ``at``."""
    at.chat_input[0].set_value(text).run()
    no_exceptions(at)
    return at


def finish_extraction(at: AppTest, timeout: float = 30) -> AppTest:
    """Wait for the background extraction jobs (future.result with a deadline) and
    rerun, as the polling fragment would."""
    jobs = list(at.session_state["pending"]) if "pending" in at.session_state else []
    for job in jobs:
        job["future"].result(timeout=timeout)
    at.run()
    no_exceptions(at)
    return at


def messages(at: AppTest) -> list[tuple[str, str]]:
    """The chat as ``(role, first Markdown text)`` pairs, top to bottom."""
    return [(cm.name, cm.markdown[0].value if len(cm.markdown) else "") for cm in at.chat_message]


def all_markdown(at: AppTest) -> str:
    """All Markdown and caption text of the page, one element per line."""
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])
