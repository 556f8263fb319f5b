"""Rules and the model propose, the model confirms: no memory is ended or rewritten on the write path unless one confirmation call agrees that the message says so.

The write path's LLM-free rules (a stopped habit, ``memory.write.cessation``; a graduation; eating
meat again; a move's old workplace, ``memory.write.moves``; "X, not Y" corrections,
``memory.write.corrections``) find memories a message *may* end or correct. They match words,
so they also fire on innocent sentences in any language: "我睡觉之前喜欢看书" (之前 is
"before", not "formerly"), "My neighbour's kid doesn't walk Biscuit anymore" (someone
else stopped), "I want hot chocolate, not tea, today" (a choice, not a correction).

The job / home change rule's UPDATE is a proposal too (``second_opinion``), for a chat turn
(``memory.write.pipeline``) and for each chunk of a document (``memory.resources.ingest``).
The model's own UPDATE is not asked again (``SECOND_OPINION``): the 1.5B model confirms
and refuses by prompt no better than it reconciled.

So every proposal goes to the model in ONE enum-constrained call per turn (or chunk): for each
proposed memory, does the message say it is no longer true for the user (``ended``) or
not (``keeps``)? Only confirmed proposals are applied; a failed or unusable answer keeps
every memory (failing closed: when in doubt nothing is lost). Language-neutral: the
model reads the user's language; the rules only decide when the call is worth making.
Measured on the false-positive set (``bench/data/memory_false_positive.json``) and the
report split of ``bench/data/memory_quality.json`` (bench/README.md).
"""
from __future__ import annotations

import logging

from memory.llm.errors import LLMError
from memory.write.reconcile import Decision
from memory.types import MemoryRecord

log = logging.getLogger(__name__)

CONFIRM_SYSTEM = """You check a user's memory list after the user's latest message.
For each numbered MEMORY, answer "ended" only if the MESSAGE says that this memory is no
longer true for the user: the user stopped or quit it, moved away, changed it, or says
it was wrong. Answer "keeps" if the message is about something else, about another
person, only mentions a time ("before bed", "之前"), a plan, a wish, a single occasion,
a trip or a stay somewhere, or a second thing the user also does.
Examples:
MESSAGE: I don't drink coffee anymore, I switched to tea.
MEMORY 1: Drinks coffee every morning
MEMORY 2: Lives in Oslo
{"1": "ended", "2": "keeps"}
MESSAGE: My neighbour's son doesn't smoke anymore.
MEMORY 1: Smokes
{"1": "keeps"}
MESSAGE: 我睡觉之前喜欢看书。
MEMORY 1: 喜欢喝茶
{"1": "keeps"}
MESSAGE: 我已经不在银行上班了，现在在学校当老师。
MEMORY 1: 在银行工作
{"1": "ended"}
MESSAGE: I'm in Kyoto for a conference until Friday.
MEMORY 1: Lives in Vienna
{"1": "keeps"}
MESSAGE: Today I'd like juice, not water.
MEMORY 1: Drinks a lot of water
{"1": "keeps"}"""


def schema(n: int) -> dict:
    """The answer's JSON schema: keys ``"1"``…``"n"``, each ``"ended"`` or ``"keeps"``
    (an enum a grammar-constrained small model follows reliably)."""
    keys = [str(i) for i in range(1, n + 1)]
    return {"type": "object",
            "properties": {k: {"type": "string", "enum": ["ended", "keeps"]} for k in keys},
            "required": keys}


def confirmed(llm, message: str, texts: list[str]) -> list[bool]:
    """For each memory text in ``texts`` (at most 12 are asked about; the rest count as
    not confirmed), whether the model confirms that the user's ``message`` says it is no
    longer true. One call; [] for no texts; all False when the call fails or answers
    something unusable (nothing is ended on doubt)."""
    if not texts:
        return []
    asked = texts[:12]
    lines = [f"MESSAGE: {message[:2000]}"] + [f"MEMORY {i}: {t}" for i, t in enumerate(asked, 1)]
    messages = [{"role": "system", "content": CONFIRM_SYSTEM},
                {"role": "user", "content": "\n".join(lines)}]
    try:
        answer = llm.complete_json(messages, schema(len(asked)), name="endings",
                                   max_tokens=12 * len(asked) + 8)
    except LLMError as exc:
        log.warning("confirming endings failed, nothing ended: %s", exc)
        return [False] * len(texts)
    out = [str(answer.get(str(i), "")).lower() == "ended" for i in range(1, len(asked) + 1)]
    return out + [False] * (len(texts) - len(asked))


#: Reconciliation reasons whose UPDATE / DELETE the model confirms (``second_opinion``):
#: the job / home change rule (``changed``), a rule like the others. The model's own
#: choice (``llm``, the extractor's ``replaces``) is not asked again: on the real model the
#: confirmation refused a real change (a move to a new city "and I work there now" kept
#: the old workplace) as often as it caught a trip, and trips are told from homes by
#: ``memory.write.residence`` instead. An exact value correction of a near duplicate
#: ("near-dup changed") and a new age ("one value") are not asked about either.
SECOND_OPINION = frozenset({"changed"})


def second_opinion(llm, message: str, decisions: list[Decision],
                   stale: list[tuple[MemoryRecord, str]] = ()
                   ) -> tuple[list[Decision], list[tuple[MemoryRecord, str]]]:
    """Ask the model once (``confirmed``; no call when nothing is proposed) whether
    ``message`` (the user's words, or a document's chunk) ends each memory that would be
    rewritten or ended: the rules' ``stale`` ``(memory, reason)`` proposals and the
    reconciliation ``decisions``' UPDATE / DELETE decided by the model or the change rule
    (``SECOND_OPINION``; "I'm in Oslo for work this week" read as a move must not
    rewrite "Lives in Bergen"). Returns the decisions (same order; an unconfirmed change
    becomes an ADD of its candidate, reason ``change not confirmed``: the new fact is
    kept, the old one stays current) and the confirmed proposals. Never raises for the
    model (a failed call confirms nothing)."""
    stale = list(stale)
    checked = [i for i, d in enumerate(decisions)
               if d.action in ("UPDATE", "DELETE") and d.target is not None
               and d.reason in SECOND_OPINION]
    ok = confirmed(llm, message, [rec.text for rec, _ in stale]
                   + [decisions[i].target.text for i in checked])
    for (rec, reason), yes in zip(stale, ok):
        if not yes:
            log.info("rule %s proposed ending memory %s; the model did not confirm", reason, rec.id)
    decisions = list(decisions)
    for i, yes in zip(checked, ok[len(stale):]):
        d = decisions[i]
        if not yes:
            log.info("%s of memory %s (%s) not confirmed; the candidate is added instead",
                     d.action, d.target.id, d.reason)
            decisions[i] = Decision(d.candidate, d.embedding, "ADD", None, d.candidate.text,
                                    "change not confirmed")
    return decisions, [pair for pair, yes in zip(stale, ok) if yes]
