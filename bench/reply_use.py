"""Reply-use benchmark: do chat replies draw on what is remembered? (issue 12, part D)

Every case of ``bench/data/reply_use.json`` is a FRESH user (one user id per case) with
3–6 stored memories — written raw through the public API exactly as the extractor stores
them (``Memory.add(text, uid, infer=False, memory_type=<topic's type>,
importance=<topic's importance>, tags=[topic])``, see ``memory/write/topics.py``), 1–2 of them
irrelevant distractors — and one suggestion-style prompt ("Any ideas for what I could do
this weekend?", "我晚上吃什么好？") asked in a NEW chat::

    turn = mem.chat(prompt, uid)      # new thread
    reply = turn.run()                # turn.changes() is never called

The check is LLM-free (:func:`score_reply`): the reply *uses a relevant memory* when it
matches any of the case's ``expect_any`` regexes (case-insensitive, on NFKC text), each
naming a relevant stored preference or fact (the sport, the city, the pet's name,
"vegetarian|素食" …). An ``avoid`` regex (e.g. meat for a vegetarian) found in a sentence
of the reply without a negation cue ("avoid", "instead of", "不", "别" …) is a violation
and fails the case. Alongside, the *retrieval* check asks whether the relevant memory was
given to the model at all: any ``expect_any`` regex matching the used memories
(``turn.used.memories``) or the profile (``turn.used.profile``).

Target (issue 12): share of replies using a relevant memory >= 0.7 on the default local
model.

The LLM is the one the settings name (``.env`` / environment, as ``Memory.from_env``):
by default the offline local llama.cpp model, started first when it is not running
(``bench.memory_quality.build_memory``). The store is a real SQLite file in a fresh
temporary folder.

Usage::

    python bench/reply_use.py                                   # all 20 cases
    python bench/reply_use.py --limit 2 --out /tmp/ru.json
    python bench/reply_use.py --temperature 0                   # override LLM_TEMPERATURE

Progress goes to stderr (one line per case), the markdown table to stdout, JSON (git
commit, model, temperature, metrics, per-case records) to ``--out`` (default
``bench/results/reply_use.json``), rewritten after every case so an interrupted run keeps
what it measured.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import unicodedata
import uuid
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # allow `python bench/reply_use.py` from anywhere
    sys.path.insert(0, str(REPO))

DATA = REPO / "bench" / "data" / "reply_use.json"
RESULTS = REPO / "bench" / "results"
TARGET = 0.7

#: a sentence holding one of these does not *recommend* what an ``avoid`` regex names
#: ("skip the steak", "instead of chicken", "nut-free", "不要吃麻辣的")
NEGATION = re.compile(
    r"\b(no|not|never|avoid\w*|skip\w*|without|instead|rather than|free|allerg\w*|"
    r"don't|doesn't|can't|cannot|won't|shouldn't|replace\w*|swap\w*|substitut\w*|"
    r"steer clear|stay away)\b|-free|不|别|避免|没有|代替|替代|过敏|忌|无", re.I)
_SENTENCE = re.compile(r"(?<=[.!?。！？;；])\s*|\n+")


# ---- data ---------------------------------------------------------------------------------
def load_data(path: str | os.PathLike = DATA) -> dict[str, Any]:
    """Read the scripted set (``{"version", "description", "cases": [...]}``)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def norm(text: str) -> str:
    """NFKC, case-folded, typographic apostrophes made plain: what the regexes see."""
    text = unicodedata.normalize("NFKC", text or "").replace("\u2019", "'").replace("\u2018", "'")
    return text.casefold()


def matching(patterns: list[str], text: str) -> list[str]:
    """The regexes of ``patterns`` found in ``text`` (case-insensitive, NFKC)."""
    t = norm(text)
    return [p for p in patterns if re.search(p, t, re.I)]


def avoid_hits(patterns: list[str], text: str) -> list[str]:
    """The sentences of ``text`` that match an ``avoid`` regex and hold no negation cue
    (:data:`NEGATION`): a recommendation of what the user cannot have."""
    if not patterns:
        return []
    out = []
    for sentence in _SENTENCE.split(norm(text)):
        if sentence.strip() and any(re.search(p, sentence, re.I) for p in patterns) \
                and not NEGATION.search(sentence):
            out.append(sentence.strip())
    return out


def score_reply(case: dict[str, Any], reply: str) -> dict[str, Any]:
    """The LLM-free reply check: ``{"uses": [matched expect_any regexes], "avoid":
    [violating sentences], "pass": bool}`` — pass when something matched and nothing
    violated."""
    uses = matching(case["expect_any"], reply)
    bad = avoid_hits(case.get("avoid") or [], reply)
    return {"uses": uses, "avoid": bad, "pass": bool(uses) and not bad}


def retrieved(case: dict[str, Any], memories: list[str], profile: str) -> list[str]:
    """The ``expect_any`` regexes found in what the model was given (used memories and
    profile): non-empty when a relevant memory reached the prompt."""
    return matching(case["expect_any"], "\n".join([*memories, profile or ""]))


# ---- the case loop (takes any Memory: the real one, or one on the scripted server) --------
def store_memories(mem, case: dict[str, Any], uid: str) -> None:
    """Write the case's memories raw, with the type, importance and tag the extractor
    derives from the topic (``memory.write.topics``)."""
    from memory.write import topics

    for m in case["memories"]:
        topic = topics.get(m["topic"])
        mem.add(m["text"], uid, infer=False, memory_type=m.get("type", topic.type),
                importance=m.get("importance", topic.importance), tags=[topic.name])


def run_case(mem, case: dict[str, Any], *, user_id: str | None = None,
             log: Callable[[str], None] | None = None, label: str = "") -> dict[str, Any]:
    """Store one case's memories for a fresh user, ask its prompt in a new chat and check
    the reply. ``user_id`` defaults to ``ru-<case id>-<random>``. Returns the record
    (``id``, ``lang``, ``user_id``, ``prompt``, ``reply``, ``used_memories``,
    ``profile``, ``retrieved``, ``uses``, ``avoid``, ``pass``, ``seconds``, ``error``)."""
    uid = user_id or f"ru-{case['id']}-{uuid.uuid4().hex[:8]}"
    store_memories(mem, case, uid)
    error, reply, used, profile = None, "", [], ""
    start = time.perf_counter()
    try:
        turn = mem.chat(case["prompt"], uid)
        used = [m.text for m in turn.used.memories]
        profile = turn.used.profile or ""
        reply = turn.run()
        error = turn.error
    except Exception as exc:  # noqa: BLE001 - a benchmark records and goes on
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    check = score_reply(case, reply)
    if error:
        check["pass"] = False
    rec = {"id": case["id"], "lang": case.get("lang"), "user_id": uid, "prompt": case["prompt"],
           "reply": reply, "used_memories": used, "profile": profile,
           "retrieved": retrieved(case, used, profile), **check,
           "seconds": round(seconds, 2), "error": error}
    if log:
        flat = " ".join(reply.split())
        flat = flat if len(flat) <= 90 else flat[:89] + "…"
        mark = "PASS" if rec["pass"] else "FAIL"
        extra = (f" AVOID {rec['avoid'][0][:40]!r}" if rec["avoid"] else "") + \
                (f" ERROR {error}" if error else "")
        log(f"{label}{case['id']:<22} {mark} retrieved={'y' if rec['retrieved'] else 'n'} "
            f"{seconds:6.1f}s  {flat!r}{extra}")
    return rec


def run_cases(mem, cases: list[dict[str, Any]], *, log: Callable[[str], None] | None = None,
              on_case: Callable[[list[dict[str, Any]]], None] | None = None
              ) -> list[dict[str, Any]]:
    """:func:`run_case` for each case in order (one fresh user each); calls
    ``on_case(records_so_far)`` after each one. Returns the records."""
    records: list[dict[str, Any]] = []
    for k, case in enumerate(cases, start=1):
        records.append(run_case(mem, case, log=log, label=f"[{k}/{len(cases)}] "))
        if on_case:
            on_case(records)
    return records


# ---- metrics --------------------------------------------------------------------------------
def metrics(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per language (``en``, ``zh``) and ``all``: ``n``, ``use_rate`` (share of replies
    that pass), ``retrieved_rate`` (share where a relevant memory reached the prompt),
    ``avoid_violations`` (cases), ``errors``, ``s_per_reply``. Rates are None for n=0."""
    groups = {"en": [r for r in records if r["lang"] == "en"],
              "zh": [r for r in records if r["lang"] == "zh"], "all": records}
    out = {}
    for name, rs in groups.items():
        n = len(rs)
        out[name] = {
            "n": n,
            "use_rate": round(sum(r["pass"] for r in rs) / n, 3) if n else None,
            "retrieved_rate": round(sum(bool(r["retrieved"]) for r in rs) / n, 3) if n else None,
            "avoid_violations": sum(bool(r["avoid"]) for r in rs),
            "errors": sum(bool(r["error"]) for r in rs),
            "s_per_reply": round(sum(r["seconds"] for r in rs) / n, 1) if n else None,
        }
    return out


def format_table(m: dict[str, dict[str, Any]]) -> str:
    """The metrics as a markdown table (one row per language and ``all``)."""
    def f(v: Any, digits: int = 3) -> str:
        return "–" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))

    rows = ["| lang | cases | replies using a relevant memory | relevant memory retrieved "
            "| avoid violations | errors | s/reply |",
            "|---|---|---|---|---|---|---|"]
    for name in ("en", "zh", "all"):
        r = m[name]
        label = f"**{name}**" if name == "all" else name
        rows.append(f"| {label} | {r['n']} | {f(r['use_rate'])} | {f(r['retrieved_rate'])} | "
                    f"{r['avoid_violations']} | {r['errors']} | {f(r['s_per_reply'], 1)} |")
    return "\n".join(rows)


# ---- CLI --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """CLI entry point (see the module docstring). Returns the exit code."""
    from bench.common import git_describe, write_json_file
    from bench.memory_quality import build_memory, git_commit, git_dirty

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="run only the first N cases")
    ap.add_argument("--out", default=None,
                    help="JSON results (default bench/results/reply_use.json; '' for none)")
    ap.add_argument("--data", default=str(DATA), help="the scripted set")
    ap.add_argument("--temperature", type=float, default=None,
                    help="override LLM_TEMPERATURE (default: the product setting)")
    args = ap.parse_args(argv)

    data = load_data(args.data)
    cases = data["cases"][:args.limit] if args.limit is not None else data["cases"]
    out = Path(args.out) if args.out else (RESULTS / "reply_use.json" if args.out is None else None)
    overrides = {} if args.temperature is None else {"llm_temperature": args.temperature}

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    tmp = tempfile.TemporaryDirectory(prefix="reply-use-")
    log(f"reply use: {len(cases)} cases, data dir {tmp.name}")
    mem = build_memory(tmp.name, **overrides)
    started = time.time()
    meta = {
        "benchmark": "reply_use", "limit": args.limit, "git_commit": git_commit(),
        "git_describe": git_describe(),
        "memory_dirty": git_dirty(), "model": mem.llm.model,
        "llm_base_url": getattr(mem.llm, "base_url", None),
        "local_llm": mem.config.uses_local_llm, "temperature": mem.config.llm_temperature,
        "embedder": mem.embedder.id, "data_file": str(Path(args.data).resolve()),
        "data_version": data.get("version"), "cases_planned": len(cases), "target": TARGET,
    }

    def payload(records: list[dict[str, Any]]) -> dict[str, Any]:
        m = metrics(records)
        return {**meta, "seconds": round(time.time() - started, 1), "cases_run": len(records),
                "table": format_table(m), "metrics": m, "records": records}

    def save(records: list[dict[str, Any]]) -> None:
        if out is not None:
            write_json_file(out, payload(records))

    records: list[dict[str, Any]] = []
    try:
        log(f"model {meta['model']} at {meta['llm_base_url']}, temperature "
            f"{meta['temperature']}, commit {meta['git_commit']}")
        records = run_cases(mem, cases, log=log, on_case=save)
    finally:
        mem.close()
        tmp.cleanup()
    final = payload(records)
    print(final["table"])
    use = final["metrics"]["all"]["use_rate"]
    print(f"\ntarget: replies using a relevant memory >= {TARGET} "
          f"({'met' if use is not None and use >= TARGET else 'NOT met'}: {use})")
    if out is not None:
        write_json_file(out, final)
        log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
