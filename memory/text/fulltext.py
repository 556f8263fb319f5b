"""Text preparation for full-text (BM25) search in Chinese and English.

SQLite FTS5's ``unicode61`` tokenizer splits text on spaces and punctuation only, so a
Chinese sentence such as ``我最喜欢的编程语言是Python`` would become one giant token and
``编程语言`` would never match it. We therefore segment Han text with ``jieba`` before
it reaches FTS5 and hand FTS5 space-separated words; the FTS5 table itself uses
``tokenize='porter unicode61 remove_diacritics 2'`` (:data:`FTS5_TOKENIZE`), which
lower-cases, folds diacritics and Porter-stems the English words.

* :func:`index_text` turns a memory's text into the string stored in the FTS column
  (Han runs segmented with ``jieba.cut_for_search``, which emits both the short words and
  the long compound, e.g. ``编程 语言 编程语言``; everything else is kept).
* :func:`query_terms` / :func:`match_query` turn the user's *raw* query into search terms
  and a safe FTS5 MATCH expression: every term is double-quoted (embedded quotes doubled),
  so the FTS5 operators ``AND OR NOT NEAR * " ( ) - ^ :`` typed by a user are plain text;
  terms are OR-joined (BM25 then ranks documents matching more/rarer terms first).

Both sides apply the same normalisation (:func:`normalize`): Unicode NFKC (full-width
``Ｐｙｔｈｏｎ`` → ``Python``), control/private-use/unassigned characters and lone
surrogates become spaces and invisible format characters (zero-width space, RTL marks,
BOM) are removed, so a query matches exactly what was indexed.

jieba's dictionary is loaded lazily, once per process (about 0.5 s), with its logging
turned down to WARNING.
"""
from __future__ import annotations

import logging
import re
import threading
import unicodedata

__all__ = [
    "FTS5_TOKENIZE", "ENGLISH_STOPWORDS", "CHINESE_STOPWORDS", "MAX_QUERY_TERMS",
    "MAX_QUERY_CHARS", "normalize", "segment", "index_text", "word_runs", "query_terms",
    "match_query", "any_term", "quote_term",
]

#: The FTS5 ``tokenize=`` option the stores must use together with :func:`index_text`.
FTS5_TOKENIZE = "porter unicode61 remove_diacritics 2"

#: English words dropped from *queries* (never from the index). Deliberately small:
#: articles, auxiliaries, pronouns, question words and the FTS operator words
#: ``and``/``or``/``not`` (which carry no meaning in a memory lookup). Everything else,
#: including negation-free content words such as ``like`` or ``favourite``, is kept.
ENGLISH_STOPWORDS: frozenset[str] = frozenset("""
a an the and or not but if of to in on at by for from with as into about
is am are was were be been being do does did have has had
what which who whom whose when where why how
that this these those it its i me my mine you your yours we us our
they them their he him his she her there than then so can could would should will
""".split())

#: Chinese particles, pronouns and question words dropped from *queries*: they occur in
#: almost every sentence and would only add noise to the OR-joined BM25 query.
CHINESE_STOPWORDS: frozenset[str] = frozenset("""
的 了 吗 呢 吧 啊 呀 哦 嘛 么 哈 是 什么 怎么 怎样 如何 哪 哪里 哪个 哪些 谁 为什么
我 你 您 他 她 它 我们 你们 他们 她们 咱们 自己 在 和 与 及 或 也 都 就 还 又 个
这 那 这个 那个 这些 那些 着 过 被 把 给 对 请 问 一下 告诉 知道 记得 有没有 是不是
""".split())

#: At most this many distinct terms go into one MATCH expression (first ones win): BM25
#: cost grows with every phrase and a longer query adds little recall.
MAX_QUERY_TERMS = 64

#: Only the first this-many characters of a raw query are analysed (jieba's cost is
#: linear in the input; a search box never needs more).
MAX_QUERY_CHARS = 4000

# Han ideographs: CJK Unified Ideographs, Extension A, Compatibility Ideographs and the
# supplementary-plane extensions B..H.
_HAN_RE = re.compile(
    "([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef\U00030000-\U000323af]+)"
)

#: ASCII control characters (category Cc: U+0000..U+001F, U+007F) -> space, the whole
#: of :func:`normalize` for an ASCII text (a per-character loop cost ~0.2 ms per memory).
_ASCII_CONTROLS = {c: " " for c in [*range(32), 127]}

_jieba = None
_jieba_lock = threading.Lock()


def _tokenizer():
    """Return the initialised jieba module (lazy, thread-safe, quiet)."""
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba  # imported lazily: loading its dictionary takes ~0.5 s

                jieba.setLogLevel(logging.WARNING)
                logging.getLogger("jieba").setLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


def tag_words(text: str) -> list[tuple[str, str]]:
    """jieba's part-of-speech tagging of ``text`` (``jieba.posseg``, the same dictionary as
    ``cut_words``): ``[(word, flag)]``, e.g. ("上海", "ns") for a place name. Loads the
    dictionary on first use."""
    _tokenizer()
    import jieba.posseg

    return [(w.word, w.flag) for w in jieba.posseg.cut(text)]


def cut_words(text: str) -> list[str]:
    """jieba's word segmentation of ``text`` (``jieba.lcut``, precise mode): a list of
    strings that join back to ``text`` ("在武汉一家银行做客户经理" → "在", "武汉", "一家",
    "银行", "做", "客户经理"). Loads the dictionary on first use."""
    return _tokenizer().lcut(text)


def normalize(text: str) -> str:
    """Return ``text`` NFKC-normalised with unsafe characters neutralised.

    Control characters (``Cc``, including NUL and newlines), private-use (``Co``),
    unassigned (``Cn``) code points and lone surrogates (``Cs``) become a space; format
    characters (``Cf``: zero-width space/joiner, RTL/LTR marks, BOM) are removed. Takes
    any ``str``; returns a ``str`` that always encodes to UTF-8.
    """
    if not text:
        return ""
    if text.isascii():  # NFKC leaves ASCII as is; its only C* characters are Cc
        return text.translate(_ASCII_CONTROLS)
    # NFKC cannot fail on lone surrogates, but they must not reach SQLite.
    text = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] != "C":
            out.append(ch)
        elif cat != "Cf":
            out.append(" ")
    return "".join(out)


def segment(text: str) -> list[tuple[str, bool]]:
    """Split normalised ``text`` into ``(chunk, is_han)`` pieces, in order."""
    return [(part, i % 2 == 1) for i, part in enumerate(_HAN_RE.split(text)) if part]


def index_text(text: str) -> str:
    """Return the string to store in an FTS5 column for ``text``.

    Han runs are replaced by their ``jieba.cut_for_search`` words separated by spaces;
    other text is kept (FTS5's unicode61 tokenizer handles it). Example:
    ``"我最喜欢的编程语言是 Python"`` → ``"我 最 喜欢 的 编程 语言 编程语言 是 Python"``
    (modulo spacing). Returns ``""`` for empty input.
    """
    parts: list[str] = []
    for chunk, is_han in segment(normalize(text)):
        if is_han:
            words = [w for w in _tokenizer().cut_for_search(chunk) if w.strip()]
            parts.append(" " + " ".join(words) + " ")
        else:
            parts.append(chunk)
    return " ".join("".join(parts).split())


def _is_term_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LNM"


#: The ASCII characters of categories ``L*``/``N*``/``M*`` are exactly these.
_ASCII_RUN = re.compile(r"[A-Za-z0-9]+")


def word_runs(chunk: str) -> list[str]:
    """Return the maximal runs of letters, digits and combining marks (Unicode categories
    ``L*``, ``N*``, ``M*``) of ``chunk``, in order; everything else separates runs. The one
    word splitter of query terms, retrieval overlap and the TiDB full-text query."""
    if chunk.isascii():  # one regex, the same runs as the category rule on ASCII
        return _ASCII_RUN.findall(chunk)
    return runs_by_category(chunk)


def runs_by_category(chunk: str) -> list[str]:
    """``word_runs`` by the Unicode-category rule, one character at a time (any text;
    ``word_runs`` takes a regex shortcut for ASCII)."""
    runs: list[str] = []
    cur: list[str] = []
    for ch in chunk:
        if _is_term_char(ch):
            cur.append(ch)
        elif cur:
            runs.append("".join(cur))
            cur = []
    if cur:
        runs.append("".join(cur))
    return runs


def query_terms(text: str) -> list[str]:
    """Return the distinct search terms of a raw user query, in order of appearance.

    Han runs are segmented with ``jieba.cut_for_search``; other text is split into runs
    of letters/digits/combining marks, so punctuation, symbols, emoji and FTS operator
    characters never form a term. Stop-words (:data:`ENGLISH_STOPWORDS`,
    :data:`CHINESE_STOPWORDS`, compared case-insensitively) are dropped, duplicates
    (case-insensitive) removed, and at most :data:`MAX_QUERY_TERMS` kept. Only the first
    :data:`MAX_QUERY_CHARS` characters are analysed. Returns ``[]`` when nothing
    searchable remains.
    """
    terms: list[str] = []
    seen: set[str] = set()
    for chunk, is_han in segment(normalize((text or "")[:MAX_QUERY_CHARS])):
        if is_han:
            words = _tokenizer().cut_for_search(chunk)
        else:
            words = word_runs(chunk)
        for word in words:
            word = word.strip()
            key = word.casefold()
            if (not word or key in seen or key in ENGLISH_STOPWORDS
                    or key in CHINESE_STOPWORDS or not any(_is_term_char(c) for c in word)):
                continue
            seen.add(key)
            terms.append(word)
            if len(terms) >= MAX_QUERY_TERMS:
                return terms
    return terms


def quote_term(term: str) -> str:
    """Return ``term`` as an FTS5 string (double-quoted, embedded ``"`` doubled), so
    FTS5 treats it as a plain phrase whatever characters it holds."""
    return '"' + term.replace('"', '""') + '"'


def match_query(text: str) -> str | None:
    """Return a safe FTS5 MATCH expression for the raw user query ``text``.

    The expression is the :func:`query_terms` quoted with :func:`quote_term` and joined
    with ``OR``, e.g. ``'编程语言 AND *'`` → ``'"编程" OR "语言" OR "编程语言"'``.
    Callers may wrap it in parentheses and combine it with a column filter. Returns None
    when the query has no searchable term (empty, only stop-words/punctuation/emoji).
    """
    terms = query_terms(text)
    return any_term(terms) if terms else None


def any_term(terms: list[str]) -> str:
    """The FTS5 expression matching any of ``terms`` (a non-empty list of strings), each
    quoted as a plain phrase (:func:`quote_term`) and joined with ``OR``."""
    return " OR ".join(quote_term(t) for t in terms)
