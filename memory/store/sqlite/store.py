"""``SQLiteStore``: the embedded store assembled from its parts, with its lifecycle (migrate, open, meta, health)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from memory.llm.errors import one_line
from memory.store import common
from memory.store.base import require_text as _text
from memory.store.migrations import MigrationStatus
from memory.store.sqlite import migrations
from memory.store.sqlite.admin import Admin
from memory.store.sqlite.resources import Resources
from memory.store.sqlite.schema import create_vec_table, get_meta, set_meta, vec_table_dim
from memory.store.sqlite.search import Search
from memory.store.sqlite.threads import Threads
from memory.store.sqlite.validity import Validity


class SQLiteStore(Admin, Search, Validity, Threads, Resources):
    """The embedded store: ``SQLiteStore(path)`` opens/creates the SQLite file ``path``
    (its directory created 0700, the file 0600) and applies pending migrations.

    ``busy_timeout_ms``: how long a write waits for another writer's lock before raising
    ``StoreError("database is locked …")``. ``vec_chunk_size``: vectors per sqlite-vec
    chunk (a multiple of 8). Every user owns at least one chunk of
    ``vec_chunk_size * dim * 4`` bytes, so the default 256 keeps a one-memory user at
    0.5 MB with 512-dim vectors while a 100k-memory user still scans few, large chunks
    (measured: KNN CPU time is the same for chunk sizes 64…1024). ``mmap_bytes``: SQLite
    ``mmap_size`` (address space only; 0 disables memory-mapped reads).

    Raises StoreError if sqlite-vec cannot be loaded, the file cannot be opened or was
    migrated by a newer version. ``open(embedder_id, dim)`` creates the vector index and
    must be called before writing or searching memories.
    """

    name = "sqlite"

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 5000,
                 vec_chunk_size: int = 256, mmap_bytes: int = 1 << 30) -> None:
        super().__init__(path, busy_timeout_ms=busy_timeout_ms, vec_chunk_size=vec_chunk_size,
                         mmap_bytes=mmap_bytes)
        self.migrate()

    def migrate(self) -> list[str]:
        """Apply pending named migrations (``migrations.py``), each in its own
        transaction; return their ids ([] when up to date). Raises StoreError."""
        return migrations.run(self._write)

    def migration_status(self) -> list[MigrationStatus]:
        """Every migration this code knows, with ``applied_at`` or None (pending)."""
        with self._read() as conn:
            return migrations.report(conn)

    def open(self, embedder_id: str, dim: int) -> None:
        """Apply pending migrations, create the vector index if needed and check the
        recorded embedder (:func:`memory.store.common.embedder_policy`).

        Raises EmbedderMismatchError when memories exist that were embedded by another
        embedder id or dimension; with no memories the vector index is silently rebuilt
        for ``dim``. Raises ValueError for an empty id or a dim < 1.
        """
        embedder_id, dim = common.check_embedder(embedder_id, dim)
        self.migrate()
        with self._write() as conn:
            has_memories = conn.execute("SELECT EXISTS(SELECT 1 FROM memories)").fetchone()[0]
            stored_id, table_dim = get_meta(conn, "embedder_id"), vec_table_dim(conn)
            if common.embedder_policy(str(self.path), stored_id, table_dim, embedder_id, dim,
                                      bool(has_memories)):
                create_vec_table(conn, dim, self.vec_chunk_size)
            set_meta(conn, "embedder_id", embedder_id)
            set_meta(conn, "dim", str(dim))
        self._dim = dim
        self._matrices.clear()

    def get_meta(self, key: str) -> str | None:
        """Return a store-wide setting or None."""
        with self._read() as conn:
            return get_meta(conn, key)

    def set_meta(self, key: str, value: str) -> None:
        """Set a store-wide setting (both strings)."""
        with self._write() as conn:
            set_meta(conn, _text(key, "key"), _text(value, "value"))

    def health(self) -> dict[str, Any]:
        """Return ``{"ok", "detail", "path", "sqlite_version", "memories"}``; never raises."""
        try:
            with self._read() as conn:
                count = conn.execute("SELECT COUNT(*) FROM memories").fetchone()[0]
                version = conn.execute("SELECT sqlite_version() || ' / sqlite-vec ' "
                                       "|| vec_version()").fetchone()[0]
            return {"ok": True, "detail": f"sqlite {self.path}", "path": str(self.path),
                    "sqlite_version": version, "memories": count}
        except Exception as exc:  # noqa: BLE001 - health must not raise
            return {"ok": False, "detail": f"sqlite: {one_line(exc)}", "path": str(self.path)}
