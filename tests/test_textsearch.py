"""Unit tests of memory.text.fulltext: jieba segmentation, safe FTS5 MATCH expressions.

Every MATCH expression is also run against a real FTS5 table (same tokenizer as the
SQLite store) so "operators are plain text" is checked by SQLite itself.
"""
from __future__ import annotations

import pytest

from memory.store.sqlite import load_sqlite_module
from memory.text.fulltext import (CHINESE_STOPWORDS, ENGLISH_STOPWORDS, FTS5_TOKENIZE,
                               MAX_QUERY_TERMS, index_text, match_query, normalize,
                               query_terms, quote_term)

NASTY = [
    'AND', 'OR', 'NOT', 'NEAR', 'NEAR(a b, 2)', 'a*', '*', '"', '""', '"unbalanced', "it's",
    '(', ')', '(a OR b', '-x', '^start', 'col:value', '{a b}: c', 'a + b', '\\', "'; DROP TABLE x; --",
    "\x00", "a\x00b", "\x1b[31mred\x1b[0m", "\ud800 lone surrogate", "\u202eevil RTL override",
    "👩‍👩‍👧‍👦", "e\u0301\u0301\u0301", "Z̴̡̪͔̈́a̸̢̛l̷g̷o̶", "مرحبا \"بالعالم\"", "שָׁלוֹם",
    "ｆｕｌｌ　ｗｉｄｔｈ", "\ufeffbom", "tab\there", "编程 AND 语言*", "「引号」“中文”", "x" * 10000,
]


@pytest.fixture(scope="module")
def fts():
    """An in-memory FTS5 table with the store's tokenizer and a few indexed docs."""
    db = load_sqlite_module()
    conn = db.connect(":memory:")
    conn.execute(f"CREATE VIRTUAL TABLE t USING fts5(body, tokenize = '{FTS5_TOKENIZE}')")
    docs = {
        1: "我最喜欢的编程语言是 Python",
        2: "We live near the station and run every morning",
        3: "naïve café in Zürich",
        4: "مرحبا بالعالم",
        5: "Ｐｙｔｈｏｎ　３ full width",
        6: "नमस्ते दुनिया",
    }
    conn.executemany("INSERT INTO t(rowid, body) VALUES (?, ?)",
                     [(k, index_text(v)) for k, v in docs.items()])
    yield conn
    conn.close()


def search(conn, query: str) -> list[int]:
    expr = match_query(query)
    if expr is None:
        return []
    return [r[0] for r in conn.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY rank", (expr,))]


def test_index_text_segments_chinese():
    out = index_text("我最喜欢的编程语言是 Python").split()
    assert "编程语言" in out and "编程" in out and "语言" in out and "Python" in out


def test_index_text_keeps_other_scripts_whole():
    # jieba alone would split non-CJK letters into single characters
    assert index_text("naïve café مرحبا नमस्ते").split() == ["naïve", "café", "مرحبا", "नमस्ते"]


def test_match_query_quotes_and_or_joins():
    assert match_query("编程语言") == '"编程" OR "语言" OR "编程语言"'
    assert match_query("Python notebooks") == '"Python" OR "notebooks"'


def test_quote_term_escapes_quotes():
    assert quote_term('say "hi"') == '"say ""hi"""'


def test_stopwords_and_particles_are_dropped():
    assert match_query("what is the") is None
    assert match_query("是什么") is None
    assert match_query("的 了 吗") is None
    assert query_terms("What is my favourite programming language?") == \
        ["favourite", "programming", "language"]
    terms = query_terms("我最喜欢的编程语言是什么？")
    assert "编程语言" in terms
    assert not {"的", "是", "什么", "我"} & set(terms)
    assert {"the", "and", "or", "not"} <= ENGLISH_STOPWORDS
    assert {"的", "了", "吗", "是", "什么"} <= CHINESE_STOPWORDS


def test_terms_are_deduplicated_case_insensitively():
    assert query_terms("Python python PYTHON java") == ["Python", "java"]


@pytest.mark.parametrize("query", ["", "   ", "?!…", "😀🎉", "\x00\x01\x02", "*", '"', "()", "-^:",
                                   "the of and", "\u200b\u200e"])
def test_nothing_searchable_gives_none(query):
    assert match_query(query) is None
    assert query_terms(query) == []


@pytest.mark.parametrize("query", NASTY)
def test_nasty_input_gives_valid_fts5_expression(fts, query):
    expr = match_query(query)
    if expr is not None:
        expr.encode("utf-8")  # no lone surrogates reach SQLite
        assert "\x00" not in expr
        fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (expr,)).fetchall()  # no syntax error
    index_text(query).encode("utf-8")


def test_operators_are_plain_words(fts):
    assert search(fts, "NEAR") == [2]             # the word "near", not the operator
    assert search(fts, "station AND NOT morning*") == [2]
    assert sorted(search(fts, '"python')) == [1, 5]
    assert search(fts, "running") == [2]           # porter: running -> run


def test_chinese_and_other_scripts_match(fts):
    assert search(fts, "编程语言") == [1]
    assert search(fts, "你最喜欢什么编程语言？") == [1]
    assert search(fts, "cafe") == [3]              # diacritics folded
    assert search(fts, "NAÏVE") == [3]
    assert search(fts, "Zu\u0308rich") == [3]      # combining mark composed by NFKC
    assert search(fts, "بالعالم") == [4]
    assert search(fts, "नमस्ते") == [6]
    assert search(fts, "ｗｉｄｔｈ") == [5]          # full-width folded to ASCII
    assert sorted(search(fts, "ＰＹＴＨＯＮ")) == [1, 5]


def test_normalize_removes_controls_and_invisibles():
    assert normalize("a\x00b\x07c") == "a b c"
    assert normalize("zero\u200bwidth\u200e") == "zerowidth"
    assert normalize("\ud800x") == " x"
    assert normalize("ｆｕｌｌ") == "full"


def test_normalize_of_ascii_text_equals_the_general_path():
    import unicodedata

    every = "".join(map(chr, range(128)))
    general = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in every)
    assert normalize(every) == general
    assert normalize(every + "é")[:-1] == general  # the per-character path


def test_huge_input_is_bounded():
    words = [f"w{i}" for i in range(3000)]
    terms = query_terms(" ".join(words))
    assert len(terms) == MAX_QUERY_TERMS and terms[0] == "w0"
    body = index_text(" ".join(words))
    assert body.split()[-1] == "w2999"  # the index keeps everything
    assert match_query("编程" * 5000) is not None



def test_word_runs_ascii_fast_path_matches_the_category_rule():
    from memory.text.fulltext import runs_by_category as by_category, word_runs

    every_ascii = "".join(map(chr, range(128))) * 2 + " it's e5-small, v2.1 _x_"
    assert every_ascii.isascii() and word_runs(every_ascii) == by_category(every_ascii)
    assert word_runs("it's e5-small, v2.1 _x_") == ["it", "s", "e5", "small", "v2", "1", "x"]
    mixed = every_ascii + " Café naïve"
    assert word_runs(mixed) == by_category(mixed) and word_runs(mixed)[-2:] == ["Café", "naïve"]
