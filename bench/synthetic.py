"""Synthetic memories for the latency benchmarks: texts, queries, random vectors, store inserts.

The texts are memory-like sentences (a fifth Chinese), the queries chat-style questions, the
vectors random unit vectors, and :func:`insert_synthetic` writes rows through the store's real
insert path.

Used by ``bench/latency.py`` and the Mem0 comparison (``bench/mem0_compare.py``,
``bench/mem0_side.py``): embedding 100k texts with USE would take minutes and measure the
embedder, not the store, so scale runs pair these texts with random vectors.
"""
from __future__ import annotations

import random
import time
from datetime import timedelta

import numpy as np

from memory.types import HistoryEvent, MemoryRecord, new_id, utcnow

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
