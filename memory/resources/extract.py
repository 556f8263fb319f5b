"""Format extractors: the bytes of one upload → text blocks that keep the document's structure (headings, pages).

One library per format: ``markdown-it-py`` (Markdown structure), ``trafilatura`` (the
main text of an HTML page, navigation and boilerplate left out, returned as Markdown),
``pypdf`` (a PDF's text layer, page by page; its warnings about a damaged file go to
this module's logger at DEBUG, not stderr), ``python-docx`` (paragraphs, heading styles
and tables in document order, read from a copy checked while inflating:
``memory.resources.archive``); images go to the vision model
(``LLM.describe_image``) and audio to the transcription endpoint
(``LLM.transcribe``). Every failure is a :class:`ResourceFailed` whose message is
the one line stored as the resource's ``error``.
"""
from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass

from memory.llm.errors import LLMError, one_line
from memory.resources.archive import ArchiveRefused, bounded_copy
from memory.resources.sniff import decode_text

log = logging.getLogger(__name__)

#: Most text taken from one resource (characters); more is refused as failed, since
#: learning from it would cost hundreds of LLM calls.
MAX_TEXT_CHARS = 1_000_000
#: Most pages read from one PDF.
MAX_PAGES = 500
#: What the vision model is asked about an image resource.
IMAGE_PROMPT = ("Describe this image in one to three sentences so it can be remembered later: "
                "who or what is shown, names or text visible in it, place and occasion if clear.")


class ResourceFailed(Exception):
    """The resource cannot be learned from; ``str(exc)`` is the one-line reason stored
    as its ``error`` (status ``failed``). ``bad_input`` is True when the file itself is
    the reason (corrupt, empty, encrypted, scanned, a ZIP bomb) and False when a
    service failed (the vision or transcription call)."""

    def __init__(self, message: str, *, bad_input: bool = True):
        super().__init__(message)
        self.bad_input = bad_input


@dataclass
class Block:
    """One structural unit of a document: a paragraph, list, table or quote (``text``)
    under its heading path (``heading``, e.g. ``"CV > Experience"``, "" when none),
    on ``page`` (1-based, PDFs only)."""

    text: str
    heading: str = ""
    page: int | None = None


def extract_blocks(kind: str, data: bytes, name: str, mime: str, llm=None) -> tuple[list[Block], dict]:
    """Read ``data`` of extractor ``kind`` (see ``sniff.kind_of``) into blocks.

    ``llm`` (a ``memory.llm.client.LLM``) is needed for images and audio only. Returns
    ``(blocks, info)``: ``info`` holds ``pages`` for a PDF. Raises ResourceFailed
    (one line) for a corrupt, encrypted, empty or over-large document, an image without
    a vision model, or a failed vision/transcription call.
    """
    info: dict = {}
    try:
        if kind in ("text", "markdown"):
            text = decode_text(data)
            if text is None:
                raise ResourceFailed("the text could not be decoded")
            blocks = markdown_blocks(text) if kind == "markdown" else text_blocks(text)
        elif kind == "html":
            blocks = _html(data)
        elif kind == "pdf":
            blocks, info["pages"] = _pdf(data)
        elif kind == "docx":
            blocks = _docx(data)
        elif kind == "image":
            blocks = _image(data, mime, name, llm)
        elif kind == "audio":
            blocks = _audio(data, name, llm)
        else:
            raise ResourceFailed(f"no extractor for {mime}")
    except ResourceFailed:
        raise
    except LLMError as exc:
        raise ResourceFailed(one_line(exc), bad_input=False) from None
    except Exception as exc:  # noqa: BLE001 - a library's error on bad input is one line
        log.debug("extraction of %s failed", name, exc_info=True)
        raise ResourceFailed(f"the {kind.upper() if kind in ('pdf', 'docx') else kind} "
                             f"could not be read: {library_reason(exc)}") from None
    blocks = [b for b in blocks if b.text.strip()]
    total = sum(len(b.text) for b in blocks)
    if not blocks:
        raise ResourceFailed("no text found in the file")
    if total > MAX_TEXT_CHARS:
        raise ResourceFailed(f"too much text ({total:,} characters; at most "
                             f"{MAX_TEXT_CHARS:,} are learned from one file)")
    return blocks, info


def text_blocks(text: str, heading: str = "", page: int | None = None) -> list[Block]:
    """Plain text → one block per paragraph (blank-line separated)."""
    return [Block(p.strip(), heading, page) for p in re.split(r"\n\s*\n", text) if p.strip()]


def markdown_blocks(text: str) -> list[Block]:
    """Markdown → blocks: each top-level paragraph, list, table, quote or code block
    (its source lines) under the path of the headings above it (``markdown-it-py``)."""
    from markdown_it import MarkdownIt

    lines = text.splitlines()
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    path: list[tuple[int, str]] = []
    blocks: list[Block] = []
    for i, tok in enumerate(tokens):
        if tok.level != 0 or tok.map is None or tok.type.endswith("_close"):
            continue
        if tok.type == "heading_open":
            level = int(tok.tag[1:])
            title = " ".join(tokens[i + 1].content.split())
            path = [(lv, t) for lv, t in path if lv < level] + [(level, title)]
            continue
        if tok.type == "hr":
            continue
        body = "\n".join(lines[tok.map[0]:tok.map[1]]).strip()
        if body:
            blocks.append(Block(body, " > ".join(t for _, t in path)))
    return blocks


def _html(data: bytes) -> list[Block]:
    import trafilatura

    html = decode_text(data)
    if html is None:
        raise ResourceFailed("the HTML could not be decoded")
    main = trafilatura.extract(html, output_format="markdown", include_comments=False,
                               include_tables=True, favor_precision=True)
    if not main or not main.strip():  # a tiny page: precision mode may keep nothing
        main = trafilatura.extract(html, output_format="markdown", include_comments=False,
                                   include_tables=True)
    if not main or not main.strip():
        raise ResourceFailed("no main text found in the web page")
    return markdown_blocks(main)


def _pdf(data: bytes) -> tuple[list[Block], int]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    _pypdf_to_debug()
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ResourceFailed("the PDF is encrypted (password protected)")
        pages = reader.pages
        count = len(pages)
    except PdfReadError as exc:
        raise ResourceFailed(f"the PDF is damaged: {library_reason(exc)}") from None
    if count > MAX_PAGES:
        raise ResourceFailed(f"the PDF has {count} pages; at most {MAX_PAGES} are read")
    blocks: list[Block] = []
    for number, page in enumerate(pages, start=1):
        blocks += text_blocks(page.extract_text() or "", page=number)
    if not blocks:
        raise ResourceFailed("the PDF has no text layer (a scan? text in images is not read)")
    return blocks, count


class _ToDebug(logging.Handler):
    """Hands pypdf's records (warnings about a damaged file it worked around) to this
    module's logger at DEBUG: the reason that matters is the one-line ``error``."""

    def emit(self, record: logging.LogRecord) -> None:
        log.debug("pypdf: %s", record.getMessage())


def _pypdf_to_debug() -> None:
    """Route the ``pypdf`` loggers into :class:`_ToDebug` instead of stderr (once)."""
    pdf_log = logging.getLogger("pypdf")
    if not any(isinstance(h, _ToDebug) for h in pdf_log.handlers):
        pdf_log.addHandler(_ToDebug())
        pdf_log.propagate = False


#: A bytes literal in a library's message (pypdf: "Invalid Elementary Object starting
#: with b'\\xd4' @1336: b'\\x9fq…'"), possibly cut off at the end.
_BYTES_REPR = re.compile(r"""(?<![\w])b(['"])(?:\\.|(?!\1).)*(?:\1|$)""")


def library_reason(exc: BaseException, limit: int = 200) -> str:
    """A library's error message as one line of at most ``limit`` characters, without
    the raw bytes some messages quote (``b'\\x9f…'``) or any other control or escape
    sequence; the exception's class name when nothing readable is left."""
    text = _BYTES_REPR.sub("", one_line(exc, 10_000))
    text = re.sub(r"\\x[0-9a-fA-F]{2}", "", text)
    text = re.sub(r"\s+([:.,;])", r"\1", re.sub(r"\s+", " ", text)).strip(" :;,")
    return one_line(text, limit) if text else type(exc).__name__


def _docx(data: bytes) -> list[Block]:
    import docx
    from docx.table import Table

    try:
        checked = bounded_copy(data)
    except ArchiveRefused as exc:
        raise ResourceFailed(f"the DOCX {exc}") from None
    document = docx.Document(io.BytesIO(checked))
    path: list[tuple[int, str]] = []
    blocks: list[Block] = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            rows = [" | ".join(" ".join(c.text.split()) for c in row.cells) for row in item.rows]
            text = "\n".join(r for r in rows if r.strip(" |"))
        else:
            text = item.text.strip()
            style = (item.style.name if item.style is not None else "") or ""
            level = 1 if style == "Title" else _heading_level(style)
            if level and text:
                path = [(lv, t) for lv, t in path if lv < level] + [(level, " ".join(text.split()))]
                continue
        if text:
            blocks.append(Block(text, " > ".join(t for _, t in path)))
    return blocks


def _heading_level(style: str) -> int:
    found = re.fullmatch(r"Heading (\d)", style)
    return int(found.group(1)) if found else 0


def _image(data: bytes, mime: str, name: str, llm) -> list[Block]:
    if llm is None or not llm.config.vision_model:
        raise ResourceFailed("no vision model configured: set VISION_MODEL to learn from images",
                             bad_input=False)
    description = " ".join(llm.describe_image(data, mime, IMAGE_PROMPT).split())
    if not description:
        raise ResourceFailed("the vision model returned no description")
    # the user shared this picture: said in the first person, as the chat does with an
    # attached image, so the extractor reads it as the user's own statement
    return [Block(f"I shared a picture ({name}). It shows: {description}")]


def _audio(data: bytes, name: str, llm) -> list[Block]:
    if llm is None or not llm.config.transcription_model:
        raise ResourceFailed("no transcription model configured: set TRANSCRIPTION_MODEL",
                             bad_input=False)
    return text_blocks(llm.transcribe(data, name))
