"""The TiDB store (TiDB Cloud Starter/Essential/Dedicated or self-managed v8.4+, via pytidb, SQLAlchemy and PyMySQL); see docs/tidb.md.

Modules, by concern (everything except the network round trip is checked offline by
``tests/test_tidb_sql.py``, which compiles the statements with the MySQL dialect, and by
``tests/test_tidb_connection.py`` and ``tests/test_tidb_errors.py``):

* ``settings``   ``TIDB_*`` / ``DATABASE_URL`` → URL + TLS arguments (TLS for every non-local host)
* ``schema``     tables (pytidb ``TableModel``), idempotent DDL, index names ≤ 64 characters
* ``migrations`` named, ordered migrations and the ``schema_migrations`` statements
* ``statements`` ``TiDBSQL``: every query/write; ``fulltext_terms`` for ``FTS_MATCH_WORD``
* ``rows``       the vector literal and result rows as dataclasses, over ``memory/store/common.py``
                 (validation, update preamble, embedder policy and mappers shared with SQLite)
* ``retry``      retryable TiDB error codes, one transaction with its COMMIT apart, the
                 tenacity retry, ``RetryableStoreError`` and each failure's one-line message
* ``indexes``    TiFlash detection, opt-in HNSW index, FULLTEXT index (TiDB Cloud only),
                 columnar-replica wait and probe
* ``store``      ``TiDBStore``: connection, ``transaction()``, open/migrate, health, admin
* ``memories`` / ``validity`` / ``threads`` / ``resources``  the store's memory, memory-validity
                 (supersede, end, forget, restore, purge, turns), conversation and
                 uploaded-file methods (mixins)

Embeddings are computed on the client by the product's own embedder; the store never
relies on TiDB Cloud's server-side ``EMBED_TEXT``.
"""
from __future__ import annotations

from memory.store.tidb.indexes import FULLTEXT_REPROBE_SECONDS, NO_FULLTEXT_NOTE
from memory.store.tidb.retry import (LOST_CONNECTION_CODES, RETRY_ATTEMPTS,
                                     RETRYABLE_ERROR_CODES, TOO_LARGE_ERROR_CODES,
                                     TRANSIENT_ERROR_CODES, RetryableStoreError, error_code,
                                     is_retryable, is_write_conflict, run_with_retry)
from memory.store.tidb.schema import TiDBSchema, UTCDateTime, build_schema, schema_ddl
from memory.store.tidb.settings import (ConnectionSettings, connection_settings,
                                        is_local_host, mask_url)
from memory.store.tidb.statements import TiDBSQL, fulltext_terms
from memory.store.tidb.store import TiDBStore

__all__ = [
    "TiDBStore", "TiDBSQL", "TiDBSchema", "UTCDateTime", "ConnectionSettings",
    "build_schema", "schema_ddl", "connection_settings", "is_local_host", "mask_url",
    "fulltext_terms", "run_with_retry", "error_code", "is_write_conflict", "is_retryable",
    "RetryableStoreError", "RETRYABLE_ERROR_CODES", "TRANSIENT_ERROR_CODES",
    "LOST_CONNECTION_CODES", "TOO_LARGE_ERROR_CODES", "RETRY_ATTEMPTS", "NO_FULLTEXT_NOTE",
    "FULLTEXT_REPROBE_SECONDS",
]
