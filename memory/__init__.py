"""Memory Chat's memory engine: per-user long-term memory for an LLM assistant.

Public API: ``Memory`` (see API.md), ``load_config``/``Config``/``ConfigError``, the
record types in ``memory.types``, and ``Changes`` (what ``Memory.add`` returns: the list
of ``Change`` with ``error``).
"""
from memory.config import Config, ConfigError, load_config
from memory.types import (Change, Changes, HistoryEvent, MemoryRecord, Message,
                          ScoredMemory, SearchResult, Thread)

__all__ = ["Memory", "ChatTurn", "Config", "ConfigError", "load_config", "Change", "Changes",
           "HistoryEvent", "MemoryRecord", "Message", "ScoredMemory", "SearchResult", "Thread"]


def __getattr__(name):  # lazy: importing memory.config must not load models or SQLite
    if name in ("Memory", "ChatTurn"):
        from memory import core
        return getattr(core, name)
    raise AttributeError(name)
