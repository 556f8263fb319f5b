"""`main.py resources add` as a real subprocess (issue 24): a file that cannot be learned
from (corrupt, empty, a ZIP bomb) exits 2 like any bad input, the LLM down exits 1, and
pypdf's warnings about a damaged PDF do not reach stderr. The scripted OpenAI-compatible
server on 127.0.0.1 plays the LLM."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.resource_zip import lying_docx
from tests.fake_llm import HTTPError, ScriptedLLM, system_text
from tests.test_resources import pdf_bytes
from tests.test_resources_docs import garbled_pdf

ROOT = Path(__file__).resolve().parent.parent
DOWN = "the LLM is down for this file"


def brain(req):
    text = next(m["content"] for m in req["messages"] if m["role"] == "user")
    if "You extract memories" in system_text(req):
        if "nurse" not in text:
            return HTTPError(500, DOWN)
        return {"memories": [{"text": "Works as a nurse", "topic": "job"}]}
    return {"action": "ADD", "id": "none"}


@pytest.fixture(scope="module")
def llm():
    with ScriptedLLM(brain) as server:
        yield server


@pytest.fixture()
def add(tmp_path, llm):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "TIDB_", "MEMORY_", "LLM_", "DATABASE_"))}
    env.update(MEMORY_DATA_DIR=str(tmp_path / "data"), MEMORY_STORE="sqlite",
               OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="test", LLM_MODEL="scripted",
               LLM_MAX_RETRIES="0", LLM_TIMEOUT="10")

    def _add(name: str, data: bytes, *extra: str) -> subprocess.CompletedProcess:
        path = tmp_path / name
        path.write_bytes(data)
        return subprocess.run([sys.executable, "main.py", "resources", "add", str(path),
                               "--user", "anna", *extra], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=180)
    return _add


def test_bad_files_exit_2_and_pypdf_stays_quiet(add, tmp_path):
    truncated = pdf_bytes(["I live in Berlin. " * 30])
    cases = {
        "garbled.pdf": garbled_pdf(),
        "cut.pdf": truncated[: len(truncated) // 2],
        "empty.txt": b"",
        "bomb.docx": lying_docx(tmp_path / "made.docx", real_bytes=8 * 2**20).read_bytes(),
        "scan.pdf": pdf_bytes([""]),
    }
    for name, data in cases.items():
        r = add(name, data, "--json")
        assert r.returncode == 2, (name, r.stdout, r.stderr)
        res = json.loads(r.stdout)
        assert res["status"] == "failed" and res["detail"]["failure"] == "input", res
        assert "pypdf" not in r.stderr and "WARNING" not in r.stderr, (name, r.stderr)
        assert "\\x" not in res["error"] and res["error"].isprintable(), res["error"]


def test_llm_down_exits_1_and_a_good_file_0(add):
    r = add("plan.txt", b"I am planning a trip to Lisbon in May.")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "failed" in r.stdout and DOWN in r.stdout
    r = add("job.txt", b"I work as a nurse.", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["memory_count"] == 1


def test_refused_file_exits_2(add):
    r = add("cv.pdf", b"MZ\x90\x00" + b"\x00" * 200)
    assert r.returncode == 2 and "refused" in r.stderr, (r.stdout, r.stderr)
