"""Reading an upload within the size limit and telling its type from the content (never from its name).

Binary formats are recognised by their magic numbers with ``puremagic`` (pure Python,
no libmagic); a ZIP is only a DOCX when it holds ``word/document.xml``. Anything else
is text when it decodes (:func:`decode_text`: UTF-16/32 by their byte-order mark,
UTF-8, else the encoding ``charset_normalizer`` finds, e.g. GB18030 for Chinese or
UTF-16 without a mark; NUL bytes only in UTF-16/32), then HTML when it starts like
an HTML document (the WHATWG sniffing rule: ``<!DOCTYPE HTML``, ``<html``, ``<head``,
``<body`` … after whitespace), Markdown when it has ATX headings or the name says
``.md``, else plain text. A name or declared type that claims another supported type
than the content ("cv.pdf" holding a Windows program) is refused as disguised.
"""
from __future__ import annotations

import codecs
import io
import mimetypes
import os
import re
import zipfile
from pathlib import Path
from typing import Any

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
EMPTY = "application/x-empty"
OCTET = "application/octet-stream"

#: Supported types → the extractor kind that reads them.
SUPPORTED: dict[str, str] = {
    "text/plain": "text", "text/markdown": "markdown", "text/html": "html",
    "application/pdf": "pdf", DOCX: "docx",
    "image/png": "image", "image/jpeg": "image", "image/gif": "image", "image/webp": "image",
    "audio/mpeg": "audio", "audio/wav": "audio", "audio/ogg": "audio", "audio/flac": "audio",
    "audio/mp4": "audio", "audio/webm": "audio",
}

#: Other spellings of supported types (puremagic, mimetypes and browsers differ).
_ALIASES = {"audio/wave": "audio/wav", "audio/x-wav": "audio/wav", "audio/vnd.wave": "audio/wav",
            "audio/x-flac": "audio/flac", "audio/mp3": "audio/mpeg", "audio/x-m4a": "audio/mp4",
            "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "audio/x-opus+ogg": "audio/ogg",
            "application/x-pdf": "application/pdf", "text/x-markdown": "text/markdown"}

#: Bytes of the head looked at to decide text vs binary and HTML.
_HEAD = 65536
_HTML_START = re.compile(r"^\s*<(!doctype\s+html|html|head|body|title|p|div|h1|table|!--)[\s>]",
                         re.IGNORECASE)
#: Byte-order marks of the encodings whose text holds NUL bytes (UTF-32 first: its
#: little-endian mark starts like UTF-16's).
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
#: Encodings ``charset_normalizer`` may name for text with NUL bytes and no mark.
_WIDE = ("utf_16", "utf_16_le", "utf_16_be", "utf_32", "utf_32_le", "utf_32_be")
_MD_HEADING = re.compile(r"^#{1,6}\s+\S", re.MULTILINE)
_READ = 1 << 20


def normalize_mime(mime: str | None) -> str | None:
    """``mime`` lower-cased, without parameters (``; charset=…``) and with known aliases
    mapped to the names in :data:`SUPPORTED`; None for None/empty."""
    if not mime:
        return None
    base = mime.split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base) or None


def read_source(source: Any, limit: int, filename: str | None = None) -> tuple[bytes, str]:
    """Read an upload without ever holding more than ``limit`` + 1 bytes.

    ``source``: a path (str / PathLike), bytes, or a binary file object (``read(n)``;
    a ``size`` attribute, as Streamlit's UploadedFile has, is checked first). A path's
    size is checked with ``stat`` before it is opened. Returns ``(data, name)``: the
    bytes and the file name (``filename``, else the path's or object's ``name``, else
    "upload"). Raises ValueError (one line) when the file is larger than ``limit``
    bytes, is not a regular file, or cannot be read.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = filename or path.name
        try:
            st = path.stat()
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
        if not path.is_file():
            raise ValueError(f"{path} is not a regular file")
        _check_size(st.st_size, limit, name)
        try:
            with path.open("rb") as fh:
                return _read_limited(fh, limit, name), name
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = filename or "upload"
        _check_size(len(data), limit, name)
        return data, name
    if hasattr(source, "read"):
        name = filename or Path(str(getattr(source, "name", "") or "upload")).name
        size = getattr(source, "size", None)
        if isinstance(size, int):
            _check_size(size, limit, name)
        return _read_limited(source, limit, name), name
    raise ValueError(f"cannot read a resource from {type(source).__name__}; "
                     "give a path, bytes or a binary file object")


def _check_size(size: int, limit: int, name: str) -> None:
    if size > limit:
        raise ValueError(f"{name} is too large ({size / 2**20:.1f} MB; the limit is "
                         f"{limit / 2**20:g} MB, set by MEMORY_MAX_UPLOAD_MB)")


def _read_limited(fh: Any, limit: int, name: str) -> bytes:
    buf = io.BytesIO()
    while True:
        part = fh.read(min(_READ, limit + 1 - buf.tell()))
        if not part:
            break
        if isinstance(part, str):
            raise ValueError(f"{name}: open the file in binary mode")
        buf.write(part)
        if buf.tell() > limit:
            _check_size(buf.tell(), limit, name)
    return buf.getvalue()


def sniff(data: bytes, filename: str = "", declared: str | None = None) -> str:
    """Return the MIME type of ``data`` judged from its bytes: a key of
    :data:`SUPPORTED`, :data:`EMPTY` for no bytes, or whatever else it is
    (``application/octet-stream`` when unknown).

    ``filename`` may only refine text/plain to text/markdown (``.md``); it never
    decides a binary type. Raises ValueError when ``filename``'s extension or
    ``declared`` (e.g. a browser's Content-Type) names a *supported* type the content
    is not (a disguised file, e.g. a program renamed ``.pdf``); image ↔ image and audio
    ↔ audio differences are tolerated (a PNG saved as ``.jpg`` is still an image).
    """
    if not data:
        return EMPTY
    mime = _binary_type(data)
    if mime is None:
        mime = _text_type(data, filename) or OCTET
    for claim, what in ((_name_type(filename), f"its name {filename!r}"),
                        (normalize_mime(declared), f"the declared type {declared!r}")):
        if claim in SUPPORTED and not _compatible(claim, mime):
            raise ValueError(f"{filename or 'the upload'} is refused: {what} says {claim}, but "
                             f"its content is {describe(mime)}")
    return mime


def kind_of(mime: str) -> str | None:
    """The extractor kind of a supported ``mime`` (``text``, ``markdown``, ``html``,
    ``pdf``, ``docx``, ``image``, ``audio``) or None when unsupported."""
    return SUPPORTED.get(mime)


def describe(mime: str) -> str:
    """A short human name for ``mime`` used in refusals."""
    names = {OCTET: "not a known file type", EMPTY: "empty", DOCX: "a Word document (DOCX)",
             "application/zip": "a ZIP archive", "application/pdf": "a PDF"}
    if mime in names:
        return names[mime]
    if "executable" in mime or "msdos" in mime or "x-dosexec" in mime or "elf" in mime:
        return f"a program ({mime})"
    return mime


def _name_type(filename: str) -> str | None:
    if not filename or "." not in filename:
        return None
    return normalize_mime(mimetypes.guess_type(filename, strict=False)[0])


def _compatible(claim: str, mime: str) -> bool:
    if claim == mime:
        return True
    family = claim.split("/")[0]
    return family in ("text", "image", "audio") and mime.split("/")[0] == family


def _binary_type(data: bytes) -> str | None:
    """The type a magic number proves, or None (no signature: maybe text)."""
    if data[:4] == b"PK\x03\x04":
        return _zip_type(data)
    if _bom_codec(data):
        return None  # UTF-16/32 text: the text rules decide
    import puremagic

    try:
        found = puremagic.magic_string(data[:_HEAD] if len(data) > 2 * _HEAD else data)
    except (puremagic.PureError, ValueError):
        found = []
    for hit in found:
        mime = normalize_mime(hit.mime_type)
        if not mime:
            continue
        if mime.startswith("text/") or mime in ("application/json", "application/xml"):
            return None  # text-like: the text rules below decide
        return mime
    if b"\x00" in data[:_HEAD] and found:
        return OCTET
    return None


def _zip_type(data: bytes) -> str:
    """DOCX when the ZIP holds ``word/document.xml``; a ZIP whose directory cannot be
    read is still called DOCX when it names ``word/`` parts (a damaged document fails
    later with a reason), else ``application/zip``."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return DOCX if b"word/" in data[:_HEAD] else "application/zip"
    return DOCX if "word/document.xml" in names else "application/zip"


def decode_text(data: bytes) -> str | None:
    """``data`` as text, or None for binary data.

    UTF-16/32 with a byte-order mark (Notepad's "Unicode") decodes by the mark; else
    UTF-8 (its BOM dropped); else the encoding ``charset_normalizer`` is confident in
    (GB18030, Latin-1, … and UTF-16/32 without a mark, the only ones allowed when the
    head holds NUL bytes). Text with more than 1 % control characters is binary."""
    codec = _bom_codec(data)
    if codec:
        try:
            return _plain(data.decode(codec))
        except UnicodeDecodeError:
            return None
    wide = b"\x00" in data[:_HEAD]
    if not wide:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or (wide and best.encoding not in _WIDE):
        return None
    return _plain(str(best))


def _bom_codec(data: bytes) -> str | None:
    """"utf-16" / "utf-32" when ``data`` starts with that byte-order mark, else None."""
    return next((codec for bom, codec in _BOMS if data.startswith(bom)), None)


def _plain(text: str) -> str | None:
    """``text`` without a leading BOM, or None when over 1 % of its head is control
    characters (binary data that happened to decode)."""
    text = text.removeprefix("\ufeff")
    head = text[:_HEAD]
    controls = sum(1 for ch in head if ord(ch) < 32 and ch not in "\t\n\r\f")
    return None if controls > len(head) // 100 else text


def _text_type(data: bytes, filename: str) -> str | None:
    text = decode_text(data)
    if text is None:
        return None
    if _HTML_START.match(text[:1024]):
        return "text/html"
    if _name_type(filename) == "text/markdown" or _MD_HEADING.search(text[:_HEAD]):
        return "text/markdown"
    return "text/plain"
