"""memory.llm.local_server: assembling the model from part packages (fake, small parts) and,
marked e2e, a real llama.cpp server on 127.0.0.1 with the shipped 0.5B model."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from pathlib import Path

import pytest

from memory.llm import local_server as local_llm, local_server_cli as local_llm_cli, weights as local_model
from memory.config import load_config
from memory.llm.errors import LocalModelError
from memory.llm.local_server import ModelSpec, assemble_model
from tests.fake_llm import ScriptedLLM

PARTS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 3]


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    """Three importable part modules in tmp_path and a MODELS entry "fake" for them."""
    pkgs = tmp_path / "pkgs"
    for i, data in enumerate(PARTS, start=1):
        mod = pkgs / f"fake_model_part{i}"
        (mod / "data").mkdir(parents=True)
        (mod / "data" / f"part{i:02d}.bin").write_bytes(data)
        (mod / "__init__.py").write_text(
            "import os\n"
            "def get_part_path():\n"
            f"    return os.path.join(os.path.dirname(__file__), 'data', 'part{i:02d}.bin')\n")
    monkeypatch.syspath_prepend(str(pkgs))
    joined = b"".join(PARTS)
    spec = ModelSpec(name="fake", filename="fake.gguf",
                     modules=tuple(f"fake_model_part{i}" for i in range(1, 4)),
                     size=len(joined), sha256=hashlib.sha256(joined).hexdigest())
    monkeypatch.setitem(local_llm.MODELS, "fake", spec)
    return spec


def test_assemble_joins_parts_in_order_and_records_the_hash(fake_model, tmp_path):
    path = assemble_model("fake", tmp_path / "models")
    assert path == tmp_path / "models" / "fake.gguf"
    assert path.read_bytes() == b"".join(PARTS)
    assert (tmp_path / "models" / "fake.gguf.sha256").read_text().strip() == fake_model.sha256
    leftovers = [p.name for p in (tmp_path / "models").iterdir()]
    assert sorted(leftovers) == ["fake.gguf", "fake.gguf.lock", "fake.gguf.sha256"]


def test_assembled_file_is_reused_without_touching_the_parts(fake_model, tmp_path, monkeypatch):
    path = assemble_model("fake", tmp_path)
    inode = path.stat().st_ino

    def no_parts(name):
        raise AssertionError("parts must not be read again")
    monkeypatch.setattr(local_model, "part_paths", no_parts)
    assert assemble_model("fake", tmp_path) == path
    assert path.stat().st_ino == inode


def test_checksum_mismatch_is_refused_and_leaves_nothing(fake_model, tmp_path, monkeypatch):
    bad = ModelSpec(**{**fake_model.__dict__, "sha256": "0" * 64})
    monkeypatch.setitem(local_llm.MODELS, "fake", bad)
    with pytest.raises(LocalModelError, match="does not match the expected checksum") as info:
        assemble_model("fake", tmp_path)
    assert "refusing it" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "fake.gguf").exists()
    assert not (tmp_path / "fake.gguf.sha256").exists()
    assert not list(tmp_path.glob("*.part"))


def test_corrupt_existing_file_without_sidecar_is_rebuilt(fake_model, tmp_path):
    dest = tmp_path / "fake.gguf"
    dest.write_bytes(b"x" * fake_model.size)  # right size, wrong bytes, never verified
    assert assemble_model("fake", tmp_path).read_bytes() == b"".join(PARTS)


def test_existing_good_file_without_sidecar_is_verified_once(fake_model, tmp_path):
    dest = tmp_path / "fake.gguf"
    dest.write_bytes(b"".join(PARTS))
    inode = dest.stat().st_ino
    assert assemble_model("fake", tmp_path) == dest
    assert dest.stat().st_ino == inode  # kept, not rewritten
    assert (tmp_path / "fake.gguf.sha256").read_text().strip() == fake_model.sha256


def test_missing_part_package_names_it(fake_model, tmp_path, monkeypatch):
    spec = ModelSpec(**{**fake_model.__dict__, "modules": fake_model.modules + ("no_such_part9",)})
    monkeypatch.setitem(local_llm.MODELS, "fake", spec)
    with pytest.raises(LocalModelError, match="'no-such-part9' is not installed") as info:
        assemble_model("fake", tmp_path)
    assert "No module named 'no_such_part9'" in str(info.value)
    assert not (tmp_path / "fake.gguf").exists()


def test_broken_part_package_keeps_its_import_error(fake_model, tmp_path, monkeypatch):
    """A part package that is installed but fails to import is not called missing: the
    LocalModelError carries the import error's own text."""
    broken = tmp_path / "pkgs" / "fake_model_part2" / "__init__.py"
    broken.write_text("raise ImportError('libgguf.so.1: cannot open shared object file')\n")
    monkeypatch.delitem(__import__("sys").modules, "fake_model_part2", raising=False)
    with pytest.raises(LocalModelError) as info:
        local_model.part_paths("fake")
    msg = str(info.value)
    assert "'fake-model-part2' cannot be imported" in msg and "is not installed" not in msg
    assert "libgguf.so.1: cannot open shared object file" in msg and "\n" not in msg
    assert "scripts/install.sh" in msg


def test_unknown_model_name(tmp_path):
    with pytest.raises(LocalModelError, match="Unknown local model 'gpt-9'"):
        assemble_model("gpt-9", tmp_path)


@pytest.mark.parametrize("name", sorted(local_llm.MODELS))
def test_recorded_sizes_match_the_installed_part_packages(name):
    paths = local_llm.part_paths(name)
    spec = local_llm.MODELS[name]
    assert len(paths) == len(spec.modules) == len(local_llm.MODEL_PACKAGES[name])
    assert sum(p.stat().st_size for p in paths) == spec.size
    with open(paths[0], "rb") as fh:
        assert fh.read(4) == b"GGUF"


def _local_config(tmp_path, port, **kw):
    return load_config(env_file=None, memory_data_dir=tmp_path, openai_base_url=None,
                       openai_api_key=None, local_llm_port=port, **kw)


def test_ensure_server_reuses_a_server_that_serves_the_model(tmp_path):
    with ScriptedLLM(model="qwen2.5-coder-0.5b") as server:
        config = _local_config(tmp_path, server.port, local_llm_model="qwen2.5-coder-0.5b")
        assert local_llm.ensure_server(config) == server.base_url
    assert not (tmp_path / "llama-server.pid").exists()
    assert not (tmp_path / "llama-server.log").exists()


def test_ensure_server_waits_for_a_busy_server_instead_of_starting_another(tmp_path):
    with ScriptedLLM(model="qwen2.5-coder-0.5b") as server:
        server.models_delay = 2.5  # longer than the 2 s quick probe
        config = _local_config(tmp_path, server.port, local_llm_model="qwen2.5-coder-0.5b")
        assert local_llm.ensure_server(config, deadline=20) == server.base_url
    assert not (tmp_path / "llama-server.pid").exists()
    assert not (tmp_path / "llama-server.log").exists()


def test_ensure_server_refuses_a_port_taken_by_another_model(tmp_path):
    with ScriptedLLM(model="someone-elses-model") as server:
        config = _local_config(tmp_path, server.port)
        with pytest.raises(LocalModelError, match="already serves.*someone-elses-model"):
            local_llm.ensure_server(config)


def test_cli_status_reports_without_starting(tmp_path, monkeypatch, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("MEMORY_DATA_DIR", str(tmp_path / "d"))
    assert local_llm_cli.main(["status", "--port", str(port), "--model", "qwen2.5-coder-0.5b"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["running"] is False and status["pid"] is None
    assert status["base_url"] == f"http://127.0.0.1:{port}/v1"
    assert status["model"] == "qwen2.5-coder-0.5b"
    assert local_llm_cli.main(["stop", "--port", str(port)]) == 0
    assert "no server of ours" in capsys.readouterr().out


# ------------------------------------------------------------------ real model (slow)
def _chat_and_extraction_at_once_both_finish(config) -> None:
    """A streamed chat reply and a JSON extraction request sent while the reply is
    streaming (the app's quick follow-up message) must both complete with a finish
    reason: the server is started with interrupts off, so it queues the second request
    instead of cutting the first ("stopped mid-answer")."""
    import openai

    client = openai.OpenAI(base_url=local_llm.base_url(config), api_key="local", max_retries=0,
                           timeout=240)
    model = local_llm.model_alias(config)
    first_delta = threading.Event()
    results: dict[str, object] = {}

    def chat() -> None:
        finish, parts = None, []
        stream = client.chat.completions.create(
            model=model, stream=True, max_tokens=48, temperature=0,
            messages=[{"role": "user", "content": "Count from one to twenty in words."}])
        for chunk in stream:
            if chunk.choices:
                parts.append(chunk.choices[0].delta.content or "")
                first_delta.set()
                finish = chunk.choices[0].finish_reason or finish
        results["chat"] = (finish, "".join(parts))

    def extraction() -> None:
        assert first_delta.wait(timeout=240), "the chat stream never started"
        resp = client.chat.completions.create(
            model=model, max_tokens=40, temperature=0,
            response_format={"type": "json_object"},
            messages=[{"role": "system", "content": 'Return JSON {"city": ...}.'},
                      {"role": "user", "content": "I live in Lisbon."}])
        results["extraction"] = (resp.choices[0].finish_reason, resp.choices[0].message.content)

    threads = [threading.Thread(target=chat), threading.Thread(target=extraction)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert set(results) == {"chat", "extraction"}, results
    chat_finish, chat_text = results["chat"]
    json_finish, json_text = results["extraction"]
    assert chat_finish in ("stop", "length") and chat_text.strip(), results
    assert json_finish in ("stop", "length") and json_text.strip(), results



@pytest.mark.e2e
def test_real_server_start_json_completion_and_stop(tmp_path):
    from memory.llm.client import LLM

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = _local_config(tmp_path, port, local_llm_model="qwen2.5-coder-0.5b",
                           local_llm_ctx=1024, llm_timeout=240)
    urls: list[str] = []
    try:
        # two concurrent callers: the file lock makes them share one server process
        threads = [threading.Thread(target=lambda: urls.append(local_llm.ensure_server(config)))
                   for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert urls == [f"http://127.0.0.1:{port}/v1"] * 2
        log = (tmp_path / "llama-server.log").read_text()
        assert log.count("=== ") == 1 and "llama_cpp.server" in log
        pid = int((tmp_path / "llama-server.pid").read_text())
        assert local_llm_cli.status(config)["running"] is True

        llm = LLM(config)
        assert llm.health()["ok"] is True
        schema = {"type": "object",
                  "properties": {"city": {"type": "string"},
                                 "allergic_to": {"type": "array", "items": {"type": "string"}}},
                  "required": ["city", "allergic_to"], "additionalProperties": False}
        out = llm.complete_json(
            [{"role": "system", "content": "Extract where the user lives and their allergies."},
             {"role": "user", "content": "I live in Lisbon and I am allergic to peanuts."}],
            schema, name="facts", max_tokens=60)
        assert set(out) == {"city", "allergic_to"}
        assert out["city"].lower().startswith("lisb")  # Lisbon or Lisboa
        assert llm.calls == 1 and llm.completion_tokens > 0
        text = "".join(llm.stream_chat([{"role": "user", "content": "Say hi."}], max_tokens=8))
        assert text.strip()
        _chat_and_extraction_at_once_both_finish(config)
    finally:
        memory_pid = local_llm.server_pid(local_llm.memory_config(config))
        stopped = local_llm.stop_all(config)   # the chat server and the memory-work server
    assert stopped is True and memory_pid is not None  # complete_json started the second one
    for gone in (pid, memory_pid):
        assert not Path(f"/proc/{gone}").exists() or "Z" in Path(f"/proc/{gone}/stat").read_text().split()[2]
    assert local_llm.served_models(config) is None
    assert local_llm.served_models(local_llm.memory_config(config)) is None
    assert not (tmp_path / "llama-server.pid").exists()
    assert not (tmp_path / "llama-server-memory.pid").exists()
    assert os.path.exists(config.memory_model_dir)


def test_the_model_server_ignores_the_web_apps_port_variables():
    # PORT=8502 ./run.sh is the web app's port: llama-cpp-python's settings read PORT/HOST
    # from the environment over the command line, so they must not reach the server
    env = local_llm.server_env({"PORT": "8502", "host": "0.0.0.0", "N_CTX": "99",
                                "PATH": "/usr/bin", "OPENAI_API_KEY": "k"})
    assert env == {"PATH": "/usr/bin", "OPENAI_API_KEY": "k"}
