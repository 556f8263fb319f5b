"""The OpenAI-compatible ``/embeddings`` endpoint client (``EMBEDDER=openai``), through the ``openai`` SDK."""
from __future__ import annotations

import numpy as np

from memory.embed.base import REMOTE_MAX_CHARS, Embedder, EmbedderError
from memory.llm.errors import one_line


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
