"""Real-browser test: ``streamlit run app.py`` as a subprocess, driven by Playwright in
Debian's Chromium. The app talks to the scripted OpenAI-compatible server of
tests/fake_llm.py (its URL is passed in the environment) and stores into a temp
MEMORY_DATA_DIR. Every wait is on a page condition (Playwright ``expect``), never a
fixed sleep. Screenshots go to ``test-artifacts/``.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.app_helpers import memory_responder
from tests.fake_llm import system_text

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
START_TIMEOUT_S = 90
UI_TIMEOUT_MS = 60_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    """Poll Streamlit's health endpoint until it answers ``ok`` (deadline
    START_TIMEOUT_S); fail with the server log if the process dies or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)   # polling interval of the deadline loop, not synchronisation
    pytest.fail(f"streamlit did not become healthy:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def running_app(tmp_path, scripted_llm, **extra_env: str):
    """``streamlit run app.py`` on a free port, pointed at the scripted model, with data
    in ``tmp_path/data`` and ``extra_env`` on top; yields its URL."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    pytest.importorskip("playwright.sync_api")
    scripted_llm.responder = memory_responder
    port = free_port()
    env = dict(os.environ)
    for key in ("TIDB_HOST", "DATABASE_URL", "EMBEDDING_MODEL", "EMBEDDING_BASE_URL"):
        env.pop(key, None)
    env.update({"MEMORY_DATA_DIR": str(tmp_path / "data"), "MEMORY_STORE": "sqlite",
                "OPENAI_BASE_URL": scripted_llm.base_url, "OPENAI_API_KEY": "test",
                "LLM_MODEL": scripted_llm.model, "EMBEDDER": "use-multilingual",
                "LLM_TIMEOUT": "10", "LLM_MAX_RETRIES": "0", "VISION_MODEL": "",
                "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", **extra_env})
    log = tmp_path / "streamlit.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def streamlit_app(tmp_path, scripted_llm):
    """The app in local mode (no login)."""
    with running_app(tmp_path, scripted_llm) as url:
        yield url, scripted_llm


def send(page, text: str) -> None:
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    box.press("Enter")


def switch_user(page, expect, user: str) -> None:
    field = page.get_by_role("textbox", name="Switch to / create user id")
    field.fill(user)
    field.press("Enter")
    expect(page.get_by_role("heading", name=f"Hi {user}")).to_be_visible(timeout=UI_TIMEOUT_MS)


@contextlib.contextmanager
def app_page(url: str, user: str):
    """A Chromium page on the app at ``url``, switched to ``user``; yields ``(page,
    expect)``; the browser is closed afterwards."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url)
            expect(page.get_by_role("heading", name="Hi me")).to_be_visible(timeout=UI_TIMEOUT_MS)
            switch_user(page, expect, user)
            yield page, expect
        finally:
            browser.close()


def test_chat_remember_recall_and_user_isolation_in_a_real_browser(streamlit_app):
    url, llm = streamlit_app
    with app_page(url, "alice") as (page, expect):
        # 1. tell it something: the reply streams in, then the memory appears in the
        #    panel by itself (background extraction + polling fragment)
        send(page, "Hi, I'm Lin and my cat is called Xiaolan.")
        chat = page.locator(".st-key-chat_box")
        # exactly one reply: while the rerun after streaming is running, Streamlit
        # still shows the streamed element beside the final one (seen on a loaded
        # machine); it must go, and a reply shown twice for good would fail here
        expect(chat.get_by_test_id("stChatMessage").filter(
            has_text="Nice to meet you! I will remember that.")).to_have_count(
            1, timeout=UI_TIMEOUT_MS)
        assert any(b.get("stream") for b in llm.chat_requests())
        memories = page.locator(".st-key-memory_list")
        expect(memories.get_by_text("Name is Lin")).to_be_visible(
            timeout=UI_TIMEOUT_MS)
        expect(memories.get_by_text("Has a cat named Xiaolan")).to_be_visible()
        changes = page.locator(".st-key-last_changes_box")
        expect(changes.get_by_text("added").first).to_be_visible()
        expect(page.get_by_text("2 memories")).to_be_visible()

        # 2. a new chat recalls it from long-term memory
        page.get_by_role("button", name="New chat").click()
        expect(page.get_by_role("heading", name="Hi alice")).to_be_visible()
        send(page, "Who am I?")
        expect(chat.get_by_text("You are Lin.")).to_be_visible(timeout=UI_TIMEOUT_MS)
        prompts = [system_text(b) for b in llm.chat_requests() if b.get("stream")]
        assert "Name is Lin" in prompts[-1]
        # the rerun after streaming must be over before the expander is opened: a
        # click on the streamed copy is lost when the rerun replaces it
        expect(chat.get_by_test_id("stChatMessage").filter(has_text="You are Lin.")).to_have_count(
            1, timeout=UI_TIMEOUT_MS)
        chat.get_by_text("Memories used").last.click()
        expect(chat.get_by_test_id("stExpanderDetails").last.get_by_text(
            "Name is Lin").last).to_be_visible(timeout=UI_TIMEOUT_MS)
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_role("button", name="Who am I?")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "browser-chat.png"))

        # 3. another user sees none of alice's memories or chats
        switch_user(page, expect, "bob")
        expect(page.get_by_text("0 memories")).to_be_visible()
        expect(page.get_by_text("Name is Lin")).to_have_count(0)
        expect(page.get_by_text("Has a cat named Xiaolan")).to_have_count(0)
        expect(sidebar.get_by_role("button", name="Who am I?")).to_have_count(0)
        expect(sidebar.get_by_text("Chats", exact=True)).to_have_count(0)
        page.screenshot(path=str(ARTIFACTS / "browser-switched-user.png"))

        # 4. …on the other pages too
        sidebar.get_by_role("link", name="Memories").click()
        expect(page.get_by_role("heading", name="Memories")).to_be_visible(
            timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text("No memories yet")).to_be_visible()
        expect(page.get_by_text("Has a cat named Xiaolan")).to_have_count(0)


def test_a_revoked_key_is_signed_out_at_the_next_click_in_a_real_browser(
        tmp_path, scripted_llm, embedder):
    """Issue 25: with MEMORY_WEB_LOGIN=1, sign in, revoke the key from the CLI, click
    Insights / Settings / Chat in the same tab: the session is over at the first click."""
    from playwright.sync_api import expect, sync_playwright

    from memory import Memory
    from memory.api.keys import open_keystore
    from tests.fake_llm import scripted_config

    data = tmp_path / "data"
    mem = Memory(scripted_config(data, scripted_llm), embedder=embedder)
    mem.add("Likes figs from the market", "bob", infer=False)
    mem.close()
    keys = open_keystore(data)
    keys.create_user("bob")
    key, info = keys.create_key("bob", "browser")
    keys.close()
    ARTIFACTS.mkdir(exist_ok=True)
    with running_app(tmp_path, scripted_llm, MEMORY_WEB_LOGIN="1") as url, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url)
            signin = page.get_by_role("heading", name="Sign in to Memory Chat")
            expect(signin).to_be_visible(timeout=UI_TIMEOUT_MS)
            page.get_by_label("API key").fill(key)
            page.get_by_role("button", name="Sign in").click()
            sidebar = page.get_by_test_id("stSidebar")
            expect(sidebar.get_by_text("Signed in as bob")).to_be_visible(timeout=UI_TIMEOUT_MS)
            expect(page.get_by_text("Likes figs from the market")).to_be_visible(
                timeout=UI_TIMEOUT_MS)
            sidebar.get_by_role("link", name="Insights").click()
            expect(page.get_by_role("heading", name="Insights")).to_be_visible(
                timeout=UI_TIMEOUT_MS)

            # revoke it from the command line, as an operator would
            r = subprocess.run([sys.executable, "-m", "memory.api", "key", "revoke", info.key_id],
                               cwd=tmp_path, env={**os.environ, "MEMORY_DATA_DIR": str(data),
                                                  "PYTHONPATH": str(ROOT)},
                               capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stderr

            for link in ("Settings", "Chat", "Insights"):  # every next click, any page
                sidebar.get_by_role("link", name=link).click()
                expect(signin).to_be_visible(timeout=UI_TIMEOUT_MS)
                expect(page.get_by_text("has been revoked or rotated")).to_be_visible()
                expect(sidebar.get_by_text("Signed in as")).to_have_count(0)
                expect(page.get_by_text("Likes figs from the market")).to_have_count(0)
            page.screenshot(path=str(ARTIFACTS / "browser-revoked-key.png"))
            # the revoked key does not sign in again
            page.get_by_label("API key").fill(key)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_text("That key is not valid")).to_be_visible(timeout=UI_TIMEOUT_MS)
            expect(sidebar.get_by_text("Signed in as")).to_have_count(0)
        finally:
            browser.close()


def test_undo_on_the_last_message_card_in_a_real_browser(streamlit_app):
    """The "Last message changed" card's Undo takes the message's memories back; the
    panel and the card say so, and the button is gone (a turn is undone once)."""
    url, _ = streamlit_app
    with app_page(url, "carol") as (page, expect):
        send(page, "Hi, I'm Lin and my cat is called Xiaolan.")
        memories = page.locator(".st-key-memory_list")
        expect(memories.get_by_text("Has a cat named Xiaolan")).to_be_visible(
            timeout=UI_TIMEOUT_MS)
        card = page.locator(".st-key-last_changes_box")
        card.get_by_role("button", name="Undo").click()
        expect(card.get_by_text("Undo took back")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(card.get_by_text("undone").first).to_be_visible()
        expect(page.get_by_text("0 memories")).to_be_visible()
        expect(page.get_by_text("Has a cat named Xiaolan")).to_have_count(1)  # struck out on the card
        expect(card.get_by_role("button", name="Undo")).to_have_count(0)
        page.screenshot(path=str(ARTIFACTS / "browser-undo.png"))
