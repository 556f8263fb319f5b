"""Structure-aware chunking of extracted blocks, the LLM-free "anything about the user?" check, and packing chunks into extraction batches.

Cost model (issue 11): the local 1.5B model needs seconds per extraction call, so a
document must not cost one call per paragraph. Blocks are packed into chunks of at most
:data:`CHUNK_CHARS` that never cross a heading or a page (a long block, e.g. a PDF page,
is cut where a sentence or a line ends, its lines kept, so a CV's "Address:" stays at a
line start); chunks that say nothing about the user are skipped without a call
(:func:`relevant`: :func:`about_user` of the chunk, or of the page or section it was cut
from); the rest are packed into batches of at most
:data:`BATCH_CHARS`, one extraction call each.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from memory.text.language import is_surely
from memory.resources.extract import Block

#: Longest chunk (characters): about a paragraph or a short section, the unit a
#: memory is linked back to (``metadata.chunk``).
CHUNK_CHARS = 800
#: Most text per extraction call (characters). The extraction prompt's fixed part is
#: ~700 tokens and the answer up to 400; 2,400 characters are ~600 tokens of English or
#: ~1,600 of Chinese, which with 12 KNOWN lines stays inside the local model's 4,096
#: token context (LOCAL_LLM_CTX).
BATCH_CHARS = 2400

#: Field labels of personal documents (CV, form, medical note) in English and Chinese:
#: a line starting with one ("Address: …", "## Experience", "姓名：…") is about the
#: person the document describes, who uploaded it.
_FIELDS = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:name|full name|first name|last name|surname|address|born|"
    r"date of birth|birthday|birth date|age|nationality|citizenship|phone|mobile|e-?mail|"
    r"languages?|skills?|experience|work experience|employment|occupation|profession|"
    r"job title|position|education|qualifications?|certifications?|hobbies|interests|"
    r"allerg(?:y|ies)|diagnos[ie]s|medications?|blood type|diet|emergency contact|"
    r"destination|itinerary|flight|hotel|check-in|booking|"
    r"姓名|名字|性别|地址|住址|出生|生日|年龄|国籍|电话|手机|邮箱|学历|教育|教育背景|工作经历|"
    r"工作经验|职位|技能|爱好|兴趣|过敏|诊断|用药|血型|目的地|行程|航班|酒店)\s*(?:[:：]|$)",
    re.IGNORECASE | re.MULTILINE)


#: Who speaks, per language: the writer alone (``self``), the writer with others
#: (``group``) and the reader addressed (``reader``), word lists in
#: ``memory/data/voice.json``. The first person singular is the user; the plural is the
#: user too ("we fly to Lisbon, our hotel…") unless the text also addresses a reader,
#: which is how a company writes ("we recommend that you…", "我们建议您…"). A language
#: not in the file is left to the extractor (see :func:`about_user`).
VOICE = Path(__file__).resolve().parent.parent / "data" / "voice.json"


def voice_patterns(path: Path = VOICE) -> tuple[re.Pattern, re.Pattern, re.Pattern]:
    """The ``(self, group, reader)`` patterns built from the word lists at ``path``:
    whole words for words with letters that take spaces, substrings for CJK words; a
    ``self`` word that starts a ``group`` word does not match inside it (我 not in 我们)."""
    data = {k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if k != "about"}

    def word(w: str, longer: list[str]) -> str:
        if re.fullmatch(r"[\w']+", w, re.ASCII):
            return rf"\b{re.escape(w)}\b"
        tails = [re.escape(g[len(w):]) for g in longer if g.startswith(w) and g != w]
        return re.escape(w) + (f"(?!{'|'.join(tails)})" if tails else "")

    def pattern(kind: str) -> re.Pattern:
        parts = [word(w, lang.get("group", []) if kind == "self" else [])
                 for lang in data.values() for w in lang.get(kind, [])]
        return re.compile("|".join(parts), re.IGNORECASE)

    return pattern("self"), pattern("group"), pattern("reader")


_SELF, _GROUP, _READER = voice_patterns()

#: Where a long block is cut, best first: after a sentence end, at a line end, at a space
#: (each only in the second half of the chunk, so no piece is tiny), else at the limit.
_CUTS = (re.compile(r"[.!?;](?=\s)|[。！？；]"), re.compile(r"\n"), re.compile(r"\s"))
#: A block at most this long (a PDF page, about 3,000–4,500 characters of prose; a
#: section) lends its relevance to every chunk cut from it: the chunk after
#: "Experience" in a CV has no label of its own. A longer block (a whole text file
#: without blank lines) does not, so one "I" cannot send a book.
BLOCK_CONTEXT = 6 * CHUNK_CHARS


@dataclass
class Chunk:
    """A piece of a document sent to extraction: ``text`` (its heading path on the
    first line when it has one), ``position`` (0-based index in the document),
    ``page`` (1-based, PDFs), ``personal_block``: True when it was cut from a block of
    at most :data:`BLOCK_CONTEXT` characters that as a whole is about the user."""

    text: str
    position: int
    page: int | None = None
    personal_block: bool = False


def chunk_blocks(blocks: list[Block], max_chars: int = CHUNK_CHARS) -> list[Chunk]:
    """Pack consecutive blocks of the same heading and page into chunks of at most
    ``max_chars`` (the heading line not counted); a block longer than that is cut
    keeping its lines (labels such as "Address:" stay at line starts): after a sentence
    end, else at a line end, else at a space, else at ``max_chars``. Returns the chunks
    in document order, positions 0, 1, …"""
    pieces: list[tuple[Block, bool]] = []
    for b in blocks:
        parts = _split(b, max_chars)
        personal = len(parts) > 1 and len(b.text) <= BLOCK_CONTEXT and about_user(b.text)
        pieces += [(p, personal) for p in parts]
    out: list[Chunk] = []
    body: list[str] = []
    key: tuple[str, int | None] | None = None
    personal = False

    def flush() -> None:
        if body and key is not None:
            head = f"{key[0]}\n" if key[0] else ""
            out.append(Chunk(head + "\n\n".join(body), len(out), key[1], personal))
        body.clear()

    for p, from_personal in pieces:
        size = sum(len(t) + 2 for t in body) + len(p.text)
        if (p.heading, p.page) != key or size > max_chars:
            flush()
            key, personal = (p.heading, p.page), False
        body.append(p.text)
        personal = personal or from_personal
    flush()
    return out


def _split(block: Block, max_chars: int) -> list[Block]:
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    text = block.text.strip()
    if len(text) <= max_chars:
        return [block]
    parts: list[str] = []
    while len(text) > max_chars:
        cut = _cut(text, max_chars)
        parts.append(text[:cut].strip())
        text = text[cut:].strip()
    if text:
        parts.append(text)
    return [Block(p, block.heading, block.page) for p in parts if p]


def _cut(text: str, max_chars: int) -> int:
    """Where the first piece of ``text`` (longer than ``max_chars``) ends: the last cut
    point of the best kind in :data:`_CUTS` between ``max_chars // 2`` and
    ``max_chars``, else ``max_chars``."""
    window = text[:max_chars + 1]  # the character after the limit decides "followed by a space"
    for kind in _CUTS:
        ends = [m.end() for m in kind.finditer(window, max_chars // 2) if m.end() <= max_chars]
        if ends:
            return ends[-1]
    return max_chars


def about_user(text: str) -> bool:
    """True when a chunk may say something about the user, so it is worth an LLM call:
    it speaks in the first person singular ("I", "my", "我"), or in the plural ("we",
    "our", "我们") without addressing a reader ("you", "您": a vendor's "we recommend
    that you…" is not the user), or has a personal field label (:data:`_FIELDS`), or
    its language is neither surely English nor surely Chinese (the word lists cannot
    judge it, so the extractor does). A chunk of a news article or a manual ("The
    council approved the budget") is skipped."""
    if _SELF.search(text) or _FIELDS.search(text):
        return True
    if _GROUP.search(text) and not _READER.search(text):
        return True
    return not (is_surely(text, "en") or is_surely(text, "zh"))


def relevant(chunk: Chunk) -> bool:
    """True when ``chunk`` is sent to extraction: it is about the user
    (:func:`about_user`) or was cut from a block that is (``personal_block``)."""
    return chunk.personal_block or about_user(chunk.text)


def batches(chunks: list[Chunk], max_chars: int = BATCH_CHARS) -> list[list[Chunk]]:
    """Pack ``chunks`` (in order) into batches whose texts, joined by blank lines, stay
    within ``max_chars``; a chunk is never split across batches."""
    out: list[list[Chunk]] = []
    size = 0
    for c in chunks:
        if out and size + 2 + len(c.text) <= max_chars:
            out[-1].append(c)
            size += 2 + len(c.text)
        else:
            out.append([c])
            size = len(c.text)
    return out
