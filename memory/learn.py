"""Learning from one chat turn: the write path of the memory.

    user message ─┬─ forget request? → memory.forget (no LLM)
                  └─ learnable statements (memory.intents; none → no LLM call)
                       → explicit corrections ("Nantes, not Nancy") fixed (no LLM)
                       → KNOWN memories for the turn (profile + hybrid-search hits)
                       → extract (1 LLM call, memory.extraction)
                       → PII redaction → embed
                       → reconcile (0–1 LLM call per ambiguous candidate)
                       → apply ADD / UPDATE / DELETE with history → refresh the profile

The assistant's reply of the turn is never learned from; the assistant's *previous*
message is passed as ``context`` so a short answer ("Lyon.") can be understood.
"""
from __future__ import annotations

import logging
from datetime import datetime

import numpy as np

from memory.cessation import contradicted
from memory.corrections import corrected_text, find_corrections
from memory.extraction import Candidate, extract
from memory.forget import forget
from memory.intents import is_forget_request, learnable_text
from memory.pii import redact
from memory.profile import refresh_profile
from memory.reconcile import Decision, reconcile
from memory.types import Change, HistoryEvent, MemoryRecord, new_id, utcnow

log = logging.getLogger(__name__)


def learn_turn(mem, uid: str, thread_id: str | None, user_text: str, context: str,
               metadata: dict, when: datetime) -> list[Change]:
    """Learn from the user's message ``user_text`` of one turn (``mem``: the Memory).

    ``context``: the assistant message the user is answering ("" if none); ``metadata``
    is copied onto new memories; ``when`` (aware UTC) dates them and resolves relative
    dates. Returns the changes (``[]`` for a turn with nothing to learn). Raises
    LLMError when extraction fails: nothing of the extraction is written then (an
    explicit correction, applied before the LLM call and complete in itself, stays)."""
    if not user_text.strip():
        return []
    if is_forget_request(user_text):
        with mem._user_lock(uid):
            return forget(mem, uid, user_text)
    text = learnable_text(user_text, answering=_asks_question(context))
    if not text:
        return []
    fixes = find_corrections(text)
    if fixes:
        with mem._user_lock(uid):
            corrected = _apply_corrections(mem, uid, fixes)
    else:
        corrected = []
    known = known_for(mem, uid, text)
    candidates = extract(mem.llm, text, when, known, context=context)
    stale = contradicted(known, text)
    if not candidates and not stale:
        return corrected
    for cand in candidates:
        cand.text = redact(cand.text)[0]
    with mem._user_lock(uid):
        embeddings = mem.embedder.embed_documents([c.text for c in candidates]) if candidates \
            else np.zeros((0, mem.embedder.dim), dtype=np.float32)
        decisions = reconcile(mem.llm, mem.store, uid, candidates, embeddings,
                              shown={r.id for r in known})
        decisions += _retire(stale, decisions)
        return corrected + apply_decisions(mem, uid, thread_id, decisions, metadata, when)


def _apply_corrections(mem, uid: str, fixes) -> list[Change]:
    """Rewrite the user's memories that state a value the message corrects ("Nantes,
    not Nancy"); one UPDATE with history per memory."""
    changes: list[Change] = []
    now = utcnow()
    for rec in mem.store.list_memories(uid, limit=500):
        text = rec.text
        for fix in fixes:
            text = corrected_text(text, fix) or text
        if text == rec.text:
            continue
        vec = mem.embedder.embed_documents([text])[0].tolist()
        if mem.store.update_memory(uid, rec.id, text=text, embedding=vec, fields={"updated_at": now},
                                   history=HistoryEvent(rec.id, uid, "UPDATE", rec.text, text, "llm", at=now)):
            changes.append(Change("UPDATE", rec.id, text, rec.text, rec.type))
    if any(c.type in ("profile", "preference") for c in changes):
        refresh_profile(mem.store, uid, now)
    return changes


def _retire(stale: list[MemoryRecord], decisions: list[Decision]) -> list[Decision]:
    """DELETE decisions for memories a cessation clause contradicts ("I don't drink
    coffee anymore" → "Drinks coffee"), unless this turn already updates them."""
    touched = {d.target.id for d in decisions if d.target is not None and d.action != "NONE"}
    return [Decision(Candidate(rec.text, rec.type), np.zeros(0, dtype=np.float32), "DELETE",
                     rec, rec.text, "ceased")
            for rec in stale if rec.id not in touched]


def _asks_question(context: str) -> bool:
    """True when the assistant message ``context`` ends by asking the user something,
    so a short reply without "I" ("Lyon.") is an answer worth learning from."""
    tail = (context or "").strip()[-200:]
    return "?" in tail or "？" in tail


def known_for(mem, uid: str, text: str) -> list[MemoryRecord]:
    """The memories shown to the extractor as KNOWN: the user's profile memories (most
    important first, ≤ 6) and the best hybrid-search hits for the turn, ≤ 12 in all.

    Searched afresh rather than reusing the hits the reply was given: in the app the
    previous turn's extraction may still have been writing when this turn's reply was
    retrieved, and a memory missing here could not be marked as replaced."""
    profile = sorted(mem.store.list_memories(uid, limit=50, types=["profile"]),
                     key=lambda r: -r.importance)[:6]
    known = {r.id: r for r in profile}
    try:
        for hit in mem.search(text, uid, limit=8).memories:
            known.setdefault(hit.id, hit.record)
    except ValueError:
        pass
    return list(known.values())[:12]


def apply_decisions(mem, uid: str, thread_id: str | None, decisions: list[Decision],
                    metadata: dict, when: datetime, *, source: str = "chat",
                    actor: str = "llm") -> list[Change]:
    """Write the reconciliation ``decisions`` of one turn (each with its history event,
    by ``actor``, all stamped with one instant so the turn can be undone as a whole)
    and refresh the profile if a profile or preference memory changed. New memories
    get ``source`` and ``metadata`` (a resource passes ``source="resource"``, its link
    in ``metadata`` and an actor naming it). Returns one Change per decision (NONE
    included)."""
    changes: list[Change] = []
    profile_touched = False
    now = utcnow()
    for d in decisions:
        cand: Candidate = d.candidate
        if d.action == "ADD":
            rec = MemoryRecord(id=new_id(), user_id=uid, text=d.text, type=cand.type,
                               thread_id=thread_id, importance=cand.importance,
                               tags=cand.tags, source=source, metadata=dict(metadata),
                               created_at=when, updated_at=when,
                               embedding=d.embedding.tolist())
            mem.store.insert_memories(
                [rec], [HistoryEvent(rec.id, uid, "ADD", None, d.text, actor, at=now)])
            changes.append(Change("ADD", rec.id, d.text, type=cand.type))
            profile_touched |= cand.type in ("profile", "preference")
        elif d.action == "UPDATE" and d.target is not None:
            text = redact(d.text)[0]
            vec = d.embedding if text == cand.text else mem.embedder.embed_documents([text])[0]
            tags = list(dict.fromkeys(cand.tags + list(d.target.tags)))[:8]
            fields = {"importance": max(d.target.importance, cand.importance),
                      "tags": tags, "type": cand.type, "updated_at": now}
            ok = mem.store.update_memory(
                uid, d.target.id, text=text, embedding=vec.tolist(), fields=fields,
                history=HistoryEvent(d.target.id, uid, "UPDATE", d.target.text, text, actor, at=now))
            if ok:
                changes.append(Change("UPDATE", d.target.id, text, d.target.text, cand.type))
                profile_touched |= bool({d.target.type, cand.type} & {"profile", "preference"})
        elif d.action == "DELETE" and d.target is not None:
            ok = mem.store.delete_memory(
                uid, d.target.id,
                history=HistoryEvent(d.target.id, uid, "DELETE", d.target.text, None, actor, at=now))
            if ok:
                changes.append(Change("DELETE", d.target.id, d.target.text, type=d.target.type))
                profile_touched |= d.target.type in ("profile", "preference")
        else:
            changes.append(Change("NONE", d.target.id if d.target else None, cand.text,
                                  type=cand.type))
    if profile_touched:
        refresh_profile(mem.store, uid, now)
    return changes
