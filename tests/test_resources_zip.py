"""ZIP limits enforced while inflating (issue 24): a DOCX whose headers declare 900 KB
for a part that really inflates to hundreds of MB is refused after reading at most what
it declared, with a peak RSS far under 300 MB (measured in a child process), and honest
DOCX files (images included) are still read. The lying DOCX comes from
bench/resource_zip.py (python-docx output, one part padded, its sizes patched)."""
from __future__ import annotations

import io
import sys
import zipfile

import pytest

from bench.resource_zip import DECLARED, LIMIT_MB, lying_docx, peak_rss, run
from memory.resources import archive
from memory.resources.archive import ArchiveRefused, bounded_copy
from memory.resources.extract import ResourceFailed, extract_blocks

READ_DOCX = """
import sys
from memory.resources.extract import ResourceFailed, extract_blocks
try:
    extract_blocks("docx", open(sys.argv[1], "rb").read(), "lying.docx", "docx")
except ResourceFailed as exc:
    print(exc)
    sys.exit(2)
print("read without error")
"""


def docx_bytes(*paragraphs: str, picture: bool = False) -> bytes:
    import docx

    d = docx.Document()
    d.add_heading("CV", 1)
    for p in paragraphs:
        d.add_paragraph(p)
    if picture:
        from PIL import Image

        img = io.BytesIO()
        Image.new("RGB", (40, 40), "red").save(img, "PNG")
        img.seek(0)
        d.add_picture(img)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def test_lying_docx_is_refused_while_inflating_with_bounded_memory(tmp_path):
    path = lying_docx(tmp_path / "lying.docx", real_bytes=384 * 2**20)
    assert path.stat().st_size < 2 * 2**20
    with zipfile.ZipFile(path) as zf:  # the headers lie: 900 KB, a ratio no check refuses
        info = zf.getinfo("word/document.xml")
        assert info.file_size == DECLARED and info.file_size < 200 * info.compress_size
    got = peak_rss([sys.executable, "-c", READ_DOCX, str(path)])
    assert got["peak_rss_mb"] < LIMIT_MB, got
    assert got["exit"] == 2, got
    assert "word/document.xml inflates to more than the 0.9 MB it declares" in got["said"]
    assert "ZIP bomb" in got["said"]


def test_lying_docx_upload_fails_as_bad_input_and_stores_nothing(tmp_path, scripted_llm, embedder):
    from memory import Memory
    from memory.resources import ingest
    from tests.fake_llm import scripted_config

    data = lying_docx(tmp_path / "l.docx", real_bytes=16 * 2**20).read_bytes()
    mem = Memory(scripted_config(tmp_path / "data", scripted_llm), embedder=embedder)
    try:
        res = ingest.add_resource(mem, data, "anna", filename="cv.docx")
        assert res.status == "failed" and res.bad_input and "ZIP bomb" in res.error
        assert "\n" not in res.error and mem.count("anna") == 0
        assert scripted_llm.chat_requests() == []
    finally:
        mem.close()


def test_honest_docx_with_a_picture_is_read():
    blocks, _ = extract_blocks("docx", docx_bytes("I live in Berlin.", picture=True), "cv.docx", "docx")
    assert [(b.heading, b.text) for b in blocks] == [("CV", "I live in Berlin.")]


def test_bounded_copy_keeps_text_parts_and_empties_the_rest():
    src = docx_bytes("I live in Berlin.", picture=True)
    with zipfile.ZipFile(io.BytesIO(src)) as a, zipfile.ZipFile(io.BytesIO(bounded_copy(src))) as b:
        assert a.namelist() == b.namelist()
        for name in a.namelist():
            want = a.read(name) if name.endswith((".xml", ".rels")) else b""
            assert b.read(name) == want, name


def zip_of(parts: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_limits_on_declared_and_inflated_sizes(monkeypatch):
    with pytest.raises(ArchiveRefused, match="has 6 parts; refused as a ZIP bomb"):
        bounded_copy(zip_of({f"p{i}.xml": b"x" for i in range(6)}), max_parts=5)
    with pytest.raises(ArchiveRefused, match="would unpack to .*ZIP bomb"):
        bounded_copy(zip_of({"a.xml": b"<a/>" * 1000}), max_unzipped=1000)
    with pytest.raises(ArchiveRefused, match=r"a\.xml is compressed .*:1; refused as a ZIP bomb"):
        bounded_copy(zip_of({"a.xml": b"0" * 3_000_000}))
    monkeypatch.setattr(archive, "RATIO_FLOOR", 10)  # the ratio is also checked while reading
    with pytest.raises(ArchiveRefused, match="compressed"):
        bounded_copy(zip_of({"a.xml": b"0" * 5000}), max_ratio=2)


def test_damaged_part_is_refused():
    data = bytearray(zip_of({"word/document.xml": b"<w:document>" + b"hello " * 200 + b"</w:document>"},
                            zipfile.ZIP_STORED))
    at = data.find(b"hello")
    data[at:at + 5] = b"HELLO"  # same size, wrong checksum
    with pytest.raises(ArchiveRefused, match="is damaged"):
        bounded_copy(bytes(data))
    with pytest.raises(ResourceFailed, match="^the DOCX is damaged"):
        extract_blocks("docx", bytes(data), "cv.docx", "docx")
    with pytest.raises(ArchiveRefused, match="is damaged"):
        bounded_copy(b"PK\x03\x04 not a zip at all")


def test_bench_resource_zip_smoke(tmp_path):
    """bench/resource_zip.py: the report of a small lying DOCX (64 MB inflated)."""
    report = run(64 * 2**20, workdir=tmp_path)
    assert report["declared_bytes"] == DECLARED and report["real_bytes"] == 64 * 2**20
    assert report["extract"]["exit"] == 2 and "ZIP bomb" in report["extract"]["said"]
    assert report["extract"]["peak_rss_mb"] < LIMIT_MB
