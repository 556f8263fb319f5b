"""Store maintenance: re-embedding every memory after the embedder changed.

A store records the embedder id and dimension it was built with; opening it with another
embedder raises ``EmbedderMismatchError`` rather than mixing incomparable vectors
("silent garbage"). ``reembed`` is the fix: it rebuilds the vector index with the
configured embedder, keeping every memory, its history and its full-text row.
"""
from __future__ import annotations

from tqdm import tqdm

from memory.config import Config
from memory.store.base import EmbedderMismatchError, Store

BATCH = 256


def _unchecked_store(config: Config) -> Store:
    if config.store_kind == "tidb":
        from memory.store.tidb import TiDBStore
        return TiDBStore.from_config(config)
    from memory.store.sqlite import SQLiteStore
    return SQLiteStore(config.sqlite_path)


def reembed(config: Config, progress: bool = True, embedder=None) -> dict:
    """Re-embed all memories of all users with the embedder ``config`` selects (or the
    given ``embedder``). Returns ``{"embedder": id, "dim": n, "users": n, "memories": n}``.
    Raises StoreError when the store cannot be written; on interruption, run it again
    (vectors of memories not yet re-embedded are simply missing until then)."""
    from memory.embed.embedder import make_embedder
    from memory.store import open_store

    emb = embedder or make_embedder(config)
    try:
        store = open_store(config, emb.id, emb.dim)
    except EmbedderMismatchError:
        store = _unchecked_store(config)
    try:
        store.reset_vector_index(emb.id, emb.dim)
        users = store.user_ids()
        total = 0
        bar = tqdm(desc="re-embedding", unit="mem", disable=not progress)
        for uid in users:
            for batch in store.iter_memories(uid, batch=BATCH, with_embedding=False):
                vecs = emb.embed_documents([r.text for r in batch])
                store.set_embeddings(uid, [(r.id, v.tolist()) for r, v in zip(batch, vecs)])
                total += len(batch)
                bar.update(len(batch))
        bar.close()
        return {"embedder": emb.id, "dim": emb.dim, "users": len(users), "memories": total}
    finally:
        store.close()
