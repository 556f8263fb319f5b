"""memory/safety/sanitize.py: one rule per concern, the same for every field, errors naming it."""
from __future__ import annotations

import math
from datetime import timezone

import pytest

from memory.safety import pii, sanitize
from memory.config import load_config
from memory.safety.sanitize import (LIMITS, clamp_importance, clean_datetime, clean_history_text,
                             clean_id, clean_memory_text, clean_message, clean_metadata,
                             clean_summary, clean_tags, clean_text, clean_title,
                             keep_raw_transcripts, redact)


def test_clean_text_rules():
    assert clean_text("Likes\x00green tea", "text") == "Likesgreen tea"   # NUL removed
    assert clean_text("Cafe\u0301", "text") == "Café"                      # NFC
    assert clean_text("  x  ", "text") == "  x  "                          # no strip unless asked
    assert clean_text("  x  ", "text", strip=True) == "x"
    assert clean_text("", "metadata.note") == ""
    with pytest.raises(ValueError, match=r"^metadata\.note: contains a lone surrogate \(U\+D800\)"):
        clean_text("ok\ud800", "metadata.note")
    with pytest.raises(ValueError, match=r"^text: must be text, got int$"):
        clean_text(123, "text")
    with pytest.raises(ValueError, match=r"^message: is empty$"):
        clean_text(" \x00 ", "message", required=True)


@pytest.mark.parametrize("field, limit", sorted(LIMITS.items()))
def test_every_limit_is_enforced_at_its_size(field, limit):
    assert len(clean_text("a" * limit, field)) == limit
    with pytest.raises(ValueError, match=rf"^{field}: too long \({limit + 1:,} characters; the limit is {limit:,}\)"):
        clean_text("a" * (limit + 1), field)


def test_limit_follows_the_last_path_part():
    assert LIMITS["message"] == 20_000 == load_config(env_file=None).memory_max_message_chars
    with pytest.raises(ValueError, match=r"^threads\[2\]\.title: too long"):
        clean_text("t" * 201, "threads[2].title")
    with pytest.raises(ValueError, match=r"^memories\[0\]\.text: too long"):
        clean_memory_text("x" * 5_000_000, "memories[0].text")     # the 5 MB memory of issue 9


def test_persisted_texts_are_redacted():
    assert clean_memory_text(" Call me at 13812345678 ") == "Call me at [PHONE]"
    assert clean_history_text("card 4111 1111 1111 1111") == "card [BANK_CARD]"
    assert clean_history_text(None) is None
    with pytest.raises(ValueError, match=r"^history\.old_text: must be text, got int"):
        clean_history_text(123, "history.old_text")
    assert clean_title("call\n13812345678") == "call [PHONE]"
    assert clean_summary("Lin's mail is lin@example.com") == "Lin's mail is [EMAIL]"
    assert clean_message("Call me at 13812345678") == "Call me at [PHONE]"
    assert clean_message("Call me at 13812345678", keep_raw=True) == "Call me at 13812345678"
    with pytest.raises(ValueError, match=r"^title: is empty"):
        clean_title(" \n ")


def test_keep_raw_transcripts_setting(monkeypatch):
    assert keep_raw_transcripts(load_config(env_file=None)) is False
    monkeypatch.setenv("MEMORY_KEEP_RAW_TRANSCRIPTS", "true")
    assert keep_raw_transcripts(load_config(env_file=None)) is True
    assert keep_raw_transcripts(object()) is False


def test_redact_fails_closed_naming_the_field(monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("broken")
    monkeypatch.setattr(pii, "PhoneNumberMatcher", boom)
    with pytest.raises(pii.PIIError, match=r"^metadata\.note: PII check failed \(phone"):
        clean_metadata({"note": "call 13812345678"})
    with pytest.raises(ValueError, match=r"^message: PII check failed"):
        redact("call 13812345678", "message")


@pytest.mark.parametrize("value, expected", [
    (None, 3), (1, 1), (5, 5), (99, 5), (-5, 1), (10 ** 30, 5), (-10 ** 30, 1),
    (2.6, 3), ("4", 4), (" 2 ", 2), ("1e9", 5),
])
def test_clamp_importance(value, expected):
    assert clamp_importance(value) == expected


@pytest.mark.parametrize("value", ["abc", True, math.nan, math.inf, [3], {"x": 1}, ""])
def test_importance_refused(value):
    with pytest.raises(ValueError, match=r"^memories\[301\]\.importance: must be a"):
        clamp_importance(value, "memories[301].importance")


def test_clean_tags():
    assert clean_tags(None) == []
    assert clean_tags(["home", " home ", "", "big   city", "13812345678"]) == \
        ["home", "big city", "[PHONE]"]
    with pytest.raises(ValueError, match=r"^tags: must be a list of strings, got str$"):
        clean_tags("abc")                                  # never ['a', 'b', 'c']
    with pytest.raises(ValueError, match=r"^tags\[1\]: must be text, got int$"):
        clean_tags(["ok", 5])
    with pytest.raises(ValueError, match=r"^tags\[0\]: too long"):
        clean_tags(["x" * 65])
    with pytest.raises(ValueError, match=r"^tags: too many tags \(33"):
        clean_tags([f"t{i}" for i in range(33)])


def test_clean_metadata():
    meta = {"note": "ID 110101199003071233", "context": "mail me at a@example.org",
            "n": 3, "ok": True, "none": None, "f": 1.5,
            "nested": {"list": ["13812345678", 1, {"deep": "x\x00y"}]}}
    assert clean_metadata(meta) == {
        "note": "ID [ID_NUMBER]", "context": "mail me at [EMAIL]", "n": 3, "ok": True,
        "none": None, "f": 1.5, "nested": {"list": ["[PHONE]", 1, {"deep": "xy"}]}}
    assert clean_metadata(None) == {}


@pytest.mark.parametrize("value, message", [
    (5, r"^metadata: must be a JSON object, got int$"),
    ("x", r"^metadata: must be a JSON object, got str$"),
    ([1], r"^metadata: must be a JSON object, got list$"),
    ({"note": "a\ud800"}, r"^metadata\.note: contains a lone surrogate"),
    ({1: "x"}, r"^metadata: keys must be text, got int$"),
    ({"n": 10 ** 30}, r"^metadata\.n: number out of range"),
    ({"f": math.nan}, r"^metadata\.f: must be a finite number$"),
    ({"s": {1, 2}}, r"^metadata\.s: not a JSON value \(set\)$"),
    ({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}, r"^metadata\.a\.b\.c\.d\.e: nested too deep"),
    ({"l": list(range(1001))}, r"^metadata\.l: too many items"),
    ({"big": "x" * 20_001}, r"^metadata\.big: too long"),
    ({f"k{i}": "x" * 20_000 for i in range(4)}, r"^metadata: too large"),
])
def test_metadata_refused(value, message):
    with pytest.raises(ValueError, match=message):
        clean_metadata(value)


def test_clean_id_and_datetime():
    assert clean_id("a" * 32, "memories[0].id") == "a" * 32
    for bad, message in [({"x": 1}, "must be text, got dict"), ("", "must be 1..128"),
                         ("a\u202eb", "must hold printable"), ("a\nb", "must hold printable"),
                         ("x" * 129, "must be 1..128")]:
        with pytest.raises(ValueError, match=rf"^threads\[0\]\.id: {message}"):
            clean_id(bad, "threads[0].id")
    when = clean_datetime("2024-05-08T10:00:00+08:00", "threads[0].created_at")
    assert when.tzinfo == timezone.utc and when.hour == 2
    assert clean_datetime(None) is None
    for bad in ["not a date", 5, ["2024"]]:
        with pytest.raises(ValueError, match=r"^threads\[0\]\.created_at: not an ISO date"):
            clean_datetime(bad, "threads[0].created_at")


def test_module_is_within_the_size_rule():
    from pathlib import Path
    assert len(Path(sanitize.__file__).read_text(encoding="utf-8").splitlines()) <= 400


def test_invisible_controls_are_removed_from_every_stored_text():
    invisible = ("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"   # bidi
                 "\u200b\u200c\u200d\u2060\ufeff"                            # zero-width, BOM
                 + "".join(map(chr, range(0x80, 0xA0))))                     # C1 controls
    assert sanitize.INVISIBLE == frozenset(invisible)
    dirty = "".join(f"{ch}a" for ch in invisible) + "\tb\nc é"
    assert clean_text(dirty, "text") == "a" * len(invisible) + "\tb\nc é"  # tab, newline kept
    assert sanitize.strip_invisible("\u202egnp.exe") == "gnp.exe"
    assert clean_memory_text("Likes\u200b green\u202e tea\x85") == "Likes green tea"
    assert clean_message("hi\u2066 there\ufeff") == "hi there"
    assert clean_title("Pl\u200dans\u202e") == "Plans"
    assert clean_summary("sum\u2060mary") == "summary"
    assert clean_history_text("ol\u200cd") == "old"
    assert clean_tags(["dr\u202eink", "\u200b"]) == ["drink"]  # a tag of nothing is dropped
    assert clean_metadata({"no\u200bte": "va\u202elue"}) == {"note": "value"}
    with pytest.raises(ValueError, match=r"^text: is empty"):
        clean_memory_text("\u200b\u202e")
