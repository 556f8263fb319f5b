"""Fact extraction: one JSON-constrained LLM call per chat turn → candidate memories.

Only the user's message and the assistant's reply of *this* turn are shown to the model,
never the system prompt or the memories injected into it: feeding those back is how
other memory systems end up re-storing old memories on every turn.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

from memory import prompts
from memory.types import MEMORY_TYPES, MemoryRecord

#: Acknowledgements and small talk that never carry a memory, in English and Chinese.
_TRIVIAL = {
    "ok", "okay", "k", "kk", "thanks", "thank you", "thx", "ty", "cool", "nice", "great",
    "yes", "no", "yep", "nope", "yeah", "sure", "hi", "hello", "hey", "bye", "goodbye",
    "good night", "lol", "haha", "hmm", "got it", "i see", "alright", "fine", "wow",
    "嗯", "嗯嗯", "好", "好的", "好吧", "谢谢", "多谢", "哈哈", "哈哈哈", "是的", "对", "对的",
    "行", "可以", "收到", "明白", "知道了", "你好", "再见", "晚安", "哦", "噢", "啊",
}
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
_QUESTION_END = ("?", "？", "吗", "呢")
_FIRST_PERSON_STATEMENT = re.compile(
    r"\b(i am|i'm|im|i have|i've|i live|i work|i moved|i like|i love|i hate|my name)\b"
    r"|我是|我叫|我在|我住|我有|我喜欢|我爱|我讨厌|我搬",
    re.IGNORECASE,
)


def normalize(text: str) -> str:
    """Return ``text`` NFKC-normalised, case-folded, without punctuation or spaces: the
    key under which two memories count as exact duplicates."""
    return _PUNCT.sub("", unicodedata.normalize("NFKC", text).casefold())


_TRIVIAL_KEYS = frozenset(normalize(t) for t in _TRIVIAL)


def is_trivial_turn(user_text: str) -> bool:
    """True when the user's message cannot carry a memory, so no LLM call is spent:
    acknowledgements ("ok", "thanks", "嗯嗯"), emoji-only text, and short questions
    ("Who am I?", "我最喜欢的编程语言是什么？") that do not also state something about
    the user ("I'm Tom, what's my score?" is not skipped)."""
    text = unicodedata.normalize("NFKC", user_text).strip()
    key = normalize(text)
    if not key or key in _TRIVIAL_KEYS:
        return True
    stripped = text.rstrip(" !！。.~")
    words = len(text.split()) if not _has_cjk(text) else len(key) // 2
    if stripped.endswith(_QUESTION_END) and words <= 12 and not _FIRST_PERSON_STATEMENT.search(text):
        # a single short question
        if len(re.findall(r"[.!?。！？]", stripped[:-1])) == 0:
            return True
    return False


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text)


@dataclass
class Candidate:
    """A memory proposed by extraction, before reconciliation."""

    text: str
    type: str = "fact"
    importance: int = 3
    tags: list[str] = field(default_factory=list)
    #: the known memory the extractor said this one changes or contradicts, if any
    replaces: MemoryRecord | None = None


def extract(llm, user_text: str, assistant_text: str, today: datetime,
            known: list[MemoryRecord] | None = None, max_chars: int = 4000) -> list[Candidate]:
    """Ask the LLM for atomic memories in one turn.

    Takes the LLM client (``memory.llm.LLM``), the user's message and the assistant's
    reply (either may be "" — e.g. when the reply failed), today's date for resolving
    relative dates, and ``known``: the user's memories most related to this turn (at most
    12 are shown, numbered). The model marks a candidate that changes a known memory with
    ``replaces``: that is how "I moved to Beijing" finds "Works in Shanghai" although the
    two are far apart as embeddings — reconciliation folded into the extraction call.
    Inputs are cut to ``max_chars`` each. Returns cleaned, de-duplicated candidates
    (possibly empty). Raises LLMError when the endpoint fails or the model's JSON stays
    invalid after one retry; the caller then writes nothing.
    """
    shown = list(known or [])[:MAX_KNOWN]
    lines = "\n".join(prompts.EXTRACT_KNOWN_LINE.format(n=i, text=r.text)
                      for i, r in enumerate(shown, start=1))
    system = prompts.EXTRACT_SYSTEM.format(
        today=today.strftime("%Y-%m-%d"),
        known_rules=prompts.EXTRACT_KNOWN_RULES if shown else "",
        known_example=prompts.EXTRACT_KNOWN_EXAMPLE if shown else "")
    schema = prompts.EXTRACT_SCHEMA if shown else prompts.EXTRACT_SCHEMA_NO_KNOWN
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": prompts.EXTRACT_USER.format(
            known=lines + "\n" if lines else "",
            user=user_text[:max_chars], assistant=(assistant_text or "")[:max_chars])},
    ]
    data = llm.complete_json(messages, schema, name="memories", max_tokens=512)
    return clean_candidates(data.get("memories") or [], shown)


MAX_KNOWN = 12


def clean_candidates(items: list[dict], known: list[MemoryRecord] | None = None) -> list[Candidate]:
    """Validate raw model items: drop empty/overlong texts, unknown types → "fact",
    clamp importance to 1..5, keep at most 8 tags of ≤ 32 chars, drop exact duplicates,
    resolve ``replaces`` (1-based index into ``known``; out of range → None; one known
    memory is replaced at most once). Returns at most 12 candidates."""
    out: list[Candidate] = []
    seen: set[str] = set()
    used: set[int] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        text = " ".join(str(item.get("text") or "").split())
        key = normalize(text)
        if not key or len(text) > 500 or key in seen:
            continue
        seen.add(key)
        mtype = str(item.get("type") or "fact")
        if mtype not in MEMORY_TYPES:
            mtype = "fact"
        try:
            importance = min(5, max(1, int(item.get("importance") or 3)))
        except (TypeError, ValueError):
            importance = 3
        tags = [str(t)[:32] for t in (item.get("tags") or []) if str(t).strip()][:8]
        replaces = None
        idx = item.get("replaces")
        if isinstance(idx, int) and known and 1 <= idx <= len(known) and idx not in used:
            replaces = known[idx - 1]
            used.add(idx)
        out.append(Candidate(text=text, type=mtype, importance=importance, tags=tags,
                             replaces=replaces))
    return out[:12]


