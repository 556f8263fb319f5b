"""Search of the SQLite store: vector KNN (vec0 scan or the cached matrix) and BM25 full-text search, with the type and date filters inside both queries.

Measured (random unit 512-dim vectors, one user, k=40, realistic 4-word queries, CPU time
per query on the shared 2-core dev box; wall time there was 5-10x higher under load):
10k memories: KNN p95 6 ms, BM25 p95 2 ms, hybrid p95 8 ms; 100k memories: vec0 KNN p95
51 ms (the sqlite-vec 0.1.9 wheel has no SIMD: exact KNN is ~0.5 µs per 512-dim vector),
cached-matrix KNN p95 ~7 ms, BM25 p95 7 ms. Batched insert: 10k rows in ~1.8 s CPU.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator

from memory.store.sqlite import cache, rows
from memory.store.sqlite.memories import Memories, dates_clause, live, types_clause
from memory.store.sqlite.schema import CONTEXT_WEIGHT, CONVERSATION_INDEX, MAX_K, user_token
from memory.text.fulltext import any_term, query_terms, quote_term

#: A query term found in more than this share of all full-text rows (every user's) is
#: *common*: when the query also has a rarer term that occurs somewhere, rows matching
#: only common terms are not ranked (:meth:`Search.text_search`). Chosen on the tune half
#: of ``bench/locomo.py --format plain`` (bench/README.md).
COMMON_TERM_SHARE = 0.02

#: ... and in more than this many rows: below it ranking every match costs little.
COMMON_TERM_MIN_ROWS = 50

#: When the rows with a rare term are fewer than asked for, the threshold is multiplied
#: by this and the next rarest terms join the rare ones (until the whole query ranks).
COMMON_TERM_WIDEN = 4

_SCORED = ("SELECT rowid, bm25(memories_fts, 0.0, 1.0, ?) AS score FROM memories_fts "
           "WHERE memories_fts MATCH ?")
_DF = "(SELECT count(*) FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? LIMIT ?))"


def _adjacent(side: str) -> str:
    """SQL of the id of the live chat message right before (``side="prev"``) or after
    (``"next"``) message ``f`` in its conversation (``conversation_id``: its thread or
    its ``Memory.add`` call), within ``:w`` µs: first among the messages sharing ``f``'s
    timestamp (storage order), else the nearest earlier / later one. Both halves are
    seeks of :data:`CONVERSATION_INDEX` (a range over ``(created_at, rid)`` would walk
    every message of a chat imported with one timestamp)."""
    if side == "prev":
        lt, desc, bound = "<", "DESC", "p.created_at >= f.created_at - :w"
    else:
        lt, desc, bound = ">", "ASC", "p.created_at <= f.created_at + :w"
    base = (f"SELECT p.id FROM memories p INDEXED BY {CONVERSATION_INDEX} WHERE p.user_id = "
            "f.user_id AND p.conversation_id = f.conversation_id AND p.source = 'raw' AND "
            "p.status = 'current' AND (p.expires_at IS NULL OR p.expires_at > :now) AND ")
    same = f"{base}p.created_at = f.created_at AND p.rid {lt} f.rid ORDER BY p.rid {desc} LIMIT 1"
    near = (f"{base}p.created_at {lt} f.created_at AND {bound} "
            f"ORDER BY p.created_at {desc}, p.rid {desc} LIMIT 1")
    return f"COALESCE(({same}), ({near}))"


_NEIGHBOURS = (f"SELECT f.id, {_adjacent('prev')}, {_adjacent('next')} FROM memories f "
               "WHERE +f.user_id = :user AND f.id IN ({ids}) AND f.source = 'raw' AND "
               "f.conversation_id <> '' AND f.status = 'current' AND "
               "(f.expires_at IS NULL OR f.expires_at > :now)")


def _sole_owner(conn: Any, user_id: str) -> bool:
    """True when no other user owns a memory row (expired ones included): two seeks of
    the ``(user_id, …)`` index, whatever the table's size."""
    return not conn.execute("SELECT EXISTS (SELECT 1 FROM memories WHERE user_id < ? OR "
                            "user_id > ?)", (user_id, user_id)).fetchone()[0]


class Search(Memories):
    """The search half of ``SQLiteStore``."""

    def vector_search(self, user_id: str, embedding: list[float], k: int,
                      *, types: list[str] | None = None, since: datetime | None = None,
                      until: datetime | None = None) -> list[tuple[str, float]]:
        """Return up to ``k`` (≤ :data:`MAX_K`) ``(memory_id, cosine_distance)`` of
        ``user_id``'s live memories, nearest first (distance in [0, 2]), restricted to
        ``types`` and to ``since <= created_at <= until`` (inclusive, either optional).

        Users with ≥ ``cache.MATRIX_MIN_ROWS`` memories: exact cosine over this process's
        cached float32 matrix of the user (``X @ q`` + ``argpartition``; type, date and
        expiry masks applied before the top-k; ties by storage order), checked against
        the user's vector version in the same read transaction and rebuilt when stale.
        Others (and searches inside a write transaction of this thread): the vec0 KNN
        scan, where the user (partition key), type, dates and expiry are constraints of
        the scan itself. Either way k matching rows come back whenever the user owns k,
        with the same ids and distances (float32, ±1e-6). Raises ValueError for an
        embedding of the wrong dimension.
        """
        if k <= 0:
            return []
        dim = self._require_dim()
        data = rows.blob(embedding, dim, "query embedding")
        type_sql, type_args = types_clause(types, "type")
        date_sql, date_args = dates_clause(since, until, "created_at")
        k, now = min(int(k), MAX_K), self._now()
        with self._read() as conn:
            snap = None
            if not self._in_write():  # our own uncommitted rows: never cache them
                snap = cache.snapshot(self._matrices, conn, user_id, dim, type_args)
            if snap is None:
                return self._vec0_search(conn, user_id, data, k, now, type_sql + date_sql,
                                         [*type_args, *date_args])
        return cache.topk(snap, cache.unit(data), k, now, rows.ts(since), rows.ts(until))

    def _vec0_search(self, conn: Any, user_id: str, data: bytes, k: int, now: int,
                     filter_sql: str, filter_args: list[Any]) -> list[tuple[str, float]]:
        """The vec0 KNN scan (partition key, filters and expiry constraints inside it)."""
        sql = ("WITH knn AS (SELECT rowid, distance FROM vec_memories WHERE embedding MATCH ? "
               f"AND k = ? AND user_id = ? AND expires_at > ?{filter_sql}) "
               "SELECT m.id, knn.distance FROM knn JOIN memories m ON m.rid = knn.rowid "
               "WHERE m.user_id = ? ORDER BY knn.distance")
        found = conn.execute(sql, (data, k, user_id, now, *filter_args, user_id)).fetchall()
        return [(mid, float(dist)) for mid, dist in found]

    def message_neighbours(self, user_id: str, ids: list[str], window_s: float
                           ) -> dict[str, tuple[str | None, str | None]]:
        """``{id: (previous_id, next_id)}`` for the chat messages among ``ids`` (see
        ``Store.message_neighbours``): one query, two seeks of the thread index per
        neighbour (~0.1 ms for 10 messages at 10k memories), no records built."""
        ids = list(dict.fromkeys(ids or []))
        out: dict[str, tuple[str | None, str | None]] = {}
        args: dict[str, Any] = {"user": user_id, "now": self._now(),
                                "w": int(round(float(window_s) * 1e6))}
        with self._read() as conn:
            for chunk in rows.chunks(ids):
                names = [f"i{i}" for i in range(len(chunk))]
                sql = _NEIGHBOURS.replace("{ids}", ", ".join(f":{n}" for n in names))
                found = conn.execute(sql, {**args, **dict(zip(names, chunk))})
                out.update((mid, (prev, nxt)) for mid, prev, nxt in found)
        return out

    def text_search(self, user_id: str, query: str, k: int,
                    *, types: list[str] | None = None, since: datetime | None = None,
                    until: datetime | None = None) -> list[tuple[str, float]]:
        """BM25 search of ``user_id``'s live memories: up to ``k`` ``(memory_id, score)``,
        best first; score = ``-bm25`` (higher is better, > 0). ``query`` is raw user text
        (its terms: :func:`memory.text.fulltext.query_terms`); returns [] when it has no
        term. ``types`` and ``since <= created_at <= until`` restrict the matches inside
        the query.

        Common terms: BM25 costs ~1.3 µs per matching row (FTS5 reads each row's size and
        positions), and a name or word found in many rows ("Caroline", "really") makes
        most of a large user's rows match. When the query has both common terms
        (:func:`_rare_first`) and rarer ones that occur, only rows matching a rarer term
        are ranked: ``(rare) AND (common)`` and ``(rare) NOT (common)``, whose BM25 is
        exactly that of the whole query (every phrase once). Rows matching only common
        terms are left out unless that leaves fewer than ``k`` rows: then the next
        rarest terms join the rare ones (:data:`COMMON_TERM_WIDEN`), up to the whole
        query, so ``k`` rows come back whenever ``k`` match. Filtered searches rank the
        whole query (a filter mostly leaves fewer than ``k`` rows with a rare term).
        Measured (``bench/latency_locomo.py`` corpus, k=40, CPU per call): 10k memories
        3.9 -> 2.4 ms, 100k 32 -> 11 ms; LoCoMo recall unchanged (bench/README.md).

        Date filters: only FTS rows between the smallest and largest ``rid`` of the
        user's memories created in the range (one covering read of the
        ``(user_id, created_at)`` index) are matched; memories are mostly stored in time
        order, so a period's rows are a narrow band of rowids.

        Without a filter, the best ``2k + 16`` FTS candidates are ranked first and only
        those are joined to ``memories`` for the user/expiry check (about 25% less CPU at
        10k memories than joining every match); if expired rows leave fewer than ``k``
        while more candidates exist, the exact full join runs instead. With a filter the
        full join runs directly. Both give the same result.

        The user's FTS token (``user_tok``) narrows the match to the user's rows, but
        BM25 then also counts the token's rows for its IDF (weight 0, so no score): a
        scan of every row of the user per query, ~35% of the query's instructions at
        10k memories. When no other user owns a memory (one probe of the user index,
        in the same read transaction) the token is left out: the same rows, the same
        scores (its term added exactly 0.0), less work.
        """
        if k <= 0:
            return []
        terms = query_terms(query)
        if not terms:
            return []
        k = int(k)
        now = self._now()
        type_sql, type_args = types_clause(types, "m.type")
        date_sql, date_args = dates_clause(since, until, "m.created_at")
        with self._read() as conn:
            rids = None
            if date_sql:
                rids = conn.execute("SELECT min(rid), max(rid) FROM memories m WHERE "
                                    f"m.user_id = ?{date_sql}", (user_id, *date_args)).fetchone()
                if rids[0] is None:
                    return []
            token = None if _sole_owner(conn, user_id) else user_token(user_id)
            splits = iter(()) if type_sql or date_sql else _rare_first(conn, terms)
            while True:
                split = next(splits, None)
                if split is None:
                    exprs = [f"{{body context}} : ({any_term(terms)})"]
                else:
                    rare, common = any_term(split[0]), any_term(split[1])
                    exprs = [f"{{body context}} : (({rare}) AND ({common}))",
                             f"{{body context}} : (({rare}) NOT ({common}))"]
                if token is not None:
                    exprs = [f'user_tok : "{token}" AND {e}' for e in exprs]
                found = _ranked(conn, exprs, user_id, k, now, type_sql + date_sql,
                                [*type_args, *date_args], rids)
                if split is None or len(found) >= k:
                    return found


def _ranked(conn: Any, exprs: list[str], user_id: str, k: int, now: int, filter_sql: str,
            filter_args: list[Any], rids: tuple[int, int] | None = None
            ) -> list[tuple[str, float]]:
    """The best ``k`` live rows of ``user_id`` among the union of the FTS5 ``exprs``
    (disjoint row sets), with the ``filter_sql`` on ``memories m`` and, when given, FTS
    rowids inside ``rids`` (inclusive; FTS5 seeks its doclists there): ``[(id, -bm25)]``."""
    scored = _SCORED + (" AND rowid BETWEEN ? AND ?" if rids else "")
    scored = " UNION ALL ".join([scored] * len(exprs))
    args = [a for e in exprs for a in (CONTEXT_WEIGHT, e, *(rids or ()))]
    if not filter_sql:
        pool = 2 * k + 16
        found = conn.execute(
            f"SELECT m.id, -f.score, m.expires_at, m.status FROM ({scored} "
            "ORDER BY score, rowid DESC LIMIT ?) f "
            "CROSS JOIN memories m ON m.rid = f.rowid WHERE +m.user_id = ? "
            "ORDER BY f.score, f.rowid DESC", (*args, pool, user_id)).fetchall()
        alive = [(mid, float(score)) for mid, score, exp, status in found
                 if status == "current" and (exp is None or exp > now)]
        if len(alive) >= k or len(found) < pool:
            return alive[:k]
    found = conn.execute(
        f"SELECT m.id, -f.score FROM ({scored}) f CROSS JOIN memories m ON m.rid = f.rowid "
        f"WHERE +m.user_id = ? AND {live('m')}{filter_sql} ORDER BY f.score, m.rid DESC "
        "LIMIT ?", (*args, user_id, now, *filter_args, k)).fetchall()
    return [(mid, float(score)) for mid, score in found]


def _rare_first(conn: Any, terms: list[str]) -> Iterator[tuple[list[str], list[str]]]:
    """``(rare, common)`` splits of the query ``terms`` (both non-empty, query order),
    rare terms growing from one split to the next; none when the whole query should be
    ranked at once.

    First a term is common when more than ``cap = max(COMMON_TERM_SHARE × rows,
    COMMON_TERM_MIN_ROWS)`` of all full-text rows (every user's, like BM25's IDF)
    contain it in ``body`` or ``context``, rare when it occurs in fewer; terms found
    nowhere add nothing to BM25 and are left out. Each next split multiplies ``cap`` by
    :data:`COMMON_TERM_WIDEN` (the caller asks for it when the rare rows were too few),
    until no term is common or ``cap`` reaches the row count. Cost: one count of all
    rows (SQLite counts the pages of ``memories_fts_docsize``) and, per split, one count
    per common term stopped at ``cap`` (~0.1 µs per row).
    """
    if len(terms) < 2:
        return
    total = conn.execute("SELECT count(*) FROM memories_fts_docsize").fetchone()[0]
    cap = max(int(COMMON_TERM_SHARE * total), COMMON_TERM_MIN_ROWS)
    rare: set[str] = set()
    common = list(terms)
    while cap < total:
        args: list[Any] = []
        for term in common:
            args += [f"{{body context}} : {quote_term(term)}", cap + 1]
        counts = conn.execute("SELECT " + ", ".join([_DF] * len(common)), args).fetchone()
        more = {t for t, n in zip(common, counts) if 0 < n <= cap}
        common = [t for t, n in zip(common, counts) if n > cap]
        if not common:
            return
        if more:
            rare |= more
            yield [t for t in terms if t in rare], common
        cap = int(cap * COMMON_TERM_WIDEN)
