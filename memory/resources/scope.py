"""Search scopes: everything, the chat's memories only, or one resource's memories (``"all"``, ``"chat"``, ``"resource:<id>"``).

A memory is in a resource's scope when the file supports it (``memory.write.provenance``:
learned from it, ``metadata["resource_id"]``, or also said by it, ``also_from``), and in
the chat scope when something other than a file supports it (learned in chat, added by
hand or imported, or a file's fact a chat message repeated). The stores' searches filter by user, type and date inside
their queries; the scope is applied to the ranked hits, so :func:`scoped_search` asks
for more hits until it has ``limit`` in scope or the user has no more.
"""
from __future__ import annotations

from typing import Callable

from memory.write import provenance
from memory.types import MemoryRecord, SearchResult

SCOPES = ("all", "chat", "resource:<id>")
#: ``scoped_search`` widens the search by this factor per round (at most 1,000 hits,
#: ``Memory.search``'s limit).
WIDEN = 4


def parse_scope(scope: str | None) -> tuple[str, str | None]:
    """``"all"``/None → ``("all", None)``, ``"chat"`` → ``("chat", None)``,
    ``"resource:<id>"`` → ``("resource", id)``. Raises ValueError for anything else."""
    s = (scope or "all").strip()
    if s in ("all", "chat"):
        return s, None
    if s.startswith("resource:") and s[len("resource:"):].strip():
        return "resource", s[len("resource:"):].strip()
    raise ValueError(f"unknown search scope {scope!r}; use all, chat or resource:<id>")


def scope_filter(scope: str | None) -> Callable[[MemoryRecord], bool] | None:
    """A predicate on MemoryRecord for ``scope`` (see :func:`parse_scope`), or None for
    ``"all"`` (no filtering). Raises ValueError for an unknown scope."""
    kind, rid = parse_scope(scope)
    if kind == "all":
        return None
    if kind == "chat":
        return lambda rec: any(not k.startswith("resource:") for k in provenance.sources(rec))
    key = provenance.resource_key(rid)
    return lambda rec: key in provenance.sources(rec)


def scoped_search(memory, query: str, user_id: str, limit: int = 10, scope: str | None = "all",
                  **kwargs) -> SearchResult:
    """``memory.search(query, user_id, limit, **kwargs)`` limited to ``scope``.

    For ``"all"`` it is exactly ``memory.search``. Otherwise it searches ``WIDEN``
    times deeper per round (up to 1,000 hits) until ``limit`` hits are in scope or the
    user has no more, and returns those (ranked as the full search ranked them) with
    the profile. Raises ValueError for an unknown scope, an empty query or a bad limit.
    """
    keep = scope_filter(scope)
    if keep is None:
        return memory.search(query, user_id, limit=limit, **kwargs)
    if not 1 <= int(limit) <= 1000:
        raise ValueError("limit must be between 1 and 1000")
    depth = min(1000, int(limit) * WIDEN)
    while True:
        res = memory.search(query, user_id, limit=depth, **kwargs)
        hits = [h for h in res.memories if keep(h.record)]
        if len(hits) >= limit or len(res.memories) < depth or depth >= 1000:
            return SearchResult(hits[:limit], res.profile)
        depth = min(1000, depth * WIDEN)
