"""Speaker labels of imported chat messages and the search boost they give (memory.search.speakers)."""
from __future__ import annotations

from memory.search.hybrid import SearchWeights
from memory.search.speakers import speaker_label, speaker_of, speakers_named
from memory.types import MemoryRecord


def test_speaker_label_reads_a_leading_name_and_optional_timestamp():
    assert speaker_label("Caroline: I made this for a local church") == "Caroline"
    assert speaker_label("[8 May 2023] Caroline: hi") == "Caroline"
    assert speaker_label("[12/05/2023, 14:03] Gina Lee: see you") == "Gina Lee"
    for text in ["Thanks, Caroline!", "Works as a nurse", "Note that: x", "", "caroline: hi"]:
        assert speaker_label(text) is None, text


def test_only_verbatim_messages_have_a_speaker_and_names_match_whole_words():
    raw = MemoryRecord(id="a", user_id="u", text="Jon: I lost my job", source="raw")
    fact = MemoryRecord(id="b", user_id="u", text="Gina: owns a store", source="chat")
    assert speaker_of(raw) == "Jon" and speaker_of(fact) is None
    assert speakers_named("why did jon start a studio?", [raw, fact]) == {"Jon"}
    assert speakers_named("What did Jonathan do?", [raw]) == frozenset()
    assert speakers_named("What did Gina do?", [raw, fact]) == frozenset()


def test_a_question_naming_a_person_prefers_what_that_person_said(tmp_path):
    from memory import Memory, load_config

    mem = Memory(load_config(env_file=None, memory_data_dir=str(tmp_path)), llm=object())
    try:
        turns = mem.add([{"role": "user", "content": c} for c in (
            "Melanie: Wow Caroline, that church window looks amazing, Caroline!",
            "Caroline: Thanks! I made a stained glass window for the church.")],
            "u1", thread_id="s1", infer=False)
        said = turns[1].id
        q = "What did Caroline make for the church?"
        assert mem.search(q, "u1").memories[0].id == said
        off = mem.search(q, "u1", weights=SearchWeights(speaker_boost=0.0)).memories
        assert off[0].id != said  # the label, not the words, puts it first
    finally:
        mem.close()
