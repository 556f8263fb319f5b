"""Hybrid search: vector KNN + full-text BM25, fused by weighted *score* fusion (default)
or reciprocal rank fusion (RRF), then a light re-score by importance and recency.

Score fusion (default, ``SearchWeights.fusion = "score"``), per candidate ``d`` of query
``q``::

    score(d) = text · bm25(d) / max_pool(bm25) · coverage(q, d) ** coverage_power
             + (vector + cross_script · [d shares no script with q]) · cos_minmax(d)

* ``bm25 / max_pool(bm25)``: BM25 divided by the best score of the pool, in [0, 1];
  ``cos_minmax``: cosine similarity min-max scaled over the vector pool; a candidate
  missing from one pool gets 0 there. This is the "convex combination" of Bruch, Gai &
  Ingber, "An Analysis of Fusion Functions for Hybrid Retrieval" (ACM TOIS 2023), which
  beats RRF when one retriever is much stronger than the other (BM25 on LoCoMo).
* ``coverage(q, d)``: the share of the query's terms (:func:`memory.text.fulltext.query_terms`,
  Porter-stemmed like the FTS5 index) that occur in the memory (:func:`query_coverage`).
  Pool-max normalisation alone turns the best BM25 match into 1.0 even when it shares
  one word with the query; coverage makes a one-of-four-terms match worth 1/16 of a
  full match, so a strong semantic (vector) match can win. It costs no extra query: the
  records of all candidates are fetched anyway.
* Cross-script bonus: a memory written in another script than the query (Han vs.
  alphabetic, :func:`scripts`) can never match BM25, so its missing text score says
  nothing; it gets ``cross_script`` more vector weight.

After fusion, imported chat messages get a share of their neighbours' scores (the
messages around them in their conversation: a thread, or one ``add`` call;
:mod:`memory.search.neighbours`), a date the query names is matched against
``created_at`` (:mod:`memory.search.query_dates`), a question about time ("When did …") prefers
memories that say when, a query naming a person prefers the messages that person said
(:mod:`memory.search.speakers`), and a first-person query demotes other
people's facts (:mod:`memory.search.owner`). Every default was chosen on the *tune* halves of
``bench/locomo.py --format plain`` (LoCoMo conversations 0-4) and
``bench/zh_en_xling.py`` (its tune split); ``bench/README.md`` has the tables for both
halves, the ablations and the grids (``bench/locomo_tune.py``).

RRF (``fusion = "rrf"``; Cormack, Clarke & Büttcher, SIGIR 2009):
``score(d) = Σ_r w_r / (k + rank_r(d))`` with ``k = 60``, kept for comparison.

Each retriever fetches ``limit × OVERFETCH`` candidates (at least ``MIN_POOL``). Both
retrievers apply the user filter inside their query (see ``memory.store.base.Store``).
"""
from __future__ import annotations

import functools
import math
import re
import threading
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import snowballstemmer

from memory.search.neighbours import with_neighbours, with_thread_share
from memory.search.owner import is_first_person, owner_of
from memory.search.query_dates import QueryDates, asks_when, has_time_reference, parse_query_dates
from memory.search.speakers import speaker_of, speakers_named
from memory.text.fulltext import index_text, normalize, query_terms, word_runs
from memory.types import MemoryRecord, ScoredMemory, utcnow

RRF_K = 60
OVERFETCH = 4
MIN_POOL = 20
FUSIONS = ("score", "rrf")

# The FTS5 index stems English with the original Porter algorithm (``porter`` tokenizer,
# see memory.text.fulltext.FTS5_TOKENIZE); snowballstemmer's "porter" is the same algorithm,
# so coverage counts a term as present exactly when FTS5 would match it.
_STEMMER = snowballstemmer.stemmer("porter")
_stem_lock = threading.Lock()


@dataclass
class SearchWeights:
    """Tunable knobs of hybrid search (defaults measured in ``bench/locomo.py`` and
    ``bench/zh_en_hybrid.py``; see the module docstring).

    ``vector``/``text``: weights of the two retrievers (0 disables one: the ablations).
    ``fusion``: ``"score"`` (weighted sum of normalised scores, the default) or ``"rrf"``
    (weighted reciprocal rank fusion). ``coverage_power``: exponent of the query-term
    coverage that scales each BM25 score (0 disables; score fusion only).
    ``cross_script``: extra vector weight of a memory sharing no script with the query
    (0 disables; score fusion only). ``cross_inherit``: share of the best text score
    of the candidates such a memory beats on the vector side that it inherits
    (:func:`score_fuse`; 0 disables). ``owner_penalty``: relative cut of a memory about
    someone else than the person a first-person query asks about ("What am I allergic
    to?" vs "My daughter is allergic to cats"; :mod:`memory.search.owner`; 0 disables).
    ``importance``: relative boost per importance step
    above 3 (0 disables). ``recency``: max relative boost for a memory touched today,
    decaying with ``half_life_days`` (0 disables). Re-scoring multiplies the fused score,
    so it only reorders memories whose fused scores are close.
    ``context_prev`` / ``context_next``: share of the fused score of a chat message's
    previous / next message (same conversation, :mod:`memory.search.neighbours`) added to its
    own, for the ``neighbour_pool`` best candidates and their neighbours (0 and 0
    disable; score fusion only). ``thread_share``: share of the best fused score among
    the other candidates of the same conversation added to a chat message (evidence
    comes in clusters; 0 disables). ``overfetch``: each retriever fetches ``limit × overfetch`` candidates
    (at least ``MIN_POOL``). ``date_boost``: relative boost of a memory created in a period
    the query names (:mod:`memory.search.query_dates`) or up to ``date_lag_days`` after it; the
    date words then leave the text query and, with ``date_pool``, a second full-text
    query restricted to that period adds candidates (0 disables). ``when_boost``:
    relative boost, for a question about time ("When did …", "How long …", "什么时候"),
    of a memory that says when (a relative day, a duration, a weekday or a date:
    :func:`memory.search.query_dates.has_time_reference`; 0 disables). ``speaker_boost``:
    relative boost of an imported message whose speaker label ("Caroline: …") names a
    person the query names (:mod:`memory.search.speakers`; 0 disables).
    """

    vector: float = 0.15
    text: float = 0.8
    fusion: str = "score"
    coverage_power: float = 1.0
    cross_script: float = 0.2
    cross_inherit: float = 1.0
    owner_penalty: float = 0.85
    importance: float = 0.05
    recency: float = 0.05
    half_life_days: float = 30.0
    rescore: bool = True
    context_prev: float = 0.5
    context_next: float = 0.45
    neighbour_pool: int = 10
    thread_share: float = 0.3
    overfetch: int = OVERFETCH
    date_boost: float = 2.0
    date_lag_days: float = 14.0
    date_pool: bool = True
    when_boost: float = 1.0
    speaker_boost: float = 1.0


def rrf_fuse(ranked_lists: list[tuple[list[str], float]], k: int = RRF_K
             ) -> dict[str, float]:
    """Fuse ranked id lists. Takes ``[(ids_best_first, weight)]``; returns
    ``{id: fused_score}`` (higher is better)."""
    scores: dict[str, float] = {}
    for ids, weight in ranked_lists:
        if weight <= 0:
            continue
        for rank, mid in enumerate(ids, start=1):
            scores[mid] = scores.get(mid, 0.0) + weight / (k + rank)
    return scores


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    """Porter stem of one case-folded word, cached: a user's memories reuse a small
    vocabulary, and stemming every candidate's words afresh cost ~11 ms per search at
    100k memories (profile in bench/latency.py). snowballstemmer objects are not
    thread-safe, hence the lock (taken only on a cache miss)."""
    with _stem_lock:
        return _STEMMER.stemWord(word)


def _stems(words: list[str]) -> list[str]:
    """Case-folded Porter stems of ``words`` (Han words pass through unchanged); empty
    stems dropped."""
    stems = (_stem(w.casefold()) for w in words if w)
    return [s for s in stems if s]


_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")


@functools.lru_cache(maxsize=1 << 17)
def _memory_terms(text: str) -> frozenset[str]:
    """The stemmed terms FTS5 indexes for a memory ``text``, computed once per distinct
    text and process (a bounded LRU of 131,072 texts, ~40 MB at LoCoMo's turn length):
    a memory is tokenised and stemmed the first time a search meets it, never again
    while it stays in the cache, so a user's repeated searches cost set lookups only
    (``bench/latency_locomo.py``)."""
    indexed = index_text(text)
    # the words are split exactly as query_terms splits a query (runs of letters,
    # digits and marks), with a regex fast path for ASCII text
    words = (_ASCII_WORD.findall(indexed) if indexed.isascii()
             else [w for part in indexed.split() for w in word_runs(part)])
    return frozenset(_stems(words))


def query_coverage(query: str | list[str], text: str) -> float:
    """Share (0..1) of the query's distinct terms that occur in memory ``text``.

    ``query``: the raw query, or its stemmed terms (as returned by :func:`stem_terms`,
    to analyse a query once for many memories). Terms are those of
    :func:`memory.text.fulltext.query_terms` (stop-words dropped, Han text segmented by
    jieba), case-folded and Porter-stemmed as the FTS5 index does. Returns 0.0 when the
    query has no term.
    """
    terms = stem_terms(query) if isinstance(query, str) else query
    if not terms:
        return 0.0
    have = _memory_terms(text)
    return sum(1 for t in terms if t in have) / len(terms)


def stem_terms(query: str) -> list[str]:
    """The distinct stemmed search terms of a raw ``query`` (see :func:`query_coverage`)."""
    return list(dict.fromkeys(_stems(query_terms(query))))


_ASCII_LETTER = re.compile(r"[A-Za-z]")
_ALPHA, _NO_SCRIPT = frozenset({"alpha"}), frozenset()


@functools.lru_cache(maxsize=4096)
def scripts(text: str) -> frozenset[str]:
    """The writing systems of ``text``'s letters: ``"han"`` (CJK ideographs, which the
    index segments with jieba) and/or ``"alpha"`` (every other letter: Latin, Cyrillic,
    kana, Hangul...). Digits and symbols count for neither; ``""`` gives an empty set."""
    if text.isascii():  # the common case, without a per-character loop
        return _ALPHA if _ASCII_LETTER.search(text) else _NO_SCRIPT
    found: set[str] = set()
    for ch in normalize(text):
        if unicodedata.category(ch)[0] != "L":
            continue
        found.add("han" if unicodedata.name(ch, "").startswith("CJK") else "alpha")
        if len(found) == 2:
            break
    return frozenset(found)


def score_fuse(vector_hits: list[tuple[str, float]], text_hits: list[tuple[str, float]],
               vector_weight: float, text_weight: float,
               coverage: dict[str, float] | None = None, coverage_power: float = 0.0,
               cross_script: set[str] | None = None, cross_script_weight: float = 0.0,
               cross_inherit: float = 0.0) -> dict[str, float]:
    """Weighted sum of normalised scores (formula and measurements: module docstring).

    ``vector_hits``: ``[(id, cosine_distance)]`` nearest first; ``text_hits``:
    ``[(id, bm25_score)]`` best first (higher is better). Cosine similarities
    (``1 - distance``) are min-max scaled over the pool (a pool of one, or of equal
    scores, maps to 1); BM25 scores are divided by the best one and multiplied by
    ``coverage[id] ** coverage_power`` (coverage in [0, 1]; a missing id counts as 1,
    as does every id when ``coverage`` is None or the power is 0). Ids in
    ``cross_script`` (written in another script than the query, so BM25 cannot see
    them) get ``vector_weight + cross_script_weight`` on their vector score, and
    ``cross_inherit`` × the best text score among the other candidates they beat on
    the vector side (equal or lower scaled cosine): a memory in the other language that
    means the query more than a same-language one sharing its words ranks above it.
    Returns ``{id: score}``; 0 stands for "absent from that pool".
    """
    cross = cross_script or set()
    vnorm: dict[str, float] = {}
    if vector_hits:
        sims = [1.0 - float(d) for _, d in vector_hits]
        hi, lo = max(sims), min(sims)
        span = hi - lo
        vnorm = {mid: (s - lo) / span if span > 1e-9 else 1.0
                 for (mid, _), s in zip(vector_hits, sims)}
    tnorm: dict[str, float] = {}
    if text_hits and text_weight > 0:
        best = max(float(s) for _, s in text_hits)
        for mid, s in text_hits:
            norm = float(s) / best if best > 0 else 1.0
            if coverage is not None and coverage_power > 0:
                norm *= coverage.get(mid, 1.0) ** coverage_power
            tnorm[mid] = norm
    scores: dict[str, float] = {}
    for mid, v in vnorm.items():
        w = vector_weight + (cross_script_weight if mid in cross else 0.0)
        if w > 0:
            scores[mid] = w * v
    for mid, t in tnorm.items():
        scores[mid] = scores.get(mid, 0.0) + text_weight * t
    if cross and tnorm and cross_inherit > 0:
        same = sorted((vnorm.get(m, 0.0), t) for m, t in tnorm.items() if m not in cross)
        for mid in cross & vnorm.keys():
            beaten = [t for v, t in same if v <= vnorm[mid]]
            if beaten:
                scores[mid] = scores.get(mid, 0.0) + text_weight * cross_inherit * max(beaten)
    return scores


def hybrid_search(store, user_id: str, query: str, query_embedding: np.ndarray | None,
                  limit: int, types: list[str] | None = None,
                  since: datetime | None = None, until: datetime | None = None,
                  weights: SearchWeights | None = None,
                  now: datetime | None = None) -> list[ScoredMemory]:
    """Return up to ``limit`` of ``user_id``'s memories best matching ``query``.

    ``query_embedding``: the query's embedding (shape (dim,)), or None to skip the vector
    retriever. ``types``/``since``/``until`` filter by memory type and created_at.
    Scores are fused scores after re-scoring (comparable within one result only).
    Raises ValueError for an unknown ``weights.fusion``.
    """
    w = weights or SearchWeights()
    if w.fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {w.fusion!r}; use one of {', '.join(FUSIONS)}")
    pool = max(MIN_POOL, limit * w.overfetch)
    vec_hits: list[tuple[str, float]] = []
    txt_hits: list[tuple[str, float]] = []
    # the filters run inside both store queries (None = no bound)
    dates = {"since": since, "until": until}
    if query_embedding is not None and w.vector > 0:
        vec_hits = store.vector_search(user_id, query_embedding.tolist(), pool, types=types,
                                       **dates)
    raw_query = query
    named = parse_query_dates(query) if w.date_boost > 0 else None
    if named:  # the dates are matched against created_at, not as words
        query = named.text or query
    if w.text > 0:
        txt_hits = store.text_search(user_id, query, pool, types=types, **dates)
        if named and w.date_pool:
            txt_hits = _merge_hits(txt_hits, _dated_text_hits(
                store, user_id, query, pool, types, since, until, named, w.date_lag_days))
    ids = list(dict.fromkeys([m for m, _ in vec_hits] + [m for m, _ in txt_hits]))
    if not ids:
        return []
    records = {r.id: r for r in store.get_memories(user_id, ids)}
    if w.fusion == "rrf":
        fused = rrf_fuse([([m for m, _ in vec_hits], w.vector), ([m for m, _ in txt_hits], w.text)])
    else:
        coverage: dict[str, float] | None = None
        if txt_hits and w.coverage_power > 0:
            terms = stem_terms(query)
            coverage = {m: query_coverage(terms, records[m].text)
                        for m, _ in txt_hits if m in records}
        cross: set[str] = set()
        if vec_hits and (w.cross_script > 0 or w.cross_inherit > 0):
            qs = scripts(query)
            cross = {m for m, _ in vec_hits
                     if m in records and qs and not (scripts(records[m].text) & qs)}
        fused = score_fuse(vec_hits, txt_hits, w.vector, w.text, coverage, w.coverage_power,
                           cross, w.cross_script, w.cross_inherit)
        if fused and (w.context_prev > 0 or w.context_next > 0):
            fused = with_neighbours(store, user_id, fused, records, w.context_prev,
                                    w.context_next, w.neighbour_pool)
        if fused and w.thread_share > 0:
            fused = with_thread_share(fused, records, w.thread_share)
    if not fused:
        return []
    vrank = {m: i for i, (m, _) in enumerate(vec_hits, start=1)}
    trank = {m: i for i, (m, _) in enumerate(txt_hits, start=1)}
    now = now or utcnow()
    when = w.when_boost > 0 and asks_when(raw_query)
    asker = owner_of(raw_query) if w.owner_penalty > 0 and is_first_person(raw_query) else None
    said_by = (speakers_named(raw_query, records.values()) if w.speaker_boost > 0
               else frozenset())
    hits: list[ScoredMemory] = []
    for mid, score in fused.items():
        rec = records.get(mid)
        if rec is None:
            continue
        if (since and rec.created_at < since or until and rec.created_at > until
                or types and rec.type not in types):
            continue  # a thread neighbour joins unfiltered; the store's hits already are
        if asker is not None and owner_of(rec.text) != asker:
            score *= 1.0 - w.owner_penalty
        if named and named.matches(rec.created_at, w.date_lag_days):
            score *= 1.0 + w.date_boost
        if said_by and speaker_of(rec) in said_by:
            score *= 1.0 + w.speaker_boost
        if when and has_time_reference(rec.text):
            score *= 1.0 + w.when_boost
        if w.rescore:
            score *= 1.0 + w.importance * (rec.importance - 3)
            seen = rec.last_accessed_at or rec.updated_at or rec.created_at
            age_days = max(0.0, (now - seen).total_seconds() / 86400.0)
            score *= 1.0 + w.recency * math.exp(-math.log(2) * age_days / w.half_life_days)
        hits.append(ScoredMemory(rec, score, vrank.get(mid), trank.get(mid)))
    hits.sort(key=lambda h: -h.score)
    return hits[:limit]


def _merge_hits(a: list[tuple[str, float]], b: list[tuple[str, float]]
                ) -> list[tuple[str, float]]:
    """Union of two ``[(id, score)]`` lists of the same scorer, best score per id, best
    first."""
    best: dict[str, float] = {}
    for mid, sc in [*a, *b]:
        best[mid] = max(sc, best.get(mid, sc))
    return sorted(best.items(), key=lambda kv: -kv[1])


def _dated_text_hits(store, user_id: str, query: str, pool: int, types, since, until,
                     named: QueryDates, lag_days: float) -> list[tuple[str, float]]:
    """Full-text hits inside the period ``named`` (plus the lag), within the caller's
    own ``since``/``until``; [] when the query named only yearless months or the two
    ranges do not meet."""
    window = named.window(lag_days)
    if window is None:
        return []
    lo = max(window[0], since) if since else window[0]
    hi = min(window[1], until) if until else window[1]
    if lo > hi:
        return []
    return store.text_search(user_id, query, pool, types=types, since=lo, until=hi)

