"""Fixtures of the reliability suite (helpers are in helpers.py)."""
from __future__ import annotations

import pytest

from tests.fake_llm import ScriptedLLM
from tests.reliability.helpers import default_brain


@pytest.fixture(scope="module")
def llm():
    """A ScriptedLLM for the whole module (chat and /v1/embeddings)."""
    with ScriptedLLM(default_brain) as server:
        yield server
