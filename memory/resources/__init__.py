"""Resources: files a user gives the assistant (documents, web pages, images, audio) turned into memories linked to them.

Public surface (each function takes the ``Memory`` first; ``Memory.add_resource`` & co.
are thin wrappers over them):

* ``add_resource(memory, source, user_id, filename=None, mime=None) -> Resource``
* ``resources(memory, user_id)``, ``resource(memory, user_id, id)``,
  ``resource_memories(memory, user_id, id)``, ``delete_resource(memory, user_id, id)``
* ``scope_filter(scope)`` / ``scoped_search(memory, query, user_id, limit, scope)``
  for ``search(..., scope="all" | "chat" | "resource:<id>")``

Modules: ``model`` (the Resource record, history naming the file), ``sniff`` (size
limit, type from content), ``extract`` (format → text blocks), ``archive`` (ZIP limits
enforced while inflating), ``chunking`` (chunks, relevance, batches), ``ingest`` (the
pipeline and the operations), ``lease`` (who is learning from a pending resource),
``scope`` (search scopes), ``cli`` (terminal commands).
"""
from memory.resources.model import SOURCE, STATUSES, Resource

__all__ = ["Resource", "STATUSES", "SOURCE", "add_resource", "resources", "resource",
           "resource_memories", "delete_resource", "scope_filter", "scoped_search",
           "parse_scope"]

_LAZY = {"add_resource": "ingest", "resources": "ingest", "resource": "ingest",
         "resource_memories": "ingest", "delete_resource": "ingest",
         "scope_filter": "scope", "scoped_search": "scope", "parse_scope": "scope"}


def __getattr__(name):  # lazy: the stores import the model without the pipeline
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"memory.resources.{_LAZY[name]}"), name)
    raise AttributeError(name)
