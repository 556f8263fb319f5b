"""Learning from one chat turn: the write path of the memory.

    user message ─┬─ forget request? → memory.write.forget (no LLM)
                  └─ learnable statements (memory.write.intents; none → no LLM call)
                       → explicit corrections ("Nantes, not Nancy") fixed when the
                         model confirms (memory.write.confirm)
                       → KNOWN memories for the turn (profile + hybrid-search hits)
                       → extract (1 LLM call, memory.write.extract), split into atomic
                         facts (memory.write.atomic), and a name, age or move the
                         model dropped added (memory.write.stated)
                       → clean each item (memory.safety.sanitize: PII redaction, NUL, size;
                         an item that fails is dropped, logged) → embed
                       → reconcile (0–1 LLM call per ambiguous candidate); memories
                         the message may end — a stopped habit, a graduation, a
                         meat-free diet (memory.write.cessation), a move's old workplace
                         (memory.write.moves) — are ended only when the model confirms
                         (memory.write.confirm, one call when a rule fired)
                       → apply ADD / UPDATE / END with history, earlier values kept
                         (memory.write.versions) → refresh the profile,
                         all in ONE store.transaction() (no LLM call inside it)

The assistant's reply of the turn is never learned from; the assistant's *previous*
message is passed as ``context`` so a short answer ("Lyon.") can be understood.
"""
from __future__ import annotations

import functools
import logging
from datetime import datetime

import numpy as np

from memory.text import language
from memory.write.atomic import atomize
from memory.write.cessation import (contradicted, eats_meat_again, graduated, meat_free,
                              still_studying)
from memory.write.corrections import corrected_text, find_corrections, states_wrong_value
from memory.write.extract import Candidate, extract
from memory.write.forget import forget
from memory.write.intents import is_forget_request, learnable_text
from memory.write.moves import left_behind, moves_home
from memory.write import (confirm, provenance, residence, retention, turn_scope,
                          versions)
from memory.write.profile import refresh_profile
from memory.write.reconcile import Decision, reconcile
from memory.safety.sanitize import clamp_importance, clean_memory_text, clean_tags
from memory.llm.errors import LLMError, one_line
from memory.types import (WRITE_EVENTS, Change, Changes, HistoryEvent, MemoryRecord, new_id,
                          utcnow)

log = logging.getLogger(__name__)


def learn_changes(mem, uid: str, thread_id: str | None, user_text: str, context: str,
                  metadata: dict, when: datetime) -> Changes:
    """``learn_turn`` for one ``Memory.add`` call or chat turn, never raising for the
    model: returns its changes as ``Changes``; an LLM failure (LLMError) or an extracted
    text that cannot be stored (ValueError, e.g. a redaction failure) gives an empty
    ``Changes`` whose ``error`` says why, logged (nothing of it is written: the turn's
    writes are one transaction)."""
    config = getattr(mem, "config", None)
    if config is not None:
        retention.purge_user(mem.store, uid, config.memory_forget_retention_hours)
    with turn_scope.turn() as turn_id:
        try:
            changes = learn_turn(mem, uid, thread_id, user_text, context, metadata, when)
        except (LLMError, ValueError) as exc:
            error = f"Memory extraction skipped: {exc}"
            log.warning("%s", error)
            return Changes(error=error)
    undoable = any(c.event in WRITE_EVENTS for c in changes)  # not an undo's own changes
    return Changes(changes, turn_id=turn_id if undoable else None)


def learn_turn(mem, uid: str, thread_id: str | None, user_text: str, context: str,
               metadata: dict, when: datetime) -> list[Change]:
    """Learn from the user's message ``user_text`` of one turn (``mem``: the Memory; its
    ``store``, ``embedder``, ``llm``, ``search`` and ``user_locks`` are used).

    ``context``: the assistant message the user is answering ("" if none); ``metadata``
    is copied onto new memories; ``when`` (aware UTC) dates them and resolves relative
    dates. Returns the changes (``[]`` for a turn with nothing to learn). Raises
    LLMError when extraction fails: nothing of the extraction is written then (an
    explicit correction, applied before the LLM call and complete in itself, stays)."""
    if not user_text.strip():
        return []
    if is_forget_request(user_text):
        with mem.user_locks.for_user(uid):
            return forget(mem, uid, user_text)
    answering = _asks_question(context)
    # the assistant's words are context only for an answer to its question ("Lyon." after
    # "Where do you live?"); otherwise a short message would be grounded in them, and the
    # reply "You lived in Munich until 2026-12" became a memory on "I also started Spanish"
    context = context if answering else ""
    text = learnable_text(user_text, answering=answering)
    if not text:
        return []
    fixes = find_corrections(text)
    if fixes:
        with mem.user_locks.for_user(uid):
            corrected = _apply_corrections(mem, uid, fixes, text)
    else:
        corrected = []
    known, known_error = known_for(mem, uid, text)
    candidates = clean_candidates(atomize(extract(mem.llm, text, when, known, context=context),
                                          text, language.detect(text)))
    if fixes:  # "陶艺课是每周四晚上，不是周三" restates the correction applied above
        candidates = [c for c in candidates if not states_wrong_value(c.text, fixes)]
    # the user's memories, read only when a rule below needs them (not on most turns)
    stored = functools.cache(lambda: mem.store.list_memories(uid, limit=500))
    stale = [(r, "ceased") for r in contradicted(known, text)]
    if graduated(text):
        stale += [(r, "graduated") for r in still_studying(stored())]
    if eats_meat_again(text):
        stale += [(r, "diet") for r in meat_free(stored())]
    if not candidates and not stale:
        return corrected
    with mem.user_locks.for_user(uid):
        embeddings = mem.embedder.embed_documents([c.text for c in candidates]) if candidates \
            else np.zeros((0, mem.embedder.dim), dtype=np.float32)
        residence.mark_all(candidates, mem.embedder, embeddings)  # constraints, homes
        decisions = reconcile(mem.llm, mem.store, uid, candidates, embeddings,
                              shown={r.id for r in known}, message=text)
        if moves_home(decisions):
            stale += [(r, "moved") for r in left_behind(stored(), text)]
        decisions, stale = confirm.second_opinion(mem.llm, text, decisions,
                                                  _untouched(stale, decisions))
        decisions += _retire(stale)
        changes = apply_decisions(mem, uid, thread_id, decisions, metadata, when)
    if known_error:
        for change in changes:
            if change.event == "ADD":
                change.reason = "; ".join(filter(None, (change.reason, known_error)))
    return corrected + changes


def clean_candidates(candidates: list[Candidate]) -> list[Candidate]:
    """The extracted candidates cleaned by ``memory.safety.sanitize`` (text: NUL removed, NFC,
    at most 20,000 characters, PII-redacted; tags and importance checked), before
    anything is written. A candidate that fails (a lone surrogate, a redaction failure)
    is dropped and logged, so a hostile answer never half-applies."""
    out = []
    for i, cand in enumerate(candidates):
        try:
            cand.text = clean_memory_text(cand.text, f"memories[{i}].text")
            cand.tags = clean_tags(cand.tags, f"memories[{i}].tags")
            cand.importance = clamp_importance(cand.importance, f"memories[{i}].importance")
        except ValueError as exc:
            log.warning("extracted memory dropped: %s", exc)
            continue
        out.append(cand)
    return out


def _apply_corrections(mem, uid: str, fixes, message: str) -> list[Change]:
    """Rewrite the user's memories that state a value the message corrects ("Nantes,
    not Nancy") when the model confirms the message says the memory was wrong
    (``memory.write.confirm``; "I want juice, not tea, today" is a choice); one UPDATE with
    history per memory, the earlier value kept as superseded."""
    changes: list[Change] = []
    now = utcnow()
    proposals = []
    for rec in mem.store.list_memories(uid, limit=500):
        text = rec.text
        for fix in fixes:
            text = corrected_text(text, fix) or text
        if text == rec.text:
            continue
        try:
            proposals.append((rec, clean_memory_text(text)))
        except ValueError as exc:
            log.warning("correction of memory %s skipped: %s", rec.id, exc)
    ok = confirm.confirmed(mem.llm, message, [rec.text for rec, _ in proposals])
    for (rec, text), yes in zip(proposals, ok):
        if not yes:
            log.info("correction of memory %s not confirmed by the model", rec.id)
            continue
        vec = mem.embedder.embed_documents([text])[0].tolist()
        if versions.replace_value(mem.store, uid, rec, text, vec, {"updated_at": now}, "llm",
                                  now, reason="rule:correction"):
            changes.append(Change("UPDATE", rec.id, text, rec.text, rec.type))
    if any(c.type in ("profile", "preference") for c in changes):
        refresh_profile(mem.store, uid, now)
    return changes


def _untouched(stale: list[tuple[MemoryRecord, str]],
               decisions: list[Decision]) -> list[tuple[MemoryRecord, str]]:
    """The ``(memory, reason)`` proposals whose memory this turn does not already update
    or delete, each memory once."""
    touched = {d.target.id for d in decisions if d.target is not None and d.action != "NONE"}
    out = []
    for rec, reason in stale:
        if rec.id not in touched:
            touched.add(rec.id)
            out.append((rec, reason))
    return out


def _retire(stale: list[tuple[MemoryRecord, str]]) -> list[Decision]:
    """DELETE decisions (applied as END: kept as past) for the confirmed ``(memory,
    reason)`` pairs the message ends: a cessation clause ("I don't drink coffee anymore"
    → "Drinks coffee", ``ceased``), a graduation (→ "在读研究生", ``graduated``), eating
    meat again (→ "Vegan", ``diet``), a move (→ "Works in Denver", ``moved``)."""
    return [Decision(Candidate(rec.text, rec.type), np.zeros(0, dtype=np.float32),
                     "DELETE", rec, rec.text, reason) for rec, reason in stale]


def _asks_question(context: str) -> bool:
    """True when the assistant message ``context`` ends by asking the user something,
    so a short reply without "I" ("Lyon.") is an answer worth learning from."""
    tail = (context or "").strip()[-200:]
    return "?" in tail or "？" in tail


def known_for(mem, uid: str, text: str) -> tuple[list[MemoryRecord], str | None]:
    """The memories shown to the extractor as KNOWN: the user's profile memories (most
    important first, ≤ 6) and the best hybrid-search hits for the turn, ≤ 12 in all;
    and None, or the one-line reason (logged) when the search failed — then a
    contradiction may be stored next to what it contradicts, so the turn's ADD changes
    carry the reason in ``Change.reason``.

    Searched afresh rather than reusing the hits the reply was given: in the app the
    previous turn's extraction may still have been writing when this turn's reply was
    retrieved, and a memory missing here could not be marked as replaced."""
    profile = sorted(mem.store.list_memories(uid, limit=50, types=["profile"]),
                     key=lambda r: -r.importance)[:6]
    known = {r.id: r for r in profile}
    error = None
    try:
        for hit in mem.search(text, uid, limit=8).memories:
            known.setdefault(hit.id, hit.record)
    except Exception as exc:  # noqa: BLE001 - learning goes on without the hits
        error = f"known memories could not be searched ({one_line(exc, 160)})"
        log.warning("%s", error)
    return list(known.values())[:12], error


def apply_decisions(mem, uid: str, thread_id: str | None, decisions: list[Decision],
                    metadata: dict, when: datetime, *, source: str = "chat",
                    actor: str = "llm") -> list[Change]:
    """Write the reconciliation ``decisions`` of one turn (each with its history event,
    by ``actor``, all stamped with one instant so the turn can be undone as a whole)
    and refresh the profile if a profile or preference memory changed — all in ONE
    ``store.transaction()`` (texts are cleaned and embedded before it opens: a failure
    writes nothing; a caller's own transaction is joined). New memories get ``source``
    and ``metadata`` (a resource passes ``source="resource"``, its link in ``metadata``
    and an actor naming it). Returns one Change per decision (NONE included); a
    reconcile fallback to ADD says so in ``Change.reason``."""
    now = utcnow()
    vectors = {}
    for i, d in enumerate(decisions):
        if d.action == "UPDATE" and d.target is not None:
            text = clean_memory_text(d.text)
            vectors[i] = (text, d.embedding if text == d.candidate.text
                          else mem.embedder.embed_documents([text])[0])
    changes: list[Change] = []
    profile_touched = False
    with mem.store.transaction():
        for i, d in enumerate(decisions):
            change = _apply(mem, uid, thread_id, d, vectors.get(i), metadata, when, now,
                            source, actor)
            if change is not None:
                changes.append(change)
                profile_touched |= change.event != "NONE" and bool(
                    {change.type, d.target.type if d.target else None} & {"profile", "preference"})
        if profile_touched:
            refresh_profile(mem.store, uid, now)
    return changes


#: Decision reasons that mean the model decided (anything else is a rule of the write path).
_MODEL_REASONS = ("llm", "extract", "")


def _reason(d: Decision, actor: str) -> str:
    """What decided an UPDATE or an ending: ``actor`` (the model, or the file) or
    ``rule:<name>`` for a rule of the write path (``rule:ceased``, ``rule:one-value``)."""
    if d.reason in _MODEL_REASONS:
        return actor
    return versions.reason_of(actor, d.reason.replace(" ", "-"))


_FALLBACK = "the reconciliation call failed, so it was added (nothing lost; it may repeat a memory)"


def _apply(mem, uid, thread_id, d: Decision, update, metadata, when, now,
           source: str = "chat", actor: str = "llm") -> Change | None:
    """Write one decision; return its Change (None when its target was gone)."""
    cand: Candidate = d.candidate
    if d.action == "ADD":
        rec = MemoryRecord(id=new_id(), user_id=uid, text=d.text, type=cand.type,
                           thread_id=thread_id, importance=cand.importance,
                           tags=cand.tags, source=source, metadata=dict(metadata),
                           created_at=when, updated_at=when, embedding=d.embedding.tolist())
        mem.store.insert_memories(
            [rec], [HistoryEvent(rec.id, uid, "ADD", None, d.text, actor, at=now)])
        if d.reason == "fallback":
            log.warning("reconciliation fell back to ADD for memory %s", rec.id)
        return Change("ADD", rec.id, d.text, type=cand.type,
                      reason=_FALLBACK if d.reason == "fallback" else None)
    if d.action == "UPDATE" and d.target is not None:
        text, vec = update
        tags = list(dict.fromkeys(cand.tags + list(d.target.tags)))[:8]
        fields = {"importance": max(d.target.importance, cand.importance),
                  "tags": tags, "type": cand.type, "updated_at": now}
        meta = provenance.with_source(d.target, provenance.source_key(source, metadata))
        if meta is not None:  # the new value is also this file's or this chat's
            fields["metadata"] = meta
        ok = versions.replace_value(mem.store, uid, d.target, text, vec.tolist(), fields,
                                    actor, now, reason=_reason(d, actor))
        return Change("UPDATE", d.target.id, text, d.target.text, cand.type) if ok else None
    if d.action == "DELETE" and d.target is not None:
        reason = _reason(d, actor)
        ok = versions.end(mem.store, uid, d.target, actor, now, reason=reason)
        return Change("END", d.target.id, d.target.text, type=d.target.type,
                      reason=None if reason == actor else reason) if ok else None
    if d.target is not None:  # said again by another source: it supports the memory too
        meta = provenance.with_source(d.target, provenance.source_key(source, metadata))
        if meta is not None:
            mem.store.update_memory(uid, d.target.id, fields={
                "metadata": meta, "updated_at": d.target.updated_at or now})
    return Change("NONE", d.target.id if d.target else None, cand.text, type=cand.type)
