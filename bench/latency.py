"""Latency and scaling of the memory engine (SQLite store, USE-multilingual embedder).

Measures, on a fresh store in a temporary folder:

* ``ingest``: raw memories/s through ``Memory.add(texts, infer=False)`` (batched,
  embedding included) and the embedding share of it;
* ``scale``: one user grown to 1k, 10k and 100k memories. Rows go through the store's
  real insert path (``Store.insert_memories``: base row, sqlite-vec row, FTS5 row in one
  transaction) with synthetic texts and **random unit vectors** (embedding 100k texts
  with USE would take minutes and measures the embedder, not the store). At each size:
  ``hybrid_search`` with a precomputed query embedding (vector KNN + BM25 + fusion +
  re-score: the search cost without the embedding), its parts (``vector_search``,
  ``text_search``), the query embedding alone, and end-to-end ``Memory.search``;
* ``multi-user``: 100 users × 1k memories in one store, searches of random users;
* ``chat``: the memory work of a chat turn (``Memory.chat`` + reply iteration +
  ``turn.changes()``) with an in-process LLM stub that answers instantly, so the time is
  all non-LLM work (embedding, search, writes); LLM calls and estimated prompt tokens per
  turn on the walk-through conversation, split into reply vs memory work;
* ``profile``: a cProfile summary of ``hybrid_search`` at the largest size.

Usage::

    python bench/latency.py                      # full run (~5-10 min), bench/results/latency.json
    python bench/latency.py --sizes 1000 --users 5 --queries 20 --out ''   # quick check
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (DEFAULT_LOCOMO, Timer, make_memory, print_table, summarize_ms,  # noqa: E402
                          write_json)
from memory.retrieval import SearchWeights, hybrid_search  # noqa: E402
from memory.types import HistoryEvent, MemoryRecord, new_id, utcnow  # noqa: E402

# ---- synthetic memories -------------------------------------------------------------
_EN_SUBJ = ["I", "My sister", "My boss", "Tom", "My dog", "Our team", "My wife", "Grandma"]
_EN_VERB = ["visited", "bought", "cooked", "painted", "planned", "read about", "fixed",
            "learned", "lost", "found", "booked", "recommended", "hated", "loved"]
_EN_OBJ = ["a new bike", "the garden", "a trip to Kyoto", "pasta with mushrooms",
           "a guitar", "the quarterly report", "a pottery class", "running shoes",
           "a jazz concert", "the kitchen sink", "a Python course", "a birthday cake",
           "tickets to Lisbon", "a sunrise painting", "the football match"]
_EN_WHEN = ["yesterday", "last week", "on Monday", "in March", "this morning",
            "two years ago", "last summer", "at the weekend"]
_ZH = ["我昨天去了{p}。", "我最喜欢的{t}是{x}。", "我们下周要去{p}旅行。", "我在{p}工作了三年。",
       "周末和朋友一起去{p}吃饭。", "我开始学习{x}了。"]
_ZH_P = ["北京", "上海", "杭州", "成都", "公司附近的咖啡店", "图书馆", "健身房", "深圳"]
_ZH_T = ["编程语言", "运动", "食物", "电影", "颜色", "音乐"]
_ZH_X = ["Python", "足球", "火锅", "钢琴", "摄影", "日语", "蓝色", "爵士乐"]


def synthetic_texts(n: int, seed: int, zh_share: float = 0.2) -> list[str]:
    """``n`` memory-like sentences (English with a tail of Zipf-distributed filler words
    so posting lists look like real text; ``zh_share`` of them Chinese). Deterministic
    for a seed."""
    rng = random.Random(seed)
    filler = [f"w{i}" for i in range(5000)]
    weights = [1.0 / (i + 1) for i in range(len(filler))]
    out = []
    for _ in range(n):
        if rng.random() < zh_share:
            out.append(rng.choice(_ZH).format(p=rng.choice(_ZH_P), t=rng.choice(_ZH_T),
                                              x=rng.choice(_ZH_X)))
        else:
            extra = " ".join(rng.choices(filler, weights, k=rng.randint(3, 12)))
            out.append(f"{rng.choice(_EN_SUBJ)} {rng.choice(_EN_VERB)} {rng.choice(_EN_OBJ)} "
                       f"{rng.choice(_EN_WHEN)}, {extra}.")
    return out


def synthetic_queries(n: int, seed: int) -> list[str]:
    """``n`` search queries in the style of chat messages (a fifth in Chinese)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 5 == 4:
            out.append(f"我{rng.choice(['喜欢', '去过'])}{rng.choice(_ZH_P + _ZH_X)}吗？")
        else:
            out.append(f"When did {rng.choice(['I', 'my sister', 'Tom'])} "
                       f"{rng.choice(_EN_VERB)} {rng.choice(_EN_OBJ)}?")
    return out


def random_unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """``n`` random float32 unit vectors of ``dim`` (Gaussian, normalised)."""
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def insert_synthetic(store, user_id: str, n: int, dim: int, seed: int,
                     batch: int = 2000) -> float:
    """Insert ``n`` synthetic memories of ``user_id`` with random vectors through
    ``store.insert_memories`` (with ADD history events, as ``Memory.add`` writes them),
    ``batch`` per transaction. Returns the seconds spent in the store."""
    texts = synthetic_texts(n, seed)
    vecs = random_unit_vectors(n, dim, seed)
    base = utcnow() - timedelta(days=400)
    spent = 0.0
    for start in range(0, n, batch):
        recs, events = [], []
        for i in range(start, min(n, start + batch)):
            when = base + timedelta(minutes=i)
            rec = MemoryRecord(id=new_id(), user_id=user_id, text=texts[i], type="fact",
                               importance=3, tags=[], source="raw", metadata={},
                               created_at=when, updated_at=when, embedding=vecs[i].tolist())
            recs.append(rec)
            events.append(HistoryEvent(rec.id, user_id, "ADD", None, rec.text, "user", at=when))
        t0 = time.perf_counter()
        store.insert_memories(recs, events)
        spent += time.perf_counter() - t0
    return spent


# ---- timing helpers -----------------------------------------------------------------
def timed(fn, items, warmup: int = 3) -> list[float]:
    """Call ``fn(item)`` for each item (after ``warmup`` untimed calls); return seconds."""
    for item in items[:warmup]:
        fn(item)
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - t0)
    return out


def measure_search(mem, uid_for, queries: list[str], qvecs: np.ndarray,
                   limit: int = 10) -> dict[str, Any]:
    """Time the search parts for ``queries`` (``uid_for(i)`` gives the user of query i):
    hybrid_search with the precomputed embedding, vector_search, text_search, the query
    embedding alone and end-to-end Memory.search."""
    store, w = mem.store, SearchWeights()
    pool = max(20, limit * 4)
    idx = list(range(len(queries)))
    res = {
        "hybrid_no_embed": timed(lambda i: hybrid_search(store, uid_for(i), queries[i], qvecs[i],
                                                         limit, weights=w), idx),
        "vector_search": timed(lambda i: store.vector_search(uid_for(i), qvecs[i].tolist(), pool), idx),
        "text_search": timed(lambda i: store.text_search(uid_for(i), queries[i], pool), idx),
    }
    e2e_queries = [q + f" #{i}" for i, q in enumerate(queries)]  # bypass the query cache
    res["embed_query"] = timed(lambda i: mem.embedder.embed_query(e2e_queries[i] + " (e)"), idx)
    res["search_end_to_end"] = timed(lambda i: mem.search(e2e_queries[i], uid_for(i), limit=limit), idx)
    return {k: summarize_ms(v) for k, v in res.items()}


def profile_search(mem, uid: str, queries: list[str], qvecs: np.ndarray, top: int = 12
                   ) -> list[dict[str, Any]]:
    """cProfile ``hybrid_search`` over the queries; return the ``top`` functions by own
    time: ``{"function", "calls", "tottime_ms_per_search", "cumtime_ms_per_search"}``."""
    prof = cProfile.Profile()
    prof.enable()
    for q, v in zip(queries, qvecs):
        hybrid_search(mem.store, uid, q, v, 10)
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    n = max(1, len(queries))
    rows = []
    for (file, line, func), (cc, nc, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{Path(file).name}:{line}({func})", "calls": nc,
                     "tottime_ms_per_search": round(1000 * tt / n, 3),
                     "cumtime_ms_per_search": round(1000 * ct / n, 3)})
    rows.sort(key=lambda r: -r["tottime_ms_per_search"])
    return rows[:top]


# ---- the instant LLM ---------------------------------------------------------------
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


# ---- the run ------------------------------------------------------------------------
def run(sizes: list[int], users: int, per_user: int, queries: int, chat_repeats: int,
        ingest_n: int, folder: Path, log=print) -> dict[str, Any]:
    """Run every section; return the results dict (see the module docstring)."""
    out: dict[str, Any] = {"sizes": sizes, "users": users, "per_user": per_user,
                           "queries_per_point": queries}
    mem = make_memory(folder / "scale")
    mem.embedder.embed_query("warm up")  # load the model before timing
    dim = mem.embedder.dim
    try:
        # ingest throughput through the public API (embedding included)
        texts = synthetic_texts(ingest_n, seed=7)
        mem.add(texts[:50], "ingest-warmup", infer=False)
        with Timer() as t_add:
            mem.add(texts, "ingest", infer=False)
        with Timer() as t_emb:
            mem.embedder.embed_documents(texts)
        out["ingest"] = {"memories": ingest_n, "seconds": round(t_add.seconds, 2),
                         "per_s": round(ingest_n / t_add.seconds, 1),
                         "embedding_share": round(t_emb.seconds / t_add.seconds, 3)}
        log(f"ingest: {out['ingest']}")

        # one user grown to each size
        out["scale"] = []
        have, uid = 0, "scale-user"
        for size in sizes:
            spent = insert_synthetic(mem.store, uid, size - have, dim, seed=size)
            store_rate = (size - have) / spent
            have = size
            qs = synthetic_queries(queries, seed=size)
            qv = mem.embedder.embed_documents(qs)
            m = measure_search(mem, lambda i: uid, qs, qv)
            out["scale"].append({"memories": size, "store_insert_per_s": round(store_rate, 1),
                                 **m})
            log(f"{size:>7} memories: hybrid p95 {m['hybrid_no_embed']['p95_ms']} ms, "
                f"end-to-end p95 {m['search_end_to_end']['p95_ms']} ms")
        qs = synthetic_queries(queries, seed=99)
        out["profile"] = {"memories": have,
                          "top": profile_search(mem, uid, qs, mem.embedder.embed_documents(qs))}
    finally:
        mem.close()

    # many users in one store
    if users:
        mem = make_memory(folder / "multi")
        try:
            uids = [f"user-{i:03d}" for i in range(users)]
            spent = sum(insert_synthetic(mem.store, u, per_user, dim, seed=1000 + i)
                        for i, u in enumerate(uids))
            rng = random.Random(5)
            pick = [rng.choice(uids) for _ in range(queries)]
            qs = synthetic_queries(queries, seed=5)
            m = measure_search(mem, lambda i: pick[i], qs, mem.embedder.embed_documents(qs))
            out["multi_user"] = {"users": users, "per_user": per_user,
                                 "store_insert_per_s": round(users * per_user / spent, 1), **m}
            log(f"{users} users x {per_user}: hybrid p95 {m['hybrid_no_embed']['p95_ms']} ms")
        finally:
            mem.close()

    if chat_repeats:
        out["chat"] = measure_chat(folder, chat_repeats, prefill=1000)
        log(f"chat: {out['chat']['fresh_user']}")
    return out


def tables(res: dict[str, Any]) -> None:
    """Print the result tables."""
    rows = []
    for point in res.get("scale", []):
        rows.append({"memories": point["memories"], "users": 1, **_cols(point)})
    if "multi_user" in res:
        mu = res["multi_user"]
        rows.append({"memories": mu["per_user"], "users": mu["users"], **_cols(mu)})
    print_table(rows, "Search latency, ms (hybrid = vector + BM25 + fusion, precomputed query embedding)")
    if "ingest" in res:
        print(f"ingest (Memory.add, infer=False, batched): {res['ingest']['per_s']} memories/s, "
              f"embedding {100 * res['ingest']['embedding_share']:.0f}% of it")
    if "profile" in res:
        print_table(res["profile"]["top"][:8], f"cProfile of hybrid_search at {res['profile']['memories']:,} memories")
    if "chat" in res:
        c = res["chat"]
        print_table([{"case": k, **{x: v for x, v in c[k].items() if x != "max_ms"}}
                     for k in c if k == "fresh_user" or k.startswith("user_with")],
                    "Memory work per chat turn (instant LLM), ms")
        print_table(c["walkthrough"], "Walk-through: LLM calls per turn")
        print(f"extra (memory) LLM calls per turn: {c['extra_llm_calls_per_turn']}; "
              f"prompt tokens per turn: memory {c['memory_prompt_tokens_per_turn']}, "
              f"reply {c['reply_prompt_tokens_per_turn']}")


def _cols(m: dict[str, Any]) -> dict[str, Any]:
    return {"hybrid p50": m["hybrid_no_embed"]["p50_ms"], "hybrid p95": m["hybrid_no_embed"]["p95_ms"],
            "vector p95": m["vector_search"]["p95_ms"], "text p95": m["text_search"]["p95_ms"],
            "embed p95": m["embed_query"]["p95_ms"],
            "end-to-end p50": m["search_end_to_end"]["p50_ms"],
            "end-to-end p95": m["search_end_to_end"]["p95_ms"]}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="memories of one user (default: %(default)s)")
    ap.add_argument("--users", type=int, default=100, help="users in the multi-user run (0 = skip)")
    ap.add_argument("--per-user", type=int, default=1000, help="memories per user in the multi-user run")
    ap.add_argument("--queries", type=int, default=200, help="timed searches per point")
    ap.add_argument("--chat-repeats", type=int, default=10, help="walk-through repetitions (0 = skip)")
    ap.add_argument("--ingest", type=int, default=2000, help="memories for the ingest throughput run")
    ap.add_argument("--locomo-sizes", default="10000",
                    help="realistic corpus: LoCoMo turns of one user (bench/latency_locomo.py; '' = skip)")
    ap.add_argument("--out", default="latency", help="results file name in bench/results/ ('' = none)")
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    with tempfile.TemporaryDirectory(prefix="latency-bench-") as tmp, Timer() as total:
        res = run(sizes, args.users, args.per_user, args.queries, args.chat_repeats,
                  args.ingest, Path(tmp))
        locomo_sizes = [int(s) for s in args.locomo_sizes.split(",") if s.strip()]
        if locomo_sizes and DEFAULT_LOCOMO.exists():
            from bench.latency_locomo import run as run_locomo
            res["locomo"] = run_locomo(locomo_sizes, args.queries, folder=str(Path(tmp) / "locomo"))
    res["total_seconds"] = round(total.seconds, 1)
    tables(res)
    print(f"total {res['total_seconds']} s")
    if args.out:
        print("wrote", write_json(args.out, res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
