"""Unit tests of the webui package used by the chat page: the user-id rule, the recent
users file, the formatting helpers and the start-up error messages (no app run)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

import webui as ui


# ---------------------------------------------------------------------------------------
# webui unit tests
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw,expected", [("alice", "alice"), ("John Smith", "John Smith"),
                                          ("张三", "张三"), ("a.b+c@d-e_f", "a.b+c@d-e_f"),
                                          ("e\u0301", "\u00e9")])
def test_normalize_user_id_is_the_engine_rule(raw, expected):
    assert ui.normalize_user_id(raw) == expected


@pytest.mark.parametrize("raw", ["", " bob", "bob ", "x" * 129, ".", "..", "tab\there",
                                 "del\x7f", "rlo\u202eevil", "\ud800"])
def test_normalize_user_id_rejects(raw):
    with pytest.raises(ValueError):
        ui.normalize_user_id(raw)


def test_recent_users_file_roundtrip_and_corruption(tmp_path):
    assert ui.load_recent_users(tmp_path) == []
    ui.remember_user(tmp_path, "alice")
    ui.remember_user(tmp_path, "bob")
    assert ui.remember_user(tmp_path, "alice") == ["alice", "bob"]
    assert json.loads((tmp_path / "recent_users.json").read_text()) == ["alice", "bob"]
    assert ui.forget_user(tmp_path, "alice") == ["bob"]
    (tmp_path / "recent_users.json").write_text("{not json")
    assert ui.load_recent_users(tmp_path) == []
    (tmp_path / "recent_users.json").write_text(json.dumps(["ok", " bad id", 3, "ok"]))
    assert ui.load_recent_users(tmp_path) == ["ok"]
    for i in range(20):
        ui.remember_user(tmp_path, f"u{i}")
    assert len(ui.load_recent_users(tmp_path)) == ui.RECENT_USERS_MAX


def test_ago_and_formatting_helpers():
    now = datetime(2025, 1, 31, 12, 0, tzinfo=timezone.utc)
    assert ui.ago(now - timedelta(seconds=5), now) == "just now"
    assert ui.ago(now - timedelta(minutes=5), now) == "5 min ago"
    assert ui.ago(now - timedelta(hours=3), now) == "3 h ago"
    assert ui.ago(now - timedelta(days=2), now) == "2 d ago"
    assert ui.ago(now - timedelta(days=90), now) == "2024-11-02"
    assert ui.ago(None) == ""
    assert ui.importance_stars(4) == "★★★★☆" and ui.importance_stars(99) == "★★★★★"
    assert ui.event_badge("ADD") == ":green-badge[added]"
    assert ui.event_badge("delete") == ":red-badge[deleted]"
    assert ui.md_escape(":red[x] *y*") == "\\:red\\[x\\] \\*y\\*"
    assert ui.human_bytes(512) == "512 B" and ui.human_bytes(2048) == "2.0 KB"
    md = ui.profile_markdown("About:\n- Name is [Lin](http://x)\nPreferences:\n- Likes :red[tea]")
    assert md == ("**About**\n- Name is \\[Lin\\]\\(http\\://x\\)\n\n**Preferences**\n"
                  "- Likes \\:red\\[tea\\]")


def test_init_error_messages_name_the_fix():
    from memory.config import ConfigError
    from memory.store.base import EmbedderMismatchError, StoreError

    assert "`.env`" in ui.init_error_message(ConfigError("LLM_TIMEOUT: bad"))
    assert "reembed" in ui.init_error_message(EmbedderMismatchError("e5 vs use"))
    assert "MEMORY_DATA_DIR" in ui.init_error_message(StoreError("database is locked"))
    assert "pip install -r reqs.txt" in ui.init_error_message(ImportError("No module named x"))
    assert "RuntimeError" in ui.init_error_message(RuntimeError("boom"))
