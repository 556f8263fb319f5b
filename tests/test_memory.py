"""Engine behaviour through the public Memory API: real SQLite file, real embedder, real
HTTP (openai SDK) to a scripted OpenAI-compatible server that plays the LLM."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import numpy as np
import pytest

from memory import Memory
from memory.types import utcnow
from tests.fake_llm import ScriptedLLM, is_json_request, last_user_text, scripted_config, system_text

EXTRACT = "You extract memories"
RECONCILE = "You keep a user's memory list"

FACTS = {
    "Seven": [{"text": "Name is Seven", "topic": "name"},
              {"text": "Works in Shanghai", "topic": "workplace"},
              {"text": "Loves football", "topic": "like"}],
    "Beijing": [{"text": "Works in Beijing now", "topic": "workplace"}],
    "Python": [{"text": "最喜欢的编程语言是 Python", "topic": "like"}],
    "phone": [{"text": "Phone number is 13812345678", "topic": "other"}],
    "again": [{"text": "Loves football", "topic": "like"}],
}


def brain(req: dict):
    """The scripted model: extraction by keyword, reconciliation picks the existing memory
    mentioning Shanghai, chat replies quote the knowledge it was given."""
    system = system_text(req)
    user = last_user_text(req)
    if EXTRACT in system or RECONCILE in system:  # a JSON retry appends a correction note
        user = next(m["content"] for m in req["messages"] if m["role"] == "user")
    if EXTRACT in system:
        said = user.split("User: ")[-1]
        for key, facts in FACTS.items():
            if key in said:
                out = [dict(f) for f in facts]
                moved = re.search(r"KNOWN (\d+): [^\n]*Shanghai", user)
                if key == "Beijing" and moved:
                    out[0]["replaces"] = int(moved.group(1))
                return {"memories": out}
        return {"memories": []}
    if "You check a user's memory list" in system:  # memory.write.confirm: the change is real
        n = len(re.findall(r"^MEMORY \d+:", user, re.M))
        return {str(i): "ended" for i in range(1, n + 1)}
    if RECONCILE in system:
        label = re.search(r"EXISTING \[(\w+)\]: [^\n]*Shanghai", user)
        if label and "Beijing" in user:
            return {"action": "UPDATE", "id": label.group(1)}
        return {"action": "ADD", "id": "none"}
    if "Summarise the conversation" in system:
        return "They talked about many things."
    knows = "nothing" if "You know nothing about this user" in system else "something"
    return f"I know {knows}. " + " | ".join(line for line in system.splitlines() if line.startswith("- "))




@pytest.fixture()
def llm():
    with ScriptedLLM(brain) as server:
        yield server


@pytest.fixture()
def mem(tmp_path, llm, embedder):
    m = Memory(scripted_config(tmp_path, llm), embedder=embedder)
    yield m
    m.close()


def json_calls(llm: ScriptedLLM) -> int:
    return sum(1 for r in llm.requests if r.path.endswith("/chat/completions") and is_json_request(r.body))


def say(mem: Memory, text: str, user: str, thread_id=None):
    turn = mem.chat(text, user, thread_id)
    reply = turn.run()
    return turn, reply, turn.changes()


def test_walkthrough_remember_recall_update_isolate(mem, llm):
    turn, reply, changes = say(mem, "Hi, I'm Seven. I work in Shanghai and love football.", "seven")
    assert reply.startswith("I know nothing")
    assert [c.event for c in changes] == ["ADD", "ADD", "ADD"]
    assert mem.count("seven") == 3

    # a new thread still knows who the user is, and the question costs no extraction call
    before = json_calls(llm)
    new = mem.new_thread("seven")
    turn, reply, changes = say(mem, "Who am I?", "seven", new.id)
    assert changes == [] and json_calls(llm) == before
    assert "Seven" in reply and "Shanghai" in reply and "football" in reply
    assert turn.thread.id == new.id

    # a restart (a fresh Memory on the same data dir) gives the same answer
    again = Memory(mem.config, embedder=mem.embedder)
    try:
        _, reply2, _ = say(again, "Who am I?", "seven")
        assert "Seven" in reply2 and "Shanghai" in reply2
    finally:
        again.close()

    # the move UPDATEs the Shanghai memory: not duplicated, not left contradicting
    _, _, changes = say(mem, "I moved to Beijing last month.", "seven")
    updates = [c for c in changes if c.event == "UPDATE"]
    assert len(updates) == 1 and updates[0].old_text == "Works in Shanghai"
    texts = [r.text for r in mem.list("seven")]
    assert mem.count("seven") == 4  # + "Moved to Beijing" (memory.write.stated): the move itself
    assert not any("Shanghai" in t for t in texts) and any("Beijing" in t for t in texts)
    hist = mem.history(updates[0].id, "seven")
    assert [(e.event, e.old_text, e.new_text) for e in hist] == [
        ("ADD", None, "Works in Shanghai"),
        ("UPDATE", "Works in Shanghai", "Works in Beijing now")]
    current, _, earlier = mem.profile("seven").partition("Earlier, no longer current:")
    assert "Beijing" in current and "Shanghai" not in current
    assert "Works in Shanghai (until" in earlier  # the earlier value is kept, as past
    assert [r.text for r in mem.past("seven")] == ["Works in Shanghai"]

    # Jane knows nothing of Seven and cannot reach Seven's rows by id
    _, reply, _ = say(mem, "What is my favourite programming language?", "jane")
    assert reply.startswith("I know nothing") and "Seven" not in reply
    sid = updates[0].id
    assert mem.search("football Seven Beijing", "jane").memories == []
    assert mem.get(sid, "jane") is None and mem.history(sid, "jane") == []
    assert mem.update(sid, "hijacked", "jane") is None and mem.delete(sid, "jane") is False
    assert mem.delete_all("jane") == 0 and mem.count("seven") == 4
    assert mem.threads("jane") and all(t.user_id == "jane" for t in mem.threads("jane"))


def test_chinese_stays_chinese_and_is_found(mem):
    _, _, changes = say(mem, "我最喜欢的编程语言是 Python", "seven")
    assert changes[0].event == "ADD" and changes[0].text == "最喜欢的编程语言是 Python"
    hits = mem.search("我最喜欢的编程语言是什么？", "seven").memories
    assert hits and hits[0].text == "最喜欢的编程语言是 Python"
    cross = mem.search("favourite programming language", "seven").memories
    assert cross and cross[0].text == "最喜欢的编程语言是 Python"


def test_trivial_turns_cost_no_llm_call(mem, llm):
    for text in ("ok", "thanks!", "嗯嗯", "👍", "Who am I?", "我最喜欢的编程语言是什么？"):
        say(mem, text, "seven")
    assert json_calls(llm) == 0


def test_exact_duplicate_is_dropped_without_reconcile_call(mem, llm):
    say(mem, "Hi, I'm Seven. I work in Shanghai and love football.", "seven")
    _, _, changes = say(mem, "I love football, again and again", "seven")
    assert [c.event for c in changes] == ["NONE"]
    assert not any(RECONCILE in system_text(r.body) for r in llm.requests)
    assert mem.count("seven") == 3


def test_llm_calls_per_turn_stay_within_budget(mem, llm):
    turns = ["Hi, I'm Seven. I work in Shanghai and love football.", "Who am I?",
             "I moved to Beijing last month.", "我最喜欢的编程语言是 Python",
             "我最喜欢的编程语言是什么？", "thanks"]
    for t in turns:
        say(mem, t, "seven")
    assert json_calls(llm) / len(turns) <= 1.0


def test_malformed_json_twice_writes_nothing_and_chat_survives(mem, llm):
    llm.responder = lambda req: "{not json" if is_json_request(req) else "fine"
    turn, reply, changes = say(mem, "Hi, I'm Seven. I work in Shanghai and love football.", "seven")
    assert reply == "fine" and changes == [] and "extraction skipped" in turn.changes_error
    assert mem.count("seven") == 0 and not hasattr(mem, "last_error")  # per call, not per process
    result = mem.add("Hi, I'm Seven. I work in Shanghai and love football.", "seven")
    assert result == [] and "extraction skipped" in result.error and mem.count("seven") == 0
    assert json_calls(llm) == 4  # one retry, then give up (twice: the turn, then the add)


def test_malformed_json_once_then_valid_is_retried(mem, llm):
    llm.push("fine", "{oops")  # reply, then a broken extraction answer; the retry uses brain
    _, _, changes = say(mem, "Hi, I'm Seven. I work in Shanghai and love football.", "seven")
    assert [c.event for c in changes] == ["ADD", "ADD", "ADD"]


def test_dead_endpoint_gives_clear_error_and_keeps_message(tmp_path, embedder):
    from tests.fake_llm import ScriptedLLM as S

    server = S().start()
    cfg = scripted_config(tmp_path, server, llm_max_retries=0, llm_timeout=3)
    server.stop()  # nothing listens on that port any more
    m = Memory(cfg, embedder=embedder)
    try:
        turn = m.chat("Hello, I'm Seven", "seven")
        assert turn.run() == ""
        assert turn.error and "127.0.0.1" in turn.error
        msgs = m.thread_messages("seven", turn.thread.id)
        assert [x.content for x in msgs] == ["Hello, I'm Seven"]
        assert turn.changes() == [] and m.count("seven") == 0
    finally:
        m.close()


def test_pii_is_redacted_before_storing(mem):
    _, _, changes = say(mem, "My phone is 13812345678", "seven")
    assert changes and "13812345678" not in changes[0].text and "[PHONE]" in changes[0].text
    raw = mem.add("Card 4111 1111 1111 1111 and mail a.b@example.com", "seven", infer=False)
    stored = mem.get(raw[0].id, "seven").text
    assert "4111" not in stored and "example.com" not in stored


def test_raw_add_keeps_metadata_and_dates_in_one_batch(mem):
    when = utcnow() - timedelta(days=400)
    changes = mem.add([{"role": "user", "content": "Caroline: I went to a support group."},
                       {"role": "assistant", "content": "Melanie: That's great!"},
                       {"role": "system", "content": "never stored"}],
                      "locomo", infer=False, metadata={"dia_id": "D1:3"}, created_at=when)
    assert len(changes) == 2
    recs = mem.list("locomo", order="created_asc")
    assert {r.text for r in recs} == {"Caroline: I went to a support group.", "Melanie: That's great!"}
    assert all(r.metadata == {"dia_id": "D1:3"} and abs((r.created_at - when).total_seconds()) < 1e-3
               for r in recs)


def test_raw_add_takes_per_message_metadata_and_dates(mem):
    t1, t2 = utcnow() - timedelta(days=30), utcnow() - timedelta(days=3)
    mem.add([{"role": "user", "content": "Caroline: hi", "metadata": {"dia_id": "D1:1"}, "created_at": t1},
             {"role": "user", "content": "Melanie: hello", "metadata": {"dia_id": "D2:1"},
              "created_at": t2.isoformat()}], "locomo", infer=False, metadata={"conv": "26"})
    recs = mem.list("locomo", order="created_asc")
    assert [(r.text, r.metadata) for r in recs] == [("Caroline: hi", {"conv": "26", "dia_id": "D1:1"}),
                                                   ("Melanie: hello", {"conv": "26", "dia_id": "D2:1"})]
    assert abs((recs[0].created_at - t1).total_seconds()) < 1e-3
    with pytest.raises(ValueError, match="created_at"):
        mem.add([{"role": "user", "content": "x", "created_at": "yesterday"}], "locomo", infer=False)
    assert mem.count("locomo") == 2


def test_export_import_roundtrip_is_lossless_and_idempotent(mem):
    say(mem, "Hi, I'm Seven. I work in Shanghai and love football.", "seven")
    say(mem, "I moved to Beijing last month.", "seven")
    data = json.loads(json.dumps(mem.export("seven")))
    # 4 current memories + the superseded "Works in Shanghai": the past is exported too
    assert data["profile"] and len(data["memories"]) == 5 and data["threads"]
    assert sorted(m["status"] for m in data["memories"]) == ["current"] * 4 + ["superseded"]
    report = mem.import_(data, "seven-copy")
    assert report["imported"] == 5 and report["skipped"] == 0
    assert [r.text for r in mem.past("seven-copy")] == ["Works in Shanghai"]
    copy = json.loads(json.dumps(mem.export("seven-copy")))

    def key(d):
        return sorted((m["text"], m["type"], m["importance"], m["created_at"]) for m in d["memories"])
    assert key(copy) == key(data)
    assert sorted((h["event"], h["new_text"]) for h in copy["history"]) == \
        sorted((h["event"], h["new_text"]) for h in data["history"])
    assert [len(t["messages"]) for t in copy["threads"]] == [len(t["messages"]) for t in data["threads"]]
    again = mem.import_(data, "seven-copy")
    assert again == {"imported": 0, "skipped": 5, "threads": 0}
    assert mem.count("seven") == 4  # the source user is untouched


def test_import_rejects_malformed_data_before_writing(mem):
    with pytest.raises(ValueError, match="memories"):
        mem.import_({"nope": 1}, "seven")
    with pytest.raises(ValueError, match=r"memories\[1\]"):
        mem.import_({"memories": [{"text": "ok"}, {"text": 5}]}, "seven")
    assert mem.count("seven") == 0


def test_bad_input_gets_clear_errors(mem):
    with pytest.raises(ValueError, match="empty"):
        mem.chat("   ", "seven")
    with pytest.raises(ValueError, match="too long"):
        mem.chat("x" * 20001, "seven")
    with pytest.raises(ValueError, match="user_id"):
        mem.search("hi", "")
    assert mem.threads("seven") == []  # nothing half-created
    mem.add(["likes tea", "喜欢喝茶 🍵"], "seven", infer=False)
    for q in ['tea AND "milk', "NEAR(tea*)", "-tea ^", "🍵", "\u202eeet"]:
        mem.search(q, "seven")  # operators and odd Unicode are plain text: no FTS5 error
    assert mem.search('tea AND "milk', "seven").memories[0].text == "likes tea"
    assert {h.text for h in mem.search("茶", "seven").memories[:2]} == {"likes tea", "喜欢喝茶 🍵"}


def test_user_edit_is_recorded_and_reembedded(mem):
    [c] = mem.add("Likes tea", "seven", infer=False, memory_type="preference")
    rec = mem.update(c.id, "Likes green tea", "seven", importance=5)
    assert rec.text == "Likes green tea" and rec.importance == 5
    assert [(e.event, e.actor) for e in mem.history(c.id, "seven")][-1] == ("UPDATE", "user")
    assert mem.search("green tea", "seven").memories[0].id == c.id
    assert "Likes green tea" in mem.profile("seven")


def test_expired_memories_are_never_returned(mem):
    [c] = mem.add("Temporary reminder: call the plumber", "seven", infer=False, memory_type="task")
    mem.update(c.id, None, "seven", expires_at=utcnow() - timedelta(minutes=1))
    assert mem.get(c.id, "seven") is None
    assert mem.search("plumber", "seven").memories == []
    assert mem.list("seven") == []


def test_long_thread_is_summarised_and_prompt_stays_bounded(mem, llm):
    thread = mem.new_thread("seven")
    for i in range(14):
        say(mem, f"Tell me fact number {i} about the sea, please, in detail now.", "seven", thread.id)
    t = next(t for t in mem.threads("seven") if t.id == thread.id)
    assert t.summary == "They talked about many things." and t.summarized_upto > 0
    turn = mem.chat("one more", "seven", thread.id)
    n_msgs = len(turn.prompt)
    turn.run()
    assert n_msgs <= mem.config.memory_history_turns + 3
    assert any("Summary of the earlier part" in m["content"] for m in turn.prompt)


def test_embedder_change_is_detected_and_reembed_fixes_it(tmp_path, llm, embedder):
    from memory.embed.reembed import reembed
    from memory.store.base import EmbedderMismatchError

    cfg = scripted_config(tmp_path, llm)
    m = Memory(cfg, embedder=embedder)
    m.add(["Loves football", "Lives in Beijing"], "seven", infer=False)
    m.close()

    class Other:
        id, dim = "toy-embedder", 8

        def embed_documents(self, texts):
            import numpy as np
            out = np.zeros((len(texts), 8), dtype="float32")
            for i, t in enumerate(texts):
                out[i, len(t) % 8] = 1.0
            return out

        def embed_query(self, text):
            return self.embed_documents([text])[0]

        def health(self):
            return {"ok": True, "detail": "toy"}

    with pytest.raises(EmbedderMismatchError, match="reembed"):
        Memory(cfg, embedder=Other())
    report = reembed(cfg, progress=False, embedder=Other())
    assert report == {"embedder": "toy-embedder", "dim": 8, "users": 1, "memories": 2}
    m2 = Memory(cfg, embedder=Other())
    try:
        assert m2.count("seven") == 2 and m2.search("football", "seven").memories
    finally:
        m2.close()


def test_ambiguous_candidates_get_one_constrained_call_each(mem, llm):
    from memory.write.extract import Candidate
    from memory.write.reconcile import reconcile

    mem.add("Lives in Shanghai", "seven", infer=False, memory_type="profile", tags=["home"])
    mem.add("Loves football", "seven", infer=False, memory_type="preference", tags=["like"])
    cands = [Candidate("Lives in Beijing", "profile", 4, ["home"], topic="home"),
             Candidate("Has a dog", "profile", 3, ["pet"], topic="pet"),
             Candidate("Loves football", "preference", 3, ["like"], topic="like"),
             Candidate("Enjoys opera", "fact", 2, ["like"], topic="like"),
             Candidate("Works as a nurse", "profile", 4, ["job"], topic="job")]
    embs = mem.embedder.embed_documents([c.text for c in cands])
    decisions = reconcile(mem.llm, mem.store, "seven", cands, embs)
    assert [(d.action, d.reason) for d in decisions] == [
        ("UPDATE", "llm"), ("ADD", "new"), ("NONE", "exact"), ("ADD", "new"), ("ADD", "new")]
    assert decisions[0].target.text == "Lives in Shanghai" and decisions[0].text == "Lives in Beijing"
    calls = [r.body for r in llm.requests if RECONCILE in system_text(r.body)]
    # only the new home is weighed against the stored home: a pet, a duplicate, an
    # unrelated like and a job (another topic than the home) cost no call
    assert len(calls) == 1
    # the answer's id is an enum of the shown labels: the model cannot invent an id
    assert '"enum":["a","none"]' in system_text(calls[0]).replace(" ", "")
    # jane's rows are never candidates for seven's reconciliation
    assert reconcile(mem.llm, mem.store, "jane", cands[:1], embs[:1])[0].action == "ADD"


def test_reconcile_falls_back_to_add_when_the_llm_fails(mem, llm):
    from memory.write.extract import Candidate
    from memory.write.reconcile import reconcile

    mem.add(["Lives in Shanghai"], "seven", infer=False, memory_type="profile")
    llm.responder = lambda req: "{broken"
    cand = Candidate("Lives in Beijing", "profile", 4)
    [d] = reconcile(mem.llm, mem.store, "seven", [cand], mem.embedder.embed_documents([cand.text]))
    assert (d.action, d.reason) == ("ADD", "fallback")


def test_a_refused_target_is_an_ordinary_add_not_a_fallback(mem, llm):
    """The model answers UPDATE of the user's own home for a relative's move: the target
    is refused (``may_replace``), the fact is added, and nothing says the call failed."""
    from memory.write.extract import Candidate
    from memory.write.reconcile import reconcile

    mem.add(["Lives in Fuzhou"], "seven", infer=False, memory_type="profile")
    llm.responder = lambda req: '{"action": "UPDATE", "id": "a"}'
    cand = Candidate("Mother lives in Fuzhou now", "profile", 4, tags=["family"], topic="family")
    [d] = reconcile(mem.llm, mem.store, "seven", [cand], mem.embedder.embed_documents([cand.text]))
    assert (d.action, d.reason) == ("ADD", "target refused")
    assert [r.text for r in mem.list("seven")] == ["Lives in Fuzhou"]


def test_raw_add_context_is_embedded_and_searched_but_not_stored_in_text(mem, embedder):
    ctx = "Melanie: Where did you go hiking last weekend?"
    changes = mem.add([{"role": "user", "content": "Caroline: Mount Tam, it was lovely.",
                        "metadata": {"context": ctx}},
                       {"role": "user", "content": "Caroline: I bake bread on Sundays."}],
                      "ctx", infer=False)
    rec = mem.get(changes[0].id, "ctx")
    assert rec.text == "Caroline: Mount Tam, it was lovely." and rec.metadata == {"context": ctx}
    vec = np.asarray(mem.store.get_memory("ctx", rec.id, with_embedding=True).embedding)
    with_ctx = embedder.embed_documents([f"{rec.text} {ctx}"])[0]
    text_only = embedder.embed_documents([rec.text])[0]
    assert np.allclose(vec, with_ctx, atol=1e-5) and not np.allclose(vec, text_only, atol=1e-3)
    # a context-only term finds the memory through full-text search
    assert [m.id for m in mem.search("hiking", "ctx", limit=1).memories] == [rec.id]
