"""Memory-quality benchmark for Mem0 OSS (``mem0ai`` 2.x), scored by OUR scorer.

Runs the labelled set of ``bench/memory_quality.py`` (same data file, same split
selection, same per-turn snapshot format) through Mem0 as its users would run it fully
locally, and scores the snapshots with ``bench.quality_score.score`` so the table rows are
comparable with the product's (``bench/results/memory_quality_<split>.json``).

How Mem0 is run (the Mem0 half is a subprocess of this script in Mem0's own virtualenv,
exactly like ``bench/mem0_compare.py``)::

    python -m venv --system-site-packages ~/.cache/memory-chat/mem0-venv
    ~/.cache/memory-chat/mem0-venv/bin/pip install mem0ai==2.2.1

* LLM: Mem0's ``openai`` provider pointed at the local OpenAI-compatible server (default
  ``http://127.0.0.1:8766/v1``, the product's llama.cpp server; the model alias is read
  from its ``/v1/models``), ``temperature=0``, ``max_tokens=1000``. Mem0 asks for
  ``response_format={"type": "json_object"}``, which llama-cpp-python supports.
* Vector store: Mem0's default, Qdrant in embedded local mode, in a temporary folder;
  history SQLite database in the same folder; ``MEM0_TELEMETRY=False``.
* Embedder: Mem0 has no offline embedder that ships its weights in a package and no
  custom-embedder provider, so (as in ``bench/mem0_compare.py``) its ``embedding_model``
  attribute is replaced by a wrapper around OUR USE-multilingual embedder (512 dims;
  ``bench.mem0_side._USEForMem0`` plus a batched ``embed_batch``).
* spaCy is not installed in the venv (its model is a download), so Mem0's entity linking
  and BM25 lemmatisation are off — what ``pip install mem0ai`` gives offline. Neither is
  on the ``add`` decision path (they only feed search).

Per scenario (a fresh ``user_id``) and per turn::

    m.add([{"role": "user", ...}, {"role": "assistant", ...}], user_id=uid)   # infer=True

then ``m.get_all(filters={"user_id": uid})`` (the active memories), ``m.history(id)`` for
every memory id seen so far (Mem0's ``ADD``/``UPDATE``/``DELETE`` rows,
``old_memory``/``new_memory`` → our ``old_text``/``new_text``), the changes the add
returned, LLM calls (HTTP requests to ``/chat/completions``, retries included), prompt
tokens (Mem0's ``response_callback``, ``usage.prompt_tokens``) and the add's wall time.

Mem0 2.x OSS facts that shape the numbers (read from the installed source):

* ``add(infer=True)`` is the "V3 additive" pipeline: ONE LLM call per turn that may only
  ADD memories (hash de-duplication, no UPDATE/DELETE), so ``update``/``forget`` can only
  pass if the old fact was never stored;
* the extraction system prompt alone is ~7,900 tokens (Qwen2.5 tokenizer): with the
  product's server at ``--n_ctx 4096`` every call fails ("exceeds context window") and the
  turn stores nothing (recorded as ``error``). Point ``--base-url`` at a server of the same
  GGUF with ``--n_ctx 16384`` to measure Mem0 itself;
* OSS ``add`` takes no date (``timestamp`` is platform-only and raises): Mem0 puts the
  machine's UTC date in the prompt as "Observation Date"/"Current Date". The run records
  that date; when it differs from the set's ``today`` the ``relative_date`` rows are not
  comparable (a warning is printed). ``--pin-today`` makes Mem0's prompt use the set's
  ``today`` instead (patches ``mem0.configs.prompts._resolve_dates``'s default; off by
  default).

Usage::

    python bench/mem0_quality.py --split report --limit 1
    python bench/mem0_quality.py --split report --base-url http://127.0.0.1:8767/v1
    python bench/mem0_quality.py --split tune --out ''          # no JSON file

Progress goes to stderr (one line per turn), the markdown table
(``quality_score.format_table``) to stdout, JSON (settings, metrics, failures, per-turn
records) to ``--out`` (default ``bench/results/mem0_quality_<split>.json``), rewritten
after every scenario so an interrupted run keeps what it measured.

The Mem0 half (the subprocess) is :mod:`bench.mem0_quality_worker`; this module holds the
command line, the job it hands over, and the scoring.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # allow `python bench/mem0_quality.py` from anywhere
    sys.path.insert(0, str(REPO))

from bench.common import write_json_file  # noqa: E402
from bench.mem0_quality_worker import worker  # noqa: E402
from bench.memory_quality import DATA, RESULTS, SPLITS, load_data, select  # noqa: E402
from bench.quality_score import format_table, score  # noqa: E402

DEFAULT_VENV = Path.home() / ".cache" / "memory-chat" / "mem0-venv"
DEFAULT_BASE_URL = "http://127.0.0.1:8766/v1"
MEM0_VERSION = "2.2.1"


# ---- the parent (system python): data, subprocess, scoring -------------------------------------
def model_alias(base_url: str, timeout: float = 300.0) -> str:
    """The first model id of ``<base_url>/models`` (the llama.cpp server's alias; a busy
    llama-cpp-python server answers only between requests, hence the long timeout)."""
    with urllib.request.urlopen(base_url.rstrip("/") + "/models", timeout=timeout) as r:
        return json.loads(r.read())["data"][0]["id"]


def evaluate(scenarios: list[dict[str, Any]], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Score ``records`` (possibly fewer than ``scenarios``) with our scorer."""
    done = {r["id"]: r["turns"] for r in records}
    ran = [s for s in scenarios if s["id"] in done]
    return score(ran, [done[s["id"]] for s in ran])


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (see the module docstring). Returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=SPLITS, default="tune")
    ap.add_argument("--limit", type=int, default=None, help="only the first N scenarios of the split")
    ap.add_argument("--out", default=None,
                    help="JSON results (default bench/results/mem0_quality_<split>.json; '' for none)")
    ap.add_argument("--data", default=str(DATA), help="the labelled set")
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="virtualenv with mem0ai")
    ap.add_argument("--base-url", default=DEFAULT_BASE_URL, help="OpenAI-compatible LLM server")
    ap.add_argument("--model", default=None, help="model name (default: the server's first alias)")
    ap.add_argument("--pin-today", action="store_true",
                    help="make Mem0's prompt date the set's 'today' instead of the machine's")
    ap.add_argument("--resume", type=Path, default=None, metavar="JSON",
                    help="a previous (interrupted) results file of the same split: its scenarios "
                         "are kept, not run again, and scored together with the new ones")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.worker_out)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    python = args.venv / "bin" / "python"
    if not python.exists():
        log(f"no mem0 virtualenv at {args.venv}; create it (see the module docstring)")
        return 2
    data = load_data(args.data)
    scenarios = select(data["scenarios"], args.split, args.limit)
    today = data["today"]
    done: list[dict[str, Any]] = []
    if args.resume:
        previous = json.loads(args.resume.read_text(encoding="utf-8"))
        wanted = {s["id"] for s in scenarios}
        done = [r for r in previous.get("runs", []) if r.get("id") in wanted]
        seconds_before = float(previous.get("seconds") or 0)
        log(f"resuming {args.resume}: {len(done)} scenarios kept")
    else:
        seconds_before = 0.0
    kept = {r["id"] for r in done}
    all_scenarios, scenarios = scenarios, [s for s in scenarios if s["id"] not in kept]
    try:
        model = args.model or model_alias(args.base_url)
    except OSError as exc:
        log(f"LLM server {args.base_url} unreachable: {exc}")
        return 2
    out = Path(args.out) if args.out else (RESULTS / f"mem0_quality_{args.split}.json"
                                           if args.out is None else None)
    n_turns = sum(len(s["turns"]) for s in scenarios)
    meta: dict[str, Any] = {
        "benchmark": "mem0_quality", "system": "mem0 OSS", "split": args.split,
        "limit": args.limit, "model": model, "llm_base_url": args.base_url,
        "llm_settings": {"temperature": 0, "max_tokens": 1000, "response_format": "json_object"},
        "add_call": "m.add([user, assistant], user_id=uid)  # infer=True (default)",
        "today": today, "pin_today": args.pin_today,
        "data_file": str(Path(args.data).resolve()), "data_version": data.get("version"),
        "scenarios_planned": len(scenarios), "turns_planned": n_turns,
    }
    log(f"mem0 quality: split {args.split}, {len(scenarios)} scenarios, {n_turns} turns, "
        f"model {model} at {args.base_url}, venv {args.venv}")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="mem0-quality-job-") as tmp:
        job, res_file = Path(tmp) / "job.json", Path(tmp) / "records.json"
        write_json_file(job, {"scenarios": scenarios, "model": model, "base_url": args.base_url,
                     "today": today, "pin_today": args.pin_today})
        env = {**os.environ, "MEM0_TELEMETRY": "False", "MEM0_DIR": str(Path(tmp) / "mem0-home"),
               "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
        cmd = [str(python), str(Path(__file__).resolve()), "--worker", str(job),
               "--worker-out", str(res_file)]
        worker_error = None
        try:
            # the worker's stdout (Mem0 may print notices) goes to our stderr: stdout is the table
            try:
                err_fd = sys.stderr.fileno()
            except (AttributeError, OSError, ValueError):  # a captured stderr (pytest)
                err_fd = 2
            proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=err_fd)
            if proc.returncode != 0:
                worker_error = f"mem0 worker exited with {proc.returncode}"
        except KeyboardInterrupt:
            worker_error = "interrupted"
        got = json.loads(res_file.read_text(encoding="utf-8")) if res_file.exists() else {}
    records = done + got.get("records", [])
    info = got.get("info", {})
    scenarios = all_scenarios
    if worker_error:
        log(f"{worker_error}; scoring the {len(records)} scenarios it finished")
    if not records:
        return 1
    result = evaluate(scenarios, records)
    prompt_date = info.get("prompt_date")
    dates_ok = prompt_date == today
    turns = [t for r in records for t in r["turns"]]
    errors = [t["error"] for t in turns if t.get("error")]
    final = {
        **meta, "mem0": info, "seconds": round(seconds_before + time.time() - started, 1),
        "resumed_from": str(args.resume) if args.resume else None,
        "scenarios_run": len(records), "worker_error": worker_error,
        "relative_date_comparable": dates_ok,
        "turn_errors": len(errors), "first_error": errors[0] if errors else None,
        "table": format_table(result),
        "metrics": {k: result[k] for k in ("all", "categories", "langs", "turns")},
        "failures": result["failures"], "unmatched": result["unmatched"], "runs": records,
    }
    if out is not None:
        from bench.common import machine_info
        final["machine"] = machine_info()
        write_json_file(out, final)
    print(f"Mem0 OSS {info.get('mem0_version', '?')} memory quality — split {args.split}, "
          f"{len(records)} scenarios, {result['turns']} turns, {final['seconds']:.0f} s")
    print(f"  LLM: {model} at {args.base_url} (mem0 'openai' provider, temperature 0, "
          f"max_tokens 1000, json_object)")
    print(f"  embedder: {info.get('embedder', '?')}; vector store: {info.get('vector_store', '?')}")
    print(f"  prompt date {prompt_date} vs set's today {today}: relative_date rows "
          f"{'comparable' if dates_ok else 'NOT comparable'}")
    if errors:
        print(f"  {len(errors)}/{len(turns)} turns failed; first: {errors[0][:300]}")
    print()
    print(final["table"])
    if out is not None:
        print(f"\nresults: {out}")
    return 0 if not worker_error else 1


if __name__ == "__main__":
    raise SystemExit(main())
