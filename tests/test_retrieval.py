"""Fusion functions of memory.retrieval on handmade inputs, and one end-to-end check
through Memory that a cross-lingual semantic match beats a one-word BM25 match."""
from __future__ import annotations

import pytest

from memory.retrieval import (SearchWeights, query_coverage, rrf_fuse, score_fuse, scripts,
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
        old = SearchWeights(coverage_power=0.0, cross_script=0.0)
        assert mem.search(query, "u1", weights=old).memories[0].id == en
        with pytest.raises(ValueError, match="unknown fusion"):
            mem.search("seafood", "u1", weights=SearchWeights(fusion="max"))
    finally:
        mem.close()
