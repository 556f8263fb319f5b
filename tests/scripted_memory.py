"""A Memory on a real SQLite file and the real embedder whose extraction answers are
scripted by message phrase: what the write-path tests through ``Memory.add`` share."""
from __future__ import annotations

import re
from typing import Any, Callable

from memory import Memory
from tests.fake_llm import ScriptedLLM, last_user_text, scripted_config, system_text


def facts_brain(facts: dict[str, list[dict[str, Any]]]) -> Callable[[dict[str, Any]], Any]:
    """A responder: an extraction request whose message contains a key of ``facts``
    (looked up when the request arrives, first key wins) gets ``{"memories": facts[key]}``,
    other extraction requests ``{"memories": []}``, a confirmation of endings
    (``memory.write.confirm``) "ended" for every memory asked about, any other call "Noted."."""
    def brain(req: dict[str, Any]) -> Any:
        if "You check a user's memory list" in system_text(req):  # memory.write.confirm: agree
            n = len(re.findall(r"^MEMORY \d+:", last_user_text(req), re.M))
            return {str(i): "ended" for i in range(1, n + 1)}
        if "You extract memories" in system_text(req):
            said = last_user_text(req).split("User: ")[-1]
            for key, found in facts.items():
                if key in said:
                    return {"memories": found}
            return {"memories": []}
        return "Noted."
    return brain


def scripted_memory(tmp_path, facts: dict[str, list[dict[str, Any]]]):
    """Yield a ``Memory`` in ``tmp_path`` answered by ``facts_brain(facts)``; the server
    is ``mem.llm_server`` (its ``requests`` are recorded). Use from a fixture with
    ``yield from``."""
    with ScriptedLLM(facts_brain(facts)) as llm:
        m = Memory(scripted_config(tmp_path, llm))
        m.llm_server = llm
        yield m
        m.close()


def texts(mem, user: str) -> list[str]:
    """The texts of ``user``'s active memories, sorted."""
    return sorted(r.text for r in mem.list(user))
