"""Resources end to end through the engine functions: real files generated here (text,
Markdown, HTML, a PDF written with fpdf2, a DOCX, a PNG), a real SQLite store, the real
embedder and the scripted OpenAI-compatible server playing the LLM."""
from __future__ import annotations

import io
import re
import zipfile

import pytest

from memory import Memory
from memory.resources import ingest
from memory.resources.scope import scope_filter, scoped_search
from tests.fake_llm import HTTPError, ScriptedLLM, has_image, scripted_config, system_text

EXTRACT = "You extract memories"
RECONCILE = "You keep a user's memory list"
CONFIRM = "You check a user's memory list"
#: what the scripted model answers to a confirmation (a test may set "keeps")
VERDICT = {"answer": "ended"}

FACTS = {
    "Munich": {"text": "Lives in Munich", "topic": "home"},
    "Berlin": {"text": "Lives in Berlin", "topic": "home"},
    "nurse": {"text": "Works as a nurse", "topic": "job"},
    "cello": {"text": "Plays the cello", "topic": "like"},
    "Xiaolan": {"text": "Has a grey cat named Xiaolan", "topic": "pet"},
    "Lisbon": {"text": "Plans a trip to Lisbon in May", "topic": "plan"},
    "13812345678": {"text": "Phone number is 13812345678", "topic": "other"},
    "护士": {"text": "是一名护士", "topic": "job"},
    "peanuts": {"text": "Is allergic to peanuts", "topic": "health"},
}
CAT = "A grey cat named Xiaolan sleeping on a blue sofa."


def extraction_text(req: dict) -> str:
    """The document text an extraction request asks about (after "User: " and the
    document note, ``ingest.DOCUMENT_NOTE``)."""
    user = next(m["content"] for m in req["messages"] if m["role"] == "user")
    return user.split("User: ")[-1].removeprefix(ingest.DOCUMENT_NOTE)


def brain(req: dict):
    """Extraction by keyword (a Berlin fact replaces a KNOWN Munich one), reconciliation
    always ADD, vision describes a cat."""
    if has_image(req):
        return CAT
    system = system_text(req)
    if EXTRACT in system:
        user = next(m["content"] for m in req["messages"] if m["role"] == "user")
        said = extraction_text(req)
        out = []
        for key, fact in FACTS.items():
            if key in said:
                item = dict(fact)
                moved = re.search(r"KNOWN (\d+): Lives in Munich", user)
                if key == "Berlin" and moved:
                    item["replaces"] = int(moved.group(1))
                out.append(item)
        return {"memories": out}
    if RECONCILE in system:  # a document shows no KNOWN: the new home is reconciled
        user = next(m["content"] for m in req["messages"] if m["role"] == "user")
        home = re.search(r"EXISTING \[(\w+)\]: Lives in Munich", user)
        if home and "NEW: Lives in Berlin" in user:
            return {"action": "UPDATE", "id": home.group(1)}
        return {"action": "ADD", "id": "none"}
    if CONFIRM in system:  # memory.write.confirm: a CV's new city does end the old one
        user = next(m["content"] for m in req["messages"] if m["role"] == "user")
        n = len(re.findall(r"^MEMORY \d+:", user, re.M))
        return {str(i): VERDICT["answer"] for i in range(1, n + 1)}
    return "ok"




@pytest.fixture()
def llm():
    with ScriptedLLM(brain) as server:
        yield server


@pytest.fixture()
def mem(tmp_path, llm, embedder):
    m = Memory(scripted_config(tmp_path / "data", llm), embedder=embedder)
    yield m
    m.close()


def extractions(llm: ScriptedLLM) -> list[str]:
    return [extraction_text(b) for b in llm.chat_requests() if EXTRACT in system_text(b)]


def pdf_bytes(pages: list[str]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def docx_bytes(heading: str, paragraphs: list[str]) -> bytes:
    import docx

    d = docx.Document()
    d.add_heading(heading, 1)
    for p in paragraphs:
        d.add_paragraph(p)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "grey").save(buf, "PNG")
    return buf.getvalue()


BRIDGE = ("The Oberbaum Bridge crosses the Spree in Berlin. It was completed in 1896 and "
          "connects Friedrichshain and Kreuzberg. ") * 8


# ---- formats --------------------------------------------------------------------------
def test_text_file_memories_are_linked_to_the_resource(mem, llm, tmp_path):
    path = tmp_path / "about.txt"
    path.write_text("My name is Anna.\n\nI work as a nurse and I play the cello.\n", encoding="utf-8")
    res = ingest.add_resource(mem, path, "anna")
    assert res.status == "ready" and res.error is None and not res.duplicate
    assert res.mime == "text/plain" and res.filename == "about.txt" and res.size == path.stat().st_size
    assert res.memory_count == 2 and res.detail["llm_calls"] == 1
    recs = ingest.resource_memories(mem, "anna", res.id)
    assert sorted(r.text for r in recs) == ["Plays the cello", "Works as a nurse"]
    for r in recs:
        assert r.source == "resource"
        assert r.metadata["resource_id"] == res.id and r.metadata["resource"] == "about.txt"
        assert r.metadata["chunk"] == 0
        assert mem.history(r.id, "anna")[0].actor == res.actor == f"resource:{res.id[:8]}"
    assert [r.id for r in ingest.resources(mem, "anna")] == [res.id]


def test_markdown_sections_are_chunked_and_unrelated_ones_skipped(mem, llm, tmp_path):
    path = tmp_path / "me.md"
    path.write_text(f"# Anna\n\n## About me\n\nI play the cello on Sundays.\n\n"
                    f"## The bridge\n\n{BRIDGE}\n", encoding="utf-8")
    res = ingest.add_resource(mem, path, "anna")
    assert res.mime == "text/markdown" and res.status == "ready"
    assert res.detail["chunks"] >= 2 and res.detail["chunks_used"] == 1
    sent = extractions(llm)
    assert len(sent) == 1 and "cello" in sent[0] and "Oberbaum" not in sent[0]
    assert sent[0].startswith("Anna > About me")  # the heading path travels with the chunk
    assert [r.text for r in ingest.resource_memories(mem, "anna", res.id)] == ["Plays the cello"]


def test_html_main_text_without_navigation(mem, llm):
    page = (b"<!DOCTYPE html><html><head><title>Anna</title></head><body>"
            b"<nav><a href='/'>Home</a> | <a href='/berlin'>Berlin guide</a></nav><main>"
            b"<h1>About me</h1><p>I work as a nurse at a hospital since 2019 and I love it "
            b"very much, every single day of the week.</p></main>"
            b"<footer>Copyright 2024. Imprint. Privacy.</footer></body></html>")
    res = ingest.add_resource(mem, page, "anna", filename="anna.html")
    assert res.mime == "text/html" and res.status == "ready"
    sent = extractions(llm)
    assert len(sent) == 1 and "nurse" in sent[0] and "Berlin guide" not in sent[0]
    assert [r.text for r in ingest.resource_memories(mem, "anna", res.id)] == ["Works as a nurse"]


def test_pdf_text_layer_with_pages(mem, llm):
    data = pdf_bytes(["Travel plan", "I am planning a trip to Lisbon in May with my sister.",
                      "Packing list: sunscreen, hat."])
    res = ingest.add_resource(mem, data, "anna", filename="plan.pdf")
    assert res.mime == "application/pdf" and res.status == "ready", res.error
    assert res.detail["pages"] == 3
    [rec] = ingest.resource_memories(mem, "anna", res.id)
    assert rec.text == "Plans a trip to Lisbon in May" and rec.metadata["page"] == 2


def test_docx_paragraphs(mem, llm):
    data = docx_bytes("Curriculum vitae", ["I work as a nurse.", "Hobbies: I play the cello."])
    res = ingest.add_resource(mem, data, "anna", filename="cv.docx")
    assert res.status == "ready", res.error
    assert sorted(r.text for r in ingest.resource_memories(mem, "anna", res.id)) == [
        "Plays the cello", "Works as a nurse"]
    assert "Curriculum vitae" in extractions(llm)[0]


def test_chinese_document_is_learned_in_chinese(mem, llm):
    res = ingest.add_resource(mem, "我是一名护士，在医院工作。".encode("gb18030"), "xiao", filename="我.txt")
    assert res.status == "ready", res.error
    assert [r.text for r in ingest.resource_memories(mem, "xiao", res.id)] == ["是一名护士"]


def test_image_needs_a_vision_model(mem, llm, tmp_path, embedder):
    """Refused like audio without transcription (tests/test_resources_docs.py): no row."""
    with pytest.raises(ValueError, match="VISION_MODEL"):
        ingest.add_resource(mem, png_bytes(), "anna", filename="cat.png")
    assert ingest.resources(mem, "anna", include_deleted=True) == []
    assert mem.count("anna") == 0 and extractions(llm) == []
    seeing = Memory(scripted_config(tmp_path / "data", llm, vision_model="scripted-vision"),
                    embedder=embedder)
    try:
        res = ingest.add_resource(seeing, png_bytes(), "anna", filename="cat.png")
        assert res.status == "ready"
        assert [r.text for r in ingest.resource_memories(seeing, "anna", res.id)] == [
            "Has a grey cat named Xiaolan"]
    finally:
        seeing.close()


def test_audio_is_refused_without_transcription_and_transcribed_with_it(mem, llm, tmp_path, embedder):
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000), w.writeframes(b"\0" * 1600)
    with pytest.raises(ValueError, match="TRANSCRIPTION_MODEL"):
        ingest.add_resource(mem, buf.getvalue(), "anna", filename="note.wav")
    assert ingest.resources(mem, "anna", include_deleted=True) == []
    hearing = Memory(scripted_config(tmp_path / "data", llm, transcription_model="whisper-1"),
                     embedder=embedder)
    try:
        hearing.llm.transcribe = lambda data, name: "I work as a nurse."
        res = ingest.add_resource(hearing, buf.getvalue(), "anna", filename="note.wav")
        assert res.mime == "audio/wav" and res.status == "ready"
        assert [r.text for r in ingest.resource_memories(hearing, "anna", res.id)] == ["Works as a nurse"]
    finally:
        hearing.close()


# ---- idempotency, reconciliation, deletion, scopes ------------------------------------
def test_same_file_twice_is_one_resource(mem, llm):
    data = b"I play the cello."
    first = ingest.add_resource(mem, data, "anna", filename="a.txt")
    calls = len(llm.chat_requests())
    second = ingest.add_resource(mem, io.BytesIO(data), "anna", filename="renamed.txt")
    assert second.id == first.id and second.duplicate and second.filename == "a.txt"
    assert len(llm.chat_requests()) == calls and mem.count("anna") == 1
    other = ingest.add_resource(mem, data, "bob", filename="a.txt")  # another user: their own
    assert other.id != first.id and mem.count("bob") == 1 and mem.count("anna") == 1


def test_document_updates_a_chat_memory_and_history_names_it(mem, llm):
    mem.add("I live in Munich.", "anna")
    [munich] = mem.list("anna")
    assert munich.text == "Lives in Munich" and munich.source == "chat"
    res = ingest.add_resource(mem, b"I live in Berlin now.", "anna", filename="cv.txt")
    assert [c["event"] for c in res.detail["changes"]] == ["UPDATE"]
    [rec] = mem.list("anna")
    assert rec.id == munich.id and rec.text == "Lives in Berlin"
    last = mem.history(rec.id, "anna")[-1]
    assert (last.event, last.old_text, last.actor) == ("UPDATE", "Lives in Munich", res.actor)
    # the model's own UPDATE is not asked again (confirm.SECOND_OPINION)
    assert not [b for b in llm.chat_requests() if CONFIRM in system_text(b)]


def test_a_documents_constraint_is_marked_as_in_chat(mem, llm):
    from memory.write.constraints import TAG, is_constraint
    ingest.add_resource(mem, b"Medical note: I am allergic to peanuts.", "anna", filename="note.txt")
    [rec] = mem.list("anna")
    assert rec.text == "Is allergic to peanuts" and is_constraint(rec.tags) and TAG in rec.tags
    assert rec.type == "profile"


def test_soft_delete_removes_its_memories_and_keeps_history(mem, llm):
    mem.add("I live in Munich.", "anna")
    res = ingest.add_resource(mem, b"I work as a nurse. I play the cello.", "anna", filename="n.txt")
    ids = [r.id for r in ingest.resource_memories(mem, "anna", res.id)]
    assert len(ids) == 2 and mem.count("anna") == 3
    assert ingest.delete_resource(mem, "bob", res.id) is False  # not bob's
    assert ingest.delete_resource(mem, "anna", res.id) is True
    assert ingest.resource(mem, "anna", res.id) is None and ingest.resources(mem, "anna") == []
    [gone] = ingest.resources(mem, "anna", include_deleted=True)
    assert gone.id == res.id and gone.deleted_at is not None and gone.memory_count == 0
    assert [r.text for r in mem.list("anna")] == ["Lives in Munich"]
    assert not any(h.id in ids for h in mem.search("nurse cello", "anna").memories)
    for mid in ids:
        last = mem.history(mid, "anna")[-1]
        assert last.event == "DELETE" and last.actor == f"resource-deleted:{res.id[:8]}"
    assert ingest.delete_resource(mem, "anna", res.id) is False
    again = ingest.add_resource(mem, b"I work as a nurse. I play the cello.", "anna", filename="n.txt")
    assert again.id != res.id and again.status == "ready" and again.memory_count == 2


def test_search_scopes(mem, llm):
    mem.add("I live in Munich.", "anna")
    res = ingest.add_resource(mem, b"I work as a nurse and I play the cello.", "anna", filename="n.txt")
    q = "where do I live, what is my job, what do I play"
    every = {h.text for h in scoped_search(mem, q, "anna", 10, "all").memories}
    chat = {h.text for h in scoped_search(mem, q, "anna", 10, "chat").memories}
    mine = {h.text for h in scoped_search(mem, q, "anna", 10, res.scope).memories}
    assert every == {"Lives in Munich", "Works as a nurse", "Plays the cello"}
    assert chat == {"Lives in Munich"} and mine == {"Works as a nurse", "Plays the cello"}
    assert scoped_search(mem, q, "anna", 1, res.scope).memories[0].text in mine
    assert scoped_search(mem, q, "anna", 10, "resource:unknown").memories == []
    assert scope_filter("all") is None
    with pytest.raises(ValueError, match="scope"):
        scope_filter("resources")


# ---- limits and bad input -------------------------------------------------------------
class CountingReader(io.BytesIO):
    """A binary file object that records how many bytes were read from it."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.taken = 0

    def read(self, n: int = -1) -> bytes:
        out = super().read(n)
        self.taken += len(out)
        return out


def test_upload_limit_is_checked_before_reading_whole(mem, tmp_path, llm, embedder):
    small = Memory(scripted_config(tmp_path / "data", llm, memory_max_upload_mb=0.01),
                   embedder=embedder)  # 10,485 bytes
    try:
        big = tmp_path / "big.txt"
        with big.open("wb") as fh:
            fh.truncate(30 * 2**20)  # 30 MB sparse: stat says too big, nothing is read
        with pytest.raises(ValueError, match="too large .*MEMORY_MAX_UPLOAD_MB"):
            ingest.add_resource(small, big, "anna")
        stream = CountingReader(b"I play the cello. " * 2000)  # 36,000 bytes, no size attribute
        with pytest.raises(ValueError, match="too large"):
            ingest.add_resource(small, stream, "anna", filename="s.txt")
        assert stream.taken <= int(0.01 * 2**20) + 1
        assert ingest.resources(small, "anna", include_deleted=True) == [] and small.count("anna") == 0
    finally:
        small.close()


@pytest.mark.parametrize("name,data,declared", [
    ("cv.pdf", b"MZ\x90\x00" + b"\x00" * 200, None),             # a program renamed .pdf
    ("cv.docx", None, None),                                       # a plain ZIP renamed .docx
    ("photo.pdf", "png", None),                                    # an image named .pdf
    ("notes.txt", b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n", None),         # a PDF named .txt
    ("upload", b"I play the cello.", "application/pdf"),          # declared type lies
])
def test_disguised_and_unsupported_types_are_refused(mem, llm, name, data, declared):
    if data is None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("a.txt", "hello")
        data = buf.getvalue()
    elif data == "png":
        data = png_bytes()
    with pytest.raises(ValueError, match="refused"):
        ingest.add_resource(mem, data, "anna", filename=name, mime=declared)
    assert ingest.resources(mem, "anna", include_deleted=True) == [] and mem.count("anna") == 0
    assert extractions(llm) == []


def zip_bomb_docx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", b"0" * (20 * 2**20))  # 20 MB → ~20 KB
    return buf.getvalue()


@pytest.mark.parametrize("name,data,reason", [
    ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\n%%EOF garbage", "PDF"),
    ("empty.txt", b"", "empty"),
    ("bomb.docx", None, "ZIP bomb"),
    ("scan.pdf", "blank-pdf", "no text layer"),
])
def test_corrupt_empty_and_bomb_files_fail_with_one_line(mem, llm, name, data, reason):
    if data is None:
        data = zip_bomb_docx()
    elif data == "blank-pdf":
        data = pdf_bytes([""])
    res = ingest.add_resource(mem, data, "anna", filename=name)
    assert res.status == "failed" and reason in res.error and "\n" not in res.error, res.error
    assert res.memory_count == 0 and mem.count("anna") == 0 and extractions(llm) == []
    [stored] = ingest.resources(mem, "anna")
    assert stored.status == "failed" and stored.error == res.error


def test_llm_failure_mid_document_stores_nothing(mem, llm):
    calls = []

    def failing(req):
        if EXTRACT in system_text(req):
            calls.append(1)
            if len(calls) > 1:
                return HTTPError(500, "model crashed")
        return brain(req)

    llm.responder = failing
    doc = "# A\n\nI work as a nurse.\n\n# B\n\nI play the cello.\n"
    res = ingest.add_resource(mem, doc.encode(), "anna", filename="two.md", batch_chars=30)
    assert res.status == "failed" and "\n" not in res.error and len(calls) >= 2
    assert mem.count("anna") == 0 and res.memory_count == 0
    llm.responder = brain  # the same upload again retries the failed resource
    again = ingest.add_resource(mem, doc.encode(), "anna", filename="two.md", batch_chars=30)
    assert again.id == res.id and again.status == "ready" and again.memory_count == 2
    assert again.detail["batches"] == 2


def test_pii_is_redacted(mem, llm):
    res = ingest.add_resource(mem, b"My phone number is 13812345678.", "anna", filename="p.txt")
    [rec] = ingest.resource_memories(mem, "anna", res.id)
    assert rec.text == "Phone number is [PHONE]" and "13812345678" not in str(res.detail)


def test_other_users_cannot_see_a_resource(mem, llm):
    res = ingest.add_resource(mem, b"I play the cello.", "anna", filename="a.txt")
    assert ingest.resource(mem, "bob", res.id) is None
    assert ingest.resources(mem, "bob", include_deleted=True) == []
    assert ingest.resource_memories(mem, "bob", res.id) == []
    with pytest.raises(ValueError):
        ingest.add_resource(mem, b"x", "")


def test_bench_resource_cost_on_the_scripted_server(tmp_path):
    """bench/resource_cost.py: the 10-page PDF costs one extraction call on the scripted
    server (6 of 10 chunks sent, batched), and its four facts are stored."""
    from bench.resource_cost import run

    report = run(True, tmp_path)
    assert report["status"] == "ready" and report["pages"] == 10
    assert report["chunks_used"] < report["chunks"] and report["llm_calls"] == report["batches"] == 1
    assert report["memories"] == 4 and report["calls_per_page"] == 0.1
