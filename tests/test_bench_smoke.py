"""Smoke versions of the benchmarks, so they never silently break: LoCoMo loading and
evidence repair, recall on one conversation through the public Memory API (with a floor
below the measured value), and a tiny latency run. Skipped when the LoCoMo file is
absent (it is not part of the repository)."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.common import DEFAULT_LOCOMO, load_locomo, recall_at, repair_evidence, turn_text

needs_data = pytest.mark.skipif(not Path(DEFAULT_LOCOMO).exists(),
                                reason=f"LoCoMo data not found at {DEFAULT_LOCOMO}")


def test_evidence_repair_handles_the_known_quirks():
    known = {"D8:6", "D9:17", "D11:26", "D30:5", "D1:1"}
    assert repair_evidence(["D8:6; D9:17"], known) == ["D8:6", "D9:17"]
    assert repair_evidence(["D:11:26"], known) == ["D11:26"]
    assert repair_evidence(["D30:05"], known) == ["D30:5"]
    assert repair_evidence(["D", "D99:1", "D1:1", "D1:1"], known) == ["D1:1"]
    assert repair_evidence([], known) == []


def test_recall_at_k():
    assert recall_at(["a", "b", "c"], ["b", "x"], 1) == 0.0
    assert recall_at(["a", "b", "c"], ["b", "x"], 2) == 0.5
    assert recall_at(["a", "b"], ["a", "b"], 10) == 1.0


@needs_data
def test_locomo_loads_1536_scorable_questions():
    convs = load_locomo(DEFAULT_LOCOMO)
    assert len(convs) == 10
    assert sum(len(c.turns) for c in convs) == 5882
    assert sum(len(c.questions) for c in convs) == 1536
    assert {q.category for c in convs for q in c.questions} == {1, 2, 3, 4}
    first = convs[0]
    text = turn_text(first.turns[2], "context", first.turns[1])
    assert text.startswith("[8 May 2023] Caroline: I went to a LGBTQ support group")


@needs_data
def test_locomo_recall_smoke(tmp_path):
    """One conversation in the plain format (each session one thread of `Speaker: text`
    messages, the date only as created_at), its first 60 questions, through
    Memory.add/search: the default hybrid must stay well above the vector-only ablation,
    at least as good as the default of before issue 13 and above a floor (measured on
    this slice: default R@5 0.507 / R@10 0.588, before 0.504 / 0.575, vector only R@10
    0.288)."""
    from bench.locomo import configs, evaluate, ingest, summarize
    from bench.common import make_memory

    conv = load_locomo(DEFAULT_LOCOMO)[0]
    mem = make_memory(tmp_path)
    try:
        ids = ingest(mem, conv, "plain")
        assert len(ids) == len(conv.turns) == mem.count(f"locomo-{conv.sample_id}")
        sample = mem.list(f"locomo-{conv.sample_id}", limit=1)[0]
        assert sample.metadata == {} and sample.thread_id and ":" in sample.text
        cfg = configs()
        got = {name: summarize(evaluate(mem, conv, cfg[name], max_questions=60, ids=ids))["all"]
               for name in ("default", "vector", "before")}
    finally:
        mem.close()
    default, vector, before = got["default"], got["vector"], got["before"]
    assert default["n"] == 60
    assert default["r@10"] >= 0.55, default
    assert default["r@5"] >= 0.47, default
    assert default["r@10"] > vector["r@10"] + 0.2, (default, vector)
    assert default["r@10"] >= before["r@10"], (default, before)


@needs_data
def test_locomo_plain_without_thread_ids_ranks_as_with_them(tmp_path):
    """Issue 26: each session imported by one ``add`` call without a ``thread_id`` is one
    conversation, so the first 40 questions of one conversation get exactly the ranking
    they get with a thread per session."""
    from bench.common import make_memory
    from bench.locomo import configs, evaluate, ingest

    conv = load_locomo(DEFAULT_LOCOMO)[0]
    ranked = {}
    for threads in (True, False):
        mem = make_memory(tmp_path / str(threads))
        try:
            ids = ingest(mem, conv, "plain", thread_ids=threads)
            sample = mem.list(f"locomo-{conv.sample_id}", limit=1)[0]
            assert bool(sample.thread_id) is threads and sample.conversation_id
            rows = evaluate(mem, conv, configs()["default"], max_questions=40, ids=ids)
            ranked[threads] = [r["ranked"] for r in rows]
        finally:
            mem.close()
    assert ranked[False] == ranked[True]


def test_results_record_git_describe(tmp_path):
    """Result files carry ``git describe --always --dirty`` (a ``-dirty`` suffix when the
    work tree differs from the commit) next to ``git_commit``."""
    import json
    import subprocess

    from bench.common import REPO, write_json

    want = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                          capture_output=True, text=True).stdout.strip()
    machine = json.loads(write_json("x", {"a": 1}, out_dir=tmp_path).read_text())["machine"]
    assert machine["git_describe"] == want and machine["git_commit"]
    assert want.startswith(machine["git_commit"][:7]) or "-g" in want


def test_latency_smoke(tmp_path):
    """A tiny latency run: every section produces numbers, the walk-through makes at
    most one memory LLM call per turn and moves Seven to Beijing."""
    from bench.latency import run

    res = run(sizes=[300], users=2, per_user=100, queries=5, chat_repeats=1, ingest_n=40,
              folder=tmp_path, log=lambda *_: None)
    point = res["scale"][0]
    assert point["memories"] == 300
    assert point["hybrid_no_embed"]["n"] == 5 and point["hybrid_no_embed"]["p95_ms"] > 0
    assert res["multi_user"]["users"] == 2
    assert res["ingest"]["per_s"] > 0
    walk = res["chat"]["walkthrough"]
    assert len(walk) == 6
    # one extraction call per turn; the move also asks the second opinion (memory.write.confirm)
    assert walk[2]["memory_calls"] <= 2, walk
    assert all(r["memory_calls"] <= 1 for i, r in enumerate(walk) if i != 2), walk
    assert "UPDATE" in walk[2]["changes"]  # "I moved to Beijing" replaced Shanghai
    assert res["chat"]["extra_llm_calls_per_turn"] <= 1
