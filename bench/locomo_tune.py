"""Weight grid on the LoCoMo **tune** half only (conversations 0-4): the tool the product's search weights were chosen with.

Ingests the tune half once (``--format plain`` by default) into ``--store`` (kept between
runs: the ids file next to it maps memory ids to dia ids), then evaluates every
combination of ``--grid`` through ``Memory.search(q, user, limit=10, weights=...)``,
starting from the product default ``SearchWeights``. The report half is never loaded.

    python bench/locomo_tune.py --grid "context_prev=0,0.2,0.4;context_next=0,0.1"
    python bench/locomo_tune.py --format context-meta --store /tmp/locomo-tune-cm --grid ""

Query embeddings are cached in-process (each grid point asks the same questions).
Prints one line per grid point (R@1/R@5/R@10, all tune questions).
"""
from __future__ import annotations

import argparse
import functools
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DEFAULT_LOCOMO, load_locomo, make_memory  # noqa: E402
from bench.locomo import FORMATS, HALVES, evaluate, ingest, summarize  # noqa: E402
from memory.search.hybrid import SearchWeights  # noqa: E402


def parse_grid(text: str) -> list[dict[str, float]]:
    """``"a=1,2;b=0.5"`` → ``[{"a": 1, "b": 0.5}, {"a": 2, "b": 0.5}]`` (cartesian
    product; values are floats, or ints for integer fields). ``""`` → ``[{}]``."""
    axes = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, values = part.partition("=")
        axes.append([(name.strip(), float(v)) for v in values.split(",") if v.strip()])
    return [dict(combo) for combo in itertools.product(*axes)]


def open_store(data: Path, store: Path, fmt: str):
    """Open (ingesting on first use) the tune half in ``store``; returns ``(mem, convs,
    ids)`` with ``ids[i]`` = ``{memory_id: dia_id}`` of conversation ``i``."""
    convs = [c for i, c in enumerate(load_locomo(data)) if i in HALVES["tune"]]
    ids_file = store / "ids.json"
    fresh = not ids_file.exists()
    store.mkdir(parents=True, exist_ok=True)
    mem = make_memory(store)
    if fresh:
        ids = [ingest(mem, c, fmt) for c in convs]
        ids_file.write_text(json.dumps({"format": fmt, "ids": ids}))
    saved = json.loads(ids_file.read_text())
    if saved["format"] != fmt:
        raise SystemExit(f"{store} holds format {saved['format']}, not {fmt}")
    return mem, convs, saved["ids"]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_LOCOMO)
    ap.add_argument("--format", default="plain", choices=FORMATS)
    ap.add_argument("--store", type=Path, default=Path("/tmp/locomo-tune-plain"))
    ap.add_argument("--grid", default="", help='e.g. "context_prev=0,0.2;text=0.7,0.8"')
    ap.add_argument("--questions", type=int, default=None)
    args = ap.parse_args(argv)
    mem, convs, ids = open_store(args.data, args.store, args.format)
    mem.embedder.embed_query = functools.lru_cache(maxsize=None)(mem.embedder.embed_query)
    base = SearchWeights()
    try:
        for point in parse_grid(args.grid):
            fields = {k: int(v) if isinstance(getattr(base, k), int) and
                      not isinstance(getattr(base, k), bool) else v for k, v in point.items()}
            w = replace(base, **fields)
            rows = [r for c, i in zip(convs, ids) for r in evaluate(mem, c, w, args.questions,
                                                                   ids=i)]
            a = summarize(rows)["all"]
            print(f"{point or 'default'}: R@1 {a['r@1']:.3f} R@5 {a['r@5']:.3f} "
                  f"R@10 {a['r@10']:.3f} (n {a['n']})", flush=True)
    finally:
        mem.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
