"""A k-nearest-neighbour text classifier on the multilingual embedder, taught by labelled examples shipped as data.

The write path and the reply path decide language-neutral questions this way instead
of with per-language rules: is this memory a constraint (``memory.write.constraints``), does
this question ask about the user's past (``memory.search.past``). A text is embedded as a
document by the embedder that already embeds every memory, and compared with the
labelled examples of a JSON file ``{"about", "<yes label>": [...], "<no label>": [...]}``:
its score is the mean cosine similarity to its ``k`` nearest ``yes`` examples minus that
to its ``k`` nearest ``no`` examples; above ``margin`` means yes. New languages and
wordings are taught by adding examples to the data file, not code.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np


class ExampleClassifier:
    """``ExampleClassifier(path, yes="past", no="other", k=3, margin=0.0)``: the
    examples are read and embedded once per embedder object (thread-safe)."""

    def __init__(self, path: Path, yes: str, no: str, k: int = 3, margin: float = 0.0):
        self.path, self.yes, self.no, self.k, self.margin = Path(path), yes, no, k, margin
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    def examples(self) -> tuple[list[str], list[str]]:
        """The labelled example texts ``(yes, no)`` from the data file."""
        data = json.loads(self.path.read_text(encoding="utf-8"))
        return list(data[self.yes]), list(data[self.no])

    def _vectors(self, embedder) -> tuple[np.ndarray, np.ndarray]:
        key = id(embedder)
        with self._lock:
            if key not in self._cache:
                yes, no = self.examples()
                self._cache[key] = (
                    np.asarray(embedder.embed_documents(yes), dtype=np.float32),
                    np.asarray(embedder.embed_documents(no), dtype=np.float32))
            return self._cache[key]

    def scores(self, embedder, vectors: np.ndarray) -> np.ndarray:
        """Scores of texts whose document embeddings by ``embedder`` are the rows of
        ``vectors`` (``(n, dim)``, unit length): mean cosine similarity to the ``k``
        nearest yes examples minus that to the ``k`` nearest no examples, shape
        ``(n,)``; above ``margin`` means yes."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.size == 0:
            return np.zeros((0,), dtype=np.float32)
        yes, no = self._vectors(embedder)

        def top_mean(examples_: np.ndarray) -> np.ndarray:
            sims = vectors @ examples_.T
            k = min(self.k, sims.shape[1])
            return np.sort(sims, axis=1)[:, -k:].mean(axis=1)

        return top_mean(yes) - top_mean(no)

    def decide(self, embedder, vectors: np.ndarray) -> list[bool]:
        """For each row of ``vectors`` (see :meth:`scores`): yes?"""
        return [bool(s > self.margin) for s in self.scores(embedder, vectors)]

    def classify(self, embedder, texts: list[str]) -> list[bool]:
        """Embed ``texts`` as documents with ``embedder`` and :meth:`decide` each."""
        if not texts:
            return []
        return self.decide(embedder, embedder.embed_documents(texts))
