"""Mem0's half of ``bench/mem0_compare.py``, run inside the Mem0 virtualenv: Mem0 2.x
dense-only or with its own BM25 hybrid, and the offline ``Qdrant/bm25`` model folder that
fastembed (Mem0's BM25 encoder) loads instead of downloading it.

Mem0's hybrid (``mem0/memory/main.py`` ``_search_vector_store`` and
``mem0/utils/scoring.py``, version 2.2.1): the query is embedded and the dense search
over-fetches ``max(4 * top_k, 60)`` candidates; the default local Qdrant store
(``mem0/vector_stores/qdrant.py``) also runs ``keyword_search``, a sparse query on the
collection's ``bm25`` vectors (Qdrant ``Modifier.IDF``), whose vectors come from
fastembed's ``SparseTextEmbedding("Qdrant/bm25")`` over the memory text (``embed``, also
for the query). Each raw BM25 score is squashed by a sigmoid whose midpoint and steepness
depend on the query's length in terms, and every *dense* candidate scores ``(cosine +
bm25) / 2``; keyword hits outside the dense pool are dropped. spaCy lemmatisation and
entity boosts need ``en_core_web_sm``, which is not on PyPI (Mem0 downloads it), so the
text goes to BM25 as it is and no entity boost is added; with ``infer=False`` Mem0 never
links entities anyway.

fastembed's Bm25 model is no weights: a regex tokenizer, a Snowball stemmer
(``py_rust_stemmers``, a package) and a stop-word list per language, fetched from the
hub as ``english.txt`` etc. The hub's lists are NLTK's stop-word corpus (the same
language set); :func:`write_bm25_model` writes them as a hub cache snapshot, English
from the ``bm25s`` package (NLTK's 179 English words), the other languages empty (never
read: Mem0 uses English), and ``FASTEMBED_CACHE_PATH`` + ``HF_HUB_OFFLINE=1`` make
fastembed load it with no network.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from bench.common import Timer, load_locomo, summarize_ms, turn_context, turn_text
from bench.search_timing import timed
from bench.synthetic import random_unit_vectors, synthetic_queries, synthetic_texts

BM25_REPO = "Qdrant/bm25"
#: the stop-word files fastembed 0.9.1 requires in a ``Qdrant/bm25`` snapshot
#: (``fastembed.sparse.bm25.supported_languages`` without tamil, which has none)
BM25_LANGUAGES = ("arabic", "danish", "dutch", "english", "finnish", "french", "german",
                  "greek", "hungarian", "italian", "norwegian", "portuguese", "romanian",
                  "russian", "spanish", "swedish", "turkish")
#: a fixed fake revision: the snapshot is written here, never fetched
BM25_REVISION = "0" * 40
SEARCHES = ("dense", "hybrid")
KS = (1, 5, 10)
#: conversations (by index in locomo10.json) of each half, as in bench/locomo.py
HALVES = {"tune": range(0, 5), "report": range(5, 10)}


def pick(convs: list, half: str = "both", conversations: int | None = None) -> list[tuple[int, Any]]:
    """``[(index in the file, conversation)]`` of ``half`` (``"both"``, ``"tune"`` or
    ``"report"``, :data:`HALVES`), the first ``conversations`` of them if set. Raises
    ValueError for another half."""
    if half != "both" and half not in HALVES:
        raise ValueError(f"unknown half {half!r} (both, {', '.join(HALVES)})")
    return [(i, c) for i, c in enumerate(convs) if half == "both" or i in HALVES[half]][:conversations]


def write_bm25_model(cache_dir: str | os.PathLike, english: Iterable[str]) -> Path:
    """Write a ``Qdrant/bm25`` snapshot into the hub cache layout under ``cache_dir``
    (``models--Qdrant--bm25/refs/main`` + ``snapshots/<rev>/``: an empty-object
    ``config.json``, ``english.txt`` with ``english`` one word a line, lower-cased, in the
    given order, duplicates dropped, and an empty file for every other language of
    :data:`BM25_LANGUAGES`). Returns the snapshot folder. Raises ValueError when
    ``english`` holds no word or a word with whitespace (the file is one word a line)."""
    words: list[str] = []
    for w in english:
        w = str(w).strip().lower()
        if not w or any(c.isspace() for c in w):
            raise ValueError(f"not a stop word: {w!r}")
        if w not in words:
            words.append(w)
    if not words:
        raise ValueError("no English stop words given")
    repo = Path(cache_dir) / ("models--" + BM25_REPO.replace("/", "--"))
    snap = repo / "snapshots" / BM25_REVISION
    snap.mkdir(parents=True, exist_ok=True)
    (snap / "config.json").write_text("{}\n", encoding="utf-8")
    for lang in BM25_LANGUAGES:
        body = "\n".join(words) + "\n" if lang == "english" else ""
        (snap / f"{lang}.txt").write_text(body, encoding="utf-8")
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(BM25_REVISION, encoding="utf-8")
    return snap


def nltk_english_stopwords() -> tuple[str, ...]:
    """NLTK's English stop words (179) as the ``bm25s`` package ships them
    (``bm25s.stopwords.STOPWORDS_EN_PLUS``). Raises RuntimeError when bm25s is absent."""
    try:
        from bm25s.stopwords import STOPWORDS_EN_PLUS
    except ImportError as e:
        raise RuntimeError("bm25s is not installed in this environment "
                           "(pip install bm25s==0.3.16); it ships the stop-word list") from e
    return tuple(STOPWORDS_EN_PLUS)


def mem0_text(turn, prev, fmt: str) -> str:
    """The text Mem0 stores for one LoCoMo turn: ``plain`` → ``"Speaker: text"`` (what
    ``bench/locomo.py --format plain`` sends ours); ``context-meta`` → the dated turn plus
    ``" " + turn_context`` when there is one (Mem0 has no context field; this is the
    string our embedder embeds for that memory). Raises ValueError for another format."""
    if fmt == "plain":
        return f"{turn.speaker}: {turn.text}".strip()
    if fmt == "context-meta":
        text, ctx = turn_text(turn, "context-meta", prev), turn_context(turn, prev)
        return f"{text} {ctx}" if ctx else text
    raise ValueError(f"unknown format {fmt!r} (plain, context-meta)")


class _USEForMem0:
    """Mem0 embedding interface (``embed(text, memory_action)`` → list[float]) backed by
    our embedder; ``lookup`` maps query text → precomputed vector (to time search
    without the embedding)."""

    def __init__(self, embedder, config):
        self.e = embedder
        self.config = config
        self.lookup: dict[str, Any] = {}

    def embed(self, text, memory_action=None):
        """Return the embedding of ``text`` (a query vector for ``search``)."""
        if text in self.lookup:
            return self.lookup[text]
        if memory_action == "search":
            return self.e.embed_query(text).tolist()
        return self.e.embed_documents([text])[0].tolist()


def prepare(search: str, folder: Path) -> dict[str, Any]:
    """Set the process up for ``search`` before Mem0 is built: ``dense`` hides fastembed
    (``sys.modules["fastembed"] = None``: Mem0 takes its own "fastembed not installed"
    path, as after a bare ``pip install mem0ai``); ``hybrid`` writes the offline BM25
    model under ``folder`` and points fastembed at it. Returns a description for the
    results. Raises ValueError for another ``search``."""
    if search == "dense":
        sys.modules["fastembed"] = None  # type: ignore[assignment]
        return {"bm25": None}
    if search != "hybrid":
        raise ValueError(f"unknown Mem0 search {search!r} ({', '.join(SEARCHES)})")
    words = nltk_english_stopwords()
    cache = folder / "fastembed-cache"
    write_bm25_model(cache, words)
    os.environ["FASTEMBED_CACHE_PATH"] = str(cache)
    os.environ["HF_HUB_OFFLINE"] = "1"
    return {"bm25": {"model": BM25_REPO, "stopwords": "NLTK English via bm25s "
                     f"STOPWORDS_EN_PLUS ({len(words)} words)", "stemmer": "Snowball english "
                     "(py_rust_stemmers)", "spacy_lemmas": False, "entity_boost": False}}


def build(folder: Path, name: str, search: str):
    """A Mem0 ``Memory`` (local Qdrant in ``folder``, telemetry off, dead LLM endpoint,
    our USE embedder swapped in) whose keyword side matches ``search``; raises
    RuntimeError when it does not (a "hybrid" that silently fell back to dense)."""
    from mem0 import Memory as Mem0Memory

    from memory.embed.embedder import make_embedder

    cfg = {"vector_store": {"provider": "qdrant",
                            "config": {"path": str(folder / f"{name}-qdrant"),
                                       "embedding_model_dims": 512, "collection_name": name}},
           "llm": {"provider": "openai", "config": {"api_key": "unused",
                                                    "openai_base_url": "http://127.0.0.1:9/v1"}},
           "embedder": {"provider": "openai", "config": {"api_key": "unused", "embedding_dims": 512}},
           "history_db_path": str(folder / f"{name}-history.db")}
    m = Mem0Memory.from_config(cfg)
    m.embedding_model = _USEForMem0(make_embedder(None), m.embedding_model.config)
    has_bm25 = m.vector_store._get_bm25_encoder() is not None
    if has_bm25 != (search == "hybrid"):
        raise RuntimeError(f"Mem0 {search}: its BM25 encoder is "
                           f"{'loaded' if has_bm25 else 'unavailable'}")
    return m


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for pkg in ("mem0ai", "qdrant-client", "fastembed", "bm25s", "py_rust_stemmers", "mmh3"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def run_locomo(m, data: Path, conversations: int | None, fmt: str,
               max_questions: int | None = None, half: str = "both") -> dict[str, Any]:
    """Store every LoCoMo turn (``mem0_text``) with ``infer=False``, one ``add`` per turn,
    then ask every question (``top_k=10``, ``threshold=0``). The turns' vectors are
    computed first in batches (the same vectors, far less CPU than one call per turn),
    so ``add_per_s`` is Mem0's store path without the embedding (``embed_seconds``).
    Returns ``{"rows": [(conversation index, category, evidence, ranked dia ids)],
    "embed_seconds", "add_per_s", "search_ms_mean"}``."""
    convs = pick(load_locomo(data), half, conversations)
    turns = []
    for _, conv in convs:
        prev = None
        for t in conv.turns:
            turns.append((f"locomo-{conv.sample_id}", t.dia_id, mem0_text(t, prev, fmt)))
            prev = t
    emb = m.embedding_model
    with Timer() as t_embed:
        texts = sorted({text for _, _, text in turns})
        emb.lookup = {text: v.tolist() for text, v in zip(texts, emb.e.embed_documents(texts))}
    rows = []
    with Timer() as t_ingest:
        for uid, dia, text in turns:
            m.add([{"role": "user", "content": text}], user_id=uid, infer=False,
                  metadata={"dia_id": dia})
    emb.lookup = {}
    with Timer() as t_search:
        for i, conv in convs:
            for q in conv.questions[:max_questions]:
                res = m.search(q.question, top_k=max(KS), filters={"user_id": f"locomo-{conv.sample_id}"},
                               threshold=0.0)
                rows.append((i, q.category, q.evidence,
                             [(r.get("metadata") or {}).get("dia_id") for r in res["results"]]))
    return {"rows": rows, "embed_seconds": round(t_embed.seconds, 1),
            "add_per_s": round(len(turns) / t_ingest.seconds, 1),
            "search_ms_mean": round(1000 * t_search.seconds / max(1, len(rows)), 2)}


def run_latency(m, sizes: list[int], queries: int) -> list[dict[str, Any]]:
    """Search latency at each size: synthetic texts with random unit vectors inserted
    through the vector store (1,000 per call; BM25 vectors computed there when the
    hybrid is on), then ``queries`` searches with the query vector precomputed and as
    many end to end."""
    out, have, uid = [], 0, "scale-user"
    for size in sizes:
        n = size - have
        texts = synthetic_texts(n, seed=size)
        vecs = random_unit_vectors(n, 512, seed=size)
        now = datetime.now(timezone.utc).isoformat()
        t0 = time.perf_counter()
        for start in range(0, n, 1000):
            chunk = range(start, min(n, start + 1000))
            m.vector_store.insert(
                vectors=[vecs[i].tolist() for i in chunk],
                payloads=[{"data": texts[i], "hash": hashlib.md5(texts[i].encode()).hexdigest(),
                           "created_at": now, "user_id": uid} for i in chunk],
                ids=[str(uuid.uuid4()) for _ in chunk])
        insert_s = time.perf_counter() - t0
        have = size
        qs = synthetic_queries(queries, seed=size)
        qv = m.embedding_model.e.embed_documents(qs)
        m.embedding_model.lookup = {q: v.tolist() for q, v in zip(qs, qv)}
        no_embed = timed(lambda i: m.search(qs[i], top_k=10, filters={"user_id": uid}, threshold=0.0),
                         list(range(len(qs))))
        m.embedding_model.lookup = {}
        e2e = timed(lambda i: m.search(qs[i] + " ?", top_k=10, filters={"user_id": uid}, threshold=0.0),
                    list(range(len(qs))))
        out.append({"memories": size, "store_insert_per_s": round(n / insert_s, 1),
                    "search_no_embed": summarize_ms(no_embed), "search_end_to_end": summarize_ms(e2e)})
        print(f"mem0 {size}: search p95 {out[-1]['search_no_embed']['p95_ms']} ms",
              file=sys.stderr, flush=True)
    return out


def run(search: str, data: Path, conversations: int | None, formats: list[str],
        sizes: list[int], queries: int, folder: Path,
        max_questions: int | None = None, half: str = "both") -> dict[str, Any]:
    """Everything Mem0 runs for one ``search`` mode: LoCoMo per format (fresh store each)
    and the latency sizes. Returns JSON-ready results (rows unsummarised)."""
    out: dict[str, Any] = {"search": search, **prepare(search, folder), "versions": _versions(),
                           "locomo": {}}
    for fmt in formats:
        m = build(folder, f"locomo-{fmt}", search)
        m.embedding_model.e.embed_query("warm up")
        out["locomo"][fmt] = run_locomo(m, data, conversations, fmt, max_questions, half)
        m.close()
    m = build(folder, "scale", search)
    out["latency"] = run_latency(m, sizes, queries)
    m.close()
    return out
