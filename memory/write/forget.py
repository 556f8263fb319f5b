"""Forget requests in chat: "forget that I like sushi", "please forget my phone number",
"别记这个" tombstone what they name (``memory.write.versions.tombstone``: out of search, lists and
prompts at once; undoable; erased after the retention, ``memory.write.retention``).

What is forgotten:

* a request that names something ("… that I like sushi", "我的住址") forgets the user's
  memories that search finds for it *and* that share its content words (or, across
  scripts, are close as embeddings); nothing is deleted on a weak match;
* a bare request ("forget that", "forget it", "别记这个") undoes the user's last
  learning turn as a whole (``memory.write.undo``).

No LLM call; the turn is never sent to extraction (which would store the fact again).
"""
from __future__ import annotations

import logging
import re
import unicodedata
from datetime import datetime

import numpy as np

from memory.write.grounding import FUNCTION_WORDS, content_tokens
from memory.write.intents import FORGET_OTHER
from memory.types import Change, utcnow
from memory.write.undo import UndoError, undo_turn
from memory.write.versions import tombstone

log = logging.getLogger(__name__)

_TRIGGER = re.compile(
    r"(please|pls|can you|could you|just|and|also|kindly)?\s*"
    r"(forget|stop remembering|don'?t remember|do not remember|delete|remove|erase|unlearn|"
    r"(don'?t|do not|no need to) (remember|store|save|keep))\s*"
    r"(about|that|what i (said|told you) about|the fact that|everything about)?\s*"
    r"|(请|帮我)?(别|不要|不用|不必|无需)(再)?(记住|记|保存|存)(下)?"
    r"|(请|帮我)?把|忘(掉|记掉)(吧)?|(删掉|删除|去掉)(关于)?"
    r"|" + FORGET_OTHER,
    re.IGNORECASE)
_DEICTIC = {"", "it", "that", "this", "those", "these", "what i just said", "what i said",
            "这个", "那个", "这些", "那些", "这条", "刚才的", "刚才说的", "这句", "它"}
#: Cosine similarity at which a memory counts as what a cross-script request names.
SEMANTIC_MATCH = 0.6


def forget_target(text: str) -> str:
    """Return what a forget request names, with the trigger words removed
    ("please forget that I like sushi" → "I like sushi"; "别记这个" → "这个")."""
    t = unicodedata.normalize("NFKC", text).strip()
    t = _TRIGGER.sub(" ", t)
    return " ".join(t.strip(" .!?。！？,，~").split())


def forget(mem, uid: str, text: str, now: datetime | None = None) -> list[Change]:
    """Carry out the forget request ``text`` of user ``uid`` on ``mem`` (a Memory).

    Returns one ``Change`` per memory forgotten (``FORGET``), or the undo's changes
    (``UNDO``/``RESTORE``) for a bare request; ``[]`` when nothing matched. History
    events carry actor ``"user"``."""
    now = now or utcnow()
    target = forget_target(text)
    if target.casefold() in _DEICTIC:
        return _undo_last_turn(mem, uid, now)
    victims = _matching(mem, uid, target)
    changes = []
    for rec in victims:
        if tombstone(mem.store, uid, rec, "user", now):
            changes.append(Change("FORGET", rec.id, rec.text, type=rec.type))
    _refresh(mem, uid, changes, now)
    return changes


def _matching(mem, uid: str, target: str) -> list:
    """The user's memories that ``target`` names: search hits that share at least half
    of the target's content tokens, or — when none do — are semantically close."""
    try:
        hits = mem.search(target, uid, limit=8).memories
    except ValueError:
        return []
    wanted = content_tokens(target) - FUNCTION_WORDS  # "il", "que" name nothing
    if wanted:
        lexical = [h.record for h in hits
                   if len((content_tokens(h.text) - FUNCTION_WORDS) & wanted) * 2 >= min(len(wanted), 2)]
        if lexical:
            return lexical
    if not hits:
        return []
    q = np.asarray(mem.embedder.embed_query(target), dtype=np.float32)
    vecs = mem.embedder.embed_documents([h.text for h in hits])
    sims = np.asarray(vecs, dtype=np.float32) @ q
    return [h.record for h, s in zip(hits, sims) if float(s) >= SEMANTIC_MATCH]


def _undo_last_turn(mem, uid: str, now: datetime) -> list[Change]:
    """Undo the user's most recent learning turn as a whole (``memory.write.undo``); ``[]``
    when there is none or it cannot be undone (a later turn changed its memories)."""
    try:
        return list(undo_turn(mem, uid, now=now))
    except UndoError as exc:
        log.info("bare forget request: %s", exc)
        return []


def _refresh(mem, uid: str, changes: list[Change], now: datetime) -> None:
    if any(c.type in ("profile", "preference") for c in changes):
        from memory.write.profile import refresh_profile
        refresh_profile(mem.store, uid, now)
