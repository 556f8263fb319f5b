"""Timing of the search path: a timed loop, the parts of one search, a cProfile of hybrid_search.

The parts are ``hybrid_search`` with a precomputed query embedding, ``vector_search``,
``text_search``, the query embedding alone and end-to-end ``Memory.search``.

Used by ``bench/latency.py``, ``bench/latency_locomo.py`` and the Mem0 comparison.
"""
from __future__ import annotations

import cProfile
import io
import pstats
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import summarize_ms
from memory.search.hybrid import SearchWeights, hybrid_search

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
