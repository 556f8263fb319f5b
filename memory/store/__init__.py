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

__all__ = ["Store", "StoreError", "EmbedderMismatchError", "open_store"]


def open_store(config: "Config", embedder_id: str, dim: int) -> Store:
    """Create the configured store and ``open(embedder_id, dim)`` it.

    ``config.store_kind == "sqlite"`` → ``SQLiteStore(config.sqlite_path)`` (the data
    directory is created); ``"tidb"`` → ``TiDBStore.from_config(config)``. Returns the
    opened store. Raises StoreError (cannot open / sqlite-vec missing / TiDB unreachable),
    EmbedderMismatchError (stored vectors come from another embedder: run
    ``python main.py reembed``) or ValueError for an unknown store kind. On a failed
    ``open`` the store is closed before the error propagates.
    """
    kind = config.store_kind
    if kind == "sqlite":
        from memory.store.sqlite import SQLiteStore

        path = config.sqlite_path
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: 0700
        except OSError as exc:
            raise StoreError(f"cannot create the data directory {path.parent}: "
                             f"{exc.strerror or exc}") from None
        store: Store = SQLiteStore(path)
    elif kind == "tidb":
        from memory.store.tidb import TiDBStore

        store = TiDBStore.from_config(config)
    else:
        raise ValueError(f"unknown store kind {kind!r} (MEMORY_STORE must be sqlite or tidb)")
    try:
        store.open(embedder_id, dim)
    except BaseException:
        store.close()
        raise
    return store
