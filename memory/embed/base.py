"""The embedder base class: input preparation, batching, L2 normalisation, shape checks, the query cache, the BLAS thread cap and EmbedderError.

Input handling, common to all embedders (see :meth:`Embedder.prepare`): a text is
truncated to ``max_chars`` characters (8,000 for USE and MiniLM, 4,000 for e5 and remote
endpoints), lone surrogates are replaced by U+FFFD and control characters (NUL…) by
spaces, so empty, huge or odd-Unicode strings never crash. The *stored* memory text is
never touched; only what is embedded is cut.
"""
from __future__ import annotations

import os
import re
import threading
import time
from collections import OrderedDict
from typing import Any, Iterable

import numpy as np

from memory.llm.errors import one_line

#: characters embedded per text by local models. A LoCoMo turn is < 1,000 chars; USE
#: averages token features so a longer text only dilutes, and e5 windows >512 tokens
#: (~2,000 English chars) at linear cost. 8,000 bounds the cost of a pasted document.
DEFAULT_MAX_CHARS = 8000
#: remote endpoints reject inputs over 8,192 tokens (OpenAI); CJK text can take ~2
#: tokens per character, so 4,000 characters stays under that for any script.
REMOTE_MAX_CHARS = 4000

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class EmbedderError(RuntimeError):
    """An embedder could not be loaded or could not embed (missing package, dead or
    misbehaving endpoint, wrong dimension). The message is one line meant for the user."""


_blas_limit: Any = None
_blas_lock = threading.Lock()


def limit_blas_threads(threads: int | None = None) -> int:
    """Cap this process's BLAS thread pools (OpenBLAS/MKL/BLIS, through threadpoolctl)
    to ``threads`` (default: ``OPENBLAS_NUM_THREADS`` if set, else 1) and return the
    cap. Called once by every :class:`Embedder`, so the library no longer depends on
    ``run.sh``'s environment: OpenBLAS worker threads spin-wait and took the second of
    2 cores from SQLite in the search benchmarks (bench/README.md). Later calls keep
    the first cap; a value < 1 raises ValueError."""
    global _blas_limit
    with _blas_lock:
        if _blas_limit is not None:
            return _blas_limit[1]
        if threads is None:
            env = os.environ.get("OPENBLAS_NUM_THREADS", "").strip()
            threads = int(env) if env.isdigit() and int(env) > 0 else 1
        if threads < 1:
            raise ValueError("BLAS threads must be >= 1")
        from threadpoolctl import threadpool_limits

        _blas_limit = (threadpool_limits(limits=threads, user_api="blas"), threads)
        return threads


class Embedder:
    """Base class of all embedders.

    Attributes:
        id: model id recorded in the store (e.g. ``"use-multilingual-v3"``); vectors of
            different ids are not comparable.
        dim: vector dimension.
        max_chars: characters of a text that are embedded (the rest is cut).
        batch_size: texts per model call inside :meth:`embed_documents`.
        cache_size: number of query vectors kept by :meth:`embed_query` (LRU).

    Subclasses implement ``_embed(texts, is_query) -> np.ndarray`` (n, dim) for already
    prepared, non-empty lists; this class adds batching, normalisation, checks, the
    query cache and a lock (model calls are serialised, so one instance can be shared
    by every thread of the process).
    """

    id: str = "embedder"
    dim: int = 0
    max_chars: int = DEFAULT_MAX_CHARS
    batch_size: int = 64
    cache_size: int = 1024

    def __init__(self) -> None:
        limit_blas_threads()
        self._lock = threading.RLock()          # serialises model calls
        self._cache_lock = threading.Lock()     # guards the query LRU
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    # ---- to implement ----------------------------------------------------------------
    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        raise NotImplementedError

    def _load(self) -> None:
        """Load the model if not loaded yet (called under the lock). Default: nothing."""

    # ---- public API ------------------------------------------------------------------
    def prepare(self, text: str) -> str:
        """Return the text that is actually embedded for ``text``.

        Raises TypeError if ``text`` is not a str. Cuts it to ``max_chars`` characters,
        replaces lone surrogates with U+FFFD and ASCII control characters (except tab
        and newlines) with spaces. An empty string stays empty (each model maps it to a
        fixed vector).
        """
        if not isinstance(text, str):
            raise TypeError(f"embedder input must be str, got {type(text).__name__}")
        text = text[: self.max_chars]
        text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> ?
        return _CONTROL_RE.sub(" ", text)

    def embed_documents(self, texts: Iterable[str]) -> np.ndarray:
        """Embed memories/documents.

        Takes a list of strings; returns a float32 array of shape (len(texts), dim) whose
        rows have unit L2 norm, in the order given (an empty list gives shape (0, dim)).
        Batched internally by ``batch_size``. Raises TypeError for a non-str item and
        EmbedderError if the model fails.
        """
        items = [self.prepare(t) for t in texts]
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        for start in range(0, len(items), self.batch_size):
            parts.append(self._run(items[start:start + self.batch_size], is_query=False))
        return np.concatenate(parts, axis=0)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed a search query: returns a float32 unit vector of shape (dim,).

        Results are kept in a thread-safe LRU cache of ``cache_size`` entries keyed by
        the prepared text; a fresh copy is returned on every call so callers may modify
        it. Raises TypeError / EmbedderError like :meth:`embed_documents`.
        """
        key = self.prepare(text)
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit.copy()
        vec = self._run([key], is_query=True)[0]
        with self._cache_lock:
            self._cache[key] = vec
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return vec.copy()

    def health(self) -> dict[str, Any]:
        """Embed a probe sentence and report ``{"ok", "detail", "id", "dim",
        "latency_ms"}``. Never raises (a failure gives ``ok=False`` and the error)."""
        t0 = time.perf_counter()
        try:
            vec = self._run([self.prepare("health check")], is_query=True)[0]
            ok = vec.shape == (self.dim,) and bool(np.isfinite(vec).all())
            detail = self.id if ok else f"{self.id}: bad vector shape {vec.shape}"
        except Exception as exc:  # noqa: BLE001 - health must not raise
            ok, detail = False, one_line(f"{self.id}: {exc}")
        try:
            dim: int | None = self.dim
        except Exception:  # noqa: BLE001 - a remote dim probe may fail too
            dim = None
        return {"ok": ok, "detail": detail, "id": self.id, "dim": dim,
                "latency_ms": round((time.perf_counter() - t0) * 1000, 1)}

    # ---- internals -------------------------------------------------------------------
    def _run(self, texts: list[str], is_query: bool) -> np.ndarray:
        with self._lock:
            self._load()
            try:
                raw = self._embed(texts, is_query)
            except EmbedderError:
                raise
            except Exception as exc:  # library-specific errors -> one line
                raise EmbedderError(one_line(f"{self.id}: embedding failed: "
                                              f"{type(exc).__name__}: {exc}")) from exc
        arr = np.asarray(raw, dtype=np.float32)
        if arr.ndim != 2 or arr.shape != (len(texts), self.dim):
            raise EmbedderError(f"{self.id}: expected vectors of shape "
                                f"({len(texts)}, {self.dim}), got {arr.shape}")
        if not np.isfinite(arr).all():
            raise EmbedderError(f"{self.id}: model returned NaN/inf values")
        return _normalise(arr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, dim={self.dim})"


def _normalise(arr: np.ndarray) -> np.ndarray:
    """L2-normalise rows; an all-zero row becomes the first unit vector (so every row
    has norm 1 and cosine distances stay defined)."""
    arr = np.array(arr, dtype=np.float32, copy=True)
    norms = np.linalg.norm(arr, axis=1)
    zero = norms < 1e-12
    if zero.any():
        arr[zero] = 0.0
        arr[zero, 0] = 1.0
        norms[zero] = 1.0
    arr /= norms[:, None]
    return arr
