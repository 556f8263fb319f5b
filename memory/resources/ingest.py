"""Learning from a resource, and the engine's resource operations: add (idempotent per user and content), list, get, soft delete.

    upload ─ size limit (MEMORY_MAX_UPLOAD_MB, before reading it whole) ─ sha256: the
    same file again → the same resource ─ type from the content (disguised or
    unsupported → ValueError, nothing stored) ─ resource row ``pending``
      → blocks (memory.resources.extract) → chunks; chunks with nothing about the user
        skipped (memory.resources.chunking)
      → per batch of chunks: extract (1 LLM call, no KNOWN lines: with them the 1.5B
        model answered a CV with nothing; a note says labelled lines are facts,
        memory.write.extract, in the document's language)
      → cleaning + PII redaction (learn.clean_candidates), de-duplication inside the document, embed
      → constraints marked (memory.write.constraints), reconcile against ALL the user's
        memories, chat ones included (0–1 LLM call per ambiguous candidate,
        memory.write.reconcile); a rewrite or ending only when the model confirms the chunk
        ends the old value (memory.write.confirm, as for a chat turn)
      → ONE store transaction: ADD / UPDATE / END with history by
        ``resource:<id8>``, earlier values kept, a restated memory gains this file as a
        source (learn.apply_decisions, memory.write.provenance) + status ``ready``

Any failure before that transaction (corrupt file, LLM down) marks the resource
``failed`` with one line (``detail["failure"]``: ``input`` or ``service``) and writes no
memory, so nothing is half-stored. A ``pending`` resource whose ingest died (the
process was killed: ``memory.resources.lease``) is taken over by the next upload of
the same file.
"""
from __future__ import annotations

import hashlib
import logging
import time
from itertools import groupby
from pathlib import PurePath
from typing import Any, Callable

import numpy as np

from memory.llm.errors import LLMError, one_line
from memory.write.extract import Candidate, extract
from memory.write.grounding import support
from memory.write.intents import normalize
from memory.write.pipeline import apply_decisions, clean_candidates
from memory.write import confirm, provenance, residence
from memory.write.profile import refresh_profile
from memory.write.reconcile import NEAR_DUP, reconcile
from memory.resources import lease
from memory.resources.chunking import BATCH_CHARS, Chunk, batches, chunk_blocks, relevant
from memory.resources.extract import ResourceFailed, extract_blocks
from memory.resources.model import MAX_FILENAME, SOURCE, Resource
from memory.resources.sniff import EMPTY, describe, kind_of, read_source, sniff
from memory.safety.sanitize import strip_invisible
from memory.types import Change, HistoryEvent, MemoryRecord, new_id, utcnow
from memory.safety.users import check_user_id

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

#: Put before a document's text in its extraction call (the system prompt stays the
#: chat's, so the model's cached prefix is reused): on the real model a CV's
#: "Languages: German, English, Spanish" line was dropped and its duties were stored.
DOCUMENT_NOTE = ("(A document the user gave you. Its labelled lines — Address:, Languages:, "
                 "Hobbies:, Skills: — are facts about the user: one memory per item, written "
                 "without the label. Job duties and task lists are not memories.)\n")


def add_resource(memory, source: Any, user_id: str, filename: str | None = None,
                 mime: str | None = None, *, batch_chars: int = BATCH_CHARS,
                 progress: Progress | None = None) -> Resource:
    """Store a file of ``user_id`` as a resource and learn what it says about them.

    ``memory``: the ``Memory``; ``source``: a path, bytes or a binary file object
    (read at most ``MEMORY_MAX_UPLOAD_MB``); ``filename``: the name to show (default:
    the path's); ``mime``: a declared type (e.g. the browser's), only checked against
    the content. ``progress(done, total)`` is called after each extraction batch.
    Returns the Resource (``ready``, or ``failed`` with ``error`` and
    ``detail["failure"]``: ``"input"`` when the file is the reason, ``"service"`` when
    the LLM was; the same file again returns the existing resource unchanged with
    ``duplicate`` set, ``pending`` while another live upload is learning from it; a
    failed one, or a pending one whose ingest was abandoned (``lease.abandoned``: its
    process died), is retried) with ``memory_count`` and, in ``detail``, ``changes``
    (ADD/UPDATE/DELETE/NONE dicts) for this ingest. Raises ValueError (nothing stored)
    for a file over the limit, an unsupported or disguised type, an image without
    ``VISION_MODEL``, audio without ``TRANSCRIPTION_MODEL``, or a bad user id;
    StoreError when the store fails.
    """
    uid = check_user_id(user_id)
    store = memory.store
    limit = int(float(memory.config.memory_max_upload_mb) * 2**20)
    data, name = read_source(source, limit, filename)
    name = _clean_name(name)
    digest = hashlib.sha256(data).hexdigest()
    existing = store.find_resource(uid, digest)
    if existing is not None and not _retryable(existing):
        existing.duplicate = True
        return _counted(memory, existing)
    detected = sniff(data, name, mime)
    kind = kind_of(detected)
    if detected != EMPTY and kind is None:
        raise ValueError(f"{name} is refused: its content is {describe(detected)}; supported are "
                         "text, Markdown, HTML, PDF, DOCX, images and audio")
    if kind == "audio" and not memory.config.transcription_model:
        raise ValueError(f"{name} is audio, which needs a speech-to-text model: set "
                         "TRANSCRIPTION_MODEL (OpenAI-compatible /audio/transcriptions)")
    if kind == "image" and not memory.config.vision_model:
        raise ValueError(f"{name} is an image, which needs a vision model: set VISION_MODEL")
    started = {"ingest": lease.owner()}
    if existing is not None:
        res = existing
        if not store.claim_resource(uid, res.id, res.updated_at, status="pending", error=None,
                                    detail=started):
            # another upload took the failed or abandoned row over first: it learns
            res = store.get_resource(uid, res.id) or res
            res.duplicate = True
            return _counted(memory, res)
        res.status, res.error, res.detail = "pending", None, started
    else:
        fresh = Resource(id=new_id(), user_id=uid, filename=name, mime=detected,
                         size=len(data), sha256=digest, detail=started)
        res = store.insert_resource(fresh)
        if res.id != fresh.id:  # another upload of the same file got there first
            res.duplicate = True
            return _counted(memory, res)
    with lease.holding(res.id):
        try:
            if detected == EMPTY:
                raise ResourceFailed("the file is empty")
            blocks, info = extract_blocks(kind, data, name, detected, memory.llm)
            learn_blocks(memory, res, blocks, info, batch_chars=batch_chars, progress=progress)
        except (ResourceFailed, LLMError) as exc:
            reason = one_line(exc)
            failure = "input" if getattr(exc, "bad_input", False) else "service"
            log.info("resource %s of %s failed (%s): %s", res.id[:8], uid, failure, reason)
            store.update_resource(uid, res.id, status="failed", error=reason,
                                  detail={"failure": failure})
            res.status, res.error, res.detail = "failed", reason, {"failure": failure}
            return _counted(memory, res)
        except BaseException as exc:
            try:  # best effort: never leave a resource "pending" behind an error
                store.update_resource(uid, res.id, status="failed", error=one_line(exc),
                                      detail={"failure": "service"})
            except Exception:  # noqa: BLE001 - the original error matters more
                pass
            raise
    return _counted(memory, res)


def learn_blocks(memory, res: Resource, blocks, info: dict, *, batch_chars: int = BATCH_CHARS,
                 progress: Progress | None = None) -> list[Change]:
    """Learn from the extracted ``blocks`` of resource ``res`` (see the module
    docstring) and mark it ``ready``; memories and status are written in one store
    transaction. Sets ``res.status``/``res.detail`` and returns the changes. Raises
    LLMError when an extraction call fails (nothing written then)."""
    uid, store, llm = res.user_id, memory.store, memory.llm
    started, calls = time.monotonic(), getattr(llm, "calls", 0)
    chunks = chunk_blocks(blocks)
    used = [c for c in chunks if relevant(c)]
    when = utcnow()
    found: list[tuple[Candidate, Chunk]] = []
    groups = batches(used, batch_chars)
    for n, batch in enumerate(groups, start=1):
        text = "\n\n".join(c.text for c in batch)
        for cand in extract(llm, DOCUMENT_NOTE + text, when, [],
                            max_chars=len(DOCUMENT_NOTE) + len(text) + 1, document=True):
            found.append((cand, origin(cand.text, batch)))
        lease.renew(store, res)
        if progress is not None:
            progress(n, len(groups))
    found = _distinct(found)
    with memory.user_locks.for_user(uid):
        changes: list[Change] = []
        decisions = []
        if found:
            vectors = memory.embedder.embed_documents([c.text for c, _ in found])
            found, vectors = _no_near_duplicates(found, np.asarray(vectors, dtype=np.float32))
            residence.mark_all([c for c, _ in found], memory.embedder, vectors)
            decisions = _second_opinion(llm, found, reconcile(
                llm, store, uid, [c for c, _ in found], vectors))
        detail = {"pages": info.get("pages"), "blocks": len(blocks), "chunks": len(chunks),
                  "chunks_used": len(used), "batches": len(groups)}
        with store.transaction():
            paired = sorted(zip(decisions, (ch for _, ch in found)), key=lambda p: p[1].position)
            for chunk, group in groupby(paired, key=lambda p: p[1]):
                meta = {"resource_id": res.id, "resource": res.filename, "chunk": chunk.position}
                if chunk.page is not None:
                    meta["page"] = chunk.page
                changes += apply_decisions(memory, uid, None, [d for d, _ in group], meta, when,
                                           source=SOURCE, actor=res.actor)
            detail.update(llm_calls=getattr(llm, "calls", 0) - calls,
                          seconds=round(time.monotonic() - started, 3),
                          changes=[c.to_dict() for c in changes])
            store.update_resource(uid, res.id, status="ready", error=None, detail=detail)
    res.status, res.error, res.detail = "ready", None, detail
    return changes


def _second_opinion(llm, found: list[tuple[Candidate, Chunk]], decisions: list) -> list:
    """The chat's second opinion (``memory.write.confirm.second_opinion``) for a document: the
    reconciliation's rewrites and endings of each chunk are applied only when the model
    confirms that chunk ends the old value (one call per chunk that proposes any; a CV's
    "Address: Berlin" ends "Lives in Munich", a travel plan's week in Rome does not)."""
    out = list(decisions)
    by_chunk: dict[int, list[int]] = {}
    for i, (d, (_, chunk)) in enumerate(zip(decisions, found)):
        if d.action in ("UPDATE", "DELETE") and d.reason in confirm.SECOND_OPINION:
            by_chunk.setdefault(id(chunk), []).append(i)
    for rows in by_chunk.values():
        checked, _ = confirm.second_opinion(llm, found[rows[0]][1].text,
                                            [decisions[i] for i in rows])
        for i, d in zip(rows, checked):
            out[i] = d
    return out


def origin(text: str, batch: list[Chunk]) -> Chunk:
    """The chunk of ``batch`` a candidate memory ``text`` came from: the one with the
    largest share of its content words (``grounding.support``); the first on a tie."""
    best, score = batch[0], -1.0
    for c in batch:
        s = support(text, c.text) or 0.0
        if s > score:
            best, score = c, s
    return best


def _distinct(found: list[tuple[Candidate, Chunk]]) -> list[tuple[Candidate, Chunk]]:
    """Clean every candidate like a chat turn's (``learn.clean_candidates``: the one
    sanitising boundary, PII redacted; a failing one is dropped) and keep the first of
    equal texts (a document often repeats its author's name on every page)."""
    out, seen = [], set()
    kept = {id(c) for c in clean_candidates([cand for cand, _ in found])}
    for cand, chunk in found:
        if id(cand) not in kept:
            continue
        key = normalize(cand.text)
        if key and key not in seen:
            seen.add(key)
            out.append((cand, chunk))
    return out


def _no_near_duplicates(found, vectors: np.ndarray):
    """Drop a candidate whose embedding is within ``reconcile.NEAR_DUP`` cosine of an
    earlier one of the same document (vectors are L2-normalised)."""
    keep: list[int] = []
    for i in range(len(found)):
        if all(float(vectors[i] @ vectors[j]) < NEAR_DUP for j in keep):
            keep.append(i)
    return [found[i] for i in keep], vectors[keep]


def _retryable(res: Resource) -> bool:
    return res.status == "failed" or lease.abandoned(res)


def _clean_name(name: str) -> str:
    """The display name: the last path part, control characters out (C0 here; bidi,
    zero-width and C1 by ``memory.safety.sanitize.strip_invisible``), at most
    ``MAX_FILENAME`` characters (the extension kept)."""
    base = PurePath(str(name).replace("\\", "/")).name
    base = strip_invisible("".join(ch for ch in base if ord(ch) >= 32)).strip() or "upload"
    if len(base) > MAX_FILENAME:
        stem, dot, ext = base.rpartition(".")
        ext = ext[:16] if dot else ""
        base = (stem if dot else base)[:MAX_FILENAME - len(ext) - 1] + (f".{ext}" if ext else "")
    return base


def _counted(memory, res: Resource) -> Resource:
    res.memory_count = len(memory.store.resource_memory_ids(res.user_id, res.id))
    return res


# ---- reading and deleting -----------------------------------------------------------------
def resources(memory, user_id: str, *, include_deleted: bool = False,
              limit: int = 200) -> list[Resource]:
    """``user_id``'s resources, newest first, each with ``memory_count`` (live memories
    linked to it); soft-deleted ones only with ``include_deleted``."""
    uid = check_user_id(user_id)
    counts = memory.store.resource_memory_counts(uid)
    out = memory.store.list_resources(uid, include_deleted=include_deleted, limit=limit)
    for r in out:
        r.memory_count = counts.get(r.id, 0)
    return out


def resource(memory, user_id: str, resource_id: str) -> Resource | None:
    """One live resource of ``user_id`` (with ``memory_count``) or None, also for
    another user's id or a deleted one."""
    uid = check_user_id(user_id)
    res = memory.store.get_resource(uid, str(resource_id))
    return None if res is None else _counted(memory, res)


def resource_memories(memory, user_id: str, resource_id: str) -> list[MemoryRecord]:
    """The live memories of ``user_id`` learned from one resource, in document order
    (``metadata.chunk``); [] for an unknown or another user's resource."""
    uid = check_user_id(user_id)
    ids = memory.store.resource_memory_ids(uid, str(resource_id))
    recs = memory.store.get_memories(uid, ids) if ids else []
    return sorted(recs, key=lambda r: (int((r.metadata or {}).get("chunk") or 0), r.created_at))


def delete_resource(memory, user_id: str, resource_id: str) -> bool:
    """Soft-delete one resource of ``user_id``: the row stays with ``deleted_at`` set
    (so listings with ``include_deleted`` show it) and, in one transaction, each memory
    the file supports (``memory.write.provenance``) either loses only this source — when
    another file or a chat message also says it (history: a NONE event by
    ``resource-deleted:<id8>``) — or, when nothing else supports it, leaves search and
    lists (deleted with a history event by ``resource-deleted:<id8>``, so history keeps
    why). Memories it *updated* (a chat memory the document corrected) keep their
    current text, still supported by the chat. Returns False for an unknown, deleted
    or another user's resource."""
    uid = check_user_id(user_id)
    store = memory.store
    res = store.get_resource(uid, str(resource_id))
    if res is None:
        return False
    now = utcnow()
    actor = f"resource-deleted:{res.id[:8]}"
    with memory.user_locks.for_user(uid):
        recs = store.get_memories(uid, store.resource_memory_ids(uid, res.id))
        with store.transaction():
            for rec in recs:
                meta = provenance.without_resource(rec, res.id)
                if meta is None:
                    store.delete_memory(uid, rec.id, history=HistoryEvent(
                        rec.id, uid, "DELETE", rec.text, None, actor, at=now))
                    continue
                promoted = meta.get("resource_id")
                if promoted and promoted != (rec.metadata or {}).get("resource_id"):
                    other = store.get_resource(uid, str(promoted))
                    if other is not None:
                        meta["resource"] = other.filename
                store.update_memory(uid, rec.id, fields={"metadata": meta, "updated_at": now},
                                    history=HistoryEvent(rec.id, uid, "NONE", rec.text, rec.text,
                                                         actor, at=now))
            store.update_resource(uid, res.id, deleted_at=now)
        if any(r.type in ("profile", "preference") for r in recs):
            refresh_profile(store, uid, now)
    return True
