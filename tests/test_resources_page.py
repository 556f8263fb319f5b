"""The Files tab's upload limit (issue 24): the page promises exactly what Streamlit
accepts. .streamlit/config.toml's ``server.maxUploadSize`` matches the default of
``MEMORY_MAX_UPLOAD_MB``, and when the two differ the page shows and enforces the lower.
AppTest with the same real parts as tests/test_pages.py."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from streamlit import config as st_config

from memory.config import Config
from tests.app_helpers import no_exceptions
from tests.test_pages import MEMORIES, open_page

ROOT = Path(__file__).resolve().parent.parent


def test_streamlit_upload_limit_matches_memory_max_upload_mb():
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert server["maxUploadSize"] == Config.model_fields["memory_max_upload_mb"].default == 20


@pytest.mark.parametrize("env_mb,server_mb,shown", [("50", 20, "20"), ("5", 20, "5"), ("20", 20, "20")])
def test_files_tab_promises_what_streamlit_accepts(app_env, monkeypatch, env_mb, server_mb, shown):
    monkeypatch.setenv("MEMORY_MAX_UPLOAD_MB", env_mb)
    old = st_config.get_option("server.maxUploadSize")
    st_config.set_option("server.maxUploadSize", server_mb)
    try:
        at = open_page(MEMORIES, "alice")
        no_exceptions(at)
        assert at.file_uploader(key="resource_file").proto.max_upload_size_mb == int(shown)
        assert any(f"Up to {shown} MB;" in c.value for c in at.caption)
    finally:
        st_config.set_option("server.maxUploadSize", old)
