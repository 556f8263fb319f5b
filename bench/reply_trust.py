"""Reply benchmark that can fail (issue 23): does a reply honour what is remembered?

Each case of ``bench/data/reply_trust.json`` is a FRESH user with 2–5 memories written
as the write path stores them — raw through ``Memory.add(text, uid, infer=False,
memory_type=<topic's type>, importance=<topic's importance>, tags=[topic],
created_at=<days ago>)``, and, exactly as the write path's ``memory.write.constraints.mark``
does, the ``constraint`` tag (type profile, importance ≥ 4) on the memories the
embedder classifier calls constraints — then one message in a NEW chat
(``mem.chat(prompt, uid).run()``; nothing is learned from it). LLM-free checks, written
with the cases before any run:

(a) **uses**: the reply matches one of the case's ``expect_any`` regexes (a relevant
    memory named). Cases of kind constraint, suggest, changed, identity.
(b) **contradicts**: a sentence of the reply matches an ``avoid`` regex without a
    negation cue (``bench.reply_use.avoid_hits``): meat to a vegetarian, peanuts to an
    allergic user, a former city as the current one.
(c) **invents**: the reply states a fact about the user that is not stored. A claim is
    a "since/as/because you <verb> …" or "you love/enjoy …" span (English) or
    "因为/既然你…", "你喜欢…" (Chinese); it is grounded when a content word (4-letter
    prefix) or a CJK bigram of it occurs in the stored memories or the message. Plus
    the case's own ``invent`` regexes (e.g. the old prompt's "climbing"), in every
    language.
(d) **profile coverage** (kind profile, "what do you know about me"): the share of the
    case's ``keys`` (one regex per stored memory) found in the reply.
(e) **second person** (kinds profile, identity): the reply addresses the user ("you",
    "你", "vous" …) and never speaks as the user ("I'm Tom", "我是小周").

Also the seconds to the first token and to the whole reply. Targets (report split):
contradictions 0, invented ≤ 3%, uses ≥ .85, coverage ≥ .90, second person ≥ .95.

Usage::

    python bench/reply_trust.py --split tune                  # one run
    python bench/reply_trust.py --split report --runs 3 --out bench/results/reply_trust_report.json

JSON (``git describe --dirty``, model, temperature, per-run metrics, their mean and
spread, per-case records) goes to ``--out``; the markdown table to stdout.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import git_describe  # noqa: E402
from bench.reply_use import avoid_hits, matching, norm  # noqa: E402

DATA = REPO / "bench" / "data" / "reply_trust.json"
USES_KINDS = {"constraint", "suggest", "changed", "identity"}
VOICE_KINDS = {"profile", "identity"}

#: second-person address per language (any one is enough)
YOU = {"en": r"\byou\b|\byour\b", "zh": r"你|您", "fr": r"\bvous\b|\btu\b|\bton\b|\bta\b|\btes\b|\bvotre\b",
       "es": r"\btú\b|\btu\b|\busted\b|\bte\b|\beres\b|\bvives\b|\btienes\b",
       "de": r"\bdu\b|\bdich\b|\bdein|\bsie\b|\bihr\b|\bihnen\b", "ja": r"あなた|さん",
       "ko": r"당신|님|지민", "it": r"\btu\b|\bti\b|\btuo\b|\btua\b|\bsei\b|\blei\b"}
#: the assistant speaking as the user: "{name}" is the user's name
AS_USER = [r"\bi'?m {name}\b", r"\bi am {name}\b", r"\bmy name is {name}\b", r"我是{name}",
           r"我叫{name}", r"je m'appelle {name}", r"\bje suis {name}\b", r"me llamo {name}",
           r"ich heiße {name}", r"ich bin {name}", r"私は{name}", r"저는 {name}", r"mi chiamo {name}"]

_CLAIM_EN = [re.compile(r"\b(?:since|as|because|given that|knowing that)\s+you(?:'re|'ve| are| have|"
                        r" love| like| enjoy| work| live| play| own| prefer| practi[cs]e)\b"
                        r"([^.,;:!?\n]*)", re.I),
             re.compile(r"\byou (?:love|enjoy|really like|are passionate about|are a fan of)\s+"
                        r"([^.,;:!?\n]*)", re.I)]
_CLAIM_ZH = [re.compile(r"(?:既然|因为|由于|考虑到|鉴于)你(?:喜欢|爱|是|在|住在|有|养|经常|平时)"
                        r"([^，。！？,.!?\n]*)"),
             re.compile(r"你(?:喜欢|热爱|爱好是)([^，。！？,.!?\n]*)")]
_STOP_EN = {"you", "your", "the", "and", "for", "with", "about", "that", "this", "love", "like",
            "enjoy", "are", "have", "been", "really", "very", "much", "some", "things", "thing",
            "new", "good", "great", "nice", "time", "looking", "interested", "want", "wanting",
            "trying", "try", "also", "more", "all", "any", "lot", "lots", "can", "could"}
_WORD = re.compile(r"[a-zà-ÿ]{3,}")
_CJK = re.compile(r"[\u4e00-\u9fff]")


# ---- checks (LLM-free) ----------------------------------------------------------------------
def claims(reply: str, lang: str) -> list[str]:
    """Spans of ``reply`` that state something about the user (see module docstring)."""
    patterns = _CLAIM_EN if lang == "en" else _CLAIM_ZH if lang == "zh" else []
    return [m.group(0).strip() for p in patterns for m in p.finditer(norm(reply))]


def grounded(claim: str, known: str) -> bool:
    """True when a content word (4-letter prefix) or a CJK bigram of ``claim`` occurs in
    ``known`` (the stored memories and the message, normalised), or it has none."""
    known = norm(known)
    words = [w for w in _WORD.findall(norm(claim)) if w not in _STOP_EN]
    cjk = "".join(_CJK.findall(claim))
    for w in ("你", "喜欢", "因为", "既然", "由于", "考虑到", "鉴于", "热爱", "爱好是", "经常", "平时"):
        cjk = cjk.replace(w, "")
    bigrams = [cjk[i:i + 2] for i in range(len(cjk) - 1)]
    if not words and not bigrams:
        return True
    return any(w[:4] in known for w in words) or any(b in known for b in bigrams)


def score(case: dict[str, Any], reply: str) -> dict[str, Any]:
    """The five checks of one reply: ``uses`` (bool or None when not asked),
    ``contradicts`` (violating sentences), ``invented`` (ungrounded claims and matched
    ``invent`` regexes), ``coverage`` (0..1 or None), ``second_person`` (bool or None)."""
    known = "\n".join(m[0] for m in case["memories"]) + "\n" + case["prompt"]
    out: dict[str, Any] = {"uses": None, "coverage": None, "second_person": None}
    if case["kind"] in USES_KINDS:
        out["uses"] = bool(matching(case.get("expect_any", []), reply))
    out["contradicts"] = avoid_hits(case.get("avoid") or [], reply)
    out["invented"] = ([c for c in claims(reply, case["lang"]) if not grounded(c, known)]
                       + matching(case.get("invent") or [], reply))
    if case["kind"] == "profile":
        keys = case["keys"]
        out["coverage"] = len(matching(keys, reply)) / len(keys)
    if case["kind"] in VOICE_KINDS:
        text = norm(reply)
        name = re.escape(norm(case.get("name", "")))
        as_user = bool(name) and any(re.search(p.format(name=name), text) for p in AS_USER)
        out["second_person"] = bool(re.search(YOU.get(case["lang"], YOU["en"]), text)) and not as_user
    return out


# ---- running ----------------------------------------------------------------------------------
def seed(mem, case: dict[str, Any], uid: str) -> None:
    """Write the case's memories as the write path stores them (module docstring)."""
    from memory.write import constraints, topics
    from memory.types import utcnow

    texts = [m[0] for m in case["memories"]]
    is_rule = constraints.classify(mem.embedder, texts)
    for (text, topic, *days), rule in zip(case["memories"], is_rule):
        t = topics.get(topic)
        tags, mtype, importance = [topic], t.type, t.importance
        if rule:
            tags, mtype, importance = tags + [constraints.TAG], "profile", max(importance, constraints.IMPORTANCE)
        when = utcnow() + timedelta(days=days[0] if days else -30)
        mem.add(text, uid, infer=False, memory_type=mtype, importance=importance, tags=tags,
                created_at=when)


def run_case(mem, case: dict[str, Any]) -> dict[str, Any]:
    """Seed a fresh user, send the case's message in a new chat, score the reply."""
    uid = f"rt-{case['id']}-{uuid.uuid4().hex[:6]}"
    seed(mem, case, uid)
    turn = mem.chat(case["prompt"], uid)
    start, first = time.perf_counter(), None
    for _ in turn:
        first = first or time.perf_counter()
    end = time.perf_counter()
    return {"id": case["id"], "lang": case["lang"], "kind": case["kind"], "reply": turn.reply,
            "error": turn.error, "profile": turn.used.profile,
            "used": [m.text for m in turn.used.memories],
            "first_token_s": round((first or end) - start, 2), "reply_s": round(end - start, 2),
            **score(case, turn.reply)}


def metrics(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate one run: rates of (a)–(e) and the latency medians."""
    def share(values: list) -> float | None:
        values = [v for v in values if v is not None]
        return round(sum(values) / len(values), 3) if values else None

    return {
        "cases": len(records),
        "uses": share([r["uses"] for r in records]),
        "contradictions": sum(1 for r in records if r["contradicts"]),
        "invented": share([bool(r["invented"]) for r in records]),
        "coverage": share([r["coverage"] for r in records]),
        "second_person": share([r["second_person"] for r in records]),
        "errors": sum(1 for r in records if r["error"]),
        "first_token_p50_s": round(statistics.median(r["first_token_s"] for r in records), 2),
        "reply_p50_s": round(statistics.median(r["reply_s"] for r in records), 2),
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean, min and max of each metric over ``runs``."""
    out = {}
    for key in runs[0]:
        values = [r[key] for r in runs if r[key] is not None]
        if values:
            out[key] = {"mean": round(statistics.fmean(values), 3), "min": min(values),
                        "max": max(values)}
    return out


def table(s: dict[str, dict[str, float]], runs: int) -> str:
    """Markdown table of ``summary`` output."""
    rows = ["| metric | mean | min | max |", "|---|---:|---:|---:|"]
    for key, v in s.items():
        rows.append(f"| {key} | {v['mean']} | {v['min']} | {v['max']} |")
    return f"{runs} run(s)\n\n" + "\n".join(rows)


def main(argv: list[str] | None = None, memory_factory: Callable | None = None) -> int:
    """CLI entry point (module docstring); ``memory_factory(data_dir)`` replaces the real
    Memory in tests. Returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=("tune", "report", "all"), default="tune")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--only", default=None, metavar="REGEX", help="case ids matching REGEX")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    cases = [c for c in json.loads(DATA.read_text(encoding="utf-8"))["cases"]
             if args.split in ("all", c["split"]) and (not args.only or re.search(args.only, c["id"]))]
    if memory_factory is None:
        from bench.memory_quality import build_memory
        memory_factory = build_memory
    meta = {"benchmark": "reply_trust", "split": args.split, "git_describe": git_describe(),
            "cases": len(cases)}
    runs, records = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            mem = memory_factory(tmp)
            meta.update(model=mem.llm.model, temperature=mem.config.llm_temperature)
            done = []
            for case in cases:
                done.append(run_case(mem, case))
                r = done[-1]
                print(f"run {run + 1} {r['id']}: uses={r['uses']} contradicts={bool(r['contradicts'])} "
                      f"invented={r['invented']} cov={r['coverage']} you={r['second_person']} "
                      f"{r['reply_s']}s", file=sys.stderr, flush=True)
            mem.close()
        runs.append(metrics(done))
        records.append(done)
        if args.out:
            args.out.write_text(json.dumps({**meta, "runs": runs, "summary": summary(runs),
                                            "records": records}, ensure_ascii=False, indent=1))
    print(table(summary(runs), len(runs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
