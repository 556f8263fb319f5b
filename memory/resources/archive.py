"""Reading a ZIP-based document (DOCX) with its limits enforced while inflating, never trusting the sizes its headers declare.

A ZIP's central directory and local headers *declare* each part's uncompressed size, and
anyone can write small numbers there: a 2 MB DOCX declaring 900 KB for a 2 GB
``word/document.xml`` passes every check made on the headers, and ``zipfile``'s
``read()`` inflates the whole 2 GB before it notices the CRC. So :func:`bounded_copy`
reads every part through ``ZipFile.open`` in small steps, counting what comes out,
and stops as soon as a part gives more than it declared, the parts together more than
:data:`MAX_UNZIPPED`, or a part inflates more than :data:`MAX_RATIO` times its compressed
size. What passes is copied into a new in-memory ZIP, the only bytes the document
reader (python-docx) ever sees. Parts that carry no text (images, fonts, embedded
files) are not inflated at all: they are copied as empty parts.
"""
from __future__ import annotations

import copy
import io
import zipfile
import zlib

#: Most bytes all kept parts may inflate to. Real DOCX XML compresses about 5–20 : 1
#: and a document over ``extract.MAX_TEXT_CHARS`` (1,000,000 characters) is refused
#: anyway; 64 MB of XML holds several times that.
MAX_UNZIPPED = 64 * 2**20
#: A part (past its first :data:`RATIO_FLOOR` bytes) inflating to more than this many
#: times its compressed size is a bomb (the classic 42.zip ratio is ~10⁶ : 1).
MAX_RATIO = 200
RATIO_FLOOR = 1_000_000
#: Most parts (entries) in one archive.
MAX_PARTS = 5000
#: Bytes inflated per read: the most a lying part can add past a limit before it is caught.
STEP = 64 * 1024
#: Parts whose bytes are read (name endings, lower case): the XML that holds the text
#: and structure. Every other part is copied empty.
TEXT_PARTS = (".xml", ".rels")


class ArchiveRefused(Exception):
    """The archive is damaged, encrypted or a decompression bomb; ``str(exc)`` is one
    line that reads after the document's kind ("the DOCX " + "has 9,000 parts; refused
    as a ZIP bomb", "is damaged: …")."""


def bounded_copy(data: bytes, *, max_unzipped: int = MAX_UNZIPPED, max_ratio: int = MAX_RATIO,
                 max_parts: int = MAX_PARTS, text_parts: tuple[str, ...] = TEXT_PARTS) -> bytes:
    """Check the ZIP ``data`` while inflating it and return a new ZIP (stored, not
    compressed) with the same part names: parts ending in ``text_parts`` hold their
    inflated bytes, every other part is empty.

    The declared sizes are checked first (a plain bomb is refused without inflating
    anything), then every text part is read in :data:`STEP`-byte steps through
    ``ZipFile.open``, counted and CRC-checked. Memory stays within ``max_unzipped``
    plus ``len(data)`` plus one step, whatever the headers say. Raises ArchiveRefused
    for an unreadable or encrypted archive, more than ``max_parts`` parts, a part that
    inflates to more bytes than it declares or fails its CRC, more than
    ``max_unzipped`` bytes in all, or a part compressed better than ``max_ratio`` : 1.
    """
    try:
        src = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ArchiveRefused(f"is damaged: {exc}") from None
    with src:
        infos = [i for i in src.infolist() if not i.is_dir()]
        if len(infos) > max_parts:
            raise ArchiveRefused(f"has {len(infos):,} parts; refused as a ZIP bomb")
        wanted = [i for i in infos if i.filename.lower().endswith(text_parts)]
        declared = sum(i.file_size for i in wanted)
        if declared > max_unzipped:
            raise ArchiveRefused(f"would unpack to {_mb(declared)}; refused as a ZIP bomb")
        for i in wanted:
            _check_ratio(i, i.file_size, max_ratio)
        if len({i.filename for i in infos}) < len(infos):
            raise ArchiveRefused("is damaged: two parts have the same name")
        out = io.BytesIO()
        used = 0
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
            for info in infos:
                if info.filename.lower().endswith(text_parts):
                    used += _copy_part(src, info, dst, max_unzipped - used, max_ratio)
                else:
                    dst.writestr(info.filename, b"")
        return out.getvalue()


def _copy_part(src: zipfile.ZipFile, info: zipfile.ZipInfo, dst: zipfile.ZipFile,
               budget: int, max_ratio: int) -> int:
    """Inflate one part into ``dst`` step by step; return its size in bytes."""
    probe = copy.copy(info)
    probe.file_size = info.file_size + 1  # zipfile stops there: one byte more proves a lie
    probe.CRC = None  # checked here, over what was really read
    crc, size = 0, 0
    try:
        with src.open(probe) as part, dst.open(info.filename, "w") as copy_to:
            while chunk := part.read(STEP):
                size += len(chunk)
                if size > info.file_size:
                    raise ArchiveRefused(f"part {info.filename} inflates to more than the "
                                         f"{_mb(info.file_size)} it declares; refused as a ZIP bomb")
                if size > budget:  # only when the declared sizes were checked wrongly
                    raise ArchiveRefused("unpacks to more than its limit; refused as a ZIP bomb")
                _check_ratio(info, size, max_ratio)
                crc = zlib.crc32(chunk, crc)
                copy_to.write(chunk)
    except ArchiveRefused:
        raise
    except RuntimeError as exc:  # zipfile: "File … is encrypted, password required …"
        raise ArchiveRefused(f"part {info.filename} is encrypted") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
            zlib.error) as exc:
        raise ArchiveRefused(f"is damaged: {info.filename}: {exc or type(exc).__name__}") from None
    if size != info.file_size or crc != info.CRC:
        raise ArchiveRefused(f"is damaged: the part {info.filename} does not match its "
                             "size or checksum")
    return size


def _check_ratio(info: zipfile.ZipInfo, size: int, max_ratio: int) -> None:
    if size > RATIO_FLOOR and size > max_ratio * max(info.compress_size, 1):
        raise ArchiveRefused(f"part {info.filename} is compressed "
                             f"{size // max(info.compress_size, 1):,}:1; refused as a ZIP bomb")


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB" if n < 100 * 2**20 else f"{n / 2**20:,.0f} MB"
