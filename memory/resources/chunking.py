"""Structure-aware chunking of extracted blocks, the LLM-free "anything about the user?" check, and packing chunks into extraction batches.

Cost model (issue 11): the local 1.5B model needs seconds per extraction call, so a
document must not cost one call per paragraph. Blocks are packed into chunks of at most
:data:`CHUNK_CHARS` that never cross a heading or a page (a long block is cut at
sentence ends); chunks that say nothing about the user are skipped without a call
(:func:`about_user`); the rest are packed into batches of at most
:data:`BATCH_CHARS`, one extraction call each.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from memory.intents import sentences
from memory.language import is_surely
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


#: The speaker, English or Chinese (the same words ``intents.learnable_text`` looks for
#: before it lets a chat sentence reach the extractor).
_SPEAKER = re.compile(r"\b(i|i'm|i've|i'd|i'll|im|me|my|mine|myself|we|we're|our|us)\b|我",
                      re.IGNORECASE)


@dataclass
class Chunk:
    """A piece of a document sent to extraction: ``text`` (its heading path on the
    first line when it has one), ``position`` (0-based index in the document),
    ``page`` (1-based, PDFs)."""

    text: str
    position: int
    page: int | None = None


def chunk_blocks(blocks: list[Block], max_chars: int = CHUNK_CHARS) -> list[Chunk]:
    """Pack consecutive blocks of the same heading and page into chunks of at most
    ``max_chars`` (the heading line not counted); a block longer than that is cut at
    sentence ends (``intents.sentences``), a sentence longer still at ``max_chars``.
    Returns the chunks in document order, positions 0, 1, …"""
    pieces: list[Block] = []
    for b in blocks:
        pieces += _split(b, max_chars)
    out: list[Chunk] = []
    body: list[str] = []
    key: tuple[str, int | None] | None = None

    def flush() -> None:
        if body and key is not None:
            head = f"{key[0]}\n" if key[0] else ""
            out.append(Chunk(head + "\n\n".join(body), len(out), key[1]))
        body.clear()

    for p in pieces:
        size = sum(len(t) + 2 for t in body) + len(p.text)
        if (p.heading, p.page) != key or size > max_chars:
            flush()
            key = (p.heading, p.page)
        body.append(p.text)
    flush()
    return out


def _split(block: Block, max_chars: int) -> list[Block]:
    if len(block.text) <= max_chars:
        return [block]
    parts: list[str] = []
    cur = ""
    for s in sentences(block.text) or [block.text]:
        while len(s) > max_chars:  # one endless "sentence" (a table row dump, no stops)
            parts.append(s[:max_chars])
            s = s[max_chars:]
        if cur and len(cur) + 1 + len(s) > max_chars:
            parts.append(cur)
            cur = s
        else:
            cur = f"{cur} {s}" if cur else s
    if cur:
        parts.append(cur)
    return [Block(p, block.heading, block.page) for p in parts]


def about_user(text: str) -> bool:
    """True when a chunk may say something about the user, so it is worth an LLM call:
    it speaks in the first person ("I", "my", "我") or has a
    personal field label (:data:`_FIELDS`), or its language is neither surely English
    nor surely Chinese (the word lists cannot judge it, so the extractor does).
    A chunk of a news article or a manual ("The council approved the budget") is
    skipped."""
    if _SPEAKER.search(text) or _FIELDS.search(text):
        return True
    return not (is_surely(text, "en") or is_surely(text, "zh"))


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
