"""AppTest tests of the secondary pages (Memories, Insights, Settings) and of the page
helpers in the webui package. Same real parts as tests/test_app.py: temp SQLite store,
default (USE-multilingual) embedder, scripted OpenAI-compatible server on 127.0.0.1."""
from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timezone

import pytest
from streamlit.testing.v1 import AppTest

import webui as ui
from tests.app_helpers import APP, TIMEOUT, all_markdown, engine, no_exceptions

MEMORIES = "pages/1_Memories.py"
INSIGHTS = "pages/2_Insights.py"
SETTINGS = "pages/3_Settings.py"


def open_page(page: str, user: str) -> AppTest:
    """Start the app as ``user`` and switch to ``page``."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[ui.USER_KEY] = user
    at.run()
    at.switch_page(page).run()
    no_exceptions(at)
    return at


def seed(mem) -> dict[str, str]:
    """Give alice four memories (two dates, two types, tags) and bob one; return
    alice's ids by text."""
    mem.add(["Lives in Hangzhou", "Has a cat named Xiaolan"], "alice", infer=False,
            created_at=datetime(2024, 3, 1, 9, tzinfo=timezone.utc), tags=["home"])
    mem.add(["Prefers green tea", "Likes dark mode"], "alice", infer=False,
            memory_type="preference", tags=["taste"],
            created_at=datetime(2024, 6, 15, 9, tzinfo=timezone.utc))
    mem.add(["Bob's bank PIN hint"], "bob", infer=False)
    return {r.text: r.id for r in mem.list("alice")}


def table_texts(at: AppTest) -> list[str]:
    return list(at.data_editor[0].value["text"]) if at.data_editor else []


# ---------------------------------------------------------------------------------------
# Memories
# ---------------------------------------------------------------------------------------
def test_memories_table_shows_only_this_users_memories_newest_first(app_env):
    seed(engine())
    at = open_page(MEMORIES, "alice")
    texts = table_texts(at)
    assert sorted(texts) == sorted(["Lives in Hangzhou", "Has a cat named Xiaolan",
                                    "Prefers green tea", "Likes dark mode"])
    assert set(texts[:2]) == {"Prefers green tea", "Likes dark mode"}   # June before March
    assert "Bob's bank PIN hint" not in texts
    assert "Showing data of user **alice** only." in all_markdown(at)
    bob = open_page(MEMORIES, "bob")
    assert table_texts(bob) == ["Bob's bank PIN hint"]


def test_memories_search_type_and_date_filters(app_env):
    seed(engine())
    at = open_page(MEMORIES, "alice")
    at.multiselect(key="mem_types").select("preference").run()
    assert sorted(table_texts(at)) == ["Likes dark mode", "Prefers green tea"]
    at.multiselect(key="mem_types").unselect("preference").run()
    at.date_input(key="mem_dates").set_value((date(2024, 2, 1), date(2024, 3, 31))).run()
    no_exceptions(at)
    assert sorted(table_texts(at)) == ["Has a cat named Xiaolan", "Lives in Hangzhou"]
    at.date_input(key="mem_dates").set_value(()).run()
    # hybrid search: the keyword hit ranks first and the score column appears
    at.text_input(key="mem_search").set_value("Hangzhou").run()
    no_exceptions(at)
    assert table_texts(at)[0] == "Lives in Hangzhou"
    assert "score" in at.data_editor[0].value.columns
    assert any("best matches" in c.value for c in at.caption)
    # FTS operators are plain text, never an error
    at.text_input(key="mem_search").set_value('tea AND "dark* NEAR(') .run()
    no_exceptions(at)
    assert not at.error


def test_memories_inline_edit_and_delete_go_through_the_api_with_history(app_env):
    ids = seed(engine())
    at = open_page(MEMORIES, "alice")
    texts = table_texts(at)
    row_city, row_tea = texts.index("Lives in Hangzhou"), texts.index("Prefers green tea")
    key = at.data_editor[0].key
    at.session_state[key] = {"edited_rows": {row_city: {"text": "Lives in Shanghai",
                                                        "importance": 5, "tags": "home, city"},
                                             row_tea: {"delete": True}},
                             "added_rows": [], "deleted_rows": []}
    at.run()
    assert at.button(key="mem_save").label == "Save changes (2)"
    at.button(key="mem_save").click().run()
    no_exceptions(at)
    mem = engine()
    rec = mem.get(ids["Lives in Hangzhou"], "alice")
    assert rec.text == "Lives in Shanghai" and rec.importance == 5
    assert rec.tags == ["home", "city"]
    assert mem.get(ids["Prefers green tea"], "alice") is None
    assert any("1 updated, 1 deleted" in t.value for t in at.toast)
    assert "Lives in Shanghai" in table_texts(at)
    # the edit is in the history as a user edit; the history table shows it
    hist = mem.history(ids["Lives in Hangzhou"], "alice")
    assert [(e.event, e.actor) for e in hist][-1] == ("UPDATE", "user")
    assert hist[-1].old_text == "Lives in Hangzhou" and hist[-1].new_text == "Lives in Shanghai"
    at.selectbox(key="history_pick").select(ids["Lives in Hangzhou"]).run()
    table = at.dataframe[1].value
    assert list(table["event"]) == ["ADD", "UPDATE"] and list(table["by"]) == ["user", "user"]
    # the search index follows the edit
    at.text_input(key="mem_search").set_value("Shanghai").run()
    assert table_texts(at)[0] == "Lives in Shanghai"


def test_memories_invalid_edit_is_reported_and_others_still_saved(app_env):
    ids = seed(engine())
    at = open_page(MEMORIES, "alice")
    texts = table_texts(at)
    key = at.data_editor[0].key
    at.session_state[key] = {"edited_rows": {texts.index("Likes dark mode"): {"text": "   "},
                                             texts.index("Lives in Hangzhou"): {"type": "fact"}},
                             "added_rows": [], "deleted_rows": []}
    at.run()
    at.button(key="mem_save").click().run()
    no_exceptions(at)
    assert any("Likes dark mode" in e.value and "empty" in e.value for e in at.error)
    assert engine().get(ids["Likes dark mode"], "alice").text == "Likes dark mode"


def test_memories_delete_single_from_history_panel(app_env):
    ids = seed(engine())
    at = open_page(MEMORIES, "alice")
    at.selectbox(key="history_pick").select(ids["Has a cat named Xiaolan"]).run()
    at.button(key="mem_delete_one").click().run()
    no_exceptions(at)
    assert engine().get(ids["Has a cat named Xiaolan"], "alice") is None
    assert "Has a cat named Xiaolan" not in table_texts(at)


def test_memories_import_counts_and_skips_duplicates(app_env):
    mem = engine()
    seed(mem)
    export = mem.export("bob")
    export["memories"].append(dict(export["memories"][0], id="x" * 32,
                                   text="Lives in Hangzhou"))          # alice has it
    at = open_page(MEMORIES, "alice")
    at.file_uploader(key="import_file").set_value(
        ("bob.json", json.dumps(export).encode(), "application/json")).run()
    at.button(key="import_go").click().run()
    no_exceptions(at)
    assert any("Imported **1** memories, skipped **1** duplicates" in s.value
               for s in at.success)
    assert "Bob's bank PIN hint" in {r.text for r in mem.list("alice")}
    assert mem.count("bob") == 1                                       # source untouched
    # importing the same file again imports nothing new
    at.button(key="import_go").click().run()
    assert any("Imported **0** memories, skipped **2** duplicates" in s.value
               for s in at.success)


@pytest.mark.parametrize("payload,expected", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"history": []}', "no 'memories' list"),
    (json.dumps({"memories": [{"text": "x", "type": "gossip"}]}).encode(),
     "memories[0].type: must be one of"),
    (json.dumps({"memories": [{"text": "x", "created_at": "yesterday"}]}).encode(),
     "memories[0].created_at: not an ISO date"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
])
def test_memories_import_rejects_bad_files_without_writing(app_env, payload, expected):
    seed(engine())
    at = open_page(MEMORIES, "alice")
    at.file_uploader(key="import_file").set_value(("bad.json", payload, "application/json")).run()
    at.button(key="import_go").click().run()
    no_exceptions(at)
    assert any("Nothing was imported" in e.value and expected in e.value for e in at.error)
    assert engine().count("alice") == 4


def test_memories_export_buttons_present(app_env):
    seed(engine())
    at = open_page(MEMORIES, "alice")
    labels = {b.label for b in at.get("download_button")}
    assert labels == {"Export JSON", "Export CSV"}


def test_export_csv_and_json_text_roundtrip(app_env):
    mem = engine()
    seed(mem)
    export = mem.export("alice")
    rows = list(csv.DictReader(io.StringIO(ui.export_csv_text(export))))
    assert sorted(r["text"] for r in rows) == sorted(m["text"] for m in export["memories"])
    assert {r["tags"] for r in rows} == {"home", "taste"}
    assert all(json.loads(r["metadata"]) == {} for r in rows)
    assert json.loads(ui.export_json_text(export)) == export
    assert "bob" not in ui.export_json_text(export).lower()
    empty = ui.export_csv_text({"memories": []})
    assert empty.strip() == ",".join(ui.CSV_COLUMNS)


def test_memories_page_empty_state(app_env):
    at = open_page(MEMORIES, "nobody")
    assert any("No memories yet" in i.value for i in at.info)
    assert not at.data_editor


# ---------------------------------------------------------------------------------------
# Insights
# ---------------------------------------------------------------------------------------
def test_insights_profile_metrics_and_charts(app_env):
    mem = engine()
    seed(mem)
    # give one memory recalls through a real chat turn (the engine touches what it used)
    turn = mem.chat("Where do I live? Tell me about Hangzhou", "alice")
    assert turn.run()
    at = open_page(INSIGHTS, "alice")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Memories"] == "4" and metrics["Types used"] == "2"
    assert int(metrics["Times recalled"]) >= 1
    assert "**Preferences**" in all_markdown(at) and "Prefers green tea" in all_markdown(at)
    charts = at.get("vega_lite_chart")
    assert len(charts) == 3                      # over time, by type, by tag
    recalled = at.dataframe[0].value
    assert "Lives in Hangzhou" in list(recalled["memory"])
    assert "Bob's bank PIN hint" not in all_markdown(at)


def test_insights_empty_state(app_env):
    at = open_page(INSIGHTS, "nobody")
    assert any("No memories yet" in i.value for i in at.info)
    assert {m.label: m.value for m in at.metric}["Memories"] == "0"
    assert not at.get("vega_lite_chart")


# ---------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------
def test_settings_shows_masked_config_health_and_storage(app_env):
    at = open_page(SETTINGS, "alice")
    cfg = at.dataframe[0].value
    values = dict(zip(cfg["setting"], cfg["value"]))
    assert values["OPENAI_API_KEY"] == "***"
    assert "test-key-123" not in cfg.to_string()
    assert values["MEMORY_DATA_DIR"] == str(app_env.data_dir)
    md = all_markdown(at)
    assert md.count(":green-badge[ok]") == 3
    assert any(m.label == "Latency" and m.value.endswith(" ms") for m in at.metric)
    assert str(app_env.data_dir.resolve()) in [c.value for c in at.code]
    size = {m.label: m.value for m in at.metric}["Data directory size"]
    assert size.endswith(("KB", "MB")) and size != "0 B"


def test_settings_health_reports_a_dead_llm(app_env, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    from tests.app_helpers import reset_streamlit_caches
    reset_streamlit_caches()
    at = open_page(SETTINGS, "alice")
    md = all_markdown(at)
    assert ":red-badge[down]" in md and md.count(":green-badge[ok]") == 2
    assert any("not reachable" in e.value for e in at.error)


def test_settings_backup_and_restore_with_replace(app_env):
    mem = engine()
    seed(mem)
    backup = mem.export("alice")
    mem.delete(next(r.id for r in mem.list("alice") if r.text == "Likes dark mode"), "alice")
    mem.add(["Temporary note"], "alice", infer=False)
    at = open_page(SETTINGS, "alice")
    assert at.get("download_button")[0].label == "Download backup"
    at.file_uploader(key="restore_file").set_value(
        ("backup.json", json.dumps(backup).encode(), "application/json")).run()
    at.checkbox(key="restore_replace").check().run()
    at.button(key="restore_go").click().run()
    no_exceptions(at)
    texts = sorted(r.text for r in mem.list("alice"))
    assert texts == sorted(["Lives in Hangzhou", "Has a cat named Xiaolan",
                            "Prefers green tea", "Likes dark mode"])
    assert mem.count("bob") == 1
    assert any("Restored **4** memories (after deleting 4)" in s.value for s in at.success)


def test_settings_bad_restore_file_deletes_nothing(app_env):
    mem = engine()
    seed(mem)
    at = open_page(SETTINGS, "alice")
    at.file_uploader(key="restore_file").set_value(
        ("b.json", json.dumps({"memories": [{"text": 5}]}).encode(), "application/json")).run()
    at.checkbox(key="restore_replace").check().run()
    at.button(key="restore_go").click().run()
    no_exceptions(at)
    assert any("Nothing was restored" in e.value for e in at.error)
    assert mem.count("alice") == 4


# ---------------------------------------------------------------------------------------
# user scoping across pages
# ---------------------------------------------------------------------------------------
def test_user_switch_on_a_page_applies_everywhere(app_env):
    seed(engine())
    at = open_page(MEMORIES, "alice")
    at.text_input(key="_user_new").set_value("bob").run()
    no_exceptions(at)
    assert table_texts(at) == ["Bob's bank PIN hint"]
    at.switch_page(INSIGHTS).run()
    assert {m.label: m.value for m in at.metric}["Memories"] == "1"
    assert "Prefers green tea" not in all_markdown(at)


@pytest.mark.parametrize("page", [MEMORIES, INSIGHTS, SETTINGS])
def test_pages_show_store_failures_clearly(app_env, monkeypatch, page):
    from memory.store.base import StoreError

    seed(engine())
    def lost(*args, **kwargs):
        raise StoreError("lost connection to TiDB")
    monkeypatch.setattr(engine(), "count", lost)
    at = open_page(page, "alice")
    assert any("not available right now" in e.value and "lost connection" in e.value
               for e in at.error)


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def test_date_range_and_parse_tags():
    assert ui.date_range(()) == (None, None)
    since, until = ui.date_range((date(2024, 1, 2),))
    assert since == datetime(2024, 1, 2, tzinfo=timezone.utc)
    assert until.date() == date(2024, 1, 2) and until.hour == 23
    since, until = ui.date_range((date(2024, 1, 2), date(2024, 2, 3)))
    assert (since.date(), until.date()) == (date(2024, 1, 2), date(2024, 2, 3))
    assert ui.parse_tags(" a, b ,a,, c  d ") == ["a", "b", "c d"]
    assert len(ui.parse_tags(",".join(str(i) for i in range(20)))) == 8


def test_parse_export_limits():
    with pytest.raises(ValueError, match="limit"):
        ui.parse_export(b"{}" * 10, max_bytes=5)
    assert ui.parse_export('\ufeff{"memories": []}'.encode("utf-8")) == {"memories": []}
    with pytest.raises(ValueError, match=r"memories\[0\]\.importance: must be 1\.\.5"):
        ui.parse_export(b'{"memories": [{"text": "x", "importance": 9}]}')


def test_files_tab_lists_resources_and_the_from_filter_shows_one_files_memories(app_env):
    mem = engine()
    seed(mem)
    res = mem.add_resource(b"About me\n\nMy cat is called Mochi. I love her.\n", "alice",
                           filename="about-me.txt")
    assert res.status == "ready", res.error
    mem.add_resource(b"Notes of bob: I live in Oslo.\n", "bob", filename="bob.txt")
    at = open_page(MEMORIES, "alice")
    files = next(d.value for d in at.dataframe if "file" in d.value.columns)  # the Files tab
    assert list(files["file"]) == ["about-me.txt"] and files["memories"][0] >= 1
    scope = next(s for s in at.selectbox if s.key == "mem_scope")
    assert list(scope.options) == ["Chat and files", "Chat only", "File: about-me.txt"]
    scope.set_value(f"resource:{res.id}").run()
    no_exceptions(at)
    texts = table_texts(at)
    assert texts and all("Mochi" in t for t in texts)
    scope.set_value("chat").run()
    assert "Lives in Hangzhou" in table_texts(at) and not any("Mochi" in t for t in table_texts(at))
