"""AppTest tests of the chat page (app.py): the chat flow, threads, switching users,
start-up errors and the optional login.

The app runs for real: real SQLite file in a temp MEMORY_DATA_DIR, real default (USE-multilingual) embedder,
real HTTP to the scripted OpenAI-compatible server of tests/fake_llm.py. Its answers come
from ``memory_responder`` in tests/app_helpers.py, which (like a real model) answers the
chat from the memories it finds in the system prompt, so recall is only possible if the
engine put them there. Images are in tests/test_app_images.py, the webui unit tests in
tests/test_webui.py.
"""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

import webui as ui
from tests.app_helpers import (APP, TIMEOUT, all_markdown, chat_prompts, engine,
                               finish_extraction, messages, new_app, no_exceptions,
                               reset_streamlit_caches, send)
from tests.fake_llm import HTTPError


# ---------------------------------------------------------------------------------------
# chat flow
# ---------------------------------------------------------------------------------------
def test_first_run_shows_welcome_and_healthy_status(app_env):
    at = new_app()
    no_exceptions(at)
    md = all_markdown(at)
    assert "Hi me" in md                      # default user, welcome text
    assert ":green[●] **LLM** `scripted`" in md
    assert ":green[●] **Embedder**" in md and ":green[●] **Store** `sqlite`" in md
    assert "**0** memories" in md
    assert at.button(key="clear_all").disabled


def test_reply_streams_and_memory_appears_after_background_extraction(app_env):
    at = new_app("alice")
    send(at, "Hi, I'm Lin and my cat is called Xiaolan.")
    assert messages(at) == [("user", "Hi, I'm Lin and my cat is called Xiaolan."),
                            ("assistant", "Nice to meet you! I will remember that.")]
    # the reply is stored in the thread, titled from the first message
    threads = engine().threads("alice")
    assert [t.title for t in threads] == ["Hi, I'm Lin and my cat is called Xiaolan."]
    assert at.session_state[ui.THREAD_KEY] == threads[0].id
    # extraction runs in the background: its job is pending and the panel polls it
    assert len(at.session_state["pending"]) == 1
    finish_extraction(at)
    assert at.session_state["pending"] == []
    md = all_markdown(at)
    assert ":green-badge[added] Name is Lin" in md
    assert ":green-badge[added] Has a cat named Xiaolan" in md
    assert "**2** memories" in md
    assert ":green-badge[new] Name is Lin" in md          # highlighted row
    assert "**About**\n- Name is Lin" in md                 # profile card
    # one delete button per memory
    ids = {r.id for r in engine().list("alice")}
    assert {f"del_{i}" for i in ids} <= {b.key for b in at.button}


def test_new_chat_recalls_memory_and_shows_memories_used(app_env):
    at = new_app("alice")
    send(at, "Hi, I'm Lin and my cat is called Xiaolan.")
    finish_extraction(at)
    first_thread = at.session_state[ui.THREAD_KEY]
    at.button(key="new_chat").click().run()
    assert at.session_state[ui.THREAD_KEY] is None
    assert messages(at) == []
    send(at, "Who am I?")
    assert messages(at)[-1] == ("assistant", "You are Lin.")
    # the model could only answer because the engine put the memory in its prompt
    assert "Name is Lin" in chat_prompts(app_env.llm)[-1]
    assert at.session_state[ui.THREAD_KEY] != first_thread
    exp = [e for e in at.expander if e.label.startswith("Memories used")]
    assert exp and exp[-1].label != "Memories used (0)"
    assert any("Name is Lin" in m.value for m in exp[-1].markdown)
    # the expander survives a rerun (kept in session state / message metadata)
    at.run()
    assert any(e.label.startswith("Memories used") for e in at.expander)
    # both chats listed in the sidebar, newest first
    labels = [b.label for b in at.sidebar.button if b.key and b.key.startswith("open_")]
    assert labels == ["Who am I?", "Hi, I'm Lin and my cat is cal…"]   # cut to 30 chars


def test_trivial_question_starts_no_memory_change(app_env):
    at = new_app("alice")
    send(at, "Who am I?")
    assert messages(at)[-1] == ("assistant", "I don't know your name yet.")
    finish_extraction(at)
    assert at.session_state["last_changes"] == {"user_id": "alice", "error": None,
                                                "turn_id": None, "changes": []}
    assert "Nothing new to remember from the last message." in all_markdown(at)
    assert engine().count("alice") == 0


def test_llm_failure_shows_error_and_keeps_the_message(app_env):
    at = new_app("alice")
    app_env.llm.push(HTTPError(500, "model crashed"))
    send(at, "I live in Hangzhou")
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "HTTP 500" in errors[0] and "model crashed" in errors[0]
    # the message is kept in the thread…
    tid = at.session_state[ui.THREAD_KEY]
    assert [m.content for m in engine().thread_messages("alice", tid)] == ["I live in Hangzhou"]
    assert messages(at) == [("user", "I live in Hangzhou")]
    # …and offered back into the input box
    at.button(key="restore_msg").click().run()
    assert at.chat_input[0].value == "I live in Hangzhou"
    assert "pending" not in at.session_state or not at.session_state["pending"]


def test_message_length_limit_is_enforced_by_the_input(app_env, monkeypatch):
    monkeypatch.setenv("MEMORY_MAX_MESSAGE_CHARS", "100")
    reset_streamlit_caches()
    at = new_app("alice")
    assert at.chat_input[0].proto.max_chars == 100      # the browser stops typing at 100
    send(at, "y" * 150)
    tid = at.session_state[ui.THREAD_KEY]
    assert [len(m.content) for m in engine().thread_messages("alice", tid)][0] <= 100


def test_delete_one_memory_and_clear_all_with_confirmation(app_env):
    mem = engine()
    mem.add(["Likes green tea", "Lives in Hangzhou", "Plays the violin"], "alice", infer=False)
    mem.add(["Bob's secret"], "bob", infer=False)
    at = new_app("alice")
    victim = next(r for r in mem.list("alice") if r.text == "Plays the violin")
    at.button(key=f"del_{victim.id}").click().run()
    no_exceptions(at)
    assert mem.get(victim.id, "alice") is None
    assert "**2** memories" in all_markdown(at)
    assert any("Memory deleted." in t.value for t in at.toast)
    # clear all asks first
    at.button(key="clear_all").click().run()
    assert mem.count("alice") == 2
    at.button(key="clear_no").click().run()
    assert mem.count("alice") == 2 and not at.session_state["confirm_clear"]
    at.button(key="clear_all").click().run()
    at.button(key="clear_yes").click().run()
    no_exceptions(at)
    assert mem.count("alice") == 0
    assert mem.count("bob") == 1                       # other users untouched
    assert "**0** memories" in all_markdown(at)
    assert any("Deleted 2 memories." in t.value for t in at.toast)


def test_threads_open_rename_delete(app_env):
    at = new_app("alice")
    send(at, "First chat about tea")
    finish_extraction(at)
    first = at.session_state[ui.THREAD_KEY]
    at.button(key="new_chat").click().run()
    send(at, "Second chat about music")
    finish_extraction(at)
    second = at.session_state[ui.THREAD_KEY]
    # open the first one
    at.button(key=f"open_{first}").click().run()
    assert at.session_state[ui.THREAD_KEY] == first
    assert messages(at)[0] == ("user", "First chat about tea")
    # rename it
    at.text_input(key=f"title_{first}").set_value("Tea talk").run()
    at.button(key=f"ren_{first}").click().run()
    assert [t.title for t in engine().threads("alice") if t.id == first] == ["Tea talk"]
    assert at.button(key=f"open_{first}").label == "Tea talk"
    assert any("Chat renamed." in t.value for t in at.toast)
    # delete it: the open chat closes, the other remains
    at.button(key=f"delt_{first}").click().run()
    no_exceptions(at)
    assert [t.id for t in engine().threads("alice")] == [second]
    assert at.session_state[ui.THREAD_KEY] is None
    assert any("Chat deleted." in t.value for t in at.toast)


def test_switching_user_hides_previous_users_memories_and_threads(app_env):
    at = new_app()
    assert at.session_state[ui.USER_KEY] == ui.DEFAULT_USER
    at.text_input(key="_user_new").set_value("alice").run()
    assert at.session_state[ui.USER_KEY] == "alice"
    send(at, "Hi, I'm Lin and my cat is called Xiaolan.")
    finish_extraction(at)
    assert "Xiaolan" in all_markdown(at)
    at.text_input(key="_user_new").set_value("bob").run()
    no_exceptions(at)
    assert at.session_state[ui.USER_KEY] == "bob"
    md = all_markdown(at)
    assert "Has a cat named Xiaolan" not in md and "Name is Lin" not in md
    assert "**0** memories" in md
    assert not [b for b in at.sidebar.button if b.key and b.key.startswith("open_")]
    assert messages(at) == []
    assert "last_changes" not in at.session_state
    # both users are remembered, most recent first
    assert ui.load_recent_users(app_env.data_dir) == ["bob", "alice", ui.DEFAULT_USER]
    # switch back through the recent-users select box
    at.selectbox(key="_user_pick").select("alice").run()
    assert at.session_state[ui.USER_KEY] == "alice"
    assert "Has a cat named Xiaolan" in all_markdown(at)


def test_invalid_user_id_is_refused_and_names_with_spaces_work(app_env):
    at = new_app("alice")
    at.text_input(key="_user_new").set_value(" bob").run()
    no_exceptions(at)
    assert at.session_state[ui.USER_KEY] == "alice"
    assert any("whitespace" in e.value for e in at.sidebar.error)
    at.text_input(key="_user_new").set_value("John Smith").run()   # the CLI's rule too
    no_exceptions(at)
    assert at.session_state[ui.USER_KEY] == "John Smith"


# ---------------------------------------------------------------------------------------
# start-up errors
# ---------------------------------------------------------------------------------------
def test_bad_configuration_shows_the_fix_not_a_traceback(app_env, monkeypatch):
    monkeypatch.setenv("LLM_TIMEOUT", "-3")
    reset_streamlit_caches()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exceptions(at)
    assert len(at.error) == 1
    msg = at.error[0].value
    assert "Configuration error" in msg and "LLM_TIMEOUT" in msg and ".env" in msg
    assert not at.chat_input                           # nothing else rendered


def test_store_built_with_another_embedder_explains_reembed(app_env, monkeypatch):
    engine().add(["Likes tea"], "alice", infer=False)   # store now holds e5 vectors
    reset_streamlit_caches()
    monkeypatch.setenv("EMBEDDER", "openai")
    monkeypatch.setenv("EMBEDDING_BASE_URL", app_env.llm.base_url)
    monkeypatch.setenv("EMBEDDING_MODEL", "scripted-embed")
    monkeypatch.setenv("EMBEDDING_API_KEY", "x")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exceptions(at)
    assert len(at.error) == 1
    assert "python main.py reembed" in at.error[0].value


def test_store_failure_while_running_is_shown_not_a_traceback(app_env, monkeypatch):
    from memory.store.base import StoreError

    at = new_app("alice")
    def locked(*args, **kwargs):
        raise StoreError("database is locked")
    monkeypatch.setattr(engine(), "threads", locked)
    at.run()
    no_exceptions(at)
    assert any("not available right now" in e.value and "database is locked" in e.value
               for e in at.error)
    assert any(":green[●] **Store**" in m.value for m in at.sidebar.markdown)  # status still drawn
    monkeypatch.undo()
    at.run()
    assert not at.error and at.chat_input


# ---- the optional login (issue 10): MEMORY_WEB_LOGIN=1 ---------------------------------------

def _issue_key(data_dir, user_id: str) -> str:
    from memory.api.keys import open_keystore

    keys = open_keystore(data_dir)
    try:
        keys.create_user(user_id)
        return keys.create_key(user_id, "web")[0]
    finally:
        keys.close()


def test_local_mode_says_it_is_unauthenticated(app_env):
    at = new_app("alice")
    no_exceptions(at)
    assert any("no login" in c.value for c in at.sidebar.caption)


def test_login_mode_shows_nothing_until_a_valid_key_then_only_that_user(app_env, monkeypatch):
    mem = engine()
    mem.add("Alice secret: likes plums", "alice", infer=False)
    mem.add("Bob secret: likes figs", "bob", infer=False)
    bob_key = _issue_key(app_env.data_dir, "bob")
    monkeypatch.setenv("MEMORY_WEB_LOGIN", "1")
    reset_streamlit_caches()
    at = new_app("alice")  # a stale session user must not be shown without a key
    no_exceptions(at)
    page = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert at.title[0].value.endswith("Sign in to Memory Chat")
    assert "plums" not in page and "figs" not in page and not at.chat_input
    assert not at.sidebar.text_input  # no "switch to user" box
    at.text_input[0].set_value("mk_nope_nope")
    at.button[0].click().run()
    assert any("not valid" in e.value for e in at.error) and not at.chat_input
    at.text_input[0].set_value(bob_key)
    at.button[0].click().run()
    no_exceptions(at)
    assert at.session_state[ui.USER_KEY] == "bob" and at.chat_input
    assert any("Signed in as **bob**" in m.value for m in at.sidebar.markdown)
    assert not at.sidebar.text_input


def _signed_in_as(monkeypatch, app_env, user: str) -> tuple[AppTest, str]:
    """Turn the login on, sign ``user`` in with a fresh key; return the app and the key."""
    key = _issue_key(app_env.data_dir, user)
    monkeypatch.setenv("MEMORY_WEB_LOGIN", "1")
    reset_streamlit_caches()
    at = new_app()
    at.text_input[0].set_value(key)
    at.button[0].click().run()
    no_exceptions(at)
    assert at.session_state[ui.USER_KEY] == user and at.chat_input
    return at, key


def test_a_revoked_key_ends_its_session_at_the_next_run(app_env, monkeypatch):
    from memory.api.keys import open_keystore

    engine().add("Bob secret: likes figs", "bob", infer=False)
    at, key = _signed_in_as(monkeypatch, app_env, "bob")
    assert "figs" in all_markdown(at)
    keys = open_keystore(app_env.data_dir)  # another "process": the CLI / admin API
    try:
        assert keys.revoke(keys.verify(key).key_id)
    finally:
        keys.close()
    at.switch_page("pages/2_Insights.py").run()  # the next click, on any page
    no_exceptions(at)
    assert at.title[0].value.endswith("Sign in to Memory Chat")
    assert any("revoked" in w.value for w in at.warning)
    assert "figs" not in all_markdown(at) and ui.USER_KEY not in at.session_state
    at.switch_page("app.py").run()
    assert at.title[0].value.endswith("Sign in to Memory Chat") and not at.chat_input
    at.text_input[0].set_value(key)  # the revoked key cannot sign in again
    at.button[0].click().run()
    assert any("not valid" in e.value for e in at.error) and not at.chat_input


def test_settings_with_login_shows_no_server_configuration_or_paths(app_env, monkeypatch):
    at, _ = _signed_in_as(monkeypatch, app_env, "bob")
    at.switch_page("pages/3_Settings.py").run()
    no_exceptions(at)
    assert not at.dataframe  # no configuration table
    shown = all_markdown(at) + "\n".join(c.value for c in at.code)
    where = str(app_env.data_dir.resolve())
    assert where not in shown and str(app_env.data_dir) not in shown
    assert "operator only" in shown
    assert at.download_button  # the user's own backup is still there
