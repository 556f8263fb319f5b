"""The memory work of a chat turn (bench/latency.py): instant LLM stub, walk-through, per-turn cost.

With the LLM answering instantly, a turn's time is all non-LLM work (embedding, search,
writes); LLM calls and estimated prompt tokens are counted per turn, split into reply vs
memory work.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

from bench.common import make_memory, summarize_ms
from bench.synthetic import synthetic_texts

def estimate_tokens(text: str) -> int:
    """Rough prompt-token estimate for Qwen-style BPE: one token per Han character, one per
    4 other characters (no tokenizer is available offline; good to ±25% for chat text)."""
    han = sum(1 for ch in text if "\u3400" <= ch <= "\u9fff")
    return han + (len(text) - han + 3) // 4


class InstantLLM:
    """In-process LLM stub answering instantly, for measuring the non-LLM work of a turn.

    ``stream_chat`` yields a short reply word by word; ``complete_json`` answers the
    extraction call (schema name ``memories``) from ``facts`` — a function of the user
    text and the KNOWN lines that returns the memory items — and reconciliation
    (``decisions``) with ADD for every fact; ``chat`` (thread summary) returns a line.
    Every call is recorded in ``calls`` as ``(kind, estimated_prompt_tokens)`` with kind
    ``reply``/``extract``/``reconcile``/``summary``.
    """

    def __init__(self, facts=None):
        self.facts = facts or (lambda user, known: [])
        self.calls: list[tuple[str, int]] = []

    @staticmethod
    def _tokens(messages: list[dict]) -> int:
        return sum(estimate_tokens(str(m.get("content") or "")) + 4 for m in messages)

    def stream_chat(self, messages, **_kw) -> Iterator[str]:
        """Record a reply call and yield ``"Sure, noted."`` in two deltas."""
        self.calls.append(("reply", self._tokens(messages)))
        yield "Sure, "
        yield "noted."

    def chat(self, messages, **_kw) -> str:
        """Record a summary call and return a one-line summary."""
        self.calls.append(("summary", self._tokens(messages)))
        return "The user chatted about themselves."

    def complete_json(self, messages, schema, *, name: str = "", **_kw) -> dict:
        """Record an extraction/reconciliation call and return scripted JSON."""
        if name == "memories":
            self.calls.append(("extract", self._tokens(messages)))
            user_msg = messages[-1]["content"]
            known = [line.split(": ", 1)[1] for line in user_msg.splitlines()
                     if line.startswith("KNOWN ")]
            user = user_msg.split("User: ", 1)[-1].split("\n(Assistant", 1)[0]
            return {"memories": self.facts(user, known)}
        if name == "endings":  # memory.write.confirm: the second opinion agrees
            self.calls.append(("confirm", self._tokens(messages)))
            return {k: "ended" for k in schema.get("required", [])}
        self.calls.append(("reconcile", self._tokens(messages)))
        n = sum(1 for line in messages[-1]["content"].splitlines() if line.startswith("NEW "))
        return {"decisions": [{"fact": i, "action": "ADD"} for i in range(1, n + 1)]}

    def describe_image(self, *_a, **_k) -> str:
        """Not used by the benchmark."""
        return ""

    def health(self) -> dict:
        """Always healthy."""
        return {"ok": True, "detail": "instant-llm"}

    def stats(self) -> dict:
        """Number of calls so far."""
        return {"calls": len(self.calls)}

    def close(self) -> None:
        """Nothing to release."""


def walkthrough_facts(user: str, known: list[str]) -> list[dict]:
    """What a good extractor returns for the walk-through turns (see tests/test_e2e.py)."""
    if "Seven" in user:
        return [{"text": "Name is Seven", "type": "profile", "importance": 5},
                {"text": "Works in Shanghai", "type": "profile", "importance": 4},
                {"text": "Loves football", "type": "preference", "importance": 3}]
    if "Beijing" in user:
        item = {"text": "Lives in Beijing (moved last month)", "type": "profile", "importance": 4}
        for i, k in enumerate(known, start=1):
            if "Shanghai" in k:
                item["replaces"] = i
        return [item]
    if "Python" in user and "什么" not in user:
        return [{"text": "最喜欢的编程语言是 Python", "type": "preference", "importance": 3}]
    return []


#: (user, message, new_thread) of the walk-through conversation
WALKTHROUGH = [
    ("seven", "Hi, I'm Seven. I work in Shanghai and love football.", False),
    ("seven", "Who am I?", True),
    ("seven", "I moved to Beijing last month.", False),
    ("seven", "我最喜欢的编程语言是 Python", False),
    ("seven", "我最喜欢的编程语言是什么？", False),
    ("jane", "What is my favourite programming language?", False),
]


def run_walkthrough(mem, llm: InstantLLM, suffix: str) -> list[dict[str, Any]]:
    """Play the walk-through once (users ``seven<suffix>``/``jane<suffix>``); return one
    row per turn with its memory-work seconds and LLM calls by kind. The embedder's query
    cache is emptied first, so repeated runs embed every message as a first run would."""
    rows = []
    thread = None
    cache = getattr(mem.embedder, "_cache", None)
    if cache is not None:  # repeats send the same messages: make every query embed anew
        with mem.embedder._cache_lock:
            cache.clear()
    for user, text, new_thread in WALKTHROUGH:
        uid = user + suffix
        if new_thread:
            thread = mem.new_thread(uid).id
        elif user == "jane":
            thread = None
        before = len(llm.calls)
        t0 = time.perf_counter()
        turn = mem.chat(text, uid, thread)
        for _ in turn:
            pass
        changes = turn.changes()
        dt = time.perf_counter() - t0
        thread = turn.thread.id if user == "seven" else None
        calls = llm.calls[before:]
        rows.append({"message": text, "seconds": dt, "changes": [c.event for c in changes],
                     "calls": [k for k, _ in calls],
                     "reply_tokens": sum(t for k, t in calls if k == "reply"),
                     "memory_tokens": sum(t for k, t in calls if k != "reply")})
    return rows


def measure_chat(folder: Path, repeats: int, prefill: int) -> dict[str, Any]:
    """Per-turn memory work: the walk-through ``repeats`` times on fresh users, then again
    for users pre-filled with ``prefill`` raw memories. Returns timings and LLM counts."""
    llm = InstantLLM(walkthrough_facts)
    mem = make_memory(folder / "chat", llm=llm)
    try:
        run_walkthrough(mem, llm, "-warmup")
        fresh = [r for i in range(repeats) for r in run_walkthrough(mem, llm, f"-{i}")]
        out: dict[str, Any] = {"repeats": repeats,
                               "fresh_user": summarize_ms([r["seconds"] for r in fresh])}
        if prefill:
            filled = []
            for i in range(max(1, repeats // 2)):
                for user in ("seven", "jane"):
                    mem.add(synthetic_texts(prefill, seed=100 + i), f"{user}-p{i}", infer=False)
                filled += run_walkthrough(mem, llm, f"-p{i}")
            out[f"user_with_{prefill}_memories"] = summarize_ms([r["seconds"] for r in filled])
        one = fresh[:len(WALKTHROUGH)]
        out["walkthrough"] = [{"message": r["message"], "ms": round(1000 * r["seconds"], 1),
                               "llm_calls": ", ".join(r["calls"]),
                               "memory_calls": sum(1 for c in r["calls"] if c != "reply"),
                               "reply_prompt_tokens": r["reply_tokens"],
                               "memory_prompt_tokens": r["memory_tokens"],
                               "changes": ", ".join(r["changes"])} for r in one]
        out["extra_llm_calls_per_turn"] = round(
            sum(r["memory_calls"] for r in out["walkthrough"]) / len(one), 2)
        out["memory_prompt_tokens_per_turn"] = round(
            sum(r["memory_prompt_tokens"] for r in out["walkthrough"]) / len(one), 1)
        out["reply_prompt_tokens_per_turn"] = round(
            sum(r["reply_prompt_tokens"] for r in out["walkthrough"]) / len(one), 1)
        return out
    finally:
        mem.close()
