"""TiDB search indexes: TiFlash detection, the opt-in HNSW index, the FULLTEXT index (TiDB Cloud Starter/Essential only), its columnar replica and the full-text probe (re-run while it is off)."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import sqlalchemy as sa
from pytidb.orm.tiflash_replica import TiFlashReplica
from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_fixed

from memory.llm.errors import one_line
from memory.store.base import StoreError
from memory.store.tidb.retry import error_code
from memory.store.tidb.schema import fulltext_index_ddl
from memory.store.tidb.settings import is_tidb_cloud_host
from memory.types import utcnow

log = logging.getLogger(__name__)

#: Shown by ``health()`` when the cluster cannot run full-text search.
NO_FULLTEXT_NOTE = "full-text search not supported by this cluster: vector search only"
#: Why no FULLTEXT index is created on other deployments (TiDB docs: Full-Text Search,
#: Prerequisites: "only available on TiDB Cloud Starter and Essential", some regions).
NOT_OFFERED = ("full-text search is offered only on TiDB Cloud Starter/Essential "
               "(*.tidbcloud.com); no index created")
#: While full-text search is off, ``text_search`` probes again at most this often
#: (seconds): TiDB Cloud builds the columnar replica a FULLTEXT index needs on demand,
#: so the first probe after creating the index can fail and a later one succeed.
FULLTEXT_REPROBE_SECONDS = 300.0
#: ``open`` waits at most this long (seconds) for the table's columnar (TiFlash) replica
#: to become available before the first full-text probe. A small table replicates in
#: seconds; a large one can take longer, and the re-probe picks it up later. The wait
#: happens only at ``open`` (never inside a search) and only while
#: ``information_schema.tiflash_replica`` lists a replica that is not available yet.
FULLTEXT_REPLICA_WAIT_SECONDS = 60.0
#: Poll interval (seconds) of that wait.
FULLTEXT_REPLICA_POLL_SECONDS = 2.0
#: MySQL/TiDB "Duplicate key name": the index exists (another process created it).
ER_DUP_KEYNAME = 1061


@dataclass
class Features:
    """What this cluster offers: ``serverless`` (TiDB Cloud Starter/Essential),
    ``tiflash`` (columnar replicas possible), ``vector_index`` (the HNSW index exists),
    ``fulltext`` (``FTS_MATCH_WORD`` runs), ``fulltext_error`` (why not, one line),
    ``notes`` (one line per missing feature) and ``fulltext_checked_at``
    (``time.monotonic()`` of the last full-text probe)."""

    serverless: bool = False
    tiflash: bool = False
    vector_index: bool = False
    fulltext: bool = False
    fulltext_error: str | None = None
    notes: list[str] = field(default_factory=list)
    fulltext_checked_at: float = float("-inf")


class SearchIndexesMixin:
    """Index management of ``TiDBStore``. Needs ``engine``, ``sql``, ``settings``,
    ``_client``, ``_tx``, ``_in_transaction`` and ``_features`` from the store.
    ``_clock`` (``time.monotonic``) and ``_sleep`` (``time.sleep``, used only by the
    replica wait) are replaceable in tests."""

    _clock = staticmethod(time.monotonic)
    _sleep: Callable[[float], None] = staticmethod(time.sleep)

    def _detect_features(self) -> Features:
        """Serverless (pytidb's Starter host pattern or ``*.tidbcloud.com``) and
        TiFlash present (``information_schema.cluster_info``; TiDB Cloud Starter adds
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
        """Create the opt-in HNSW ``index`` via pytidb's ``VectorIndex.create`` (which
        adds the TiFlash replica it needs, or ``ADD_COLUMNAR_REPLICA_ON_DEMAND`` on TiDB
        Cloud). Returns None when the index exists afterwards (error 1061 "Duplicate key
        name" included: another process created it meanwhile), else the one-line
        reason."""
        if self._index_exists(index.name):
            return None
        try:
            index.create(self.engine)
            return None
        except sa.exc.SQLAlchemyError as exc:
            return None if error_code(exc) == ER_DUP_KEYNAME else one_line(exc)

    def _create_fulltext_index(self) -> str | None:
        """Run ``schema.fulltext_index_ddl`` (``… ADD_COLUMNAR_REPLICA_ON_DEMAND``, no
        ``SET TIFLASH REPLICA``). None when created or already there (1061), else the
        one-line reason."""
        try:
            self._tx("create full-text index",
                     lambda c: c.execute(fulltext_index_ddl(self.sql.s)))
            return None
        except StoreError as exc:
            cause = exc.__cause__
            if cause is not None and error_code(cause) == ER_DUP_KEYNAME:
                return None
            return str(exc)

    def _ensure_search_indexes(self, wait: bool = True) -> None:
        """Create the HNSW index when ``TIDB_VECTOR_INDEX=1`` and TiFlash exists (an
        index created earlier is kept and reported either way), then set up full-text
        search (``_ensure_fulltext``). Fills ``_features`` (notes name what is missing)."""
        f, s = self._features, self.sql.s
        f.notes = []
        if self.settings.vector_index:
            err = (self._create_index(s.vector_index) if f.tiflash
                   else "no TiFlash in this cluster")
            if err:
                f.notes.append(f"no HNSW vector index ({err}): exact vector search per user")
        f.vector_index = self._index_exists(s.vector_index.name)
        self._ensure_fulltext(wait=wait)

    def _fulltext_problem(self, wait: bool) -> str | None:
        """Why full-text search cannot run now, or None when the probe query ran.

        An existing FULLTEXT index is probed wherever it is. A missing one is created
        only on TiDB Cloud Starter/Essential; elsewhere nothing is run (no DDL, no
        columnar replica). Before the probe, while the table's columnar replica is
        listed but not available, ``open`` waits for it (``wait``)."""
        name = self.sql.s.fulltext_index.name
        if not self._index_exists(name):
            if not self._features.serverless:
                return NOT_OFFERED
            err = self._create_fulltext_index()
            if err:
                return err
        return self._replica_not_ready(wait) or self._probe_fulltext()

    def _ensure_fulltext(self, wait: bool = False) -> None:
        """Set ``_features.fulltext``, ``fulltext_error``, the note and the probe time
        from ``_fulltext_problem``. Self-managed TiDB parses FULLTEXT DDL without serving
        it, so an index alone proves nothing: only the probe does."""
        f = self._features
        err = self._fulltext_problem(wait)
        f.fulltext, f.fulltext_error = err is None, err
        f.fulltext_checked_at = self._clock()
        if NO_FULLTEXT_NOTE in f.notes:
            f.notes.remove(NO_FULLTEXT_NOTE)
        if err:
            log.info("TiDB full-text search unavailable: %s", err)
            f.notes.append(NO_FULLTEXT_NOTE)

    def _require_fulltext(self) -> None:
        """With ``TIDB_REQUIRE_FULLTEXT=1``, raise StoreError when full-text search is
        off (``open`` calls it last): tests against a real cluster then fail where they
        would skip."""
        f = self._features
        if self.settings.require_fulltext and not f.fulltext:
            raise StoreError(f"TiDB full-text search is required (TIDB_REQUIRE_FULLTEXT=1) "
                             f"but unavailable: {f.fulltext_error}")

    def _replica_progress(self) -> dict[str, Any]:
        """pytidb's ``TiFlashReplica.get_replication_progress`` of the memories table
        (``information_schema.tiflash_replica``: replica_count, available, progress);
        ``replica_count`` 0 when it cannot be read."""
        table = self.sql.s.memories
        try:
            with self.engine.connect() as conn:
                return TiFlashReplica(table).get_replication_progress(conn)
        except sa.exc.SQLAlchemyError as exc:
            log.info("TiDB columnar replica status unreadable: %s", one_line(exc))
            return {"replica_count": 0, "available": False, "progress": 0.0}

    def _replica_not_ready(self, wait: bool) -> str | None:
        """None when no columnar replica is listed or it is available; else (after
        polling up to ``FULLTEXT_REPLICA_WAIT_SECONDS`` every
        ``FULLTEXT_REPLICA_POLL_SECONDS`` when ``wait``) the one-line reason."""
        def pending(p: dict[str, Any]) -> bool:
            return p["replica_count"] > 0 and not p["available"]

        if wait:
            polls = math.ceil(FULLTEXT_REPLICA_WAIT_SECONDS / FULLTEXT_REPLICA_POLL_SECONDS)
            poll = Retrying(retry=retry_if_result(pending), stop=stop_after_attempt(polls),
                            wait=wait_fixed(FULLTEXT_REPLICA_POLL_SECONDS), sleep=self._sleep,
                            retry_error_callback=lambda state: state.outcome.result())
            progress = poll(self._replica_progress)
        else:
            progress = self._replica_progress()
        if not pending(progress):
            return None
        return (f"columnar replica not available yet ({float(progress['progress']):.0%} "
                "replicated); full-text search is probed again later")

    def _maybe_reprobe_fulltext(self) -> None:
        """Probe full-text support again when it is off, the store is open, no
        ``transaction()`` is active (index DDL would commit it) and the last probe is at
        least ``FULLTEXT_REPROBE_SECONDS`` old; no waiting for the replica here. Never
        raises: a failure keeps it off."""
        f = self._features
        if (f.fulltext or self._client is None or self._sql is None or self._in_transaction()
                or self._clock() - f.fulltext_checked_at < FULLTEXT_REPROBE_SECONDS):
            return
        try:
            self._ensure_fulltext(wait=False)
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
