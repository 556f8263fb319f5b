"""Reconciliation: decide ADD / UPDATE / DELETE / NONE for each extracted candidate.

Cheap checks first, the LLM only for the ambiguous rest (one small constrained call each):

1. exact duplicate (same normalised text as an existing memory) → NONE, no LLM;
2. near duplicate (cosine similarity ≥ ``NEAR_DUP``) → NONE, no LLM — unless it holds a
   content word or number the stored one lacks (a correction: "周四" for "周三", "43" for
   "34"), then UPDATE, no LLM;
3. the user says they are repeating themselves ("like I told you", "我之前说过") and a
   stored memory is related (cosine ≥ ``RELATED`` or a shared content word) → NONE, no
   LLM (a reworded copy is not a new fact);
3b. the extraction call marked it as replacing a KNOWN memory → UPDATE, no LLM; a topic
   whose new value always replaces the old (an age, ``Topic.replace``) → UPDATE of the
   stored one, no LLM; a move ("Moved to Lyon", topic home), or a home / job / workplace
   when the message says it changed ("based in Munich these days", "I'm a tester now",
   "现在在…做"), with exactly one stored memory of that topic → UPDATE of it, no LLM;
4. no related memory → ADD, no LLM. "Related" means cosine ≥ ``RELATED`` (and not
   already judged by the extractor, see ``find_related``), or — for a topic with one
   current value (home, job, name …, see ``memory.write.topics``) — a stored memory of the
   same topic, because a change of home ("Lives in Shanghai" → "Moved to Beijing") is
   semantically far apart (cosine ≈ 0.26 with USE-multilingual) yet must replace the
   old fact, while a memory of another topic (the job) must not be touched;
5. otherwise the candidate and its related memories go to the LLM; an UPDATE/DELETE it
   picks that ``may_replace`` forbids (across owners, across one-value topics such as
   a home "replacing" a pet, a workplace city for an employer) becomes an ADD.

Existing memories are shown with letter labels ([a], [b]…) and the answer's ``id`` is an
enum of those labels, so the model cannot invent an id.

Thresholds were calibrated on USE-multilingual v3 pairs (see ``bench/embedders.py``):
"Loves football" vs "Loves football." 0.93; "Lives in Shanghai" vs "Lives in Beijing"
0.61; "Favourite language is Python" vs "… Rust" 0.71; unrelated pairs < 0.1.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from memory.llm import prompts
from memory.llm.errors import LLMError
from memory.write import residence, topics
from memory.write.extract import Candidate
from memory.write.cessation import is_negated
from memory.write.grounding import content_tokens, mentions_someone_else, shares_content, support
from memory.write.intents import normalize, says_already_told
from memory.write.moves import city_of, says_moved
from memory.types import MemoryRecord

log = logging.getLogger(__name__)

NEAR_DUP = 0.92
RELATED = 0.45
SHOWN_RECHECK = 0.8
NEIGHBOURS = 4


@dataclass
class Decision:
    """What to do with one candidate: ``action`` in ADD/UPDATE/DELETE/NONE; ``target`` the
    existing memory for UPDATE/DELETE (or the duplicate for NONE); ``text`` the new text
    for ADD/UPDATE; ``reason`` how it was decided (``exact``, ``near-dup``, ``new``,
    ``llm``, ``target refused``: the model picked a memory it may not change, so ADD;
    ``fallback``: the call failed or its answer was unusable, so ADD)."""

    candidate: Candidate
    embedding: np.ndarray
    action: str
    target: MemoryRecord | None = None
    text: str = ""
    reason: str = ""


#: the message says a job or workplace changed ("I work as a tester now", "现在在…做")
_CHANGED = re.compile(r"\b(?:now|nowadays|these days|switched|changed|new job|joined|left|quit|"
                      r"started (?:a|my) new|no longer|any ?more)\b|现在|如今|目前|换了?工作|改行|跳槽|"
                      r"辞职|离职|不再|已经不|调到|调去|外派|派驻|派到", re.IGNORECASE)
#: ... unless it adds a second one ("I also teach yoga", "兼职做翻译")
_ALSO = re.compile(r"\b(?:also|too|as well|side (?:job|gig|hustle)|part[- ]time|second job|"
                   r"in addition)\b|兼职|副业|也在|也是|还在|还做|同时", re.IGNORECASE)


def signals_change(message: str) -> bool:
    """True when the user's ``message`` says a job or workplace changed and does not
    add a second one ("I left the bank, I'm a tester now" yes; "I also teach yoga" no)."""
    return bool(_CHANGED.search(message)) and not _ALSO.search(message)


def find_related(store, user_id: str, cand: Candidate, emb: np.ndarray,
                 shown: set[str] | frozenset = frozenset(), message: str = ""
                 ) -> tuple[list[tuple[MemoryRecord, float]], Decision | None]:
    """Return the candidate's related existing memories ``[(record, cosine_sim)]`` (most
    similar first) and, when the cheap checks already settle it, the Decision.

    ``shown``: ids of the memories the extraction call already saw as KNOWN; the
    extractor judged those (it would have set ``replaces``), so only a very close one
    (cosine ≥ ``SHOWN_RECHECK``, a likely restatement) still goes to the LLM.
    ``message``: the user's words; when they say a job or workplace changed
    (``signals_change``) a job / workplace candidate replaces the one stored memory of
    its topic without an LLM call (a workplace only one of its kind: a city for a city,
    an employer for an employer)."""
    hits = store.vector_search(user_id, emb.tolist(), NEIGHBOURS)
    sims: dict[str, float] = {}
    for mid, dist in hits:
        sims[mid] = max(sims.get(mid, -1.0), 1.0 - float(dist))
    records = {r.id: r for r in store.get_memories(user_id, list(sims))}
    single = topics.get(cand.topic).single
    if single:  # the stored value(s) of this one-value topic, however far apart
        for rec in store.list_memories(user_id, limit=200, types=[cand.type]):
            if topics.topic_of(rec.tags) == cand.topic and rec.id not in records:
                records[rec.id] = rec
                sims[rec.id] = float(np.dot(emb, np.asarray(rec.embedding, dtype=np.float32))) \
                    if rec.embedding else 0.0
    ranked = sorted(((records[m], s) for m, s in sims.items() if m in records),
                    key=lambda rs: -rs[1])
    key = normalize(cand.text)
    for rec, sim in ranked:
        if normalize(rec.text) == key:
            return ranked, Decision(cand, emb, "NONE", rec, cand.text, "exact")
        if sim >= NEAR_DUP:
            if changes_a_value(cand.text, rec.text) and same_owner(cand.text, rec.text):
                # "每周四晚上去学陶艺" after "每周三晚上去学陶艺": the same fact, corrected
                return ranked, Decision(cand, emb, "UPDATE", rec, cand.text, "near-dup changed")
            return ranked, Decision(cand, emb, "NONE", rec, cand.text, "near-dup")
    if says_already_told(message):  # "like I told you": a reworded copy is not a new fact
        for rec, sim in ranked:
            if (sim >= RELATED or shares_content(cand.text, rec.text)) and same_owner(cand.text, rec.text):
                return ranked, Decision(cand, emb, "NONE", rec, cand.text, "told before")
    if cand.replaces is not None:
        if residence.may_replace_home(cand, cand.replaces):
            return [], Decision(cand, emb, "UPDATE", cand.replaces, cand.text, "extract")
        cand.replaces = None  # "two weeks in Tokyo" marked as replacing the home
    if topics.get(cand.topic).replace:  # "Is 30 years old" replaces "Is 29 years old"
        for rec, _ in ranked:
            if topics.topic_of(rec.tags) == cand.topic and same_owner(cand.text, rec.text):
                return [], Decision(cand, emb, "UPDATE", rec, cand.text, "one value")
    changed = (cand.topic == "home" and (says_moved(cand.text) or signals_change(message))) \
        or (cand.topic in ("job", "workplace") and signals_change(message))
    if changed and not mentions_someone_else(cand.text):  # "Moved to Lyon" → "Lives in Paris"
        same = [rec for rec, _ in ranked if topics.topic_of(rec.tags) == cand.topic
                and not mentions_someone_else(rec.text) and may_replace(cand, rec)]
        if len(same) == 1:
            return [], Decision(cand, emb, "UPDATE", same[0], cand.text, "changed")
    related = [(r, s) for r, s in ranked
               if (s >= RELATED and (r.id not in shown or s >= SHOWN_RECHECK))
               or (single and topics.topic_of(r.tags) == cand.topic)]
    if not related:
        return [], Decision(cand, emb, "ADD", None, cand.text, "new")
    return related[:NEIGHBOURS], None


def reconcile(llm, store, user_id: str, candidates: list[Candidate],
              embeddings: np.ndarray, shown: set[str] | frozenset = frozenset(),
              message: str = "") -> list[Decision]:
    """Decide what to do with each candidate.

    Takes the LLM client, the store, the user, the candidates and their embeddings
    (float32 array of shape (len(candidates), dim), rows aligned with candidates).
    ``shown``: ids the extraction call saw as KNOWN, ``message``: the user's words (see
    ``find_related``; a document batch passes none). A candidate
    the extractor marked ``replaces`` becomes an UPDATE of that memory without a call.
    Returns one Decision per candidate, in order. Makes one small enum-constrained LLM
    call per ambiguous candidate (most turns have none); if a call fails, that candidate
    falls back to ADD so no information is lost (reason ``fallback``). Never raises
    LLMError.
    """
    decisions: list[Decision | None] = []
    pending: list[tuple[int, list[tuple[MemoryRecord, float]]]] = []
    for i, cand in enumerate(candidates):
        related, decided = find_related(store, user_id, cand, embeddings[i],
                                        shown if cand.saw_known else frozenset(), message)
        decisions.append(decided)
        if decided is None:
            pending.append((i, related))
    if pending:
        _ask_llm(llm, candidates, embeddings, pending, decisions)
    return one_change_per_memory([d for d in decisions if d is not None], message)


def one_change_per_memory(decisions: list[Decision], message: str = "") -> list[Decision]:
    """Make a turn's decisions consistent, in order: a memory the turn restates (an
    exact or near duplicate, NONE) is not also rewritten by another candidate ("Is a
    dentist" confirmed, then "I'm a dentist" would replace it; a candidate with a value
    of its own, "Joined Spotify" for the restated "Works in Zurich", is added); a memory is updated or
    deleted at most once (the first decision wins; a later UPDATE that adds a value
    becomes an ADD: "Turned 30 on …" after the age went 29 → 30); and an UPDATE by the
    LLM or the job-change rule whose text adds nothing the old one lacks ("火锅是我的最爱"
    for "喜欢吃火锅") is NONE. ``message``: the user's words; a NONE restates a memory only
    when all its content words are in them (not a KNOWN line the model copied).
    Returns the decisions (same length and order)."""
    confirmed = {d.target.id for d in decisions if d.action == "NONE" and d.target is not None
                 and d.reason in ("exact", "near-dup")
                 # the model copying a KNOWN line ("在深圳工作" for "公司把我外派到新加坡了")
                 # is not the user restating it
                 and (not message or support(d.candidate.text, message) in (None, 1.0))}
    changed: set[str] = set()
    out = []
    for d in decisions:
        if d.action in ("UPDATE", "DELETE") and d.target is not None:
            tid = d.target.id
            adds = changes_a_value(d.candidate.text, d.target.text)
            if tid in confirmed and adds and d.action == "UPDATE":
                # "Joined Spotify" picked to replace the "Works in Zurich" the turn restates
                d = Decision(d.candidate, d.embedding, "ADD", None, d.candidate.text, "restated, new value")
            elif tid in confirmed or (d.action == "UPDATE" and d.reason in ("llm", "changed") and not adds):
                d = Decision(d.candidate, d.embedding, "NONE", d.target, d.candidate.text, "restated")
            elif tid in changed:
                d = Decision(d.candidate, d.embedding, "ADD" if adds and d.action == "UPDATE" else "NONE",
                             None if adds else d.target, d.candidate.text, "already changed")
            else:
                changed.add(tid)
        out.append(d)
    return out


def _ask_llm(llm, candidates, embeddings, pending, decisions) -> None:
    """One constrained call per ambiguous candidate (usually 0 or 1 per turn): a 1.5B
    model mixes up batched answers, but picks reliably from an enum of labels."""
    claimed: set[str] = set()
    for i, related in pending:
        cand, emb = candidates[i], embeddings[i]
        letters = {_label(n): rec for n, (rec, _) in enumerate(related)}
        lines = [f"EXISTING [{label}]: {rec.text}" for label, rec in letters.items()]
        lines.append(f"NEW: {cand.text}")
        messages = [{"role": "system", "content": prompts.RECONCILE_SYSTEM},
                    {"role": "user", "content": "\n".join(lines)}]
        try:
            item = llm.complete_json(messages, prompts.reconcile_schema(list(letters)),
                                     name="decision", max_tokens=40)
        except LLMError as exc:
            log.warning("reconciliation fell back to ADD: %s", exc)
            item = {}
        action = str(item.get("action", "")).upper()
        target = letters.get(str(item.get("id", "")).strip("[] "))
        not_home = target is not None and action == "UPDATE" \
            and not residence.may_replace_home(cand, target)
        refused = target is not None and (target.id in claimed or not may_replace(cand, target)
                                          or (action in ("UPDATE", "DELETE")
                                              and keeps_both(cand, target)) or not_home)
        if not_home:
            residence.demote(cand)  # a trip the model took for a move: an ordinary fact
        if refused:
            target = None  # "妈妈住在福州" never replaces the user's "住在福州"
        if action == "NONE":
            decisions[i] = Decision(cand, emb, "NONE", target, cand.text, "llm")
        elif action in ("UPDATE", "DELETE") and target is not None:
            claimed.add(target.id)
            decisions[i] = Decision(cand, emb, action, target,
                                    cand.text if action == "UPDATE" else target.text, "llm")
        else:
            # the model's own ADD, or its UPDATE / DELETE of a memory it may not change (an
            # ordinary add); only a failed or unusable answer is a fallback
            decisions[i] = Decision(cand, emb, "ADD", None, cand.text,
                                    "llm" if action == "ADD" else "target refused" if refused
                                    else "fallback")


def changes_a_value(new: str, old: str) -> bool:
    """True when ``new`` says something ``old`` does not: a content word or a number of
    its own ("Is 43" vs "Is 34", "周四" vs "周三"), not just other wording."""
    digits = set(re.findall(r"\d+", new)) - set(re.findall(r"\d+", old))
    return bool(digits or content_tokens(new) - content_tokens(old))


#: topics one fact may move between: a job, where it is done, and what is studied
_WORK = frozenset({"job", "workplace", "education"})


def same_subject(topic: str | None, target_tags: list[str] | None) -> bool:
    """True when a candidate of ``topic`` may replace a stored memory with
    ``target_tags``: the same topic, a topic of the work group (job / workplace /
    education), an unknown topic on either side, or two topics that both hold many values.
    A one-value topic never replaces another topic ("Momo and I are based in Munich",
    a home, never replaces "Has a cat named Momo")."""
    other = topics.topic_of(target_tags)
    if topic is None or other is None or topic == other or {topic, other} <= _WORK:
        return True
    return not (topics.get(topic).single or topics.get(other).single)


def may_replace(cand: Candidate, target: MemoryRecord) -> bool:
    """True when candidate ``cand`` may UPDATE or DELETE the stored ``target``: both are
    the user's own facts or both another person's (``same_owner``), their topics allow it
    (``same_subject``), and a workplace city replaces only a city, an employer or a
    school only one of those ("在一所小学工作" never replaces "在厦门工作")."""
    if not same_owner(cand.text, target.text) or not same_subject(cand.topic, target.tags):
        return False
    if "workplace" in (cand.topic, topics.topic_of(target.tags)):
        return (city_of(cand.text) is None) == (city_of(target.text) is None)
    return True


def keeps_both(cand: Candidate, target: MemoryRecord) -> bool:
    """True when the model's UPDATE or DELETE of ``target`` by ``cand`` is refused
    (``cand`` is added instead): both are of topics that hold many values (likes,
    habits, family, events …, ``Topic.single`` false) and ``cand`` negates nothing
    (``cessation.is_negated``). A second like is not a changed like ("Le gusta nadar"
    stays beside "Me gusta el pádel"); "No longer likes tea" may still replace "Likes
    tea". Unknown topics are left to the model."""
    other = topics.topic_of(target.tags)
    if cand.topic is None or other is None:
        return False
    many = not (topics.get(cand.topic).single or topics.get(other).single)
    return many and not is_negated(cand.text)


def same_owner(a: str, b: str) -> bool:
    """True when memory texts ``a`` and ``b`` are both the user's own facts or both name
    another person: only then may one replace the other."""
    return mentions_someone_else(a) == mentions_someone_else(b)


def _label(n: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return letters[n] if n < 26 else f"m{n}"
