"""The local model runs on the CPUs users have (issue 21): the installed llama.cpp build
carries no Intel AMX (nor AVX-512) code, install.sh builds it for a portable baseline
keyed by its flags, and a server that dies is reported with its cause."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from memory.llm import llama_build, local_server as local_llm, local_server_cli as local_llm_cli
from memory.config import load_config
from memory.llm.errors import LocalModelError
from memory.llm.local_server_crash import RestartBudget, crash_cause

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "scripts" / "install.sh"


# ------------------------------------------------------------------ the AMX scan
def _library(tmp_path: Path, name: str, asm: str) -> Path:
    """A real shared library assembled from ``asm`` (x86-64 AT&T syntax) by gcc."""
    if shutil.which("gcc") is None:  # the llama.cpp build needs it too
        pytest.fail("gcc is needed (scripts/install.sh compiles llama.cpp with it)")
    src = tmp_path / f"{name}.s"
    src.write_text(".text\n.globl f\nf:\n" + textwrap.dedent(asm) + " ret\n"
                   ".section .note.GNU-stack,\"\",@progbits\n")
    lib = tmp_path / f"{name}.so"
    subprocess.run(["gcc", "-shared", "-o", str(lib), str(src)], check=True)
    return lib


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86-64 instructions")
def test_the_scan_finds_amx_tile_code_where_it_is(tmp_path):
    # what ggml's AMX matmul (ggml_backend_amx_mul_mat) compiles to: config, load, dot product
    amx = _library(tmp_path, "libggml-cpu", """
        ldtilecfg (%rdi)
        tileloadd (%rsi,%rdx,1), %tmm0
        tdpbssd %tmm1, %tmm2, %tmm3
        tilerelease
    """)
    plain = _library(tmp_path, "libggml-base", """
        vfmadd231ps %ymm1, %ymm2, %ymm3
    """)
    found = llama_build.amx_instructions([amx, plain])
    assert found == {"libggml-cpu.so": {"ldtilecfg": 1, "tileloadd": 1, "tdpbssd": 1,
                                        "tilerelease": 1}}
    assert llama_build.zmm_users([plain]) == []
    wide = _library(tmp_path, "libggml-wide", "vaddps %zmm1, %zmm2, %zmm3\n")
    assert llama_build.zmm_users([wide, plain]) == ["libggml-wide.so"]


def test_the_installed_llama_cpp_build_has_no_amx_or_avx512_code():
    """Fails for the wheel pip built with -march=native on an AMX machine (the crash of
    issue 21) and for any build with AVX-512; runs wherever llama-cpp-python is
    installed (./test.sh installs it)."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (./test.sh installs it)")
    libs = llama_build.library_files()
    assert any(p.name.startswith("libggml-cpu") for p in libs), libs
    assert llama_build.amx_instructions(libs) == {}, (
        "the llama.cpp build contains Intel AMX code: rebuild with "
        "scripts/install.sh --rebuild-llama")
    assert llama_build.zmm_users(libs) == []


def test_the_build_scan_cli_reports_and_fails_on_amx(tmp_path, monkeypatch, capsys):
    pkg = tmp_path / "llama_cpp" / "lib"
    pkg.mkdir(parents=True)
    if os.uname().machine != "x86_64":
        pytest.skip("x86-64 instructions")
    lib = _library(tmp_path, "libggml-cpu", "ldtilecfg (%rdi)\n")
    shutil.copy(lib, pkg / "libggml-cpu.so")
    monkeypatch.setattr(llama_build, "library_files",
                        lambda package_dir=None: sorted(pkg.glob("*.so")))
    assert llama_build.main([]) == 1
    assert "ldtilecfg" in capsys.readouterr().out


# ------------------------------------------------------------------ install.sh flags
def _flags(env: dict[str, str]) -> tuple[str, str]:
    out = subprocess.run(["bash", str(INSTALL), "--print-llama-flags"], capture_output=True,
                         text=True, check=True, env={**os.environ, **env}).stdout.split("\n")
    return out[0], out[1]


def test_install_builds_llama_cpp_for_a_portable_baseline_never_native(tmp_path):
    full = tmp_path / "cpuinfo-amx"
    full.write_text("flags\t: fpu sse4_2 avx avx2 fma f16c bmi2 avx512f avx512_vnni "
                    "amx_tile amx_int8 amx_bf16\n")
    args, wheels = _flags({"MEMORY_CPUINFO": str(full), "XDG_CACHE_HOME": str(tmp_path)})
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_NATIVE=ON" not in args
    for off in ("AMX_TILE", "AMX_INT8", "AMX_BF16", "AVX512", "AVX512_VNNI"):
        assert f"-DGGML_{off}=OFF" in args
    if os.uname().machine == "x86_64":
        assert "-DGGML_AVX2=ON" in args and "-DGGML_FMA=ON" in args
    assert wheels.startswith(str(tmp_path / "memory-chat" / "wheels" / "llama-"))

    # a CPU without AVX2 (a 2017 Pentium) gets a build without it: features only go off
    old = tmp_path / "cpuinfo-old"
    old.write_text("flags\t: fpu sse4_2\n")
    old_args, old_wheels = _flags({"MEMORY_CPUINFO": str(old), "XDG_CACHE_HOME": str(tmp_path)})
    if os.uname().machine == "x86_64":
        assert "-DGGML_AVX2=OFF" in old_args and "-DGGML_AVX=OFF" in old_args
        assert old_wheels != wheels  # the wheel cache is keyed by the flags

    native, native_wheels = _flags({"LLAMA_CPU": "native", "XDG_CACHE_HOME": str(tmp_path)})
    assert "-DGGML_NATIVE=ON" in native and native_wheels != wheels
    bad = subprocess.run(["bash", str(INSTALL), "--print-llama-flags"], capture_output=True,
                         text=True, env={**os.environ, "LLAMA_CPU": "fastest"})
    assert bad.returncode == 2 and "portable" in bad.stderr


# ------------------------------------------------------------------ a server that dies
FAKE_SERVER = """
import json, os, signal, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        body = json.dumps({"data": [{"id": sys.argv[2]}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        print("llama.cpp: evaluating the prompt", flush=True)
        os.kill(os.getpid(), getattr(signal, sys.argv[3]))  # what a bad build does

HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("sig, says", [("SIGILL", "illegal instruction"),
                                       ("SIGSEGV", "general protection fault")])
def test_a_server_that_dies_on_its_first_generation_is_reported_with_cause_and_log(
        tmp_path, sig, says):
    port = _free_port()
    config = load_config(env_file=None, memory_data_dir=tmp_path, openai_base_url=None,
                         openai_api_key=None, local_llm_port=port)
    # a real process that serves /v1/models, then dies of ``sig`` on the first
    # generation; its name contains llama_cpp.server, as ours does, so it counts as ours
    script = tmp_path / "llama_cpp.server.py"
    script.write_text(FAKE_SERVER)
    log = tmp_path / "llama-server.log"
    with open(log, "ab") as out:
        out.write(b"\n=== start fake\n")
        out.flush()
        proc = subprocess.Popen([sys.executable, "-X", "faulthandler", str(script), str(port),
                                 config.local_llm_model, sig], stdout=out,
                                stderr=subprocess.STDOUT)
    (tmp_path / "llama-server.pid").write_text(f"{proc.pid}\n")
    try:
        local_llm._wait_ready(config, proc.pid, log, 30)  # as after a real start
        with pytest.raises(LocalModelError) as err:
            local_llm.check_generation(config, timeout=30)
    finally:
        proc.kill()
        proc.wait()
    message = str(err.value)
    assert "died on its first generation" in message and says in message
    assert "scripts/install.sh --rebuild-llama" in message
    assert "evaluating the prompt" in message  # the log's last lines
    assert f"Fatal Python error: {'Illegal instruction' if sig == 'SIGILL' else 'Segmentation fault'}" in message


def test_crash_cause_reads_only_the_last_run_of_the_log(tmp_path):
    log = tmp_path / "llama-server.log"
    log.write_text("=== 1\nFatal Python error: Illegal instruction\n\n=== 2\nloading\n")
    assert crash_cause(log) == ""
    log.write_text(log.read_text() + "Fatal Python error: Bus error\n")
    assert crash_cause(log).startswith("bus error")


def test_the_restart_budget_allows_one_restart_a_minute(tmp_path):
    budget = RestartBudget(tmp_path / "llama-server.restarted")
    assert budget.allows(now=1000.0)
    budget.spend(now=1000.0)
    assert not budget.allows(now=1059.0)
    assert budget.allows(now=1060.0)
    # another process (a new object on the same file) sees the same budget
    assert not RestartBudget(tmp_path / "llama-server.restarted").allows(now=1030.0)


def test_start_reports_the_test_generation(tmp_path, monkeypatch, capsys):
    from tests.fake_llm import ScriptedLLM
    with ScriptedLLM(model="qwen2.5-coder-1.5b") as server:
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
        monkeypatch.setenv("MEMORY_DATA_DIR", str(tmp_path / "d"))
        # one scripted server: no real memory-work server on the port after it
        monkeypatch.setenv("LOCAL_LLM_MEMORY_SERVER", "false")
        assert local_llm_cli.main(["start", "--port", str(server.port),
                               "--model", "qwen2.5-coder-1.5b"]) == 0
        out = capsys.readouterr()
        assert out.out.strip() == server.base_url
        asked = server.chat_requests()
    assert "answered a test prompt in" in out.err
    assert not (tmp_path / "d" / "llama-server-memory.pid").exists()
    assert [r["messages"][-1]["content"] for r in asked] == [local_llm.CHECK_PROMPT]
    assert asked[0]["max_tokens"] == local_llm.CHECK_MAX_TOKENS
