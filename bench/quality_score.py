"""LLM-free scoring of the memory-quality benchmark (``bench/memory_quality.py``).

Pure functions over plain data, so they are unit-tested without any model:
``score(scenarios, snapshots)`` takes the labelled scenarios of
``bench/data/memory_quality.json`` (or another set of the same schema) and, per scenario,
the list of per-turn snapshots the runner collected after each ``Memory.add``::

    {"active":  [{"id", "text", "type"}, ...],      # the user's live memories after the turn
     "added":   [id, ...],                          # ids ADDed by this turn
     "changes": [{"action", "id", "text", "old_text"}, ...],   # this turn's Change list
     "history": [{"memory_id", "event", "old_text", "new_text", "actor"}, ...],  # all so far
     "llm_calls": int, "prompt_tokens": int, "seconds": float}

A scenario's entry may also be the runner's whole record, ``{"turns": [snapshot, ...],
"seeds": [{"id", "text", "type"}, ...]}``: ``seeds`` are the memories stored for the fresh
user before its first turn (the scenario's ``"seed"`` list, inserted without the LLM).
When a scenario has a ``"seed"`` list but its entry carries no ``seeds`` (a plain list of
snapshots), the seeds are looked for by text instead of by id.

``score`` returns metrics per turn category, per scenario language and overall;
``format_table(result)`` renders them as a markdown table; ``aggregate_runs`` turns the
results of several runs of the same set into ``{"mean", "min", "max"}`` cells, which
``format_table`` renders as ``mean (min–max)``.

Events. Changes and history events are ADD, UPDATE (value replaced), END (the memory is
no longer current: moved away, quit a habit; the row is kept as past), FORGET (the user
asked to forget it: a tombstone), DELETE (a hard delete; also what older runs recorded
for both), RESTORE / UNDO and NONE. **Removals** are DELETE, END and FORGET
(:data:`REMOVALS`).

Matching: every regex is searched (``re.IGNORECASE``) in the NFKC-normalised, case-folded
memory text (:func:`norm`). An expectation ``{"all": [regex, ...], "lang": "en"|"zh"|…}``
holds for a memory that matches every regex of ``all`` and, when ``lang`` is given, is
written in that language (:func:`lang_ok`).

Metrics (``None`` when a category has nothing to measure):

* ``recall``: held ``present`` expectations / all ``present`` expectations;
* ``absent``: held ``absent`` expectations / all (no active memory matches);
* ``junk``: wrong changes / all ADD, UPDATE and removal changes (each change of each
  turn counts once, in the category of its turn; NONE, RESTORE and UNDO are not
  counted). A change is wrong when it is

  - an ADD whose text matches a ``junk`` regex of its scenario declared on its turn or an
    earlier one, or that a ``max_new: 0`` turn made;
  - an UPDATE whose new text matches such a ``junk`` regex, or that a ``max_new: 0`` turn
    made;
  - an **unmatched** ADD: its text matches no ``present`` expectation of any turn of the
    scenario (regexes only) and no ``junk`` regex — a fact nobody asked to keep (not
    counted in a scenario without any ``present`` expectation, such as the
    false-positive set's, whose turns may add memories: there is nothing to match);
  - an **over-deletion**: a removal, or an UPDATE, of a memory whose text before the
    change matched (regexes only) a ``present`` expectation of that turn or a later one,
    when after the turn no active memory holds that expectation any more (the memory
    should have survived; a duplicate merged into a memory that still holds it is fine).

  ``junk_count`` and ``changes`` are its numerator and denominator; ``junk_update``,
  ``junk_unmatched`` and ``over_deleted`` count three of the reasons;
* ``junk_add``: the ADD-only figure of older reports — ADDed memories (distinct ids)
  matching a ``junk`` regex or added by a ``max_new: 0`` turn, / all ADDed memories
  (``junk_add_count`` / ``added``); unmatched ADDs are not counted in it;
* ``update``: share of turns with ``update`` where every ``present`` and ``absent`` of
  the turn holds and the history holds an UPDATE, END or DELETE whose ``old_text``
  matches every regex of ``history_old``;
* ``forget``: share of turns with ``forget`` where no active memory matches all ``gone``
  regexes and the history holds a FORGET, DELETE or END whose ``old_text`` matches them;
* ``lang``: share of ADD/UPDATE texts of a turn written in the scenario's language
  (:func:`lang_ok`; ``mixed`` scenarios always pass);
* ``fp_ok``: for scenarios with seeds, share of turns with ``"expect": {"survive": "all"}``
  (``fp_turns``) after which every seed is still active with its original text;
  ``fp_broken`` counts the other turns; ``seeds_lost``: distinct seeds missing
  (deleted, ended, forgotten) or rewritten after the scenario's last turn, counted in the
  category of the turn that lost them; ``seeds``: seeds inserted;
* ``calls_per_turn``, ``tokens_per_turn`` (prompt tokens), ``seconds_per_turn``.

Also ``unmatched``: the unmatched ADDs (also in ``junk``, listed to read them), and
``failures``: one line per failed check (``kind`` present, absent, junk, max_new,
unmatched, update-junk, update-max_new, over-delete, update-history, forget-kept,
forget-no-delete, lang, seed), to read why a number is low.

Language (:func:`lang_ok`), every language by language identification:

1. ``mixed`` or no language: passes. PII placeholders (``[PHONE]`` …) are removed first;
   a text with no letter left passes.
2. **short names**: a text of fewer than 3 words at least half of which start with a
   capital letter (the first word counting only when it is the only one: "Ana",
   "Google", "Heter Erik", "Ben Emre") passes — too short to identify, and names are not
   translated.
3. **script**: Chinese, Japanese and Korean are told apart by script: kana makes a text
   Japanese, Hangul Korean; ``zh`` needs Han characters, no kana and no Hangul, and at
   least two Han characters per word of another script ("在Google工作" passes, "Lives
   in成都" fails); ``ja`` needs kana or Han characters (kanji-only Japanese such as
   "東京在住" cannot be told from Chinese and passes), no Hangul, and the same two-to-one
   share; ``ko`` needs Hangul, no kana, and the same share. Any other language fails a
   text holding Han, kana or Hangul, and needs at least as many words in its own script
   (Latin, or Cyrillic for ru/uk/…, Greek, Arabic, …) as in others ("Lives in Казани"
   fails ``ru``).
4. **language id** (the other languages; the CJK ones are settled by 3): py3langid's
   model (langid.py, the library, not the product's code), restricted to
   :data:`LANGID_CANDIDATES` plus the expected language, must give the expected language
   at least half the probability of its top choice (English: 0.3 of it) — memories are a
   few words long, where close languages swap places: "Vive en Madrid" or "Is a
   paramedic" would fail a strict top-1. A French memory in a Spanish scenario, or an
   English one in a German scenario ("Works at Siemens"), fails; a short English one
   close to the language may pass ("Name is Sanne" in Dutch). Languages the model does
   not know are checked by script only.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any, Iterable

#: turn categories of the main set, in table order (other categories of a data file
#: follow in the order they first appear in it)
CATEGORIES: tuple[str, ...] = (
    "intro", "question", "smalltalk", "assistant_self", "assistant_suggestion",
    "other_people", "hypothetical", "negation", "move_job", "correction", "forget",
    "relative_date", "pii", "long_message", "repeat")
#: scenario languages of the main set, in table order (others follow in data order)
LANGS: tuple[str, ...] = ("en", "zh", "mixed")
#: change events that take a memory out of the active ones
REMOVALS = frozenset({"DELETE", "END", "FORGET"})
#: history events that show an old value was replaced (``update``) / forgotten (``forget``)
UPDATE_EVENTS = frozenset({"UPDATE", "END", "DELETE"})
FORGET_EVENTS = frozenset({"FORGET", "DELETE", "END"})
#: languages the language-id step chooses among (plus the expected one): the product's
#: languages and their close neighbours, so a French memory fails a Spanish scenario
LANGID_CANDIDATES: tuple[str, ...] = (
    "en", "fr", "es", "de", "it", "pt", "nl", "sv", "da", "no", "pl", "cs", "tr", "id",
    "ms", "vi", "ru", "uk", "ro", "hu", "fi")
#: the language must get at least this share of the top choice's probability; English
#: gets a wider margin: two-word English memories ("Loves ramen") sit near one half, and
#: the wrong English memory is the one in another script, which the script rule catches
LANGID_MARGIN = 0.5
LANGID_MARGIN_EN = 0.3

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_LATIN_WORD = re.compile(r"[a-zA-Z\u00c0-\u024f]+")
#: PII placeholders written by memory.safety.pii (``[PHONE]``, ``[EMAIL]`` ...): not language
_PLACEHOLDER = re.compile(r"\[[A-Za-z_]+\]")


# ---- text helpers ---------------------------------------------------------------------
def norm(text: str | None) -> str:
    """``text`` NFKC-normalised and case-folded (what every regex is matched against)."""
    return unicodedata.normalize("NFKC", text or "").casefold()


@lru_cache(maxsize=4096)
def _rx(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.IGNORECASE)


def matches_all(text: str | None, regexes: Iterable[str]) -> bool:
    """True when every regex of ``regexes`` is found in ``norm(text)`` (an empty list
    matches nothing, so a malformed expectation never passes by accident)."""
    regexes = list(regexes)
    if not regexes:
        return False
    n = norm(text)
    return all(_rx(r).search(n) for r in regexes)


def matches_any(text: str | None, regexes: Iterable[str]) -> bool:
    """True when at least one regex of ``regexes`` is found in ``norm(text)``."""
    n = norm(text)
    return any(_rx(r).search(n) for r in regexes)


def is_chinese(text: str | None) -> bool:
    """True when ``text`` is written in Chinese: it holds CJK characters and they are at
    least half of its letters, counting a Latin word (a run of Latin letters) as two
    letters (about one Chinese word), PII placeholders ignored. "在Google工作" passes
    (3 CJK vs 1 word), "Lives in成都" fails (2 CJK vs 2 words), "住在New York" fails,
    "喜欢用Python写代码" passes. (Counting every Latin letter would fail the first;
    counting a word as one letter would pass the second.)"""
    t = _PLACEHOLDER.sub(" ", unicodedata.normalize("NFKC", text or ""))
    cjk = len(_CJK.findall(t))
    words = len(_LATIN_WORD.findall(t))
    return cjk > 0 and cjk >= 2 * words


def has_cjk(text: str | None) -> bool:
    """True when ``text`` holds at least one CJK ideograph."""
    return bool(_CJK.search(unicodedata.normalize("NFKC", text or "")))


_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")

#: scripts counted character by character (no spaces between words)
_CHAR_SCRIPTS = frozenset({"han", "kana", "hangul"})
#: the script(s) of languages not written in Latin letters
_LANG_SCRIPTS: dict[str, frozenset[str]] = {
    "zh": frozenset({"han"}), "yue": frozenset({"han"}), "wuu": frozenset({"han"}),
    "ja": frozenset({"han", "kana"}), "ko": frozenset({"hangul", "han"}),
    **{lang: frozenset({"cyrillic"}) for lang in
       ("ru", "uk", "bg", "be", "mk", "kk", "ky", "mn", "tg", "tt", "ba")},
    "el": frozenset({"greek"}), "he": frozenset({"hebrew"}), "yi": frozenset({"hebrew"}),
    **{lang: frozenset({"arabic"}) for lang in ("ar", "fa", "ur", "ps", "ug", "ckb")},
    **{lang: frozenset({"devanagari"}) for lang in ("hi", "mr", "ne", "sa")},
    "th": frozenset({"thai"}), "ka": frozenset({"georgian"}), "hy": frozenset({"armenian"}),
    "bn": frozenset({"bengali"}), "ta": frozenset({"tamil"}), "te": frozenset({"telugu"}),
    "km": frozenset({"khmer"}), "lo": frozenset({"lao"}), "my": frozenset({"myanmar"}),
    "si": frozenset({"sinhala"}), "am": frozenset({"ethiopic"}),
}
_LATIN = frozenset({"latin"})


def _script(ch: str) -> str | None:
    """The script of one letter (``latin``, ``cyrillic``, ``han``, ``kana``, ``hangul``
    …), from its Unicode name; None for a non-letter."""
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    if name.startswith(("HIRAGANA", "KATAKANA")):
        return "kana"
    if name.startswith("HANGUL"):
        return "hangul"
    if name.startswith(("CJK", "IDEOGRAPHIC")):
        return "han"
    return name.split(" ", 1)[0].lower() or None


def _script_units(text: str) -> tuple[dict[str, int], dict[str, int]]:
    """``(chars, words)``: per script, the letters of the character scripts (Han, kana,
    Hangul) and the words (runs of letters) of the others."""
    chars: dict[str, int] = {}
    words: dict[str, int] = {}
    prev = None
    for ch in text:
        if unicodedata.category(ch).startswith("M"):
            continue  # a combining mark belongs to the letter before it
        s = _script(ch)
        if s in _CHAR_SCRIPTS:
            chars[s] = chars.get(s, 0) + 1
        elif s is not None and s != prev:
            words[s] = words.get(s, 0) + 1
        prev = s
    return chars, words


def _base_lang(lang: str) -> str:
    return re.split(r"[-_]", lang.strip().lower(), maxsplit=1)[0]


def _is_short_name(text: str) -> bool:
    """Fewer than 3 words, at least half of them capitalised, the first word counting
    only when it is the only one (see the module docstring)."""
    words = [w for w in text.split() if any(ch.isalpha() for ch in w)]
    if not words or len(words) >= 3:
        return False

    def capital(word: str) -> bool:
        first = next(ch for ch in word if ch.isalpha())
        return first.isupper()

    if len(words) == 1:
        return capital(words[0])
    return capital(words[1])


def _script_ok(text: str, lang: str) -> bool:
    chars, words = _script_units(text)
    own = _LANG_SCRIPTS.get(lang, _LATIN)
    if own & _CHAR_SCRIPTS:  # zh, ja, ko
        if any(chars.get(s) for s in _CHAR_SCRIPTS - own):
            return False
        if lang == "ko" and not chars.get("hangul"):
            return False
        mine = sum(chars.get(s, 0) for s in own)
        return mine > 0 and mine >= 2 * sum(words.values())
    if chars:
        return False
    mine = sum(n for s, n in words.items() if s in own)
    return mine > 0 and 2 * mine >= sum(words.values())


@lru_cache(maxsize=1)
def _latin_identifier():
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier
    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def _langid_rank(text: str, lang: str) -> list[tuple[str, float]]:
    """langid.py's ranking of ``text`` among :data:`LANGID_CANDIDATES` and ``lang``."""
    ident = _latin_identifier()
    ident.set_languages(sorted(set(LANGID_CANDIDATES) | {lang}))
    return [(code, float(p)) for code, p in ident.rank(text)]


def lang_id(text: str | None, lang: str | None = None) -> str | None:
    """A best guess of the language ``text`` is written in, to show in failures: ``ja``
    (kana), ``ko`` (Hangul), ``zh`` (Han), else langid.py's top choice among
    :data:`LANGID_CANDIDATES` (and ``lang``); None for a text without letters."""
    t = _PLACEHOLDER.sub(" ", unicodedata.normalize("NFKC", text or ""))
    chars, words = _script_units(t)
    if not chars and not words:
        return None
    if chars.get("kana"):
        return "ja"
    if chars.get("hangul"):
        return "ko"
    if chars.get("han") and chars["han"] >= 2 * sum(words.values()):
        return "zh"
    known = set(_latin_identifier().nb_classes)
    extra = _base_lang(lang) if lang and _base_lang(lang) in known else "en"
    return _langid_rank(t, extra)[0][0]


@lru_cache(maxsize=65536)
def _lang_ok(text: str, lang: str) -> bool:
    t = _PLACEHOLDER.sub(" ", unicodedata.normalize("NFKC", text))
    if not any(ch.isalpha() for ch in t):
        return True
    if _is_short_name(t):
        return True
    if not _script_ok(t, lang):
        return False
    if _LANG_SCRIPTS.get(lang, _LATIN) & _CHAR_SCRIPTS:
        return True  # zh / ja / ko: settled by script
    if lang not in _latin_identifier().nb_classes:
        return True
    probs = dict(_langid_rank(t, lang))
    margin = LANGID_MARGIN_EN if lang == "en" else LANGID_MARGIN
    return probs.get(lang, 0.0) >= margin * max(probs.values())


def lang_ok(text: str | None, lang: str | None) -> bool:
    """Whether ``text`` is written in ``lang`` (a language code such as ``en``, ``zh``,
    ``ja``, ``fr``; ``pt-BR`` is read as ``pt``): placeholders removed, short names
    tolerated, then script, then language id — the rules of the module docstring.
    ``"mixed"`` or None → True."""
    if not lang or lang == "mixed":
        return True
    return _lang_ok(text or "", _base_lang(lang))


def expectation_holds(exp: dict[str, Any], memories: Iterable[dict[str, Any]]) -> bool:
    """True when one memory of ``memories`` matches every regex of ``exp["all"]`` and is
    in ``exp["lang"]`` (when given)."""
    regexes, lang = exp.get("all") or [], exp.get("lang")
    return any(matches_all(m.get("text"), regexes) and lang_ok(m.get("text"), lang)
               for m in memories)


def _action(change: dict[str, Any]) -> str:
    return str(change.get("action") or change.get("event") or "").upper()


# ---- scoring ----------------------------------------------------------------------------
class _Acc:
    """Counters of one row (a category, a language, or all)."""

    def __init__(self) -> None:
        self.turns = 0
        self.present = [0, 0]  # held, total
        self.absent = [0, 0]
        self.update = [0, 0]
        self.forget = [0, 0]
        self.lang = [0, 0]
        self.changes = [0, 0]  # wrong, all (ADD + UPDATE + removals)
        self.junk_update = 0
        self.junk_unmatched = 0
        self.over_deleted = 0
        self.added: set[tuple[int, str]] = set()
        self.junk_add: set[tuple[int, str]] = set()
        self.fp = [0, 0]  # broken, checked turns
        self.seeds = 0
        self.seeds_lost = 0
        self.calls = 0.0
        self.tokens = 0.0
        self.seconds = 0.0

    def metrics(self) -> dict[str, Any]:
        def share(pair: list[int]) -> float | None:
            return pair[0] / pair[1] if pair[1] else None

        n = self.turns
        seeded = bool(self.fp[1] or self.seeds or self.seeds_lost)
        return {
            "n": n,
            "recall": share(self.present), "recall_n": self.present[1],
            "absent": share(self.absent), "absent_n": self.absent[1],
            "junk": share(self.changes), "junk_count": self.changes[0],
            "changes": self.changes[1], "junk_update": self.junk_update,
            "junk_unmatched": self.junk_unmatched, "over_deleted": self.over_deleted,
            "junk_add": len(self.junk_add) / len(self.added) if self.added else None,
            "junk_add_count": len(self.junk_add), "added": len(self.added),
            "update": share(self.update), "update_n": self.update[1],
            "forget": share(self.forget), "forget_n": self.forget[1],
            "lang": share(self.lang), "lang_n": self.lang[1],
            "fp_ok": 1 - self.fp[0] / self.fp[1] if self.fp[1] else None,
            "fp_turns": self.fp[1], "fp_broken": self.fp[0],
            "seeds_lost": self.seeds_lost if seeded else None, "seeds": self.seeds,
            "calls_per_turn": self.calls / n if n else None,
            "tokens_per_turn": self.tokens / n if n else None,
            "seconds_per_turn": self.seconds / n if n else None,
        }


def _entries(scenarios: list[dict[str, Any]],
             snapshots: list[Any] | dict[str, Any]
             ) -> list[tuple[list[dict[str, Any]], list[dict[str, Any]] | None]]:
    """Per scenario ``(snapshots, seeds)``; an entry is a list of snapshots or a record
    ``{"turns", "seeds"}``; ``seeds`` is None when the entry does not say."""
    if isinstance(snapshots, dict):
        raw = [snapshots.get(s.get("id")) for s in scenarios]
    else:
        raw = list(snapshots) + [None] * (len(scenarios) - len(snapshots))
    out = []
    for entry in raw[:len(scenarios)]:
        if isinstance(entry, dict):
            seeds = entry.get("seeds")
            out.append((list(entry.get("turns") or []),
                        None if seeds is None else list(seeds)))
        else:
            out.append((list(entry or []), None))
    return out


def _ordered(known: Iterable[str], seen: Iterable[str], have: Iterable[str]) -> list[str]:
    """``have`` ordered: ``known`` first, then ``seen`` (data order), then the rest."""
    have = set(have)
    out = [k for k in known if k in have]
    out += [k for k in dict.fromkeys(seen) if k in have and k not in out]
    return out + [k for k in sorted(have) if k not in out]


def _seed_state(seed: dict[str, Any], by_id: dict[str, str], texts: set[str]
                ) -> tuple[str, str | None]:
    """``("ok" | "missing" | "rewritten", the memory's text now)``."""
    sid, text = seed.get("id"), seed.get("text") or ""
    if sid:
        if sid not in by_id:
            return "missing", None
        now = by_id[sid] or ""
        return ("ok" if now.strip() == text.strip() else "rewritten"), now
    return ("ok", text) if norm(text).strip() in texts else ("missing", None)


def _broke_by(seed_id: str | None, changes: list[dict[str, Any]],
              history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The change (this turn's, else the last history event) that touched a seed."""
    if not seed_id:
        return None
    for c in changes:
        if c.get("id") == seed_id and _action(c) not in ("ADD", "NONE"):
            return {"action": _action(c), "text": c.get("text"), "old_text": c.get("old_text")}
    events = [e for e in history if e.get("memory_id") == seed_id
              and str(e.get("event", "")).upper() not in ("ADD", "NONE")]
    if events:
        e = events[-1]
        return {"action": str(e.get("event")).upper(), "text": e.get("new_text"),
                "old_text": e.get("old_text"), "actor": e.get("actor")}
    return None


def score(scenarios: list[dict[str, Any]],
          snapshots: list[Any] | dict[str, Any]) -> dict[str, Any]:
    """Score a run. ``scenarios``: the ``"scenarios"`` list of the data file;
    ``snapshots``: per scenario (a list aligned with ``scenarios``, or a dict by scenario
    id) the per-turn snapshots, or the runner's record ``{"turns", "seeds"}`` (see the
    module docstring). Turns without a snapshot (a partial run) are skipped. Returns
    ``{"all": metrics, "categories": {cat: metrics}, "langs": {lang: metrics},
    "unmatched": [...], "failures": [...], "turns": n}`` where metrics is
    ``_Acc.metrics()`` (``recall``, ``absent``, ``junk``, ``junk_add``, ``update``,
    ``forget``, ``lang``, ``fp_ok``, ``seeds_lost``, per-turn averages and the counts
    behind each share)."""
    rows: dict[str, _Acc] = {}
    total = _Acc()
    unmatched: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []

    def accs(category: str, lang: str) -> list[_Acc]:
        return [total, rows.setdefault(f"cat:{category}", _Acc()),
                rows.setdefault(f"lang:{lang}", _Acc())]

    for si, (scen, (snaps, seeds)) in enumerate(zip(scenarios, _entries(scenarios, snapshots))):
        sid, slang = scen.get("id", f"#{si}"), scen.get("lang", "en")
        turns = scen.get("turns") or []
        if seeds is None:  # not recorded by the runner: look the scenario's seeds up by text
            seeds = [{"id": None, "text": s.get("text"), "type": s.get("type")}
                     for s in scen.get("seed") or []]
        presents_at = [list((t.get("expect") or {}).get("present") or []) for t in turns]
        presents = [p.get("all") or [] for ps in presents_at for p in ps]
        junk_rx: list[str] = []
        if snaps and seeds:
            for acc in (total, rows.setdefault(f"lang:{slang}", _Acc())):
                acc.seeds += len(seeds)
        prev: dict[str, str] = {s["id"]: s.get("text") or "" for s in seeds if s.get("id")}
        seed_broke: dict[int, int] = {}  # seed index -> turn it went missing / was rewritten
        seed_broken: set[int] = set()
        for ti, (turn, snap) in enumerate(zip(turns, snaps)):
            exp = turn.get("expect") or {}
            cat = turn.get("category", "?")
            junk_rx = junk_rx + list(exp.get("junk") or [])
            active = snap.get("active") or []
            history = snap.get("history") or []
            changes = list(snap.get("changes") or [])
            here = accs(cat, slang)

            def fail(kind: str, detail: Any, **extra: Any) -> None:
                failures.append({"scenario": sid, "turn": ti, "category": cat,
                                 "kind": kind, "detail": detail, **extra})

            for acc in here:
                acc.turns += 1
                acc.calls += float(snap.get("llm_calls") or 0)
                acc.tokens += float(snap.get("prompt_tokens") or 0)
                acc.seconds += float(snap.get("seconds") or 0.0)

            present_ok = True
            for p in exp.get("present") or []:
                ok = expectation_holds(p, active)
                present_ok &= ok
                for acc in here:
                    acc.present[0] += ok
                    acc.present[1] += 1
                if not ok:
                    fail("present", p)
            absent_ok = True
            for a in exp.get("absent") or []:
                hit = [m.get("text") for m in active
                       if matches_all(m.get("text"), a.get("all") or [])
                       and lang_ok(m.get("text"), a.get("lang"))]
                absent_ok &= not hit
                for acc in here:
                    acc.absent[0] += not hit
                    acc.absent[1] += 1
                if hit:
                    fail("absent", {"expect": a, "found": hit})

            # ---- the turn's changes: junk, unmatched ADDs, over-deletions -------------
            texts = {m.get("id"): m.get("text") for m in active}
            listed = {c.get("id") for c in changes if _action(c) == "ADD"}
            changes += [{"action": "ADD", "id": mid, "text": texts.get(mid, "")}
                        for mid in dict.fromkeys(snap.get("added") or [])
                        if mid is not None and mid not in listed]
            later = [p for ps in presents_at[ti:] for p in ps]
            max_new0 = exp.get("max_new") == 0

            def over_deleted(old: str | None) -> dict[str, Any] | None:
                """The present expectation (this turn's or later) the removed text met
                and nothing active meets any more, or None."""
                if not old:
                    return None
                return next((p for p in later if matches_all(old, p.get("all") or [])
                             and not expectation_holds(p, active)), None)

            for c in changes:
                action, mid = _action(c), c.get("id")
                if action == "ADD":
                    text = c.get("text") or texts.get(mid, "")
                    rx_junk = matches_any(text, junk_rx)
                    is_unmatched = bool(presents) and not (rx_junk or max_new0) and not any(
                        matches_all(text, p) for p in presents)
                    kind = ("max_new" if max_new0 else "junk" if rx_junk
                            else "unmatched" if is_unmatched else None)
                    key = (si, str(mid))
                    for acc in here:
                        if mid is not None:
                            acc.added.add(key)
                            if max_new0 or rx_junk:
                                acc.junk_add.add(key)
                        acc.junk_unmatched += is_unmatched
                    if is_unmatched:
                        unmatched.append({"scenario": sid, "turn": ti, "category": cat,
                                          "text": text})
                    detail: Any = text
                elif action == "UPDATE":
                    text, old = c.get("text"), c.get("old_text") or prev.get(mid)
                    kind = ("update-max_new" if max_new0
                            else "update-junk" if matches_any(text, junk_rx) else None)
                    if kind:
                        for acc in here:
                            acc.junk_update += 1
                        detail = {"old": old, "new": text}
                    else:
                        gone = over_deleted(old)
                        kind = "over-delete" if gone else None
                        detail = {"action": action, "text": old, "new": text, "expect": gone}
                elif action in REMOVALS:
                    old = c.get("old_text") or c.get("text") or prev.get(mid)
                    gone = over_deleted(old)
                    kind = "over-delete" if gone else None
                    detail = {"action": action, "text": old, "expect": gone}
                else:  # NONE, RESTORE, UNDO: not a change the turn is judged on
                    continue
                if kind == "over-delete":
                    for acc in here:
                        acc.over_deleted += 1
                for acc in here:
                    acc.changes[0] += kind is not None
                    acc.changes[1] += 1
                if kind:
                    fail(kind, detail)

            if "update" in exp:
                old = (exp.get("update") or {}).get("history_old") or []
                hist_ok = any(str(e.get("event", "")).upper() in UPDATE_EVENTS
                              and matches_all(e.get("old_text"), old) for e in history)
                ok = present_ok and absent_ok and hist_ok
                for acc in here:
                    acc.update[0] += ok
                    acc.update[1] += 1
                if not hist_ok:
                    fail("update-history", old)
            if "forget" in exp:
                gone = (exp.get("forget") or {}).get("gone") or []
                left = [m.get("text") for m in active if matches_all(m.get("text"), gone)]
                removed = any(str(e.get("event", "")).upper() in FORGET_EVENTS
                              and matches_all(e.get("old_text"), gone) for e in history)
                ok = not left and removed
                for acc in here:
                    acc.forget[0] += ok
                    acc.forget[1] += 1
                if left:
                    fail("forget-kept", left)
                if not removed:
                    fail("forget-no-delete", gone)

            for c in changes:
                if _action(c) not in ("ADD", "UPDATE"):
                    continue
                ok = lang_ok(c.get("text"), slang)
                for acc in here:
                    acc.lang[0] += ok
                    acc.lang[1] += 1
                if not ok:
                    fail("lang", c.get("text"), lang_id=lang_id(c.get("text"), slang))

            # ---- seeds: still there, word for word? ---------------------------------
            if seeds:
                by_id = {m.get("id"): m.get("text") for m in active}
                norm_texts = {norm(m.get("text")).strip() for m in active}
                broken_now = False
                for k, seed in enumerate(seeds):
                    state, now = _seed_state(seed, by_id, norm_texts)
                    if state == "ok":
                        seed_broken.discard(k)
                        continue
                    broken_now = True
                    if k not in seed_broken:
                        seed_broken.add(k)
                        seed_broke[k] = ti
                        fail("seed", {"seed": seed.get("text"), "state": state, "now": now,
                                      "change": _broke_by(seed.get("id"), changes, history)})
                if exp.get("survive") == "all":
                    for acc in here:
                        acc.fp[0] += broken_now
                        acc.fp[1] += 1
            elif exp.get("survive") == "all":
                for acc in here:
                    acc.fp[1] += 1
            prev = {m.get("id"): m.get("text") or "" for m in active}

        for k in seed_broken:  # lost by the end: counted where it was lost
            t = turns[seed_broke[k]]
            for acc in accs(t.get("category", "?"), slang):
                acc.seeds_lost += 1

    data_cats = [t.get("category", "?") for s in scenarios for t in s.get("turns") or []]
    data_langs = [s.get("lang", "en") for s in scenarios]
    have_cats = [k[4:] for k in rows if k.startswith("cat:")]
    have_langs = [k[5:] for k in rows if k.startswith("lang:")]
    cats = {c: rows[f"cat:{c}"].metrics() for c in _ordered(CATEGORIES, data_cats, have_cats)}
    langs = {g: rows[f"lang:{g}"].metrics() for g in _ordered(LANGS, data_langs, have_langs)}
    return {"all": total.metrics(), "categories": cats, "langs": langs,
            "turns": total.turns, "unmatched": unmatched, "failures": failures}


# ---- several runs -----------------------------------------------------------------------
def _spread(values: list[Any]) -> dict[str, float] | None:
    nums = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not nums:
        return None
    return {"mean": sum(nums) / len(nums), "min": min(nums), "max": max(nums)}


def _aggregate_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return {k: _spread([r.get(k) for r in rows]) for k in keys}


def aggregate_runs(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The results of several runs of the same set (each :func:`score`'s result, or its
    ``all`` / ``categories`` / ``langs`` / ``turns`` part) as one result of the same
    shape whose every metric is ``{"mean", "min", "max"}`` over the runs that measured it
    (None when none did); ``runs`` is the number of runs. Rows keep the first run's
    order (rows only some runs have follow)."""
    def rows_of(part: str) -> dict[str, Any]:
        names = list(dict.fromkeys(name for r in results for name in r.get(part) or {}))
        return {name: _aggregate_rows([r[part][name] for r in results
                                       if name in (r.get(part) or {})]) for name in names}

    return {"runs": len(results),
            "all": _aggregate_rows([r["all"] for r in results if r.get("all")]),
            "categories": rows_of("categories"), "langs": rows_of("langs"),
            "turns": _spread([r.get("turns") for r in results])}


def run_means(agg: dict[str, Any]) -> dict[str, Any]:
    """:func:`aggregate_runs`' result with every cell replaced by its mean (the shape of
    one :func:`score` result's metrics, for readers that expect plain numbers)."""
    def mean(cell: Any) -> Any:
        return cell["mean"] if isinstance(cell, dict) else cell

    def row(r: dict[str, Any]) -> dict[str, Any]:
        return {k: mean(v) for k, v in r.items()}

    return {"all": row(agg.get("all") or {}),
            "categories": {k: row(v) for k, v in (agg.get("categories") or {}).items()},
            "langs": {k: row(v) for k, v in (agg.get("langs") or {}).items()},
            "turns": mean(agg.get("turns"))}


# ---- table ------------------------------------------------------------------------------
_COLUMNS = (("n", "n turns"), ("recall", "recall"), ("absent", "absent"), ("junk", "junk"),
            ("junk_add", "junk ADD"), ("update", "update"), ("forget", "forget"),
            ("lang", "lang"), ("fp_ok", "fp ok"), ("seeds_lost", "seeds lost"),
            ("calls_per_turn", "calls/turn"), ("tokens_per_turn", "tokens/turn"),
            ("seconds_per_turn", "s/turn"))
_SEED_COLUMNS = ("fp_ok", "seeds_lost")
_COUNTS = ("n", "seeds_lost")


def _number(key: str, value: float) -> str:
    if key in _COUNTS:
        return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
    if key == "tokens_per_turn":
        return f"{value:.0f}"
    if key in ("calls_per_turn", "seconds_per_turn"):
        return f"{value:.2f}"
    return f"{value:.3f}"


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):  # several runs: mean (min–max)
        if key in _COUNTS and value["min"] == value["max"]:
            return _number(key, value["mean"])
        return (f"{_number(key, value['mean'])} "
                f"({_number(key, value['min'])}–{_number(key, value['max'])})")
    return _number(key, value)


def _has_seeds(row: dict[str, Any]) -> bool:
    def positive(v: Any) -> bool:
        v = v.get("max") if isinstance(v, dict) else v
        return bool(v)
    return (positive(row.get("fp_turns")) or positive(row.get("seeds"))
            or row.get("seeds_lost") is not None)


def format_table(result: dict[str, Any]) -> str:
    """The result of :func:`score` (or of :func:`aggregate_runs`: cells ``mean
    (min–max)``) as a GitHub-markdown table: one row per category (:data:`CATEGORIES`
    order, then the data's other categories in data order), then ``all`` in bold, then
    one row per scenario language (``lang:en`` …). Columns: n turns, recall, absent,
    junk, junk ADD, update, forget, lang, (fp ok and seeds lost when the data has
    seeds), calls/turn, tokens/turn, s/turn; "–" where there is nothing to measure."""
    seeded = _has_seeds(result["all"])
    cols = [(k, label) for k, label in _COLUMNS if seeded or k not in _SEED_COLUMNS]
    head = "| category | " + " | ".join(label for _, label in cols) + " |"
    lines = [head, "|---|" + "|".join("---:" for _ in cols) + "|"]

    def row(name: str, m: dict[str, Any]) -> str:
        return f"| {name} | " + " | ".join(_cell(k, m.get(k)) for k, _ in cols) + " |"

    for cat, m in result.get("categories", {}).items():
        lines.append(row(cat, m))
    lines.append(row("**all**", result["all"]))
    for lang, m in result.get("langs", {}).items():
        lines.append(row(f"lang:{lang}", m))
    return "\n".join(lines)
