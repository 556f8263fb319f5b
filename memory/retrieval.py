"""Hybrid search: vector KNN + full-text BM25, fused by reciprocal rank fusion (RRF), then
a light re-score by importance and recency.

RRF (Cormack, Clarke & Büttcher, SIGIR 2009): ``score(d) = Σ_r w_r / (k + rank_r(d))``
with ``k = 60`` as in the paper. Each retriever fetches ``limit × OVERFETCH`` candidates
(at least ``MIN_POOL``) so the fusion has something to fuse. Both retrievers apply the
user filter inside their query (see ``memory.store.base.Store``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from memory.types import ScoredMemory, utcnow

RRF_K = 60
OVERFETCH = 4
MIN_POOL = 20


@dataclass
class SearchWeights:
    """Tunable knobs of hybrid search (defaults measured in ``bench/locomo.py``).

    ``vector``/``text``: RRF weights of the two retrievers (0 disables one: the ablations).
    ``importance``: relative boost per importance step above 3 (0 disables).
    ``recency``: max relative boost for a memory touched today, decaying with
    ``half_life_days`` (0 disables). Re-scoring multiplies the fused score, so it only
    reorders memories whose fused scores are close.
    """

    vector: float = 1.0
    text: float = 1.0
    importance: float = 0.05
    recency: float = 0.05
    half_life_days: float = 30.0
    rescore: bool = True


def rrf_fuse(ranked_lists: list[tuple[list[str], float]], k: int = RRF_K
             ) -> dict[str, float]:
    """Fuse ranked id lists. Takes ``[(ids_best_first, weight)]``; returns
    ``{id: fused_score}`` (higher is better)."""
    scores: dict[str, float] = {}
    for ids, weight in ranked_lists:
        if weight <= 0:
            continue
        for rank, mid in enumerate(ids, start=1):
            scores[mid] = scores.get(mid, 0.0) + weight / (k + rank)
    return scores


def hybrid_search(store, user_id: str, query: str, query_embedding: np.ndarray | None,
                  limit: int, types: list[str] | None = None,
                  since: datetime | None = None, until: datetime | None = None,
                  weights: SearchWeights | None = None,
                  now: datetime | None = None) -> list[ScoredMemory]:
    """Return up to ``limit`` of ``user_id``'s memories best matching ``query``.

    ``query_embedding``: the query's embedding (shape (dim,)), or None to skip the vector
    retriever. ``types``/``since``/``until`` filter by memory type and created_at.
    Scores are fused RRF scores after re-scoring (comparable within one result only).
    """
    w = weights or SearchWeights()
    pool = max(MIN_POOL, limit * OVERFETCH)
    vec_ids: list[str] = []
    txt_ids: list[str] = []
    if query_embedding is not None and w.vector > 0:
        vec_ids = [m for m, _ in store.vector_search(user_id, query_embedding.tolist(), pool, types=types)]
    if w.text > 0:
        txt_ids = [m for m, _ in store.text_search(user_id, query, pool, types=types)]
    fused = rrf_fuse([(vec_ids, w.vector), (txt_ids, w.text)])
    if not fused:
        return []
    records = {r.id: r for r in store.get_memories(user_id, list(fused))}
    vrank = {m: i for i, m in enumerate(vec_ids, start=1)}
    trank = {m: i for i, m in enumerate(txt_ids, start=1)}
    now = now or utcnow()
    hits: list[ScoredMemory] = []
    for mid, score in fused.items():
        rec = records.get(mid)
        if rec is None:
            continue
        if since and rec.created_at < since or until and rec.created_at > until:
            continue
        if w.rescore:
            score *= 1.0 + w.importance * (rec.importance - 3)
            seen = rec.last_accessed_at or rec.updated_at or rec.created_at
            age_days = max(0.0, (now - seen).total_seconds() / 86400.0)
            score *= 1.0 + w.recency * math.exp(-math.log(2) * age_days / w.half_life_days)
        hits.append(ScoredMemory(rec, score, vrank.get(mid), trank.get(mid)))
    hits.sort(key=lambda h: -h.score)
    return hits[:limit]
