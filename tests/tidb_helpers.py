"""Shared helper of the offline TiDB store tests: a Config with the TiDB settings given
(everything else unset, no .env file read)."""
from __future__ import annotations

from memory.config import load_config


def cfg(**kw):
    """A ``memory.config.Config`` whose TiDB settings are the defaults below (no host,
    no URL, no CA, no user or password, port 4000, database memory_chat) updated by
    ``kw``; ``.env`` is not read. Raises ConfigError for invalid values."""
    base = dict(tidb_host=None, database_url=None, tidb_ssl_ca=None, tidb_username=None,
                tidb_password=None, tidb_port=4000, tidb_database="memory_chat")
    base.update(kw)
    return load_config(env_file=None, **base)
