"""Fusion functions of memory.search.hybrid on handmade inputs, and one end-to-end check
through Memory that a cross-lingual semantic match beats a one-word BM25 match."""
from __future__ import annotations

import pytest

from memory.search.hybrid import (SearchWeights, query_coverage, rrf_fuse, score_fuse, scripts,
                              stem_terms)


def test_rrf_fuse_sums_weighted_reciprocal_ranks_and_skips_zero_weight():
    fused = rrf_fuse([(["a", "b"], 1.0), (["b", "c"], 2.0), (["z"], 0.0)], k=60)
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 2 / 61)
    assert fused["c"] == pytest.approx(2 / 62)
    assert "z" not in fused
    assert max(fused, key=fused.get) == "b"


def test_score_fuse_normalises_each_pool():
    vec = [("a", 0.2), ("b", 0.6), ("c", 1.0)]      # similarities .8, .4, 0 → 1, .5, 0
    txt = [("c", 8.0), ("b", 2.0)]                   # BM25 / best → 1, .25
    fused = score_fuse(vec, txt, vector_weight=0.2, text_weight=0.8)
    assert fused["a"] == pytest.approx(0.2)
    assert fused["b"] == pytest.approx(0.2 * 0.5 + 0.8 * 0.25)
    assert fused["c"] == pytest.approx(0.8)
    # a single vector hit (no spread) maps to 1
    assert score_fuse([("x", 0.7)], [], 0.5, 0.5) == {"x": pytest.approx(0.5)}


def test_coverage_demotes_a_partial_bm25_match_below_a_semantic_match():
    vec = [("zh", 0.3), ("en", 0.9)]                 # the semantic match is "zh"
    txt = [("en", 3.0)]                              # one shared word: best BM25 of the pool
    plain = score_fuse(vec, txt, 0.2, 0.8)
    assert max(plain, key=plain.get) == "en"         # pool-max makes it a perfect 1.0
    covered = score_fuse(vec, txt, 0.2, 0.8, coverage={"en": 0.5}, coverage_power=2)
    assert covered["en"] == pytest.approx(0.8 * 0.25)
    assert covered["zh"] == pytest.approx(0.2)
    full = score_fuse(vec, txt, 0.2, 0.8, coverage={"en": 1.0}, coverage_power=2)
    assert max(full, key=full.get) == "en"           # a full match still wins


def test_cross_script_bonus_applies_only_to_listed_ids():
    vec = [("a", 0.1), ("b", 0.1), ("c", 0.9)]       # a and b tie at the top
    fused = score_fuse(vec, [], 0.2, 0.8, cross_script={"b"}, cross_script_weight=0.04)
    assert fused["a"] == pytest.approx(0.2)
    assert fused["b"] == pytest.approx(0.24)
    assert fused.get("c", 0.0) == pytest.approx(0.0)


def test_query_coverage_stems_like_the_index_and_ignores_stop_words():
    # "plays"/"playing" share the Porter stem; "what"/"does"/"he" are stop-words
    assert query_coverage("What does he plays?", "Tom is playing the cello") == 1.0
    assert query_coverage("cello lessons Thursday", "Cello lessons are on Monday") == \
        pytest.approx(2 / 3)
    assert query_coverage("编程语言", "我最喜欢的编程语言是Python") == 1.0
    assert query_coverage("编程语言", "My favourite language is Python") == 0.0
    assert query_coverage("the and of ?!", "anything") == 0.0    # no term at all
    assert stem_terms("Running RUNS") == ["run"]


def test_scripts_separates_han_from_alphabetic_letters():
    assert scripts("我喜欢Python 3") == {"han", "alpha"}
    assert scripts("Привет, world") == {"alpha"}
    assert scripts("海鲜过敏。") == {"han"}
    assert scripts("123 !?") == frozenset()
    # ASCII texts take a fast path: the same answer as the per-character one
    for text in ("Ann: hi!", "42 \t\x7f", "x"):
        assert scripts(text) == scripts(text + "\u00b7") == (
            {"alpha"} if any(c.isalpha() for c in text) else frozenset())


def test_chinese_memory_is_top1_for_english_query_despite_shared_english_word(tmp_path):
    from memory import Memory, load_config

    mem = Memory(load_config(env_file=None, memory_data_dir=str(tmp_path)), llm=object())
    try:
        zh = mem.add("我每个月给父母寄两千块钱。", "u1", infer=False)[0].id
        en = mem.add("I'm saving money to buy an apartment near the beach.", "u1",
                     infer=False)[0].id
        mem.add("I drive a blue Tesla Model 3.", "u1", infer=False)
        mem.add("我每天早上六点起床去公园跑步。", "u1", infer=False)
        query = "How much money do I send my parents?"
        ranked = [m.id for m in mem.search(query, "u1").memories]
        assert ranked[0] == zh
        assert en in ranked[:2]                      # the word match is still found
        # the pool-max fusion (previous default) lets the shared word win
        old = SearchWeights(coverage_power=0.0, cross_script=0.0, cross_inherit=0.0,
                            owner_penalty=0.0)
        assert mem.search(query, "u1", weights=old).memories[0].id == en
        with pytest.raises(ValueError, match="unknown fusion"):
            mem.search("seafood", "u1", weights=SearchWeights(fusion="max"))
    finally:
        mem.close()


# ---- issue 13: neighbours, query dates, cross-lingual inheritance, owners -------------
def test_parse_query_dates_reads_days_months_years_in_english_and_chinese():
    from datetime import datetime, timezone

    from memory.search.query_dates import parse_query_dates

    def utc(*a):
        return datetime(*a, tzinfo=timezone.utc)

    q = parse_query_dates("What painting did Melanie show on October 13, 2023?")
    assert q.periods == [(utc(2023, 10, 13), utc(2023, 10, 14))]
    assert "2023" not in q.text and "October" not in q.text and "painting" in q.text
    assert parse_query_dates("What did Gina find on 1 February, 2023?").periods == [
        (utc(2023, 2, 1), utc(2023, 2, 2))]
    assert parse_query_dates("What did Mel paint in July 2023?").periods == [
        (utc(2023, 7, 1), utc(2023, 8, 1))]
    assert parse_query_dates("我2023年12月去了哪里？").periods == [(utc(2023, 12, 1), utc(2024, 1, 1))]
    assert parse_query_dates("beach trips in 2023").periods == [(utc(2023, 1, 1), utc(2024, 1, 1))]
    june = parse_query_dates("When did Melanie go camping in June?")
    assert june.months == {6} and not june.periods and june.window(14) is None
    assert june.matches(utc(2022, 6, 30), 14) and june.matches(utc(2023, 7, 10), 14)
    assert not june.matches(utc(2023, 8, 1), 14)
    assert not parse_query_dates("May I ask what my cat is called?")  # modal, not a month
    assert not parse_query_dates("on February 30, 2023")             # impossible: ignored
    assert parse_query_dates("shared on December 1,2023").periods == [
        (utc(2023, 12, 1), utc(2023, 12, 2))]                        # no space after the comma
    between = parse_query_dates("Where was John between August 11 and August 15 2023?")
    assert sorted(between.periods) == [(utc(2023, 8, 11), utc(2023, 8, 12)),
                                       (utc(2023, 8, 15), utc(2023, 8, 16))]
    assert parse_query_dates("What did I do on March 3?").months == {3}  # no year: the month
    jul = parse_query_dates("in July 2023")
    assert jul.matches(utc(2023, 8, 10), 14) and not jul.matches(utc(2023, 8, 20), 14)


def test_owner_of_tells_the_users_facts_from_other_peoples():
    from memory.search.owner import SELF, is_first_person, owner_of

    assert owner_of("What am I allergic to?") == SELF
    assert owner_of("My daughter is allergic to cats.") == "daughter"
    assert owner_of("我女儿对猫毛过敏。") == "daughter"          # same key across languages
    assert owner_of("How much money do I send my parents?") == SELF  # I is the subject
    assert owner_of("我每个月给父母寄两千块钱。") == SELF
    assert owner_of("我朋友的女朋友是律师。") == "friend"
    assert owner_of("What does my girlfriend do?") == owner_of("我女朋友是护士。") == "girlfriend"
    assert owner_of("My wife and I celebrate our anniversary.") == SELF
    assert owner_of("Sister works as an architect") == "sister"
    assert owner_of("Caroline: my kids loved the trip") == "child"
    assert is_first_person("我喜欢喝什么？") and not is_first_person("What did Melanie paint?")
    # the people users talk about beyond family (session 5: landlords, teammates, doctors …)
    assert owner_of("My landlord drives a red Tesla car.") == owner_of("我房东开一辆红色的车。") == "landlord"
    assert owner_of("My teammate says the best book is Hamlet.") == owner_of("我队友说…") == "teammate"
    assert owner_of("我同学会说四种语言。") == owner_of("My classmate speaks French") == "classmate"
    assert owner_of("我医生对猫过敏。") == owner_of("My doctor is allergic to cats") == "doctor"
    assert owner_of("我经理去东京的航班取消了。") == "boss"


def test_owner_penalty_puts_the_users_own_fact_first(tmp_path):
    from memory import Memory, load_config

    mem = Memory(load_config(env_file=None, memory_data_dir=str(tmp_path)), llm=object())
    try:
        mine = mem.add("我喜欢喝不加糖的绿茶。", "u1", infer=False)[0].id
        son = mem.add("我儿子喜欢喝橙汁。", "u1", infer=False)[0].id
        got = [m.id for m in mem.search("我喜欢喝什么？", "u1").memories]
        assert got[0] == mine and son in got
        # third-person questions are left alone: the same store, no owner check
        off = mem.search("我喜欢喝什么？", "u1", weights=SearchWeights(owner_penalty=0.0))
        assert {m.id for m in off.memories} == {mine, son}
    finally:
        mem.close()


def test_cross_script_memory_inherits_the_text_score_it_beats_semantically():
    # query in English; "zh" (other script) is the nearest vector, "en" shares words
    vec = [("zh", 0.1), ("en", 0.5), ("other", 0.9)]
    txt = [("en", 4.0)]
    base = score_fuse(vec, txt, 0.2, 0.8, cross_script={"zh"})
    assert base["en"] > base["zh"]
    inherit = score_fuse(vec, txt, 0.2, 0.8, cross_script={"zh"}, cross_inherit=1.0)
    assert inherit["zh"] > inherit["en"]
    assert inherit["en"] == base["en"]
    # a cross-script memory further away than the text match inherits nothing
    far = score_fuse([("en", 0.1), ("zh", 0.5), ("x", 0.9)], txt, 0.2, 0.8,
                     cross_script={"zh"}, cross_inherit=1.0)
    assert far["zh"] == pytest.approx(0.2 * 0.5)


def test_thread_neighbours_follow_the_import_order_of_one_thread(tmp_path):
    from datetime import datetime, timezone

    from memory import Memory, load_config
    from memory.search.neighbours import thread_neighbours

    mem = Memory(load_config(env_file=None, memory_data_dir=str(tmp_path)), llm=object())
    try:
        day = datetime(2023, 5, 8, tzinfo=timezone.utc)
        msgs = [{"role": "user", "content": t, "created_at": day}
                for t in ("Ann: What did you do last weekend?", "Bob: Went fishing with Joe!",
                          "Ann: Nice.")]
        ids = [c.id for c in mem.add(msgs, "u1", thread_id="t1", infer=False)]
        other = mem.add([{"role": "user", "content": "Bob: unrelated", "created_at": day}],
                        "u1", thread_id="t2", infer=False)[0].id
        loose = mem.add("Likes fishing", "u1", infer=False)[0].id   # no thread
        recs = {r.id: r for r in mem.store.get_memories("u1", [*ids, other, loose])}
        found = thread_neighbours(mem.store, "u1", [recs[ids[1]], recs[other], recs[loose]])
        assert found[ids[1]] == (ids[0], ids[2])
        assert found[other] == (None, None)
        assert loose not in found
        # the answer shares no word with the question; its neighbour lifts it in
        hits = [m.id for m in mem.search("what did Bob do last weekend", "u1", limit=3).memories]
        assert ids[1] in hits
        off = SearchWeights(context_prev=0.0, context_next=0.0, vector=0.0)
        assert ids[1] not in [m.id for m in mem.search("last weekend plans", "u1", limit=3,
                                                       weights=off).memories]
    finally:
        mem.close()


def test_one_add_call_without_a_thread_is_a_conversation(tmp_path):
    """Issue 26: the messages of one ``add`` call are ordered neighbours without a
    ``thread_id``, exactly as with one; another call's messages are not among them."""
    from datetime import datetime, timezone

    from memory import Memory, load_config
    from memory.search.neighbours import thread_neighbours

    mem = Memory(load_config(env_file=None, memory_data_dir=str(tmp_path)), llm=object())
    try:
        day = datetime(2023, 5, 8, tzinfo=timezone.utc)
        msgs = [{"role": "user", "content": t, "created_at": day}
                for t in ("Ann: What did you do last weekend?", "Bob: Went fishing with Joe!",
                          "Ann: Nice.")]
        ids = [c.id for c in mem.add(msgs, "u1", infer=False)]
        other = [c.id for c in mem.add([{"role": "user", "content": t, "created_at": day}
                                        for t in ("Bob: unrelated", "Ann: indeed")],
                                       "u1", infer=False)]
        recs = {r.id: r for r in mem.store.get_memories("u1", [*ids, *other])}
        assert recs[ids[0]].thread_id is None
        assert len({recs[i].conversation_id for i in ids}) == 1
        assert recs[other[0]].conversation_id not in (None, recs[ids[0]].conversation_id)
        found = thread_neighbours(mem.store, "u1", [recs[ids[1]], recs[ids[2]], recs[other[0]]])
        assert found == {ids[1]: (ids[0], ids[2]), ids[2]: (ids[1], None),
                         other[0]: (None, other[1])}
        # the answer shares no word with the question; its neighbour lifts it in
        hits = [m.id for m in mem.search("what did Bob do last weekend", "u1", limit=3).memories]
        assert ids[1] in hits
        off = SearchWeights(context_prev=0.0, context_next=0.0, vector=0.0)
        assert ids[1] not in [m.id for m in mem.search("last weekend plans", "u1", limit=3,
                                                       weights=off).memories]
    finally:
        mem.close()


def test_a_date_in_the_query_prefers_memories_written_then(tmp_path):
    from datetime import datetime, timezone

    from memory import Memory, load_config

    mem = Memory(load_config(env_file=None, memory_data_dir=str(tmp_path)), llm=object())
    try:
        may = mem.add("Went hiking with my sister", "u1", infer=False,
                      created_at=datetime(2023, 5, 20, tzinfo=timezone.utc))[0].id
        mem.add("Went hiking in the Alps", "u1", infer=False,
                created_at=datetime(2022, 9, 2, tzinfo=timezone.utc))
        got = mem.search("Where did I go hiking in May 2023?", "u1").memories
        assert got[0].id == may
        # a filter outside the named period still wins: nothing from May comes back
        late = mem.search("hiking in May 2023", "u1",
                          filters={"since": datetime(2023, 6, 1, tzinfo=timezone.utc)})
        assert late.memories == []
    finally:
        mem.close()


def test_time_questions_and_memories_that_say_when():
    from memory.search.query_dates import asks_when, has_time_reference

    assert asks_when("When did Melanie paint a sunrise?")
    assert asks_when("How long has Nate had his turtles?") and asks_when("我什么时候去的成都？")
    assert asks_when("What time do I go jogging?") and asks_when("我几点起床？")
    assert not asks_when("What did Melanie paint?") and not asks_when("我喜欢喝什么？")
    for said in ["I went to a conference two days ago", "Yesterday, we went camping",
                 "I've had them for 3 years now", "Last Fri I took the kids to pottery",
                 "我昨天去了医院", "三天前刚搬家", "It opens on March 5", "I jog at 6 am",
                 "我每天早上六点起床", "预产期在十二月"]:
        assert has_time_reference(said), said
    for said in ["Great job, keep going!", "Nice pic! Love the colours.", "我喜欢喝绿茶"]:
        assert not has_time_reference(said), said


def test_a_question_about_time_prefers_the_memory_that_says_when(tmp_path):
    from memory import Memory, load_config

    mem = Memory(load_config(env_file=None, memory_data_dir=str(tmp_path)), llm=object())
    try:
        mem.add("My dentist is great", "u1", infer=False)
        said = mem.add("Dentist appointment yesterday", "u1", infer=False)[0].id
        q = "When did I go to the dentist?"
        assert mem.search(q, "u1").memories[0].id == said
        off = mem.search(q, "u1", weights=SearchWeights(when_boost=0.0)).memories
        assert off[0].id != said  # the boost, not the words, puts it first
    finally:
        mem.close()
