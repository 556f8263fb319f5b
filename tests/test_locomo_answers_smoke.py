"""Smoke test of bench/locomo_answers.py (and its locomo_f1 / locomo_ingest parts) without a real model: LoCoMo's token F1 on
known pairs, the session-chunking helper, and the pipeline end to end (ingestion with
infer=True, raw turns, answering in three conditions, the CLI and its ingestion cache)
on one conversation × 3 questions against the scripted OpenAI-compatible server. The
pipeline parts are skipped when the LoCoMo file is absent (it is not in the repository)."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bench.common import DEFAULT_LOCOMO, Turn, load_locomo
from bench.locomo_answers import main, run, select_questions
from bench.locomo_f1 import (multi_hop_f1, normalize_answer, rewrite_iso_dates, score_answer,
                             token_f1)
from bench.locomo_ingest import (chunk_session, memory_user, raw_user, speaker_messages,
                                 user_part)
from tests.fake_llm import is_json_request, last_user_text, system_text

needs_data = pytest.mark.skipif(not Path(DEFAULT_LOCOMO).exists(),
                                reason=f"LoCoMo data not found at {DEFAULT_LOCOMO}")


# ---- scorer ---------------------------------------------------------------------------
def test_token_f1_known_pairs():
    assert token_f1("7 May 2023", "7 May 2023") == 1.0
    assert token_f1("Psychology", "Adoption agencies") == 0.0
    assert token_f1("running", "runs") == 1.0                      # Porter stems match
    assert token_f1("The adoption agency", "an adoption agency") == 1.0  # articles ignored
    assert token_f1("Sweden!", "sweden") == 1.0                     # case, punctuation
    assert token_f1("", "anything") == 0.0 and token_f1("unknown", "") == 0.0
    # partial overlap: 1 of 2 predicted tokens, 1 of 3 gold tokens → P .5, R 1/3, F1 .4
    assert token_f1("June camping", "June 2023 trip") == pytest.approx(0.4)
    assert normalize_answer("The cat, and a Dog.") == "cat dog"


def test_category_rules():
    # category 1: gold split on ',' and each part matched by its best prediction part
    assert multi_hop_f1("counseling, psychology", "Psychology, counseling") == 1.0
    assert multi_hop_f1("psychology", "Psychology, counseling") == 0.5
    assert score_answer("psychology", "Psychology, counseling", 1) == 0.5
    # category 3: only the gold part before ';' counts
    assert score_answer("Likely yes", "Likely yes; she likes it", 3) == 1.0
    assert score_answer("2022", "2022", 2) == 1.0 and score_answer("Sweden", "Sweden", 4) == 1.0
    with pytest.raises(ValueError):
        score_answer("x", "y", 5)


def test_iso_dates_rewritten_for_the_second_score():
    assert rewrite_iso_dates("On 2023-05-07.") == "On 7 May 2023."
    assert rewrite_iso_dates("in 2023-06") == "in June 2023"
    assert rewrite_iso_dates("2023-13-01 and 2022") == "2023-13-01 and 2022"
    assert token_f1(rewrite_iso_dates("2023-05-07"), "7 May 2023") == 1.0


# ---- chunking -------------------------------------------------------------------------
def _turns(spec: list[tuple[str, int]]) -> list[Turn]:
    when = datetime(2023, 5, 8, 13, 56, tzinfo=timezone.utc)
    return [Turn(f"D1:{i + 1}", 1, when, who, ("w" * (n - 1)) + ".", "", i)
            for i, (who, n) in enumerate(spec)]


def test_chunking_keeps_whole_turns_and_the_limit():
    turns = _turns([("A", 400), ("B", 50), ("A", 300), ("B", 80), ("B", 20), ("A", 350),
                    ("A", 100), ("B", 60), ("A", 500), ("B", 10)])
    chunks = chunk_session(turns, "A", limit=800)
    assert [t for c in chunks for t in c] == turns            # whole turns, in order, all kept
    assert len(chunks) > 1
    assert all(len(user_part(c, "A")) <= 800 for c in chunks)
    assert all(any(t.speaker == "A" for t in c) for c in chunks)
    # the other speaker's turns right before an A turn travel with it
    second = chunks[1]
    assert [t.speaker for t in second[:3]] == ["B", "B", "A"]
    # under the limit: one chunk; an over-long single turn: a chunk of its own
    assert chunk_session(turns, "A", limit=10_000) == [turns]
    big = _turns([("A", 900), ("B", 5), ("A", 100)])
    parts = chunk_session(big, "A", limit=800)
    assert [len(p) for p in parts] == [1, 2]
    msgs = speaker_messages(parts[1], "A")
    assert [m["role"] for m in msgs] == ["assistant", "user"]


# ---- pipeline on the scripted server --------------------------------------------------
_USER_LINE = re.compile(r"^User:\s*(.*)$", re.M)


def scripted(req):
    """Extraction: one memory made of the first 8 words of the user's text (grounded);
    reconciliation: ADD; answering: "unknown" without memories, else "7 May 2023"."""
    if is_json_request(req):
        if "extract memories" in system_text(req):
            m = _USER_LINE.search(last_user_text(req))
            words = (m.group(1) if m else "").split()[:8]
            text = " ".join(words).strip(" .,!?") or "Likes painting"
            return {"memories": [{"text": text, "topic": "event"}]}
        return {"action": "ADD", "id": "none"}
    user = last_user_text(req)
    return "unknown" if "Memories:\n(none)" in user else "7 May 2023"


def _extraction_requests(server):
    return [r for r in server.chat_requests()
            if is_json_request(r) and "extract memories" in system_text(r)]


@needs_data
def test_pipeline_on_scripted_llm(make_config, scripted_llm, tmp_path):
    from memory import Memory

    scripted_llm.responder = scripted
    conv = load_locomo(DEFAULT_LOCOMO)[0]
    mem = Memory(make_config())
    try:
        res = run(mem, [conv], max_questions=3, max_sessions=2,
                  state_path=tmp_path / "state.json", log=lambda _line: None)
        counts = {u: mem.count(u) for u in [memory_user(conv, s) for s in conv.speakers]}
        raw_count = mem.count(raw_user(conv))
    finally:
        mem.close()
    ing = res["ingestion"][conv.sample_id]
    # one extraction call per session per speaker (no chunking needed in sessions 1-2)
    assert ing["memory"]["add_calls"] == 4 == len(_extraction_requests(scripted_llm))
    assert ing["memory"]["errors"] == 0 and all(n > 0 for n in counts.values())
    assert ing["raw"]["turns"] == raw_count == sum(1 for t in conv.turns if t.session <= 2)
    assert ing["raw"]["llm_calls"] == 0
    # extraction reads only the speaker's own turns, each call below the product's cut
    for req in _extraction_requests(scripted_llm):
        assert len(last_user_text(req)) < 4000
    rows = res["questions"]
    assert [r["question"] for r in rows] == [q.question for q in select_questions(conv, 3, 2)]
    first = rows[0]
    assert first["gold"] == "7 May 2023"
    assert first["memory"]["f1"] == first["raw"]["f1"] == 1.0
    assert first["none"]["prediction"] == "unknown" and first["none"]["f1"] == 0.0
    assert first["none"]["retrieved"] == []
    assert 0 < len(first["memory"]["retrieved"]) <= 10
    line = re.compile(r"^\[\d{1,2} [A-Z][a-z]+ 2023\] (Caroline|Melanie): \S")
    assert all(line.match(x) for x in first["memory"]["retrieved"] + first["raw"]["retrieved"])
    s = res["summary"]
    assert s["memory"]["n"] == s["raw"]["n"] == s["none"]["n"] == 3
    assert s["none"]["f1"] < s["memory"]["f1"] and s["memory"]["f1_dates"] >= s["memory"]["f1"]
    assert res["llm_calls"]["answer"] == 9  # 3 questions × 3 conditions, one call each


@needs_data
def test_cli_end_to_end_and_ingestion_cache(scripted_llm, tmp_path, monkeypatch, capsys):
    scripted_llm.responder = scripted
    for key, value in {"OPENAI_BASE_URL": scripted_llm.base_url, "OPENAI_API_KEY": "test",
                       "LLM_MODEL": "scripted", "LLM_TIMEOUT": "10", "LLM_MAX_RETRIES": "1"}.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "la.json"
    args = ["--convs", "0", "--questions", "2", "--sessions", "1", "--out", str(out),
            "--data-dir", str(tmp_path / "store")]
    assert main(args) == 0
    printed = capsys.readouterr()
    assert "| memory |" in printed.out and "| raw |" in printed.out and "| none |" in printed.out
    assert "one extraction call per session per speaker" in printed.err
    res = json.loads(out.read_text(encoding="utf-8"))
    assert res["model"] == "scripted" and "git_commit" in res and "machine" in res
    assert res["sessions"] == 1 and res["convs"] == ["conv-26"] and res["max_questions"] == 2
    assert len(res["questions"]) == 2
    q = res["questions"][0]
    assert {"question", "gold", "category", "memory", "raw", "none"} <= set(q)
    assert {"prediction", "f1", "retrieved", "seconds"} <= set(q["memory"])
    n_extract = len(_extraction_requests(scripted_llm))
    assert n_extract == 2
    # a re-run on the same store skips ingestion (no new extraction call)
    assert main(args) == 0
    assert "ingestion cached" in capsys.readouterr().err
    assert len(_extraction_requests(scripted_llm)) == n_extract
    again = json.loads(out.read_text(encoding="utf-8"))
    assert again["ingestion"]["conv-26"]["cached"] is True
    assert again["summary"]["memory"]["f1"] == res["summary"]["memory"]["f1"]


def test_result_files_of_two_conversations_combine_into_one_table():
    from bench.locomo_answers_combine import combine

    def row(conv, cat, f1):
        cell = {"f1": f1, "f1_dates": f1, "seconds": 1.0, "answer_s": 1.0, "error": None}
        return {"conversation": conv, "category": cat, "memory": cell}

    def doc(conv, rows):
        return {"conditions": ["memory"], "ingestion": {conv: {"sessions": 1}}, "questions": rows,
                "git_commit": "abc", "model": "m", "seconds": 1}

    merged = combine([doc("conv-30", [row("conv-30", 2, 1.0)]),
                      doc("conv-26", [row("conv-26", 2, 0.0), row("conv-26", 4, 0.5)])])
    assert merged["summary"]["memory"]["n"] == 3
    assert merged["summary"]["memory"]["f1"] == 0.5
    assert merged["summary"]["memory"]["categories"]["2"] == {"n": 2, "f1": 0.5}
    assert list(merged["ingestion"]) == ["conv-30", "conv-26"]
    with pytest.raises(ValueError, match="conv-30"):
        combine([doc("conv-30", []), doc("conv-30", [])])
