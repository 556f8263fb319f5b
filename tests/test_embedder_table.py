"""bench/embedder_table.py: the concatenated embedder's cosine (bench/embedder_candidates.py) is
the mean of its parts' cosines (the claim its row rests on), and the table survives partial
results."""
from __future__ import annotations

import numpy as np
import pytest

from bench.embedder_candidates import ConcatEmbedder
from bench.embedder_table import table_rows
from memory.embed.embedder import Embedder


class _Fixed(Embedder):
    """A toy embedder: a fixed random (unnormalised) vector per text, different for
    queries, so the query path is exercised too."""

    def __init__(self, seed: int, dim: int) -> None:
        super().__init__()
        self.id, self.dim, self._seed = f"fixed-{seed}", dim, seed

    def _embed(self, texts, is_query):
        return np.stack([np.random.default_rng([self._seed, len(t), int(is_query)]).normal(size=self.dim)
                         for t in texts])


def test_concat_cosine_is_the_mean_of_the_parts():
    a, b = _Fixed(1, 5), _Fixed(2, 3)
    cat = ConcatEmbedder([a, b])
    assert (cat.id, cat.dim) == ("fixed-1+fixed-2", 8)
    docs = ["x", "longer text", "third one!"]
    q = "a query"
    got = cat.embed_documents(docs) @ cat.embed_query(q)
    want = (a.embed_documents(docs) @ a.embed_query(q) + b.embed_documents(docs) @ b.embed_query(q)) / 2
    assert got == pytest.approx(want, abs=1e-6)
    assert np.linalg.norm(cat.embed_documents(docs), axis=1) == pytest.approx(1.0, abs=1e-6)


def test_table_rows_skip_errors_and_tolerate_missing_parts():
    results = {
        "broken": {"error": "no venv"},
        "speed-only": {"dim": 64, "speed": {"sentences_per_s": 99.0, "sentences_per_cpu_s": 1234.4},
                       "query": {"p50_ms": 0.4, "p95_ms": 0.9, "cpu_p50_ms": 0.3, "cpu_p95_ms": 0.5}, "rss_mb": 12.0,
                       "install": {"dists_mb": 19.1}},
    }
    rows = table_rows(results)
    assert [r["candidate"] for r in rows] == ["speed-only"]
    assert rows[0]["docs/CPU-s"] == 1234 and rows[0]["query CPU ms p50/p95"] == "0.3/0.5" and rows[0]["tune R@5"] is None
    assert rows[0]["zh/en cross t/r"] == "-/-" and rows[0]["report R@10"] is None
