"""The Mem0 half of bench/mem0_quality.py, run inside Mem0's virtualenv: Mem0 built, scenarios fed.

:func:`worker` (``bench/mem0_quality.py --worker JOB --worker-out OUT``) builds a Mem0
``Memory`` as the parent's docstring describes (:func:`build_mem0`), feeds each scenario turn
by turn for a fresh user (:func:`run_scenario`) and writes one snapshot per turn in the
format of ``bench.memory_quality.run_scenario``, mapping Mem0's ``add``/``get_all``/
``history`` results to our changes, active memories and history events
(:func:`mem0_changes`, :func:`mem0_active`, :func:`mem0_history`).
"""
from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from bench.common import write_json_file


# ---- helpers shared by both halves -------------------------------------------------------
def mem0_changes(result: Any) -> list[dict[str, Any]]:
    """Mem0's ``add`` return value (``{"results": [{"id", "memory", "event",
    "previous_memory"?}]}``) as our change list ``[{"action", "id", "text", "old_text",
    "type"}]``."""
    items = result.get("results", []) if isinstance(result, dict) else (result or [])
    return [{"action": str(r.get("event") or "").upper(), "id": r.get("id"),
             "text": r.get("memory"), "old_text": r.get("previous_memory"), "type": None}
            for r in items]


def mem0_active(result: Any) -> list[dict[str, Any]]:
    """Mem0's ``get_all`` return value as our active list ``[{"id", "text", "type"}]``."""
    items = result.get("results", []) if isinstance(result, dict) else (result or [])
    return [{"id": r.get("id"), "text": r.get("memory"), "type": None} for r in items]


def mem0_history(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mem0 history rows (``get_history``: ``memory_id``, ``event``, ``old_memory``,
    ``new_memory``, ``actor_id``, ``role``, ``created_at``) as our history events, oldest
    first."""
    rows = sorted(rows, key=lambda e: (str(e.get("created_at") or ""),
                                       str(e.get("updated_at") or "")))
    return [{"memory_id": e.get("memory_id"), "event": str(e.get("event") or "").upper(),
             "old_text": e.get("old_memory"), "new_text": e.get("new_memory"),
             "actor": e.get("actor_id") or e.get("role") or "mem0"} for e in rows]


# ---- the Mem0 half (runs inside the mem0 virtualenv) -----------------------------------------
class _Counter:
    """LLM calls (HTTP requests sent to ``/chat/completions``, so client retries and
    requests that got no answer count), HTTP status codes, and token usage (Mem0's ``response_callback``) of one Mem0 instance."""

    def __init__(self) -> None:
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.http_status: list[int] = []
        self._lock = threading.Lock()

    def on_request(self, request) -> None:  # httpx event hook: every attempt counts
        if str(request.url).endswith("/chat/completions"):
            with self._lock:
                self.calls += 1

    def on_response(self, response) -> None:  # httpx event hook
        if str(response.request.url).endswith("/chat/completions"):
            with self._lock:
                self.http_status.append(response.status_code)

    def on_llm_response(self, _llm, response, _params) -> None:  # mem0 response_callback
        usage = getattr(response, "usage", None)
        with self._lock:
            self.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
            self.completion_tokens += int(getattr(usage, "completion_tokens", 0) or 0)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"calls": self.calls, "prompt_tokens": self.prompt_tokens,
                    "completion_tokens": self.completion_tokens}


def build_mem0(folder: Path, model: str, base_url: str):
    """A Mem0 ``Memory`` with the benchmark's configuration (``bench/mem0_quality.py``'s docstring) and a
    :class:`_Counter` attached. Returns ``(memory, counter, embedder_id)``."""
    from mem0 import Memory as Mem0Memory

    from bench.mem0_side import _USEForMem0
    from memory.embed.embedder import make_embedder

    class USEForMem0(_USEForMem0):
        """``bench.mem0_side``'s wrapper plus a batched ``embed_batch`` (Mem0 2.x
        embeds all extracted facts of a turn in one call)."""

        def embed_batch(self, texts, memory_action="add"):
            if memory_action == "search":
                return [self.embed(t, memory_action) for t in texts]
            return [v.tolist() for v in self.e.embed_documents(list(texts))]

    counter = _Counter()
    cfg = {"llm": {"provider": "openai",
                   "config": {"model": model, "openai_base_url": base_url, "api_key": "local",
                              "temperature": 0, "max_tokens": 1000}},
           "vector_store": {"provider": "qdrant",
                            "config": {"path": str(folder / "qdrant"), "embedding_model_dims": 512,
                                       "collection_name": "mem0_quality"}},
           # replaced below (no network call is made by the openai embedder's constructor)
           "embedder": {"provider": "openai", "config": {"api_key": "unused", "embedding_dims": 512}},
           "history_db_path": str(folder / "history.db")}
    m = Mem0Memory.from_config(cfg)
    embedder = make_embedder(None)
    m.embedding_model = USEForMem0(embedder, m.embedding_model.config)
    m.llm.config.response_callback = counter.on_llm_response
    http = getattr(m.llm.client, "_client", None)  # the OpenAI client's httpx.Client
    if http is not None and hasattr(http, "event_hooks"):
        hooks = http.event_hooks
        hooks.setdefault("request", []).append(counter.on_request)
        hooks.setdefault("response", []).append(counter.on_response)
        http.event_hooks = hooks
    else:  # fall back to counting Mem0's generate_response calls (no retries seen)
        original = m.llm.generate_response

        def counted(*a, **kw):
            with counter._lock:
                counter.calls += 1
            return original(*a, **kw)
        m.llm.generate_response = counted
    return m, counter, getattr(embedder, "id", type(embedder).__name__)


def pin_today(today: str) -> None:
    """Make Mem0's extraction prompt use ``today`` as its default Current/Observation Date
    (what running the machine on that date would do)."""
    import mem0.configs.prompts as prompts

    original = prompts._resolve_dates

    def resolve(current_date=None, observation_date=None):
        return original(current_date or today, observation_date)
    prompts._resolve_dates = resolve


def run_scenario(m, counter: _Counter, scenario: dict[str, Any], *,
                 log: Callable[[str], None] | None = None, label: str = "") -> dict[str, Any]:
    """Feed one scenario to Mem0 for a fresh user; one snapshot per turn in the format
    of ``bench.memory_quality.run_scenario`` (what ``quality_score.score`` reads)."""
    from bench.memory_quality import _summary

    uid = f"mq-{scenario['id']}-{uuid.uuid4().hex[:8]}"
    seen: list[str] = []
    snaps: list[dict[str, Any]] = []
    for i, turn in enumerate(scenario["turns"]):
        messages = [{"role": "user", "content": turn["user"]},
                    {"role": "assistant", "content": turn["assistant"]}]
        before = counter.stats()
        n_status = len(counter.http_status)
        error = None
        start = time.perf_counter()
        try:
            result = m.add(messages, user_id=uid)
        except Exception as exc:  # noqa: BLE001 - a benchmark records and goes on
            result, error = {"results": []}, f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        after = counter.stats()
        changes = mem0_changes(result)
        active = mem0_active(m.get_all(filters={"user_id": uid}, top_k=1000))
        for mid in [c["id"] for c in changes] + [a["id"] for a in active]:
            if mid and mid not in seen:
                seen.append(mid)
        history = mem0_history([row for mid in seen for row in m.history(mid)])
        snap = {
            "turn": i, "category": turn.get("category"), "user": turn["user"],
            "changes": changes,
            "added": [c["id"] for c in changes if c["action"] == "ADD" and c["id"]],
            "active": active, "history": history,
            "llm_calls": after["calls"] - before["calls"],
            "prompt_tokens": after["prompt_tokens"] - before["prompt_tokens"],
            "completion_tokens": after["completion_tokens"] - before["completion_tokens"],
            "http_status": counter.http_status[n_status:],
            "seconds": round(seconds, 3), "error": error,
        }
        snaps.append(snap)
        if log:
            err = f" ERROR {error[:160]}" if error else ""
            log(f"{label}{scenario['id']} t{i} {turn.get('category', '?'):<20} "
                f"{seconds:6.1f}s {snap['llm_calls']} calls {snap['prompt_tokens']} tok  "
                f"{_summary(changes)}{err}")
    return {"id": scenario["id"], "lang": scenario.get("lang"), "user_id": uid, "turns": snaps}


def worker(job_file: Path, out_file: Path) -> int:
    """The Mem0 half: read the job (scenarios, model, base URL, today, pin flag), run
    every scenario, rewrite ``out_file`` (``{"info", "records"}``) after each one."""
    job = json.loads(job_file.read_text(encoding="utf-8"))
    from importlib import metadata

    import mem0

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if job["pin_today"]:
        pin_today(job["today"])
    clock_date = datetime.now(timezone.utc).date().isoformat()
    info = {"mem0_version": metadata.version("mem0ai"),
            "mem0_module": str(Path(mem0.__file__).parent),
            "python": sys.executable, "clock_date_utc": clock_date,
            "prompt_date": job["today"] if job["pin_today"] else clock_date}
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mem0-quality-") as tmp:
        m, counter, embedder_id = build_mem0(Path(tmp), job["model"], job["base_url"])
        info["embedder"] = f"{embedder_id} (ours, wrapped into mem0 embedding_model)"
        info["vector_store"] = f"{m.config.vector_store.provider} local mode (path in a temp dir)"
        info["llm_provider"] = m.config.llm.provider
        m.embedding_model.e.embed_query("warm up")
        write_json_file(out_file, {"info": info, "records": records})
        scenarios = job["scenarios"]
        try:
            for k, scen in enumerate(scenarios, start=1):
                records.append(run_scenario(m, counter, scen, log=log,
                                            label=f"[{k}/{len(scenarios)}] "))
                write_json_file(out_file, {"info": info, "records": records})
        finally:
            close = getattr(m, "close", None)
            if callable(close):
                close()
    return 0
