"""Memory-quality benchmark: what the chat path stores, on the product's real LLM.

Every scenario of ``bench/data/memory_quality.json`` is a short conversation of a FRESH
user (one user id per scenario). A scenario's ``"seed": [{"text", "type"}, ...]`` are
memories the user already has: they are stored before its first turn without the LLM
(``Memory.import_``, as a restored backup), and their ids go into the record, so the
scorer can check that the turns left them alone (the false-positive metric). Each turn
goes through the chat path's memory step::

    Memory.add([{"role": "user", ...}, {"role": "assistant", ...}], user_id,
               infer=True, created_at=<the file's "today" at 12:00 UTC>)

and after it the runner snapshots the user's active memories (``Memory.list``), the
user's whole change history (``Store.all_history``), this turn's changes, LLM calls and
prompt tokens (``mem.llm.stats()`` before/after) and wall time. ``bench/quality_score.py``
then scores the snapshots against the labelled expectations (recall, junk, update,
forget, language fidelity; no LLM involved).

The LLM is the one the settings name (``.env`` / environment, as ``Memory.from_env``):
by default the offline local llama.cpp model, started first when it is not running. The
store is a real SQLite file in a fresh temporary folder (``--data-dir`` to keep it).

Usage::

    python bench/memory_quality.py                      # tune split (4 of 5 scenarios)
    python bench/memory_quality.py --split report       # held-out split (scenario i % 5 == 4)
    python bench/memory_quality.py --split all --limit 2 --out /tmp/mq.json
    python bench/memory_quality.py --data bench/data/memory_false_positive.json --split all
    python bench/memory_quality.py --split report --runs 3   # mean (min–max) over 3 runs

Progress goes to stderr (one line per turn), the markdown table to stdout, JSON to
``--out`` (default ``bench/results/memory_quality_<split>.json``), rewritten after every
scenario so an interrupted run keeps what it measured: the settings (``git_describe``
says whether the code was committed), ``metrics``, ``failures``, ``unmatched``, ``table``,
and ``runs``: one entry per run, ``{"run", "seconds", "scenarios_run", "metrics",
"failures", "unmatched", "records"}`` where ``records`` are the per-scenario records
(user id, seeds, and per turn: user text, changes, memories after the turn). (Results
written before ``--runs`` existed hold the records of their one run in ``runs``.)

``--runs N`` runs the whole split N times, fresh users each time; the table's cells are
then ``mean (min–max)`` over the runs, ``metrics`` holds the means and
``metrics_spread`` the ``{"mean", "min", "max"}`` cells (``quality_score.aggregate_runs``;
only complete runs count once one is complete), and every failure carries its ``run``.
With N = 1 the output is the one-run table.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # allow `python bench/memory_quality.py` from anywhere
    sys.path.insert(0, str(REPO))

from bench.common import git_describe, write_json_file  # noqa: E402
from bench.quality_score import aggregate_runs, format_table, run_means, score  # noqa: E402

DATA = REPO / "bench" / "data" / "memory_quality.json"
RESULTS = REPO / "bench" / "results"
SPLITS = ("tune", "report", "all")


# ---- data ---------------------------------------------------------------------------------
def load_data(path: str | os.PathLike = DATA) -> dict[str, Any]:
    """Read the labelled set (``{"version", "today", "scenarios": [...]}``)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def split_of(index: int) -> str:
    """``"report"`` for the held-out scenarios (0-based file index ``i % 5 == 4``), else
    ``"tune"``."""
    return "report" if index % 5 == 4 else "tune"


def select(scenarios: list[dict[str, Any]], split: str = "tune",
           limit: int | None = None) -> list[dict[str, Any]]:
    """The scenarios of ``split`` (``tune``, ``report`` or ``all``) in file order, at
    most ``limit`` of them. Raises ValueError for another split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} ({', '.join(SPLITS)})")
    out = [s for i, s in enumerate(scenarios) if split == "all" or split_of(i) == split]
    return out[:limit] if limit is not None else out


def turn_time(today: str) -> datetime:
    """The ``created_at`` of every turn: ``today`` (YYYY-MM-DD) at 12:00 UTC."""
    d = datetime.strptime(today, "%Y-%m-%d")
    return d.replace(hour=12, tzinfo=timezone.utc)


#: fields of a scenario's seed passed on to the import (``text`` and ``type`` in the sets)
SEED_FIELDS = ("text", "type", "importance", "tags", "metadata", "created_at", "updated_at")


def insert_seeds(mem, uid: str, seeds: list[dict[str, Any]], when: datetime
                 ) -> list[dict[str, Any]]:
    """Store ``seeds`` (``[{"text", "type"}, ...]``) for ``uid`` without the LLM, through
    ``Memory.import_`` (``memory.backup.import_user``: validated, PII-redacted,
    embedded, one ADD history event each with actor ``import``), dated the day before
    ``when`` unless a seed says otherwise. Returns ``[{"id", "text", "type"}, ...]`` in
    seed order with the text as stored; ``id`` is None for a seed the import skipped
    (the same text twice)."""
    if not seeds:
        return []
    day_before = (when - timedelta(days=1)).isoformat()
    items = []
    for seed in seeds:
        item = {k: seed[k] for k in SEED_FIELDS if seed.get(k) is not None}
        item.setdefault("created_at", day_before)
        item.setdefault("updated_at", item["created_at"])
        items.append({"id": uuid.uuid4().hex, **item})
    mem.import_({"memories": items}, uid)
    stored = {r.id: r for r in mem.list(uid, limit=1000)}
    return [{"id": it["id"] if it["id"] in stored else None,
             "text": stored[it["id"]].text if it["id"] in stored else it["text"],
             "type": stored[it["id"]].type if it["id"] in stored else it.get("type")}
            for it in items]


# ---- the scenario loop (takes any Memory: the real one, or one on the scripted server) ----
def _llm_stats(mem) -> dict[str, int]:
    stats = getattr(mem.llm, "stats", None)
    if callable(stats):
        return dict(stats())
    return {"calls": int(getattr(mem.llm, "calls", 0) or 0),
            "prompt_tokens": int(getattr(mem.llm, "prompt_tokens", 0) or 0),
            "completion_tokens": int(getattr(mem.llm, "completion_tokens", 0) or 0)}


def _history(mem, uid: str, seen: set[str]) -> list[dict[str, Any]]:
    """Every history event of ``uid``, oldest first: ``Store.all_history`` when the store
    has it, else ``Memory.history`` of every memory id seen in the scenario."""
    all_history = getattr(mem.store, "all_history", None)
    if callable(all_history):
        events = all_history(uid)
    else:
        events = sorted((e for mid in seen for e in mem.history(mid, uid)), key=lambda e: e.at)
    return [{"memory_id": e.memory_id, "event": e.event, "old_text": e.old_text,
             "new_text": e.new_text, "actor": e.actor} for e in events]


def _summary(changes: list[dict[str, Any]], width: int = 60) -> str:
    def cut(text: str | None) -> str:
        text = " ".join((text or "").split())
        return text if len(text) <= width else text[: width - 1] + "…"

    marks = {"ADD": "+", "UPDATE": "~", "DELETE": "-", "END": "x", "FORGET": "-",
             "RESTORE": "^", "UNDO": "^", "NONE": "="}
    parts = []
    for c in changes:
        if c["action"] == "UPDATE":
            parts.append(f"~{cut(c['old_text'])!r}→{cut(c['text'])!r}")
        else:
            parts.append(f"{marks.get(c['action'], '?')}{cut(c['text'])!r}")
    return " ".join(parts) or "(no change)"


def run_scenario(mem, scenario: dict[str, Any], today: str, *, user_id: str | None = None,
                 log: Callable[[str], None] | None = None, label: str = "") -> dict[str, Any]:
    """Feed one scenario's turns to ``mem`` for a fresh user and snapshot after each turn.

    ``user_id`` defaults to ``mq-<scenario id>-<random>`` (fresh even in a reused data
    dir). The scenario's ``seed`` memories are stored first (:func:`insert_seeds`).
    Returns ``{"id", "lang", "user_id", "seeds", "turns": [snapshot, ...]}`` where
    ``seeds`` is ``[{"id", "text", "type"}, ...]`` ([] without seeds; ``seed_error``
    is added when storing them failed) and a snapshot is what
    :func:`bench.quality_score.score` reads (``active``, ``added``, ``changes``,
    ``history``, ``llm_calls``, ``prompt_tokens``, ``seconds``) plus ``turn``,
    ``category``, ``user``, ``completion_tokens`` and ``error`` (the add's failure, e.g.
    the LLM was unreachable: then the turn stored nothing). A turn without an
    ``assistant`` reply sends the user message alone."""
    uid = user_id or f"mq-{scenario['id']}-{uuid.uuid4().hex[:8]}"
    when = turn_time(today)
    seen: set[str] = set()
    snaps: list[dict[str, Any]] = []
    seed_error = None
    try:
        seeds = insert_seeds(mem, uid, scenario.get("seed") or [], when)
    except Exception as exc:  # noqa: BLE001 - recorded; the seeds then count as lost
        seed_error = f"{type(exc).__name__}: {exc}"
        seeds = [{"id": None, "text": s.get("text"), "type": s.get("type")}
                 for s in scenario.get("seed") or []]
        if log:
            log(f"{label}{scenario['id']} seeds not stored: {seed_error}")
    seen.update(s["id"] for s in seeds if s["id"])
    for i, turn in enumerate(scenario["turns"]):
        messages = [{"role": "user", "content": turn["user"]}]
        if turn.get("assistant"):
            messages.append({"role": "assistant", "content": turn["assistant"]})
        before = _llm_stats(mem)
        error = None
        start = time.perf_counter()
        try:
            result = mem.add(messages, uid, infer=True, created_at=when)
            error = getattr(result, "error", None)  # Memory.add's per-call failure reason
        except Exception as exc:  # noqa: BLE001 - a benchmark records and goes on
            result, error = [], f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        after = _llm_stats(mem)
        changes = [{"action": c.event, "id": c.id, "text": c.text, "old_text": c.old_text,
                    "type": c.type} for c in result]
        active = [{"id": r.id, "text": r.text, "type": r.type} for r in mem.list(uid, limit=1000)]
        seen.update(m["id"] for m in active)
        seen.update(c["id"] for c in changes if c["id"])
        snap = {
            "turn": i, "category": turn.get("category"), "user": turn["user"],
            "changes": changes,
            "added": [c["id"] for c in changes if c["action"] == "ADD" and c["id"]],
            "active": active,
            "history": _history(mem, uid, seen),
            "llm_calls": after.get("calls", 0) - before.get("calls", 0),
            "prompt_tokens": after.get("prompt_tokens", 0) - before.get("prompt_tokens", 0),
            "completion_tokens": after.get("completion_tokens", 0) - before.get("completion_tokens", 0),
            "seconds": round(seconds, 3),
            "error": error,
        }
        snaps.append(snap)
        if log:
            err = f" ERROR {error}" if error else ""
            log(f"{label}{scenario['id']} t{i} {turn.get('category', '?'):<20} "
                f"{seconds:6.1f}s {snap['llm_calls']} calls  {_summary(changes)}{err}")
    record = {"id": scenario["id"], "lang": scenario.get("lang"), "user_id": uid,
              "seeds": seeds, "turns": snaps}
    if seed_error:
        record["seed_error"] = seed_error
    return record


def run_scenarios(mem, scenarios: list[dict[str, Any]], today: str, *,
                  log: Callable[[str], None] | None = None,
                  on_scenario: Callable[[list[dict[str, Any]]], None] | None = None,
                  label: str = "") -> list[dict[str, Any]]:
    """:func:`run_scenario` for each scenario in order (one fresh user each); calls
    ``on_scenario(records_so_far)`` after each one; ``label`` prefixes the progress
    lines. Returns the per-scenario records."""
    records: list[dict[str, Any]] = []
    for k, scen in enumerate(scenarios, start=1):
        records.append(run_scenario(mem, scen, today, log=log,
                                    label=f"{label}[{k}/{len(scenarios)}] "))
        if on_scenario:
            on_scenario(records)
    return records


def evaluate(scenarios: list[dict[str, Any]], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Score ``records`` (from :func:`run_scenarios`, possibly fewer than ``scenarios``:
    an interrupted run) against ``scenarios``; the records' ``seeds`` go to the scorer."""
    done = {r["id"]: r for r in records}
    ran = [s for s in scenarios if s["id"] in done]
    return score(ran, [done[s["id"]] for s in ran])


def summarize_runs(scenarios: list[dict[str, Any]], runs: list[list[dict[str, Any]]]
                   ) -> dict[str, Any]:
    """Score every run (a list of per-scenario records each) and combine them: returns
    ``{"runs": [{"run", "scenarios_run", "metrics", "failures", "unmatched",
    "records"}, ...], "metrics", "table", "failures", "unmatched"}`` plus, for more than
    one run, ``metrics_spread`` (:func:`bench.quality_score.aggregate_runs` of the
    complete runs, or of all when none is complete yet) with ``metrics`` its means and
    ``table`` in ``mean (min–max)`` cells. One run: its own metrics and table."""
    keys = ("all", "categories", "langs", "turns")
    entries, results = [], []
    for k, records in enumerate(runs, start=1):
        result = evaluate(scenarios, records)
        results.append(result)
        entries.append({"run": k, "scenarios_run": len(records),
                        "metrics": {key: result[key] for key in keys},
                        "failures": result["failures"], "unmatched": result["unmatched"],
                        "records": records})
    if len(results) <= 1:
        result = results[0] if results else evaluate(scenarios, [])
        return {"runs": entries, "metrics": {key: result[key] for key in keys},
                "table": format_table(result), "failures": result["failures"],
                "unmatched": result["unmatched"]}
    complete = [r for r, e in zip(results, entries) if e["scenarios_run"] == len(scenarios)]
    agg = aggregate_runs(complete or results)
    return {"runs": entries, "metrics": run_means(agg), "metrics_spread": agg,
            "runs_aggregated": agg["runs"], "table": format_table(agg),
            "failures": [{"run": e["run"], **f} for e in entries for f in e["failures"]],
            "unmatched": [{"run": e["run"], **u} for e in entries for u in e["unmatched"]]}


# ---- building the product's Memory --------------------------------------------------------
def git_commit() -> str:
    """``git rev-parse --short HEAD`` of the repository ("" when unavailable)."""
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def git_dirty() -> bool | None:
    """True when the work tree has uncommitted changes under ``memory/`` (the measured
    code is then not exactly ``git_commit``); None when git is unavailable."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "memory"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def build_memory(data_dir: str | os.PathLike, env_file: str | None = None,
                 **overrides: Any):
    """A ``Memory`` with the product's settings (``.env`` of the repository and the
    environment, like ``Memory.from_env``) on a SQLite store in ``data_dir``, with the
    real configured LLM. For the offline default (no OPENAI_BASE_URL/OPENAI_API_KEY) the
    local llama.cpp server is started first (or reused) with the product's own settings,
    so its pid and log stay in the usual data folder, not in the temporary one.

    (``bench.common.make_memory`` is not used: it reads no ``.env`` and puts a NullLLM in.)"""
    from memory import Memory, load_config

    env = env_file if env_file is not None else str(REPO / ".env")
    product = load_config(env_file=env, **overrides)
    if product.uses_local_llm:
        from memory.llm import local_server as local_llm
        local_llm.ensure_server(product)
    cfg = load_config(env_file=env, **{**overrides, "memory_data_dir": str(data_dir)})
    return Memory(cfg)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (see the module docstring). Returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=SPLITS, default="tune")
    ap.add_argument("--limit", type=int, default=None, help="run only the first N scenarios of the split")
    ap.add_argument("--only", default=None, metavar="REGEX",
                    help="run only the split's scenarios whose id matches REGEX (e.g. 'career|move')")
    ap.add_argument("--runs", type=int, default=1,
                    help="run the split N times (fresh users each time); cells: mean (min–max)")
    ap.add_argument("--out", default=None,
                    help="JSON results (default bench/results/memory_quality_<split>.json; '' for none)")
    ap.add_argument("--data-dir", default=None,
                    help="keep the SQLite store here (default: a fresh temporary folder)")
    ap.add_argument("--data", default=str(DATA), help="the labelled set")
    ap.add_argument("--temperature", type=float, default=None,
                    help="override LLM_TEMPERATURE (default: the product setting)")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    data = load_data(args.data)
    scenarios = select(data["scenarios"], args.split, args.limit)
    if args.only:
        scenarios = [s for s in scenarios if re.search(args.only, s["id"])]
    today = data.get("today") or date.today().isoformat()
    out = Path(args.out) if args.out else (RESULTS / f"memory_quality_{args.split}.json"
                                           if args.out is None else None)
    overrides = {} if args.temperature is None else {"llm_temperature": args.temperature}

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    tmp = None
    if args.data_dir:
        data_dir = Path(args.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="memory-quality-")
        data_dir = Path(tmp.name)
    n_turns = sum(len(s["turns"]) for s in scenarios)
    n_seeds = sum(len(s.get("seed") or []) for s in scenarios)
    log(f"memory quality: split {args.split}, {len(scenarios)} scenarios, {n_turns} turns"
        f"{f', {n_seeds} seeds' if n_seeds else ''}"
        f"{f', {args.runs} runs' if args.runs > 1 else ''}, data dir {data_dir}")
    mem = build_memory(data_dir, **overrides)
    started = time.time()
    meta = {
        "benchmark": "memory_quality", "split": args.split, "limit": args.limit, "only": args.only,
        "git_commit": git_commit(), "memory_dirty": git_dirty(),
        "git_describe": git_describe(), "model": mem.llm.model,
        "llm_base_url": getattr(mem.llm, "base_url", None),
        "local_llm": mem.config.uses_local_llm,
        "temperature": mem.config.llm_temperature, "embedder": mem.embedder.id,
        "today": today, "data_file": str(Path(args.data).resolve()),
        "data_version": data.get("version"), "scenarios_planned": len(scenarios),
        "turns_planned": n_turns, "seeds_planned": n_seeds, "runs_planned": args.runs,
    }
    runs: list[list[dict[str, Any]]] = []
    run_seconds: list[float] = []

    def payload() -> dict[str, Any]:
        summary = summarize_runs(scenarios, runs)
        for entry, secs in zip(summary["runs"], run_seconds + [None] * len(runs)):
            entry["seconds"] = secs if secs is None else round(secs, 1)
        return {**meta, "seconds": round(time.time() - started, 1),
                "scenarios_run": len(runs[-1]) if runs else 0, "runs_run": len(runs),
                **summary}

    def save(_records: list[dict[str, Any]] | None = None) -> None:
        if out is not None:
            write_json_file(out, payload())

    try:
        log(f"model {meta['model']} at {meta['llm_base_url']}, commit {meta['git_commit']}")
        for k in range(1, args.runs + 1):
            records: list[dict[str, Any]] = []
            runs.append(records)
            run_started = time.time()

            def on_scenario(done: list[dict[str, Any]], records=records) -> None:
                records[:] = done
                save()

            run_scenarios(mem, scenarios, today, log=log, on_scenario=on_scenario,
                          label=f"[run {k}/{args.runs}] " if args.runs > 1 else "")
            run_seconds.append(time.time() - run_started)
    finally:
        mem.close()
        if tmp is not None:
            tmp.cleanup()
    final = payload()
    if out is not None:
        from bench.common import machine_info
        final["machine"] = machine_info()
        write_json_file(out, final)
    turns = final["metrics"]["turns"]
    print(f"memory quality — split {args.split}, "
          f"{f'{args.runs} runs × ' if args.runs > 1 else ''}{len(scenarios)} scenarios, "
          f"{turns:.0f} turns{' each' if args.runs > 1 else ''}, model {meta['model']}, "
          f"commit {meta['git_commit']}"
          f"{' (memory/ modified)' if meta['memory_dirty'] else ''}, "
          f"{final['seconds']:.0f} s")
    if args.runs > 1:
        print(f"cells: mean (min–max) over {final['runs_aggregated']} runs")
    print()
    print(final["table"])
    if out is not None:
        print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
