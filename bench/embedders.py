"""Measure the embedders, to choose the default by measurement.

For each requested embedder that can be loaded here:

(a) zh/en set (``bench/data/zh_en_set.json``): 30 personal memories (15 English, 15
    Chinese) and 60 queries (30 in the memory's language, 30 in the other one); top-1
    accuracy overall, same-language and cross-lingual.
(b) LoCoMo dense retrieval (``--locomo PATH``, e.g. /work/shared/data/locomo10.json):
    every raw turn of a conversation, as ``"Speaker: text [shares a photo: caption]"``,
    is a document; each question of categories 1-4 ranks its conversation's turns by
    cosine; recall@k is LoCoMo's ``recall_acc`` (share of the question's evidence turns
    in the top k), averaged over questions. Evidence ids are repaired as described in
    the data README (split on ``;``/``,``/space, accept ``D?<s>:<t>`` with leading
    zeros stripped, drop ids that do not exist, skip questions left without evidence:
    1,536 scorable questions on the full set).
(c) speed: sentences per second of ``embed_documents`` on a fixed list (the zh/en
    memories and queries repeated to 600 sentences, after a warm-up), and turns/s while
    embedding LoCoMo.

Prints a table (rich) and writes ``bench/results/embedders.json``.

    python bench/embedders.py --locomo /work/shared/data/locomo10.json
    python bench/embedders.py --embedders use-multilingual --locomo PATH --limit-convs 2
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import git_describe, repair_evidence  # noqa: E402
from memory.embed.embedder import (E5Embedder, Embedder, EmbedderError,  # noqa: E402
                             MiniLMEmbedder, OpenAIEmbedder, USEEmbedder)

ZH_EN_SET = ROOT / "bench" / "data" / "zh_en_set.json"
RESULTS = ROOT / "bench" / "results" / "embedders.json"
KS = (5, 10)
SPEED_SENTENCES = 600

#: name -> factory; ``--embedders`` picks among these
FACTORIES: dict[str, Callable[[argparse.Namespace], Embedder]] = {
    "use-multilingual": lambda a: USEEmbedder(threads=a.use_threads),
    "use-multilingual-denoise": lambda a: USEEmbedder(threads=a.use_threads, denoise=True),
    "e5-small": lambda a: E5Embedder(threads=a.e5_threads or None),
    "minilm": lambda a: MiniLMEmbedder(),
    "openai": lambda a: OpenAIEmbedder(model=os.environ.get("EMBEDDING_MODEL", ""),
                                       base_url=os.environ.get("EMBEDDING_BASE_URL") or None,
                                       api_key=os.environ.get("EMBEDDING_API_KEY") or None,
                                       dim=int(os.environ["EMBEDDING_DIM"])
                                       if os.environ.get("EMBEDDING_DIM") else None),
}


# ---- data ----------------------------------------------------------------------------
def turn_text(turn: dict) -> str:
    """``"Speaker: text [shares a photo: caption]"`` for one LoCoMo turn."""
    text = f"{turn.get('speaker', '')}: {turn.get('text', '')}"
    if turn.get("blip_caption"):
        text += f" [shares a photo: {turn['blip_caption']}]"
    return text


def load_locomo(path: Path, limit_convs: int | None) -> list[dict]:
    """Load LoCoMo as ``[{"id", "turns": [(dia_id, text)], "questions": [{"question",
    "evidence", "category"}]}]`` with repaired evidence and only scorable questions of
    categories 1-4."""
    convs = json.loads(Path(path).read_text(encoding="utf-8"))
    if limit_convs:
        convs = convs[:limit_convs]
    out = []
    for conv in convs:
        c = conv["conversation"]
        sessions = sorted((k for k in c if re.fullmatch(r"session_\d+", k)),
                          key=lambda k: int(k.split("_")[1]))
        turns = [(t["dia_id"], turn_text(t)) for s in sessions for t in c[s]]
        existing = {d for d, _ in turns}
        questions = []
        for qa in conv["qa"]:
            if int(qa.get("category", 0)) not in (1, 2, 3, 4):
                continue
            evidence = repair_evidence(qa.get("evidence"), existing)
            if evidence:
                questions.append({"question": str(qa["question"]), "evidence": evidence,
                                  "category": int(qa["category"])})
        out.append({"id": conv.get("sample_id"), "turns": turns, "questions": questions})
    return out


# ---- measurements --------------------------------------------------------------------
def bench_zh_en(emb: Embedder, data: dict) -> dict:
    """Top-1 accuracy on the zh/en set: counts overall, same-language, cross-lingual."""
    mem = emb.embed_documents([m["text"] for m in data["memories"]])
    hits = {"all": 0, "same": 0, "cross": 0}
    totals = {"all": 0, "same": 0, "cross": 0}
    misses = []
    for q in data["queries"]:
        best = int(np.argmax(mem @ emb.embed_query(q["text"])))
        kind = "cross" if q["cross_lingual"] else "same"
        ok = best == q["answer"]
        for key in ("all", kind):
            totals[key] += 1
            hits[key] += ok
        if not ok:
            misses.append({"query": q["text"], "expected": q["answer"], "got": best})
    return {"top1": hits["all"], "top1_same": hits["same"], "top1_cross": hits["cross"],
            "n": totals["all"], "n_same": totals["same"], "n_cross": totals["cross"],
            "accuracy": hits["all"] / totals["all"], "misses": misses}


def bench_locomo(emb: Embedder, convs: list[dict], limit_convs: int | None = None,
                 progress: bool = True) -> dict:
    """Dense retrieval recall@k over raw LoCoMo turns (LoCoMo's ``recall_acc``)."""
    recalls = {k: [] for k in KS}
    per_cat: dict[int, dict[int, list[float]]] = {}
    n_turns, embed_s = 0, 0.0
    for i, conv in enumerate(convs, 1):
        ids = [d for d, _ in conv["turns"]]
        t0 = time.perf_counter()
        docs = emb.embed_documents([t for _, t in conv["turns"]])
        embed_s += time.perf_counter() - t0
        n_turns += len(ids)
        for q in conv["questions"]:
            scores = docs @ emb.embed_query(q["question"])
            order = np.argsort(-scores, kind="stable")
            evidence = set(q["evidence"])
            for k in KS:
                top = {ids[j] for j in order[:k]}
                r = len(evidence & top) / len(evidence)
                recalls[k].append(r)
                per_cat.setdefault(q["category"], {kk: [] for kk in KS})[k].append(r)
        if progress:
            print(f"  {emb.id}: conversation {i}/{len(convs)} ({conv['id']}), "
                  f"{len(ids)} turns, {len(conv['questions'])} questions", file=sys.stderr)
    return {
        "limit_convs": limit_convs,
        "questions": len(recalls[KS[0]]),
        "conversations": len(convs),
        "turns": n_turns,
        **{f"recall@{k}": float(np.mean(v)) if v else None for k, v in recalls.items()},
        "by_category": {str(c): {"questions": len(v[KS[0]]),
                                 **{f"recall@{k}": float(np.mean(v[k])) for k in KS}}
                        for c, v in sorted(per_cat.items())},
        "turns_per_s": n_turns / embed_s if embed_s else None,
    }


def bench_speed(emb: Embedder, data: dict, repeats: int = 3) -> dict:
    """Sentences/s of ``embed_documents`` on a fixed 600-sentence zh/en list, warm; the
    best of ``repeats`` runs (the machine is shared, so the best run is the least
    disturbed one)."""
    base = [m["text"] for m in data["memories"]] + [q["text"] for q in data["queries"]]
    texts = (base * (SPEED_SENTENCES // len(base) + 1))[:SPEED_SENTENCES]
    emb.embed_documents(base[:8])  # warm-up (model load)
    runs = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        emb.embed_documents(texts)
        runs.append(time.perf_counter() - t0)
    return {"sentences": len(texts), "runs_s": [round(r, 3) for r in runs],
            "sentences_per_s": len(texts) / min(runs),
            "threads": getattr(emb, "threads", None)}


# ---- main ----------------------------------------------------------------------------
def _fmt(x: Any, digits: int = 3) -> str:
    return "-" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


def print_table(results: dict) -> None:
    """Print one row per embedder (rich table)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Embedders (zh/en top-1, LoCoMo dense recall, speed)")
    for col in ("embedder", "id", "dim", "zh/en top-1", "same", "cross", "LoCoMo R@5",
                "R@10", "questions", "sent/s", "LoCoMo turns/s"):
        table.add_column(col, justify="left" if col in ("embedder", "id") else "right")
    for name, r in results.items():
        if "error" in r:
            table.add_row(name, "[red]unavailable[/red] (error in JSON)", *["-"] * 9)
            continue
        z, lo, sp = r.get("zh_en") or {}, r.get("locomo") or {}, r.get("speed") or {}
        table.add_row(name, r["id"], str(r["dim"]),
                      f"{z.get('top1', '-')}/{z.get('n', '-')}",
                      f"{z.get('top1_same', '-')}/{z.get('n_same', '-')}",
                      f"{z.get('top1_cross', '-')}/{z.get('n_cross', '-')}",
                      _fmt(lo.get("recall@5")), _fmt(lo.get("recall@10")),
                      _fmt(lo.get("questions")), _fmt(sp.get("sentences_per_s"), 0),
                      _fmt(lo.get("turns_per_s"), 0))
    Console(width=170).print(table)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the process exit code (0, or 1 if no embedder ran)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedders", default="use-multilingual,e5-small",
                    help=f"comma-separated, from: {', '.join(FACTORIES)}")
    ap.add_argument("--locomo", type=Path, help="path to locomo10.json (omit to skip LoCoMo)")
    ap.add_argument("--limit-convs", type=int, default=None,
                    help="only the first N LoCoMo conversations (quick run)")
    ap.add_argument("--use-threads", type=int, default=1, help="BLAS threads for USE (default 1)")
    ap.add_argument("--e5-threads", type=int, default=1,
                    help="OpenMP threads for e5 (default 1; 0 = all cores)")
    ap.add_argument("--speed-repeats", type=int, default=3,
                    help="speed runs per embedder; the best counts (default 3)")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})")
    ap.add_argument("--no-save", action="store_true", help="print only, do not write JSON")
    args = ap.parse_args(argv)

    names = [n.strip() for n in args.embedders.split(",") if n.strip()]
    unknown = [n for n in names if n not in FACTORIES]
    if unknown:
        ap.error(f"unknown embedder(s): {', '.join(unknown)}")
    data = json.loads(ZH_EN_SET.read_text(encoding="utf-8"))
    convs = load_locomo(args.locomo, args.limit_convs) if args.locomo else None
    if convs is not None:
        print(f"LoCoMo: {len(convs)} conversations, "
              f"{sum(len(c['questions']) for c in convs)} scorable questions", file=sys.stderr)

    results: dict[str, dict] = {}
    for name in names:
        try:
            emb = FACTORIES[name](args)
            health = emb.health()
            if not health["ok"]:
                raise EmbedderError(health["detail"])
        except (EmbedderError, ImportError, ValueError) as exc:
            print(f"skip {name}: {exc}", file=sys.stderr)
            results[name] = {"error": str(exc)}
            continue
        t0 = time.perf_counter()
        r: dict[str, Any] = {"id": emb.id, "dim": emb.dim}
        r["zh_en"] = bench_zh_en(emb, data)
        r["speed"] = bench_speed(emb, data, args.speed_repeats)
        if convs is not None:
            r["locomo"] = bench_locomo(emb, convs, args.limit_convs)
        r["seconds"] = round(time.perf_counter() - t0, 1)
        results[name] = r

    shown = results
    if not args.no_save:
        payload = {
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "settings": {"use_threads": args.use_threads, "e5_threads": args.e5_threads,
                         "locomo": str(args.locomo) if args.locomo else None,
                         "limit_convs": args.limit_convs, "speed_sentences": SPEED_SENTENCES,
                         "speed_repeats": args.speed_repeats,
                         "note": "settings of the last run; each result keeps its own "
                                 "locomo.limit_convs and speed.threads"},
            "results": results,
        }
        # Merge into earlier results: embedders not re-run keep their entries, and an
        # embedder re-run without --locomo keeps its earlier LoCoMo section (which
        # records its own limit_convs).
        if args.out.exists():
            try:
                old = json.loads(args.out.read_text(encoding="utf-8")).get("results", {})
            except (OSError, ValueError):
                old = {}
            merged = dict(old)
            for name, r in results.items():
                before = old.get(name) or {}
                if "error" in r:
                    if not before or "error" in before:
                        merged[name] = r  # keep an earlier good measurement otherwise
                elif "error" in before:
                    merged[name] = r
                else:
                    merged[name] = {**before, **r}
            payload["results"] = merged
        shown = payload["results"]
        payload["git_describe"] = git_describe()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, ensure_ascii=False, indent=1) + "\n",
                            encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    print_table(shown)
    return 0 if any("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
