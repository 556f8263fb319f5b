"""Stores: where memories, history, profiles and threads live.

``open_store(config, embedder_id, dim)`` picks the implementation from
``config.store_kind`` (``sqlite``: the embedded default; ``tidb``: pytidb, imported only
when used) and opens it for the given embedder.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from memory.store.base import EmbedderMismatchError, Store, StoreError

if TYPE_CHECKING:
    from memory.config import Config

__all__ = ["Store", "StoreError", "EmbedderMismatchError", "create_store", "open_store"]


def create_store(config: "Config") -> Store:
    """Create the configured store without ``open()``-ing it for an embedder (the SQLite
    store applies its pending migrations on creation; the TiDB store connects lazily).
    Used by ``open_store`` and by ``main.py migrate --status``. Raises StoreError (cannot
    create the data directory / open the file) or ValueError for an unknown store kind."""
    kind = config.store_kind
    if kind == "sqlite":
        from memory.store.sqlite import SQLiteStore

        path = config.sqlite_path
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: 0700
        except OSError as exc:
            raise StoreError(f"cannot create the data directory {path.parent}: "
                             f"{exc.strerror or exc}") from None
        return SQLiteStore(path)
    if kind == "tidb":
        from memory.store.tidb import TiDBStore

        return TiDBStore.from_config(config)
    raise ValueError(f"unknown store kind {kind!r} (MEMORY_STORE must be sqlite or tidb)")


def open_store(config: "Config", embedder_id: str, dim: int) -> Store:
    """Create the configured store and ``open(embedder_id, dim)`` it.

    ``config.store_kind == "sqlite"`` → ``SQLiteStore(config.sqlite_path)`` (the data
    directory is created); ``"tidb"`` → ``TiDBStore.from_config(config)``. Returns the
    opened store. Raises StoreError (cannot open / sqlite-vec missing / TiDB unreachable),
    EmbedderMismatchError (stored vectors come from another embedder: run
    ``python main.py reembed``) or ValueError for an unknown store kind. On a failed
    ``open`` the store is closed before the error propagates.
    """
    store = create_store(config)
    try:
        store.open(embedder_id, dim)
    except BaseException:
        store.close()
        raise
    return store
