"""bench/mem0_compare.py and bench/mem0_side.py without Mem0: the offline Qdrant/bm25
snapshot writer, the texts Mem0 stores, recall by half and the result tables; and, when a
Mem0 virtualenv with fastembed and bm25s exists (``MEM0_BENCH_VENV`` or the default one),
fastembed loading that snapshot offline and the script end to end on a tiny LoCoMo file."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bench import mem0_compare as mc
from bench import mem0_side as ms
from bench.common import Turn

VENV = Path(os.environ.get("MEM0_BENCH_VENV") or mc.DEFAULT_VENV)
PY = VENV / "bin" / "python"


def _venv_has_hybrid() -> bool:
    if not PY.exists():
        return False
    code = ("import sys, importlib.util as u; "
            "sys.exit(not all(u.find_spec(m) for m in ('fastembed', 'bm25s', 'mem0')))")
    probe = subprocess.run([str(PY), "-c", code], capture_output=True)
    return probe.returncode == 0


needs_hybrid_venv = pytest.mark.skipif(not _venv_has_hybrid(),
                                       reason=f"no Mem0 virtualenv with fastembed + bm25s at {VENV}")


def test_write_bm25_model_lays_out_a_hub_snapshot(tmp_path):
    snap = ms.write_bm25_model(tmp_path, ["The", "a", "the", "you're"])
    repo = tmp_path / "models--Qdrant--bm25"
    assert snap == repo / "snapshots" / ms.BM25_REVISION
    assert (repo / "refs" / "main").read_text() == ms.BM25_REVISION
    assert json.loads((snap / "config.json").read_text()) == {}
    assert (snap / "english.txt").read_text().splitlines() == ["the", "a", "you're"]
    others = [lang for lang in ms.BM25_LANGUAGES if lang != "english"]
    assert len(others) == 16 and "tamil" not in ms.BM25_LANGUAGES
    assert all((snap / f"{lang}.txt").read_text() == "" for lang in others)
    # writing again (another run in the same cache) replaces the list
    ms.write_bm25_model(tmp_path, ["and"])
    assert (snap / "english.txt").read_text() == "and\n"


@pytest.mark.parametrize("words", [[], ["  "], ["two words"]])
def test_write_bm25_model_rejects_bad_lists(tmp_path, words):
    with pytest.raises(ValueError):
        ms.write_bm25_model(tmp_path, words)
    assert not (tmp_path / "models--Qdrant--bm25").exists()


def test_mem0_text_matches_what_ours_stores():
    date = datetime(2023, 5, 8, 13, 56, tzinfo=timezone.utc)
    q = Turn("D1:1", 1, date, "Melanie", "What have you been up to?")
    a = Turn("D1:2", 1, date, "Caroline", "Researching adoption agencies.")
    assert ms.mem0_text(a, q, "plain") == "Caroline: Researching adoption agencies."
    assert ms.mem0_text(a, q, "context-meta") == (
        "[8 May 2023] Caroline: Researching adoption agencies. "
        "Melanie: What have you been up to?")
    assert ms.mem0_text(q, None, "context-meta") == "[8 May 2023] Melanie: What have you been up to?"
    with pytest.raises(ValueError):
        ms.mem0_text(a, q, "context")


def test_pick_keeps_file_indices_of_a_half():
    convs = [f"c{i}" for i in range(10)]
    assert ms.pick(convs) == list(enumerate(convs))
    assert ms.pick(convs, "report", 2) == [(5, "c5"), (6, "c6")]
    assert [i for i, _ in ms.pick(convs, "tune")] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        ms.pick(convs, "test")


def test_recall_report_splits_halves_by_conversation():
    rows = [(0, 4, ["D1:1"], ["D1:1", "x"]),         # tune, hit at 1
            (1, 2, ["D1:1", "D1:2"], ["x", "D1:2"]),  # tune, half at 5
            (7, 4, ["D2:1"], ["y"] * 10)]              # report, miss
    rep = mc.recall_report(rows)
    assert rep["all"]["all"] == {"n": 3, "r@1": 0.3333, "r@5": 0.5, "r@10": 0.5}
    assert rep["tune"]["all"] == {"n": 2, "r@1": 0.5, "r@5": 0.75, "r@10": 0.75}
    assert rep["report"]["all"] == {"n": 1, "r@1": 0.0, "r@5": 0.0, "r@10": 0.0}
    assert rep["tune"]["4"]["n"] == 1 and rep["report"]["2"] == {"n": 0, "r@1": None,
                                                                 "r@5": None, "r@10": None}


def _system(r10: float, fmt: str = "plain", mem0: bool = False) -> dict:
    rows = [(0, 4, ["a"], ["a"] if r10 else ["b"]), (5, 1, ["c"], ["b"])]
    loc = {"recall": mc.recall_report(rows), "embed_seconds": 1.0, "add_per_s": 50.0,
           **({} if mem0 else {"ingest_per_s": 20.0})}
    lat = [{"memories": 1000, "search_no_embed": {"p95_ms": 4.0 if not mem0 else 8.0},
            "search_end_to_end": {"p95_ms": 5.0 if not mem0 else 20.0}}]
    return {"locomo": {fmt: loc}, "latency": lat}


def test_tables_name_each_row_and_compare_with_ours():
    systems = {"ours": _system(1.0), "dense": _system(0.0, mem0=True),
               "hybrid": _system(1.0, mem0=True)}
    rec = mc.recall_rows(systems, "plain")
    assert [r["system"] for r in rec] == [mc.LABELS["ours"], mc.LABELS["dense"], mc.LABELS["hybrid"]]
    assert mc.LABELS["hybrid"] == "Mem0 hybrid (its BM25 + our USE dense)"
    assert rec[0]["R@10"] == 0.5 and rec[1]["R@10"] == 0.0
    assert rec[0]["tune R@10"] == 1.0 and rec[0]["report R@10"] == 0.0
    cat = mc.category_rows(systems, "plain")
    assert cat[3]["category"] == "4 single-hop" and cat[3][f"{mc.LABELS['dense']} R@10"] == 0.0
    lat = mc.latency_rows(systems)
    assert lat[0]["hybrid÷ours no embed"] == 2.0 and lat[0]["dense÷ours e2e"] == 4.0
    ing = mc.ingest_rows(systems)
    assert ing == [{"format": "plain", "ours turns/s": 20.0, "dense adds/s": 50.0,
                    "dense embed s": 1.0, "hybrid adds/s": 50.0, "hybrid embed s": 1.0}]


def test_main_rejects_unknown_modes_and_formats(capsys):
    assert mc.main(["--formats", "context"]) == 2
    assert mc.main(["--mem0-search", "sparse"]) == 2
    assert "unknown format or Mem0 mode" in capsys.readouterr().err


@needs_hybrid_venv
def test_fastembed_loads_the_offline_bm25_model(tmp_path):
    code = (
        "import os, sys, json\n"
        "from bench import mem0_side as ms\n"
        "from fastembed.sparse.bm25 import supported_languages\n"
        "from pathlib import Path\n"
        "ms.prepare('hybrid', Path(sys.argv[1]))\n"
        "from fastembed import SparseTextEmbedding\n"
        "m = SparseTextEmbedding(model_name='Qdrant/bm25').model\n"
        "print(json.dumps({'langs': sorted(set(supported_languages) - {'tamil'}),\n"
        "                  'n': len(m.stopwords), 'stem': m._stem(['The', 'running', 'dogs'])}))\n")
    out = subprocess.run([str(PY), "-c", code, str(tmp_path)], capture_output=True, text=True,
                         cwd=mc.REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["langs"] == sorted(ms.BM25_LANGUAGES)
    assert res["n"] == 179 and res["stem"] == ["run", "dog"]


def _tiny_locomo(path: Path) -> Path:
    turns1 = [("Ann", "I adopted a grey kitten called Zyxo last week."),
              ("Bob", "Lovely! I started learning the cello."),
              ("Ann", "My sister moved to Lisbon for a nursing job.")]
    turns2 = [("Bob", "The cello teacher says I practise too little."),
              ("Ann", "Zyxo knocked my plant over this morning.")]
    conv = {"speaker_a": "Ann", "speaker_b": "Bob",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_2_date_time": "10:00 am on 9 June, 2023",
            "session_1": [{"speaker": s, "dia_id": f"D1:{i}", "text": t}
                          for i, (s, t) in enumerate(turns1, 1)],
            "session_2": [{"speaker": s, "dia_id": f"D2:{i}", "text": t}
                          for i, (s, t) in enumerate(turns2, 1)]}
    qa = [{"question": "What is Ann's kitten called?", "answer": "Zyxo", "evidence": ["D1:1"],
           "category": 4},
          {"question": "Which instrument does Bob learn?", "answer": "cello",
           "evidence": ["D1:2", "D2:1"], "category": 1}]
    path.write_text(json.dumps([{"sample_id": "tiny", "conversation": conv, "qa": qa}]))
    return path


@needs_hybrid_venv
def test_script_end_to_end_on_a_tiny_conversation(tmp_path, capsys):
    data = _tiny_locomo(tmp_path / "locomo.json")
    rc = mc.main(["--venv", str(VENV), "--data", str(data), "--sizes", "", "--parallel",
                  "--out", str(tmp_path / "cmp")])
    assert rc == 0
    res = json.loads((tmp_path / "cmp.json").read_text())
    assert list(res["systems"]) == ["ours", "dense", "hybrid"]
    assert res["systems"]["dense"]["bm25"] is None
    assert res["systems"]["hybrid"]["bm25"]["model"] == "Qdrant/bm25"
    assert res["systems"]["hybrid"]["versions"]["mem0ai"].startswith("2.")
    for fmt in mc.FORMATS:
        rows = res["tables"][f"recall {fmt}"]
        assert [r["n"] for r in rows] == [2, 2, 2]
        # five turns, ten results: every system returns every turn of the user
        assert all(r["R@10"] == 1.0 for r in rows)
    assert "Mem0 hybrid (its BM25 + our USE dense)" in capsys.readouterr().out
