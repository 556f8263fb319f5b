"""TiDB search indexes: TiFlash detection, the opt-in HNSW index, the FULLTEXT index and the full-text probe (re-run while it is off)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from memory.errors import one_line
from memory.store.tidb.retry import error_code
from memory.store.tidb.settings import is_tidb_cloud_host
from memory.types import utcnow

log = logging.getLogger(__name__)

#: Shown by ``health()`` when the cluster cannot run full-text search.
NO_FULLTEXT_NOTE = "full-text search not supported by this cluster: vector search only"
#: While full-text search is off, ``text_search`` probes again at most this often
#: (seconds): TiDB Cloud builds the columnar replica a FULLTEXT index needs on demand,
#: so the first probe after creating the index can fail and a later one succeed.
FULLTEXT_REPROBE_SECONDS = 300.0
#: MySQL/TiDB "Duplicate key name": the index exists (another process created it).
ER_DUP_KEYNAME = 1061


@dataclass
class Features:
    """What this cluster offers: ``serverless`` (TiDB Cloud Starter/Essential),
    ``tiflash`` (columnar replicas possible), ``vector_index`` (the HNSW index exists),
    ``fulltext`` (``FTS_MATCH_WORD`` runs), ``notes`` (one line per missing feature) and
    ``fulltext_checked_at`` (``time.monotonic()`` of the last full-text probe)."""

    serverless: bool = False
    tiflash: bool = False
    vector_index: bool = False
    fulltext: bool = False
    notes: list[str] = field(default_factory=list)
    fulltext_checked_at: float = float("-inf")


class SearchIndexesMixin:
    """Index management of ``TiDBStore``. Needs ``engine``, ``sql``, ``settings``,
    ``_client``, ``_tx``, ``_in_transaction`` and ``_features`` from the store.
    ``_clock`` (``time.monotonic``) is replaceable in tests."""

    _clock = staticmethod(time.monotonic)

    def _detect_features(self) -> Features:
        """TiFlash present (``information_schema.cluster_info``; TiDB Cloud Starter adds
        columnar replicas on demand, so it counts as present)."""
        f = Features(serverless=bool(self._client and self._client.is_serverless)
                     or is_tidb_cloud_host(self.settings.url.host))
        try:
            with self.engine.connect() as conn:
                n = conn.execute(sa.text("SELECT COUNT(*) FROM information_schema.cluster_info "
                                         "WHERE type = 'tiflash'")).scalar()
            f.tiflash = bool(n) or f.serverless
        except sa.exc.SQLAlchemyError:
            f.tiflash = f.serverless
        return f

    def _index_exists(self, name: str) -> bool:
        """Whether the memories table has an index called ``name``."""
        return bool(self._tx("read schema", lambda c: c.execute(sa.text(
            "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE()"
            " AND table_name = :t AND index_name = :i"),
            {"t": self.sql.s.memories.name, "i": name}).scalar()))

    def _create_index(self, index: Any) -> str | None:
        """Create ``index`` via pytidb (which adds the TiFlash replica it needs, or
        ``ADD_COLUMNAR_REPLICA_ON_DEMAND`` on TiDB Cloud). Returns None when the index
        exists afterwards (error 1061 "Duplicate key name" included: another process
        created it meanwhile), else the one-line reason."""
        if self._index_exists(index.name):
            return None
        try:
            index.create(self.engine)
            return None
        except sa.exc.SQLAlchemyError as exc:
            if error_code(exc) == ER_DUP_KEYNAME:
                return None
            return one_line(exc)

    def _ensure_search_indexes(self) -> None:
        """Create the HNSW index when ``TIDB_VECTOR_INDEX=1`` and TiFlash exists (an
        index created earlier is kept and reported either way), then the FULLTEXT index
        and its probe. Fills ``_features`` (notes name what is missing)."""
        f, s = self._features, self.sql.s
        f.notes = []
        if self.settings.vector_index:
            err = (self._create_index(s.vector_index) if f.tiflash
                   else "no TiFlash in this cluster")
            if err:
                f.notes.append(f"no HNSW vector index ({err}): exact vector search per user")
        f.vector_index = self._index_exists(s.vector_index.name)
        self._ensure_fulltext()

    def _ensure_fulltext(self) -> None:
        """Create the FULLTEXT index if missing and probe ``FTS_MATCH_WORD``; sets
        ``_features.fulltext``, the note and the probe time. Self-managed TiDB parses
        FULLTEXT DDL without serving it, so the index alone proves nothing."""
        f = self._features
        err = self._create_index(self.sql.s.fulltext_index) or self._probe_fulltext()
        f.fulltext = err is None
        f.fulltext_checked_at = self._clock()
        if NO_FULLTEXT_NOTE in f.notes:
            f.notes.remove(NO_FULLTEXT_NOTE)
        if err:
            log.info("TiDB full-text search unavailable: %s", err)
            f.notes.append(NO_FULLTEXT_NOTE)

    def _maybe_reprobe_fulltext(self) -> None:
        """Probe full-text support again when it is off, the store is open, no
        ``transaction()`` is active (index DDL would commit it) and the last probe is at
        least ``FULLTEXT_REPROBE_SECONDS`` old. Never raises: a failure keeps it off."""
        f = self._features
        if (f.fulltext or self._client is None or self._sql is None or self._in_transaction()
                or self._clock() - f.fulltext_checked_at < FULLTEXT_REPROBE_SECONDS):
            return
        try:
            self._ensure_fulltext()
        except Exception as exc:  # noqa: BLE001 - a probe must never break a search
            f.fulltext_checked_at = self._clock()
            log.info("TiDB full-text re-probe failed: %s", one_line(exc))

    def _probe_fulltext(self) -> str | None:
        """Run a full-text query for a user id that cannot exist (""); None if it runs,
        else the one-line error."""
        stmt = self.sql.text_search("", "probe", 1, utcnow())
        try:
            with self.engine.connect() as conn:
                conn.execute(stmt).fetchall()
            return None
        except sa.exc.SQLAlchemyError as exc:
            return one_line(exc)

    @property
    def fulltext_available(self) -> bool:
        """Whether ``text_search`` can run on this cluster (known after ``open``)."""
        return self._features.fulltext
