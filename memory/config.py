"""Configuration from the environment and ``.env`` (pydantic-settings + python-dotenv).

Every variable is documented in ``.env.example``. ``load_config()`` turns a validation
failure into a ``ConfigError`` whose one-line message names the variable.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(ValueError):
    """Invalid configuration; the message is one line naming the variable."""


class Config(BaseSettings):
    """Effective settings of Memory Chat. Field names map to upper-case env variables."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore", case_sensitive=False)

    # storage
    memory_data_dir: Path = Field(default=Path("./data"))
    memory_store: Literal["auto", "sqlite", "tidb"] = "auto"
    tidb_host: str | None = None
    tidb_port: int = 4000
    tidb_username: str | None = None
    tidb_password: str | None = None
    tidb_database: str = "memory_chat"
    database_url: str | None = None
    tidb_ssl_ca: str | None = None
    # TiDB: create the HNSW vector index (needs a TiFlash/columnar replica; see docs/tidb.md)
    tidb_vector_index: bool = False
    # TiDB: a cluster without full-text search is an error at open() instead of a note
    # (for tests against a real cluster, where a skip would hide the gap)
    tidb_require_fulltext: bool = False

    # chat LLM (any OpenAI-compatible endpoint); empty key+base URL -> local llama.cpp
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    llm_model: str | None = None
    llm_timeout: float = Field(default=120.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_temperature: float = Field(default=0.3, ge=0, le=2)
    #: longest chat reply in tokens: a small model that loops stops within ~2 minutes
    #: on 2 cores instead of filling the whole context
    llm_reply_max_tokens: int = Field(default=1024, ge=16)
    vision_model: str | None = None
    # speech-to-text model on the same endpoint (POST /audio/transcriptions) for audio resources
    transcription_model: str | None = None
    # how complete_json asks for JSON: auto picks per endpoint (see memory/llm/client.py)
    llm_json_mode: Literal["auto", "json_schema", "json_object", "none"] = "auto"

    # local llama.cpp server (the offline default)
    local_llm_model: Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"] = "qwen2.5-coder-1.5b"
    local_llm_host: str = "127.0.0.1"
    local_llm_port: int = Field(default=8766, ge=1, le=65535)
    local_llm_threads: int = Field(default=2, ge=1)
    local_llm_ctx: int = Field(default=4096, ge=512)
    #: a second llama.cpp process for memory work (extraction, reconciliation, summaries),
    #: paused while a reply streams so the reply never waits for it (issue 23)
    local_llm_memory_server: bool = True
    #: its port; 0 = LOCAL_LLM_PORT + 1
    local_llm_memory_port: int = Field(default=0, ge=0, le=65535)
    #: which of the two local servers a Config addresses (set by memory.llm.local_server)
    local_llm_role: Literal["chat", "memory"] = "chat"
    # where the model parts (PyPI chunk packages) are joined into one .gguf file
    memory_model_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "memory-chat" / "models")

    # embeddings
    embedder: Literal["use-multilingual", "e5-small", "minilm", "openai"] = "use-multilingual"
    embedding_model: str | None = None
    embedding_base_url: str | None = None
    embedding_api_key: str | None = None
    embedding_dim: int | None = Field(default=None, gt=0)

    # memory behaviour
    memory_search_limit: int = Field(default=8, ge=1, le=100)
    memory_max_message_chars: int = Field(default=20000, ge=100)
    memory_history_turns: int = Field(default=12, ge=2)
    # hours a memory the user asked to forget in chat stays restorable by undo before it
    # is erased for good (memory/write/retention.py); 0 erases it at the next write
    memory_forget_retention_hours: float = Field(default=24, ge=0, le=24 * 365)
    # privacy: True keeps chat messages unredacted (memories, titles, metadata, tags and
    # history are redacted regardless); see memory/safety/sanitize.py
    memory_keep_raw_transcripts: bool = False
    # the web app asks for the user's API key (memory/api/keys.py) before showing anything;
    # off = local single-machine mode, which says it is unauthenticated (webui/login.py)
    memory_web_login: bool = False
    # largest accepted resource upload (documents, images, audio), in MiB
    memory_max_upload_mb: float = Field(default=20, gt=0, le=1024)

    # HTTP API (docs/api.md): the admin bearer key (None: admin API off, loopback only;
    # a weak key is refused, see _strong_admin_key) and the JSON body limit in bytes
    memory_admin_key: str | None = None
    memory_api_max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)

    @field_validator("openai_base_url", "embedding_base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("openai_api_key", "llm_model", "vision_model", "transcription_model", "tidb_host",
                     "database_url", "embedding_model", "embedding_api_key",
                     "tidb_username", "tidb_password", "tidb_ssl_ca")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("memory_admin_key")
    @classmethod
    def _strong_admin_key(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if not value:
            return None
        problem = admin_key_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    # ---- derived --------------------------------------------------------------------
    @property
    def uses_local_llm(self) -> bool:
        """True when no endpoint is configured: the local llama.cpp server is used."""
        return not self.openai_base_url and not self.openai_api_key

    @property
    def store_kind(self) -> str:
        """``sqlite`` or ``tidb``: ``auto`` picks TiDB when TiDB settings are present."""
        if self.memory_store != "auto":
            return self.memory_store
        return "tidb" if (self.tidb_host or self.database_url) else "sqlite"

    @property
    def sqlite_path(self) -> Path:
        """Path of the embedded store's database file."""
        return Path(self.memory_data_dir) / "memory.db"

    def masked(self) -> dict[str, object]:
        """Return the effective settings with secrets replaced by ``***`` (for display)."""
        out: dict[str, object] = {}
        for key, value in self.model_dump().items():
            if value and any(s in key for s in ("key", "password")):
                value = "***"
            elif key == "database_url" and value:
                value = _mask_url(str(value))
            out[key.upper()] = str(value) if isinstance(value, Path) else value
        return out


#: an admin key must be at least this long and zxcvbn must estimate at least 10**this
#: guesses for it (a random 16-character hex key: 10**12 to 10**16)
ADMIN_KEY_MIN_CHARS = 16
ADMIN_KEY_MIN_GUESSES_LOG10 = 11


def admin_key_problem(key: str) -> str | None:
    """Why ``key`` is too weak for ``MEMORY_ADMIN_KEY`` (one line), or None when it is
    acceptable: at least :data:`ADMIN_KEY_MIN_CHARS` characters and, by the zxcvbn
    estimator (repeats, sequences, keyboard patterns, dictionary words), at least
    ``10**ADMIN_KEY_MIN_GUESSES_LOG10`` guesses. ``16 × "a"``, ``"0123456789abcdef"``
    and ``"passwordpassword"`` are refused; ``openssl rand -hex 24`` passes."""
    fix = "use a random key, e.g. openssl rand -hex 24"
    if len(key) < ADMIN_KEY_MIN_CHARS:
        return f"too short ({len(key)} characters; at least {ADMIN_KEY_MIN_CHARS}): {fix}"
    from zxcvbn import zxcvbn

    guesses = zxcvbn(key[:100])["guesses_log10"]  # a strong prefix is enough; bounded cost
    if guesses < ADMIN_KEY_MIN_GUESSES_LOG10:
        return (f"too easy to guess (repeated characters, a sequence or common words: "
                f"about 10^{guesses:.0f} guesses): {fix}")
    return None


def _mask_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def load_config(env_file: str | Path | None = ".env", **overrides: object) -> Config:
    """Build the Config from the environment, ``env_file`` (skipped if absent) and
    keyword ``overrides`` (field names, highest priority).

    Raises ConfigError with one line such as ``LLM_TIMEOUT: Input should be greater
    than 0`` naming the first invalid variable.
    """
    try:
        return Config(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]).upper() if err.get("loc") else "config"
        message = str(err["msg"]).removeprefix("Value error, ")  # pydantic's prefix for ours
        raise ConfigError(f"{name}: {message}") from None
