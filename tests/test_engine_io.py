"""The engine's boundaries: the one user-id rule, import validation and all-or-nothing
import / restore, safe image storage, and the turn's per-turn error state. Real SQLite,
real embedder, scripted LLM server (tests/fake_llm.py)."""
from __future__ import annotations

import json
import stat

import pytest

from memory import Memory
from memory.backup import parse_export, validate_export
from memory.chat.images import image_path_of_user, save_image, user_folder
from memory.store.base import StoreError
from memory.chat.turn import ChatTurn
from memory.types import SearchResult
from memory.safety.users import check_user_id
from tests.fake_llm import HTTPError, ScriptedLLM, has_image, is_json_request, scripted_config
from tests.test_memory import brain

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture()
def llm():
    with ScriptedLLM(lambda req: "A grey cat on a sofa." if has_image(req) else brain(req)) as s:
        yield s


@pytest.fixture()
def mem(tmp_path, llm, embedder):  # noqa: F811
    m = Memory(scripted_config(tmp_path, llm, vision_model="scripted-vision"), embedder=embedder)
    yield m
    m.close()


# ---- user ids ----------------------------------------------------------------------------
@pytest.mark.parametrize("uid", ["alice", "John Smith", "张三", "a.b+c@d-e_f", "x" * 128,
                                 "...", "a/b", "emoji 🍵"])
def test_user_id_rule_accepts(uid):
    assert check_user_id(uid) == uid


@pytest.mark.parametrize("uid,words", [
    ("", "non-empty"), (None, "non-empty"), (5, "non-empty"), ("x" * 129, "too long"),
    (".", "'.' or '..'"), ("..", "'.' or '..'"), (" bob", "whitespace"), ("bob ", "whitespace"),
    ("bob\n", "whitespace"), ("a\tb", "control"), ("a\x00b", "control"), ("a\x7fb", "U+007F"),
    ("a\x85b", "control"), ("a\u202eb", "U+202E"), ("a\u202ab", "text-direction"),
    ("a\u2066b", "U+2066"), ("a\u2069b", "text-direction"), ("a\ud800b", "surrogate"),
])
def test_user_id_rule_rejects_with_a_reason(uid, words):
    with pytest.raises(ValueError, match=None) as exc:
        check_user_id(uid)
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_user_id_is_nfc_and_shared_by_the_api(mem):
    assert check_user_id("e\u0301") == "\u00e9"
    mem.add("Likes tea", "John Smith", infer=False)
    assert mem.count("John Smith") == 1
    for bad in (" John Smith", "..", "x\u202e"):
        with pytest.raises(ValueError):
            mem.count(bad)


# ---- import validation -------------------------------------------------------------------
@pytest.mark.parametrize("data,message", [
    ({"memories": [{"text": "ok"}] * 301 + [{"text": "x", "importance": 10**30}]},
     "memories[301].importance: must be 1..5"),
    ({"memories": [{"text": "x", "importance": "abc"}]}, "memories[0].importance: must be 1..5"),
    ({"memories": [{"text": "x", "importance": -5}]}, "memories[0].importance: must be 1..5"),
    ({"memories": [{"text": "x", "importance": True}]}, "memories[0].importance: must be 1..5"),
    ({"memories": [{"text": "x"}] * 2 + [{"text": "x", "metadata": 5}]},
     "memories[2].metadata: must be a JSON object"),
    ({"memories": [{"text": "x", "tags": "abc"}]}, "memories[0].tags: must be a list of strings"),
    ({"memories": [{"text": "x", "tags": [1]}]}, "memories[0].tags[0]: must be text, got int"),
    ({"memories": [{"text": "x", "thread_id": {"a": 1}}]}, "memories[0].thread_id: must be text, got dict"),
    ({"memories": [{"text": 5}]}, "memories[0].text: must be text, got int"),
    ({"memories": [{"type": "fact"}]}, "memories[0].text: is missing"),
    ({"memories": [{"text": "x" * 20001}]}, "memories[0].text: too long (20,001 characters; the limit is 20,000)"),
    ({"memories": [{"text": "a\ud800"}]}, "memories[0].text: contains a lone surrogate (U+D800)"),
    ({"memories": [{"text": "x", "type": "gossip"}]}, "memories[0].type: must be one of"),
    ({"memories": [{"text": "x", "created_at": "yesterday"}]}, "memories[0].created_at: not an ISO date"),
    ({"memories": [{"text": "x", "metadata": {"n": float("nan")}}]}, "memories[0].metadata"),
    ({"memories": [], "history": [{"memory_id": "m", "old_text": 123}]},
     "history[0].old_text: must be text, got int"),
    ({"memories": [], "history": [{"old_text": "x"}]}, "history[0].memory_id: is missing"),
    ({"memories": [], "threads": [{"id": "t", "created_at": "not a date"}]},
     "threads[0].created_at: not an ISO date"),
    ({"memories": [], "threads": [{"id": "t", "messages": [{"content": "x" * 20001}]}]},
     "threads[0].messages[0].content: too long"),
    ({"memories": [], "threads": [{"id": "t", "messages": [{"content": "x", "role": "bot"}]}]},
     "threads[0].messages[0].role: must be one of"),
    ({"memories": [], "threads": "x"}, "threads: must be a list"),
    ({"memories": [], "profile": 5}, "profile: must be text, got int"),
    ([], "JSON object"),
    ({"memories": {}}, "'memories' list"),
])
def test_malformed_import_names_item_and_field_and_writes_nothing(mem, data, message):
    mem.add("Likes tea", "seven", infer=False)
    before = json.dumps(mem.export("seven")["memories"])
    with pytest.raises(ValueError) as exc:
        mem.import_(data, "seven")
    assert message in str(exc.value)
    with pytest.raises(ValueError):
        mem.import_(data, "seven", replace=True)   # a bad file deletes nothing either
    assert json.dumps(mem.export("seven")["memories"]) == before
    assert mem.threads("seven") == []


def test_one_validator_for_files_and_dicts():
    raw = json.dumps({"memories": [{"text": "x", "tags": "abc"}]}).encode()
    with pytest.raises(ValueError, match=r"memories\[0\]\.tags: must be a list of strings"):
        parse_export(raw)
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_export(b"{nope")
    validate_export({"memories": [{"text": "ok", "importance": 5, "tags": ["a"]}]})


def test_restore_with_replace_is_exact(mem):
    mem.add(["Likes tea", "Plays chess"], "seven", infer=False)
    backup = json.loads(json.dumps(mem.export("seven")))
    mem.add("Hates rain", "seven", infer=False)
    report = mem.import_(backup, "seven", replace=True)
    assert report == {"imported": 2, "skipped": 0, "threads": 0, "deleted": 3}
    assert sorted(r.text for r in mem.list("seven")) == ["Likes tea", "Plays chess"]


def test_restore_with_replace_failing_midway_keeps_everything(mem, monkeypatch):
    mem.add(["Likes tea", "Plays chess"], "seven", infer=False)
    backup = json.loads(json.dumps(mem.export("seven")))
    backup["threads"] = [{"id": "t1", "title": "old chat", "messages": [{"content": "hi"}]}]

    def broken(message):
        raise StoreError("disk full")
    monkeypatch.setattr(mem.store, "add_message", broken)
    with pytest.raises(StoreError):
        mem.import_(backup, "seven", replace=True)
    monkeypatch.undo()
    assert sorted(r.text for r in mem.list("seven")) == ["Likes tea", "Plays chess"]
    assert mem.threads("seven") == [] and mem.profile("seven") == ""


def test_import_into_another_user_gets_fresh_ids(mem):
    mem.add("Likes tea", "seven", infer=False)
    data = mem.export("seven")
    data.pop("user_id")   # an old export: ids clash with seven's, the import retries
    assert mem.import_(data, "jane")["imported"] == 1
    assert mem.list("jane")[0].id != mem.list("seven")[0].id


# ---- images ------------------------------------------------------------------------------
def test_images_stay_in_their_users_folder(tmp_path):
    alice = save_image(tmp_path, "alice", PNG, "png")
    assert alice.parent == tmp_path / "images" / "alice"
    assert stat.S_IMODE(alice.stat().st_mode) == 0o600
    assert stat.S_IMODE(alice.parent.stat().st_mode) == 0o700
    for bad in ("..", ".", "", " alice"):
        with pytest.raises(ValueError):
            save_image(tmp_path, bad, PNG, "png")
        assert image_path_of_user(tmp_path, bad, str(alice)) is None
    assert image_path_of_user(tmp_path, "alice", str(alice)) == alice.resolve()
    assert image_path_of_user(tmp_path, "bob", str(alice)) is None
    # ids that are not plain names get a hashed folder: "alice/x" is not inside alice's
    odd = save_image(tmp_path, "alice/x", PNG, "png")
    assert odd.parent.parent == tmp_path / "images" and odd.parent.name.startswith("~")
    assert image_path_of_user(tmp_path, "alice", str(odd)) is None
    assert user_folder(tmp_path, "John Smith") != user_folder(tmp_path, "John_Smith")
    with pytest.raises(ValueError):
        save_image(tmp_path, "alice", PNG, "../png")
    (tmp_path / "images" / "alice" / "notes.txt").write_text("x")
    assert image_path_of_user(tmp_path, "alice", str(tmp_path / "images" / "alice" / "notes.txt")) is None


def test_chat_attaches_images_through_the_engine(mem, llm):
    turn = mem.chat("this is my cat", "seven", images=[("cat.png", PNG)])
    turn.run()
    first = mem.thread_messages("seven", turn.thread.id)[0]
    assert "[Attached image: A grey cat on a sofa.]" in first.content
    path = image_path_of_user(mem.config.memory_data_dir, "seven", first.metadata["image_path"])
    assert path is not None and path.read_bytes() == PNG
    assert turn.thread.title == "this is my cat"
    assert sum(has_image(b) for b in llm.chat_requests()) == 1
    with pytest.raises(ValueError, match="does not look like a PNG"):
        mem.chat("look", "seven", images=[("x.png", b"nope")])
    assert len(mem.threads("seven")) == 1   # nothing stored for the refused image


# ---- the turn ----------------------------------------------------------------------------
def test_turn_constructor_does_no_io():
    turn = ChatTurn(object(), "seven", object(), "hi", {}, used=SearchResult([], ""), prompt=[])
    assert turn.reply == "" and turn.error is None and not turn.done


def test_retrieval_error_is_shown_with_the_reply(mem, monkeypatch):
    def down(*a, **k):
        raise StoreError("database is locked")
    monkeypatch.setattr(mem, "search", down)
    turn = mem.chat("Who am I?", "seven")
    assert turn.run().startswith("I know nothing")
    assert "could not be searched" in turn.retrieval_error and "locked" in turn.retrieval_error
    reply = mem.thread_messages("seven", turn.thread.id)[-1]
    assert reply.metadata["retrieval_error"] == turn.retrieval_error


def test_failed_reply_does_not_ask_the_llm_again(mem, llm):
    llm.responder = lambda req: HTTPError(500)
    turn = mem.chat("Hi, I'm Seven. I work in Shanghai and love football.", "seven")
    assert turn.run() == "" and turn.error
    before = len(llm.requests)
    assert turn.changes() == [] and "reply failed" in turn.changes_error
    assert len(llm.requests) == before


def test_add_errors_are_per_call(mem, llm):
    llm.responder = lambda req: "{not json" if is_json_request(req) else "fine"
    failed = mem.add("Hi, I'm Seven. I work in Shanghai and love football.", "seven")
    llm.responder = brain
    ok = mem.add("Hi, I'm Seven. I work in Shanghai and love football.", "jane")
    assert failed == [] and "extraction skipped" in failed.error
    assert ok and ok.error is None


@pytest.mark.parametrize("call", [
    lambda m: m.list("seven", limit=10**30), lambda m: m.list("seven", limit=1.5),
    lambda m: m.list("seven", offset=-1), lambda m: m.search("tea", "seven", limit=0),
    lambda m: m.search(12345, "seven"), lambda m: m.threads("seven", limit=10**30),
])
def test_api_limits_and_types_are_checked(mem, call):
    with pytest.raises(ValueError):
        call(mem)


# ---- PII and the sanitising boundary on every write path ---------------------------------
PHONE, CARD, RIC = "13812345678", "4111 1111 1111 1111", "110101199003071233"


def _no_pii(*texts):
    for text in texts:
        assert PHONE not in text and CARD not in text and RIC not in text, text


def _backup_with_pii():
    return {"memories": [{"id": "m1", "text": f"Phone {PHONE}", "tags": [PHONE],
                          "metadata": {"note": f"ID {RIC}", "n": 3}}],
            "history": [{"memory_id": "m1", "event": "UPDATE", "old_text": f"card {CARD}",
                         "new_text": f"Phone {PHONE}", "at": "2024-01-01T00:00:00+00:00"}],
            "threads": [{"id": "t1", "title": f"call {PHONE}", "summary": f"card {CARD}",
                         "messages": [{"role": "user", "content": f"Call me at {PHONE}"},
                                      {"role": "assistant", "content": f"Card {CARD} noted"}]}]}


def test_import_redacts_every_stored_text(mem):
    assert mem.import_(_backup_with_pii(), "seven")["imported"] == 1
    data = mem.export("seven")
    [m] = data["memories"]
    assert m["text"] == "Phone [PHONE]" and m["tags"] == ["[PHONE]"]
    assert m["metadata"] == {"note": "ID [ID_NUMBER]", "n": 3}
    [ev] = data["history"]
    assert ev["old_text"] == "card [BANK_CARD]" and ev["new_text"] == "Phone [PHONE]"
    [t] = data["threads"]
    assert t["title"] == "call [PHONE]" and t["summary"] == "card [BANK_CARD]"
    assert [x["content"] for x in t["messages"]] == ["Call me at [PHONE]", "Card [BANK_CARD] noted"]


def test_keep_raw_transcripts_keeps_messages_only(tmp_path, llm, embedder):  # noqa: F811
    m = Memory(scripted_config(tmp_path, llm, memory_keep_raw_transcripts=True), embedder=embedder)
    try:
        m.import_(_backup_with_pii(), "seven")
        turn = m.chat(f"My number is {PHONE}", "seven")
        turn.run()
        [t_old, t_new] = sorted(m.threads("seven"), key=lambda t: t.id != "t1")
        assert [x.content for x in m.thread_messages("seven", "t1")][0] == f"Call me at {PHONE}"
        assert m.thread_messages("seven", turn.thread.id)[0].content == f"My number is {PHONE}"
        _no_pii(t_old.title, t_new.title, m.list("seven")[0].text)
    finally:
        m.close()


def test_chat_stores_messages_and_titles_redacted(mem):
    turn = mem.chat(f"call {PHONE} about card {CARD}", "seven")
    turn.run()
    turn.changes()
    stored = mem.thread_messages("seven", turn.thread.id)
    assert stored[0].content == "call [PHONE] about card [BANK_CARD]"
    assert mem.threads("seven")[0].title == "call [PHONE] about card [BANK_CARD]"
    _no_pii(*(m.content for m in stored), *(r.text for r in mem.list("seven")))
    t = mem.new_thread("seven", f"ring {PHONE}")
    assert t.title == "ring [PHONE]"
    assert mem.rename_thread("seven", t.id, f"ID {RIC}") and \
        {x.title for x in mem.threads("seven")} >= {"ID [ID_NUMBER]"}


def test_raw_add_cleans_metadata_tags_and_importance(mem):
    [c] = mem.add(f"Call {PHONE}", "seven", infer=False, importance=99, tags=[PHONE, "x"],
                  metadata={"note": f"ID {RIC}", "context": f"card {CARD}", "deep": {"a": [PHONE]}})
    rec = mem.get(c.id, "seven")
    assert rec.text == "Call [PHONE]" and rec.importance == 5 and rec.tags == ["[PHONE]", "x"]
    assert rec.metadata == {"note": "ID [ID_NUMBER]", "context": "card [BANK_CARD]",
                            "deep": {"a": ["[PHONE]"]}}
    [low] = mem.add("Likes tea", "seven", infer=False, importance=-5)
    assert mem.get(low.id, "seven").importance == 1
    for bad in (dict(tags="abc"), dict(tags=[1]), dict(metadata=5), dict(importance="abc"),
                dict(metadata={"x": float("nan")})):
        with pytest.raises(ValueError):
            mem.add("Likes rain", "seven", infer=False, **bad)
    with pytest.raises(ValueError, match="lone surrogate"):
        mem.add(["fine", "bad \ud800"], "seven", infer=False)   # checked before any write
    assert mem.count("seven") == 2


def test_update_cleans_each_field(mem):
    [c] = mem.add("Likes tea", "seven", infer=False)
    rec = mem.update(c.id, f"Likes tea, call {PHONE}", "seven", importance=0,
                     tags=["a"], metadata={"k": f"card {CARD}"}, expires_at="2999-01-01")
    assert rec.text == "Likes tea, call [PHONE]" and rec.importance == 1
    assert rec.metadata == {"k": "card [BANK_CARD]"} and rec.expires_at.year == 2999
    for bad in (dict(tags="abc"), dict(expires_at=12345), dict(expires_at="soon"),
                dict(metadata=[1])):
        with pytest.raises(ValueError):
            mem.update(c.id, None, "seven", **bad)
    with pytest.raises(ValueError):
        mem.update(c.id, "bad \ud800", "seven")
    assert mem.get(c.id, "seven").text == "Likes tea, call [PHONE]"


@pytest.mark.parametrize("call", [
    lambda m: m.get("\ud800", "seven"), lambda m: m.delete("\ud800", "seven"),
    lambda m: m.update("\ud800", "x", "seven"), lambda m: m.history({"a": 1}, "seven"),
    lambda m: m.thread_messages("seven", "\ud800"), lambda m: m.search("tea \ud800", "seven"),
    lambda m: m.add("x", "seven", thread_id="\ud800", infer=False),
])
def test_hostile_ids_and_queries_are_value_errors(mem, call):
    with pytest.raises(ValueError):
        call(mem)


def test_redaction_failure_refuses_the_write(mem, monkeypatch):
    from memory.safety import pii

    def broken(text):
        raise RuntimeError("library bug")
    monkeypatch.setattr(pii, "_DETECTORS", (("phone", broken),))
    with pytest.raises(pii.PIIError, match="PII check failed"):
        mem.add(f"Call {PHONE}", "seven", infer=False)
    with pytest.raises(pii.PIIError):
        mem.chat(f"Call {PHONE}", "seven")
    with pytest.raises(pii.PIIError, match=r"memories\[0\]\.text"):
        mem.import_({"memories": [{"text": f"Call {PHONE}"}]}, "seven")
    monkeypatch.undo()
    assert mem.count("seven") == 0 and mem.threads("seven") == []


def test_unsearchable_known_memories_are_named_in_the_changes(mem, monkeypatch):
    def down(*a, **k):
        raise StoreError("database is locked")
    monkeypatch.setattr(mem, "search", down)
    changes = mem.add("Hi, I'm Seven. I work in Shanghai and love football.", "seven")
    adds = [c for c in changes if c.event == "ADD"]
    assert adds and all("known memories could not be searched" in c.reason for c in adds)
    assert "locked" in adds[0].to_dict()["reason"]


def test_reconcile_fallback_is_named_in_the_change(mem):
    from memory.write.extract import Candidate
    from memory.write.pipeline import apply_decisions
    from memory.write.reconcile import Decision
    from memory.types import utcnow
    vec = mem.embedder.embed_documents(["Lives in Paris"])[0]
    [c] = apply_decisions(mem, "seven", None, [
        Decision(Candidate("Lives in Paris"), vec, "ADD", None, "Lives in Paris", "fallback")],
        {}, utcnow())
    assert c.event == "ADD" and "reconciliation call failed" in c.reason
    assert mem.count("seven") == 1


def test_a_turns_writes_are_one_transaction(mem, monkeypatch):
    """A failure in the middle of applying a turn's decisions writes none of them."""
    from memory.write.extract import Candidate
    from memory.write.pipeline import apply_decisions
    from memory.write.reconcile import Decision
    from memory.types import utcnow
    texts = ["Lives in Paris", "Likes tea"]
    vecs = mem.embedder.embed_documents(texts)
    decisions = [Decision(Candidate(t), v, "ADD", None, t, "new") for t, v in zip(texts, vecs)]
    calls = []
    real = mem.store.insert_memories

    def second_fails(records, events):
        calls.append(1)
        if len(calls) == 2:
            raise StoreError("disk full")
        return real(records, events)
    monkeypatch.setattr(mem.store, "insert_memories", second_fails)
    with pytest.raises(StoreError):
        apply_decisions(mem, "seven", None, decisions, {}, utcnow())
    monkeypatch.undo()
    assert mem.count("seven") == 0
