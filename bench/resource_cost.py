"""Cost of learning from a document: LLM calls and seconds per page for a generated 10-page PDF (issue 11),
and per file for a CV (PDF and DOCX) and a product manual (issue 24).

    python bench/resource_cost.py                      # the configured LLM (the local model by default)
    python bench/resource_cost.py --scripted           # the scripted test server (plumbing check only)
    python bench/resource_cost.py --files              # per file: the CV PDF, its DOCX twin, the manual
    python bench/resource_cost.py --scripted --files   # the same on the scripted test server

The PDF (written with fpdf2) is a personal travel journal mixed with reference text:
6 pages speak about the author in the first person, 4 hold only third-person text
(city history, a packing list, museum hours, a tram line). It is ingested once into a fresh SQLite
store; the report gives pages, chunks, chunks sent to the LLM, extraction batches, LLM
calls (extraction + reconciliation + retries), memories stored, and seconds in all and
per page, next to what one call per chunk would have cost.

``--files`` ingests the documents of tests/documents.py, each into a fresh user of a fresh
store: a 2-page CV as PDF (``cv.pdf``) and as DOCX (``cv.docx``, the same lines), and a
10-page coffee-machine manual in its vendor's voice with one first-person paragraph by
its owner (``manual.pdf``). The JSON report lists per file its name, bytes, pages,
chunks, chunks used, LLM calls, seconds, memories and their texts; a Markdown table
(file | pages | chunks used/all | LLM calls | seconds | memories) follows it.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import git_describe, markdown_table  # noqa: E402

PERSONAL = [
    "I moved to Lisbon in March 2021 after five years in Hamburg. I work as a data engineer "
    "for a logistics company and I cycle to the office along the river most mornings.",
    "My partner Joana is a violinist. We adopted a grey cat called Pastel last winter, and "
    "I am allergic to walnuts, so we never order the walnut cake at the bakery downstairs.",
    "This summer I am planning a two-week trip to Japan with my sister Lena. I want to see "
    "Kyoto in the rainy season and I have booked a ryokan in Hakone for three nights.",
    "I started learning Japanese in January. I practise every evening for twenty minutes "
    "and my teacher says my reading is better than my speaking.",
    "I prefer window seats on trains and I always travel with a paper notebook. My favourite "
    "food on the road is grilled fish with rice.",
    "Next year I would like to run the Lisbon half marathon. I run three times a week with "
    "a club that meets at Belem on Saturday mornings.",
]
REFERENCE = [
    "The Alfama district is the oldest quarter of the city. It survived the 1755 earthquake "
    "largely intact and its narrow streets climb from the river to the castle.",
    "Packing list: passport, rail pass, adapters, rain jacket, sunscreen, a small first-aid "
    "kit, two paperback novels and a reusable water bottle.",
    "The national museum opens from 10:00 to 18:00 every day except Monday. Tickets cost 10 "
    "euros; the first Sunday of each month entry is free for residents.",
    "Tram 28 runs from Martim Moniz to Campo de Ourique. It is crowded in the afternoon, and "
    "pickpockets are common on the busiest stretches of the line.",
]


def make_pdf() -> bytes:
    """The 10-page journal: pages 1, 3, 5, 6, 8, 10 each hold a personal paragraph and a
    reference paragraph; pages 2, 4, 7, 9 hold reference text only."""
    from fpdf import FPDF

    personal = iter(PERSONAL)
    pdf = FPDF()
    for i in range(10):
        if i in (1, 3, 6, 8):
            paragraphs = [REFERENCE[i % 4], REFERENCE[(i + 1) % 4]]
        else:
            paragraphs = [next(personal), REFERENCE[i % 4]]
        pdf.add_page()
        pdf.set_font("helvetica", "B", 14)
        pdf.multi_cell(0, 8, f"Journal page {i + 1}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", size=11)
        for text in paragraphs:
            pdf.ln(4)
            pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


#: The scripted extractor's facts: a keyword of the batch → (memory text, topic).
SCRIPTED_FACTS = (
    ("data engineer", "Works as a data engineer", "job"),  # the journal
    ("Lisbon in March", "Moved to Lisbon in March 2021", "home"),
    ("Japan", "Plans a trip to Japan with sister Lena", "plan"),
    ("walnuts", "Is allergic to walnuts", "health"),
    ("Lena Vogel", "Name is Lena Vogel", "name"),  # the CV
    ("Torstrasse", "Lives in Berlin", "home"),
    ("Data Engineer,", "Works as a data engineer", "job"),
    ("Languages:", "Speaks German, English and Spanish", "other"),
    ("Hobbies:", "Likes bouldering and cycling", "like"),
    ("Vienna", "Bought the coffee machine in Vienna in 2024", "event"),  # the manual
)


def scripted_responder(req: dict):
    """Extraction: the facts of ``SCRIPTED_FACTS`` whose keyword the batch holds (the
    journal's "I work"/"I moved"…, the CV's lines, the manual's owner notes), else
    nothing; reconciliation: ADD."""
    from tests.fake_llm import system_text

    system = system_text(req)
    user = next((m["content"] for m in req["messages"] if m["role"] == "user"), "")
    if "You extract memories" in system:
        from memory.resources.ingest import DOCUMENT_NOTE
        said = user.split("User: ")[-1].removeprefix(DOCUMENT_NOTE)
        return {"memories": [{"text": t, "topic": topic}
                             for key, t, topic in SCRIPTED_FACTS if key in said]}
    return {"action": "ADD", "id": "none"}


def ingest_one(scripted: bool, data_dir: Path, data: bytes, filename: str,
               batch_chars: int | None = None) -> dict:
    """Ingest ``data`` (a file's bytes, shown as ``filename``) for user ``bench`` of a
    fresh store in ``data_dir`` and return the cost report (a JSON-ready dict)."""
    from memory import Memory, load_config
    from memory.text.language import is_surely
    from memory.resources import ingest
    from memory.resources.chunking import BATCH_CHARS

    server = None
    if scripted:
        from tests.fake_llm import ScriptedLLM, scripted_config

        server = ScriptedLLM(scripted_responder).start()
        config = scripted_config(data_dir, server)
    else:
        config = load_config(memory_data_dir=str(data_dir))
    mem = Memory(config)
    try:
        mem.embedder.embed_query("warm up")
        is_surely("Warm up the language detector.", "en")  # loads once per process (~1 s)
        started = time.perf_counter()
        res = ingest.add_resource(mem, data, "bench", filename=filename,
                                  batch_chars=batch_chars or BATCH_CHARS)
        seconds = time.perf_counter() - started
        d = res.detail
        pages = d.get("pages") or 0
        return {
            "llm": "scripted" if scripted else (mem.llm.model or mem.llm.base_url),
            "status": res.status, "error": res.error, "pages": d.get("pages"), "bytes": len(data),
            "chunks": d.get("chunks"), "chunks_used": d.get("chunks_used"),
            "batches": d.get("batches"), "batch_chars": batch_chars or BATCH_CHARS,
            "llm_calls": d.get("llm_calls"), "memories": res.memory_count,
            "seconds": round(seconds, 2),
            "seconds_per_page": round(seconds / pages, 2) if pages else None,
            "calls_per_page": round((d.get("llm_calls") or 0) / pages, 2) if pages else None,
            "calls_if_one_per_chunk": d.get("chunks"),
            "memory_texts": [r.text for r in ingest.resource_memories(mem, "bench", res.id)],
        }
    finally:
        mem.close()
        if server is not None:
            server.stop()


def run(scripted: bool, data_dir: Path, batch_chars: int | None = None) -> dict:
    """Ingest the journal PDF once and return the cost report (a JSON-ready dict)."""
    return ingest_one(scripted, data_dir, make_pdf(), "journal.pdf", batch_chars)


def run_files(scripted: bool, data_dir: Path, batch_chars: int | None = None) -> dict:
    """Ingest the CV PDF, the CV DOCX and the manual, each into a fresh store under
    ``data_dir``; return ``{"llm", "status", "files": [per-file report]}`` (``status``:
    ``ready`` when every file is)."""
    from tests.documents import cv_docx, cv_pdf, manual_pdf

    files = []
    for name, make in (("cv.pdf", cv_pdf), ("cv.docx", cv_docx), ("manual.pdf", manual_pdf)):
        report = ingest_one(scripted, data_dir / name.replace(".", "-"), make(), name, batch_chars)
        llm = report.pop("llm")
        files.append({"file": name, **report})
    ready = all(f["status"] == "ready" for f in files)
    return {"llm": llm, "status": "ready" if ready else "failed", "files": files}


def files_table(files: list[dict]) -> str:
    """The per-file reports of ``run_files`` as a Markdown table: file | pages | chunks
    used/all | LLM calls | seconds | memories."""
    return markdown_table([{
        "file": f["file"], "pages": f["pages"] or "-",
        "chunks used/all": f"{f['chunks_used']}/{f['chunks']}", "LLM calls": f["llm_calls"],
        "seconds": f"{f['seconds']:.1f}", "memories": f["memories"]} for f in files])


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run once, print the report as JSON (and write ``--out``); with
    ``--files`` also print the per-file Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scripted", action="store_true", help="use the scripted test LLM server")
    ap.add_argument("--files", action="store_true",
                    help="per file: the CV as PDF and DOCX and a 10-page manual (tests/documents.py)")
    ap.add_argument("--batch-chars", type=int, help="characters per extraction call")
    ap.add_argument("--out", help="also write the JSON report to this file")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        report = (run_files if args.files else run)(args.scripted, Path(tmp), args.batch_chars)
    report["git_describe"] = git_describe()
    text = json.dumps(report, ensure_ascii=False, indent=2)
    print(text)
    if args.files:
        print("\n" + files_table(report["files"]))
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0 if report["status"] == "ready" else 1


if __name__ == "__main__":
    sys.exit(main())
