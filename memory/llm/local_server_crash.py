"""What a dead local model server tells, and how often it may be restarted.

The llama.cpp server (``memory.llm.local_server``) runs as a detached process started with
Python's ``-X faulthandler``, so a fatal signal in native code (an illegal instruction,
or the general protection fault a CPU instruction the OS does not enable causes, e.g.
Intel AMX on a cloud VM, issue 21) writes ``Fatal Python error: <signal name>`` into
``llama-server.log`` before the process dies. When this process is the server's parent
its exit status is known too (``record_exit``). ``crash_cause`` turns either into one
line with the likely cause and the fix.

A crashed server is restarted once by whoever finds it dead (``memory.llm.local_server.
restart_after_crash``); ``RestartBudget`` remembers the last restart in the data dir so
that a second crash within ``RESTART_WINDOW`` seconds, from any process, is an error
instead of a restart loop.
"""
from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

#: a second crash this many seconds after a restart is an error, not another restart
RESTART_WINDOW = 60.0

REBUILD_HINT = "rebuild it with `scripts/install.sh --rebuild-llama`"

#: signal number → (name, likely cause with the fix)
_CAUSES: dict[int, tuple[str, str]] = {
    signal.SIGILL: ("illegal instruction",
                    "the llama.cpp build uses CPU instructions this machine does not have; "
                    + REBUILD_HINT),
    signal.SIGSEGV: ("segmentation / general protection fault",
                     "often a llama.cpp build with CPU instructions the OS or VM does not "
                     "enable (e.g. Intel AMX); " + REBUILD_HINT),
    signal.SIGBUS: ("bus error", "the model file may be damaged or the disk full; run "
                    "`python -m memory.llm.local_server path` to verify it"),
    signal.SIGABRT: ("aborted", "llama.cpp stopped on an internal error; see the log"),
    signal.SIGFPE: ("floating-point exception", REBUILD_HINT),
    signal.SIGKILL: ("killed", "out of memory, or stopped by another program"),
    signal.SIGTERM: ("terminated", "stopped by another program or a shutdown"),
}
#: faulthandler's names for the fatal signals it reports
_FAULT_NAMES = {"Illegal instruction": signal.SIGILL, "Segmentation fault": signal.SIGSEGV,
                "Bus error": signal.SIGBUS, "Aborted": signal.SIGABRT,
                "Floating-point exception": signal.SIGFPE,
                "Floating point exception": signal.SIGFPE}
_FATAL = re.compile(r"Fatal Python error: ([A-Za-z -]+)")

#: pid → wait status of server processes this process reaped (``os.waitpid``)
_EXITS: dict[int, int] = {}


def record_exit(pid: int, status: int) -> None:
    """Remember the raw wait ``status`` (as returned by ``os.waitpid``) of ``pid``."""
    _EXITS[pid] = status


def exit_signal(pid: int | None) -> int | None:
    """The signal number that killed ``pid`` if this process reaped it, else None."""
    status = _EXITS.get(pid) if pid is not None else None
    if status is not None and os.WIFSIGNALED(status):
        return os.WTERMSIG(status)
    return None


def log_tail(log: Path, lines: int = 15) -> str:
    """The last ``lines`` non-empty lines of ``log`` joined by `` | `` ("(no log)" when
    it cannot be read)."""
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())


def _last_run(log: Path) -> str:
    """The log's text since the last ``=== <time> <command>`` start line (a server's
    own run; earlier runs' crashes must not be blamed on this one)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    return text[text.rfind("\n=== ") + 1:] if "\n=== " in text else text


def crash_cause(log: Path, pid: int | None = None) -> str:
    """One line naming how the server in ``log`` died and the likely fix, e.g.
    ``"illegal instruction: the llama.cpp build uses … rebuild it with …"``.

    Uses the exit signal of ``pid`` when this process reaped it, else faulthandler's
    ``Fatal Python error: <name>`` line in the last run's log; "" when neither tells."""
    sig = exit_signal(pid)
    if sig is None:
        found = _FATAL.findall(_last_run(log))
        if found:
            sig = _FAULT_NAMES.get(found[-1].strip())
    if sig is None or sig not in _CAUSES:
        return f"signal {sig}" if sig is not None else ""
    name, fix = _CAUSES[sig]
    return f"{name}: {fix}"


class RestartBudget:
    """The time of the last crash restart, kept in a file so that every process using
    one data dir shares it. Call only under the restart lock (``memory.llm.local_server``)."""

    def __init__(self, path: Path, window: float = RESTART_WINDOW) -> None:
        self.path, self.window = path, window

    def last(self) -> float | None:
        """Epoch seconds of the last restart, or None."""
        try:
            return float(self.path.read_text().strip())
        except (OSError, ValueError):
            return None

    def allows(self, now: float | None = None) -> bool:
        """True unless a restart happened less than ``window`` seconds before ``now``."""
        last = self.last()
        now = time.time() if now is None else now
        return last is None or now - last >= self.window

    def spend(self, now: float | None = None) -> None:
        """Record a restart at ``now`` (epoch seconds)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{time.time() if now is None else now}\n")
