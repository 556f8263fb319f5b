"""Documents as users have them (issue 24): a 2-page PDF CV with a long first page, UTF-16
text with and without a byte-order mark, a manual in a vendor's voice, HTML and Markdown
for a user who already has memories, an image and audio without their models, a garbled
PDF, history naming the file, and an ingest killed while ``pending``. Real files
generated here and in tests/documents.py, a real SQLite store, the real embedder and
the scripted OpenAI-compatible server on 127.0.0.1 playing the LLM."""
from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import threading
import wave
from datetime import timedelta
from pathlib import Path

import pytest

from rich.console import Console

from memory import Memory
from memory.resources import cli, ingest, lease
from memory.resources.chunking import about_user, chunk_blocks, relevant
from memory.resources.extract import Block
from memory.resources.model import Resource
from memory.resources.sniff import sniff
from memory.types import new_id, utcnow
from tests.documents import cv_pdf
from tests.fake_llm import ScriptedLLM, scripted_config, system_text

ROOT = Path(__file__).resolve().parent.parent
EXTRACT = "You extract memories"

FACTS = {  # a keyword the scripted extractor sees → the memory it "finds"
    "Lena Vogel": {"text": "Name is Lena Vogel", "topic": "name"},
    "Torstrasse": {"text": "Lives in Berlin", "topic": "home"},
    "Data Engineer": {"text": "Works as a data engineer", "topic": "job"},
    "Bouldering": {"text": "Likes bouldering", "topic": "like"},
    "nurse": {"text": "Works as a nurse", "topic": "job"},
    "Munich": {"text": "Lives in Munich", "topic": "home"},
    "cello": {"text": "Plays the cello", "topic": "like"},
    "护士": {"text": "是一名护士", "topic": "job"},
}


def said(req: dict) -> str:
    """The text an extraction request asks about (after "User: " and the document note)."""
    user = next(m["content"] for m in req["messages"] if m["role"] == "user")
    return user.split("User: ")[-1].removeprefix(ingest.DOCUMENT_NOTE)


def brain(req: dict):
    """Extraction by keyword; reconciliation always ADD."""
    if EXTRACT in system_text(req):
        return {"memories": [dict(f) for k, f in FACTS.items() if k in said(req)]}
    return {"action": "ADD", "id": "none"}


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
    return [said(b) for b in llm.chat_requests() if EXTRACT in system_text(b)]


def texts(mem, user: str, rid: str) -> list[str]:
    return sorted(r.text for r in ingest.resource_memories(mem, user, rid))


# ---- 1. a PDF CV's first page ---------------------------------------------------------
def test_issue_reproducer_keeps_labels_at_line_starts():
    text = "Lena\nAddress: Berlin\nExperience\nData Engineer\n" + "Built pipelines. " * 60
    chunks = chunk_blocks([Block(text, page=1)])
    assert len(chunks) > 1 and about_user(text)
    assert chunks[0].text.startswith("Lena\nAddress: Berlin\nExperience\nData Engineer\n")
    assert about_user(chunks[0].text) and all(relevant(c) for c in chunks)
    assert "".join(c.text for c in chunks).replace("\n", "").replace(" ", "") == \
        text.replace("\n", "").replace(" ", "")  # nothing lost or repeated


def test_pdf_cv_first_page_is_read(mem, llm):
    res = ingest.add_resource(mem, cv_pdf(), "lena", filename="cv.pdf")
    assert res.status == "ready", res.error
    assert res.detail["pages"] == 2 and res.detail["chunks"] >= 3
    assert res.detail["chunks_used"] == res.detail["chunks"]  # every CV chunk is about her
    assert texts(mem, "lena", res.id) == ["Likes bouldering", "Lives in Berlin",
                                          "Name is Lena Vogel", "Works as a data engineer"]
    pages = {r.text: r.metadata["page"] for r in ingest.resource_memories(mem, "lena", res.id)}
    assert pages["Lives in Berlin"] == pages["Works as a data engineer"] == 1
    assert any(s.startswith("Lena Vogel\nAddress: Torstrasse") for s in extractions(llm))


def test_long_reference_page_is_still_skipped():
    """A long page in the third person stays skipped: only the user's pages cost calls."""
    bridge = ("The Oberbaum Bridge crosses the Spree in Berlin. It was completed in 1896 and "
              "connects Friedrichshain and Kreuzberg. ") * 10
    chunks = chunk_blocks([Block(bridge, page=1), Block("I cross it every morning.\n" + bridge, page=2)])
    assert {c.page for c in chunks if relevant(c)} == {2}
    assert not any(relevant(c) for c in chunks if c.page == 1)


# ---- 4. UTF-16 ---------------------------------------------------------------------------
@pytest.mark.parametrize("data", [
    "我是一名护士，在医院工作。\r\n".encode("utf-16"),                       # Notepad's "Unicode" (BOM, LE)
    b"\xfe\xff" + "我是一名护士，在医院工作。".encode("utf-16-be"),            # BOM, big endian
    "I work as a nurse and I play the cello.\r\n".encode("utf-16-le"),     # no BOM
    "My notes\r\n\r\nI work as a nurse in a hospital in Munich.\r\n".encode("utf-16-be"),
], ids=["zh-bom-le", "zh-bom-be", "en-le-no-bom", "en-be-no-bom"])
def test_utf16_text_is_read_not_refused(mem, llm, data):
    res = ingest.add_resource(mem, data, "anna", filename="notes.txt")
    assert res.mime == "text/plain" and res.status == "ready", res.error
    assert texts(mem, "anna", res.id)
    assert "\x00" not in "".join(extractions(llm))


def test_utf16_html_and_markdown_are_sniffed_from_the_text():
    assert sniff("<!DOCTYPE html><html><body>x</body></html>".encode("utf-16"), "p") == "text/html"
    assert sniff("# Plan\n\nLisbon".encode("utf-16-le"), "p") == "text/markdown"
    assert sniff("I live in Berlin.".encode("utf-32"), "p") == "text/plain"


def test_binary_with_nul_bytes_is_still_refused(mem):
    with pytest.raises(ValueError, match="refused"):
        ingest.add_resource(mem, bytes(range(256)) * 40, "anna", filename="blob")
    assert ingest.resources(mem, "anna", include_deleted=True) == []


# ---- 5. a manual in a vendor's voice -----------------------------------------------------
MANUAL = """# Coffee machine X200

## Descaling

We recommend that you descale the machine every three months. Use only our descaling
tablets; other products may damage the boiler and void your warranty.

## Service

If the display shows E4, please contact our service centre. Our technicians will collect
the machine within two working days. We are happy to help you.

## 维护

我们建议您每三个月除垢一次。如需维修，请联系我们的客服中心。

## Owner's notes

I bought this machine in Munich in 2023 and I clean it every Sunday.
"""


def test_vendor_we_is_not_the_user():
    assert not about_user("We recommend that you descale the machine every three months.")
    assert not about_user("Please contact our service centre about your warranty.")
    assert not about_user("我们建议您每三个月除垢一次。")
    assert about_user("We fly to Lisbon on 3 May; our hotel is in Alfama.")  # the user's family
    assert about_user("我们下个月搬去北京。") and about_user("我的猫叫小兰。")
    assert about_user("We recommend it to our friends, and I use it daily.")


def test_manual_costs_one_call_for_the_owners_notes(mem, llm):
    res = ingest.add_resource(mem, MANUAL.encode(), "anna", filename="manual.md")
    assert res.status == "ready", res.error
    assert res.detail["chunks"] == 4 and res.detail["chunks_used"] == 1
    [sent] = extractions(llm)
    assert "Owner's notes" in sent and "descale" not in sent and "除垢" not in sent


# ---- 5. HTML and Markdown for a user with memories: one extraction call ---------------
HTML = (b"<!DOCTYPE html><html><head><title>Anna</title></head><body>"
        b"<nav><a href='/'>Home</a> | <a href='/blog'>Blog</a></nav><main>"
        b"<h1>About me</h1><p>I work as a nurse at a hospital since 2019 and I love it "
        b"very much, every single day of the week.</p></main>"
        b"<footer>Copyright 2024. Imprint. Privacy.</footer></body></html>")
MARKDOWN = b"# Anna\n\n## About me\n\nI play the cello on Sundays with an amateur orchestra.\n"


@pytest.mark.parametrize("name,data", [("anna.html", HTML), ("anna.md", MARKDOWN)])
def test_one_extraction_call_when_the_user_has_memories(mem, llm, name, data):
    mem.add("I live in Munich.", "anna")
    before = len(extractions(llm))
    res = ingest.add_resource(mem, data, "anna", filename=name)
    assert res.status == "ready", res.error
    assert len(extractions(llm)) - before == 1 and res.detail["batches"] == 1
    assert texts(mem, "anna", res.id) in (["Works as a nurse"], ["Plays the cello"])


# ---- 5. an image and audio without their models behave alike ---------------------------
def jpg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "grey").save(buf, "JPEG")
    return buf.getvalue()


def wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000), w.writeframes(b"\0" * 1600)
    return buf.getvalue()


@pytest.mark.parametrize("name,make,setting", [("photo.jpg", jpg, "VISION_MODEL"),
                                               ("note.wav", wav, "TRANSCRIPTION_MODEL")])
def test_media_without_its_model_is_refused_and_leaves_no_row(mem, llm, name, make, setting):
    with pytest.raises(ValueError, match=setting):
        ingest.add_resource(mem, make(), "anna", filename=name)
    assert ingest.resources(mem, "anna", include_deleted=True) == []
    assert llm.chat_requests() == []


# ---- 5. a garbled PDF: a clean reason, pypdf quiet ---------------------------------------
def garbled_pdf() -> bytes:
    """A PDF whose page tree object is binary garbage (pypdf: "Invalid Elementary
    Object starting with b'\\x9f' …")."""
    garbage = bytes([0x9f, 0xe5, 0xc8, 0xcf, 0x86, 0x96, 0xd4]) * 4
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", garbage]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (i, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % o for o in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref))
    return out.getvalue()


def test_garbled_pdf_error_has_no_raw_bytes_and_pypdf_stays_quiet(mem, llm, capfd):
    from tests.test_resources import pdf_bytes

    root = logging.getLogger()
    loud = logging.StreamHandler(sys.stderr)  # what main.py's logging.basicConfig installs
    root.addHandler(loud)
    try:
        res = ingest.add_resource(mem, garbled_pdf(), "anna", filename="garbled.pdf")
        truncated = pdf_bytes(["I live in Berlin. " * 30])
        cut = ingest.add_resource(mem, truncated[: len(truncated) // 2], "anna", filename="cut.pdf")
    finally:
        root.removeHandler(loud)
    assert res.status == "failed" and "damaged" in res.error
    assert "\\x" not in res.error and "b'" not in res.error and res.error.isprintable()
    assert "pypdf" not in capfd.readouterr().err
    assert cut.status == "failed" and cut.bad_input and res.bad_input


# ---- 5. history names the file ----------------------------------------------------------
def test_history_names_the_file(mem, llm):
    mem.add("I live in Munich.", "anna")
    res = ingest.add_resource(mem, b"I work as a nurse.", "anna", filename="cv.txt")
    [rec] = ingest.resource_memories(mem, "anna", res.id)
    [added] = mem.history(rec.id, "anna")
    assert (added.actor, added.resource, added.who) == (res.actor, "cv.txt", "file cv.txt")
    assert added.to_dict()["resource"] == "cv.txt"
    ingest.delete_resource(mem, "anna", res.id)
    gone = mem.history(rec.id, "anna")[-1]
    assert gone.event == "DELETE" and gone.who == "file cv.txt, deleted"
    [munich] = mem.list("anna")
    first = mem.history(munich.id, "anna")[0]
    assert first.resource is None and first.who == first.actor and "resource" not in first.to_dict()


# ---- 4. a killed ingest does not block the re-add ----------------------------------------
def test_killed_ingest_is_taken_over_at_once(tmp_path, embedder):
    """`main.py resources add` is killed (SIGKILL) while its extraction call waits on the
    scripted server; the same file added again is learned from, not "already known"."""
    arrived, release = threading.Event(), threading.Event()

    def blocking(req):
        if EXTRACT in system_text(req) and not release.is_set():
            arrived.set()
            release.wait(60)
        return brain(req)

    doc = tmp_path / "note.txt"
    doc.write_text("I work as a nurse and I play the cello.\n", encoding="utf-8")
    with ScriptedLLM(blocking) as server:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OPENAI_", "TIDB_", "MEMORY_", "LLM_", "DATABASE_"))}
        env.update(MEMORY_DATA_DIR=str(tmp_path / "data"), MEMORY_STORE="sqlite",
                   OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="test", LLM_MODEL="scripted",
                   LLM_MAX_RETRIES="0", LLM_TIMEOUT="60")
        child = subprocess.Popen([sys.executable, "main.py", "resources", "add", str(doc),
                                  "--user", "anna"], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert arrived.wait(120), "the child never asked for an extraction"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(30)
            release.set()
        mem = Memory(scripted_config(tmp_path / "data", server), embedder=embedder)
        try:
            [left] = ingest.resources(mem, "anna")
            assert left.status == "pending"
            again = ingest.add_resource(mem, doc, "anna")
            assert again.id == left.id and not again.duplicate and again.status == "ready"
            assert texts(mem, "anna", again.id) == ["Plays the cello", "Works as a nurse"]
            assert left.detail["ingest"]["pid"] == child.pid  # how it knew: that process is gone
        finally:
            mem.close()


def pending_row(mem, user: str, data: bytes, *, host: str, age: timedelta) -> Resource:
    import hashlib

    when = utcnow() - age
    row = Resource(id=new_id(), user_id=user, filename="a.txt", mime="text/plain",
                   size=len(data), sha256=hashlib.sha256(data).hexdigest(), status="pending",
                   detail={"ingest": {"host": host, "pid": 1, "token": "x"}},
                   created_at=when, updated_at=when)
    return mem.store.insert_resource(row)


def test_pending_row_of_another_host_waits_for_its_lease(mem, llm):
    data = b"I play the cello."
    live = pending_row(mem, "anna", data, host="elsewhere", age=timedelta(minutes=1))
    busy = ingest.add_resource(mem, data, "anna", filename="a.txt")
    assert busy.id == live.id and busy.duplicate and busy.status == "pending"
    assert extractions(llm) == []
    out = Console(file=io.StringIO(), width=200)
    cli._print_added(out, busy)
    assert "being learned from right now" in out.file.getvalue()
    data2 = b"I work as a nurse."
    stale = pending_row(mem, "anna", data2, host="elsewhere", age=lease.LEASE + timedelta(minutes=1))
    taken = ingest.add_resource(mem, data2, "anna", filename="a.txt")
    assert taken.id == stale.id and not taken.duplicate and taken.status == "ready"
    assert texts(mem, "anna", taken.id) == ["Works as a nurse"]


def test_lease_of_this_process():
    me = lease.owner()
    row = Resource(id=new_id(), user_id="u", filename="a", mime="text/plain", size=1,
                   sha256="a" * 64, status="pending", detail={"ingest": me})
    assert lease.abandoned(row)  # this process, but no ingest of it runs here
    with lease.holding(row.id):
        assert not lease.abandoned(row)
    row.detail = {"ingest": {**me, "token": "an earlier process with the same pid"}}
    assert lease.abandoned(row)
    row.status = "ready"
    assert not lease.abandoned(row)
