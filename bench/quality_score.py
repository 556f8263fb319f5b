"""LLM-free scoring of the memory-quality benchmark (``bench/memory_quality.py``).

Pure functions over plain data, so they are unit-tested without any model:
``score(scenarios, snapshots)`` takes the labelled scenarios of
``bench/data/memory_quality.json`` and, per scenario, the list of per-turn snapshots the
runner collected after each ``Memory.add``::

    {"active":  [{"id", "text", "type"}, ...],      # the user's live memories after the turn
     "added":   [id, ...],                          # ids ADDed by this turn
     "changes": [{"action", "id", "text", "old_text"}, ...],   # this turn's Change list
     "history": [{"memory_id", "event", "old_text", "new_text", "actor"}, ...],  # all so far
     "llm_calls": int, "prompt_tokens": int, "seconds": float}

and returns metrics per turn category, per scenario language and overall;
``format_table(result)`` renders them as a markdown table.

Matching: every regex is searched (``re.IGNORECASE``) in the NFKC-normalised, case-folded
memory text (:func:`norm`). An expectation ``{"all": [regex, ...], "lang": "en"|"zh"}``
holds for a memory that matches every regex of ``all`` and, when ``lang`` is given, is
written in that language (:func:`lang_ok`).

Metrics (``None`` when a category has nothing to measure):

* ``recall``: held ``present`` expectations / all ``present`` expectations;
* ``absent``: held ``absent`` expectations / all (no active memory matches);
* ``junk``: ADDed memories that match a ``junk`` regex of their scenario declared on
  their turn or an earlier one, or that were added by a ``max_new: 0`` turn, / all
  ADDed memories (distinct ids; a memory counts in the category of the turn that added it);
* ``update``: share of turns with ``update`` where every ``present`` and ``absent`` of
  the turn holds and the history holds an UPDATE or DELETE whose ``old_text`` matches
  every regex of ``history_old``;
* ``forget``: share of turns with ``forget`` where no active memory matches all ``gone``
  regexes and the history holds a DELETE whose ``old_text`` matches them;
* ``lang``: share of ADD/UPDATE texts of a turn written in the scenario's language
  (``mixed`` scenarios always pass);
* ``calls_per_turn``, ``tokens_per_turn`` (prompt tokens), ``seconds_per_turn``.

Also ``unmatched``: ADDed memories that match no ``present`` expectation and no ``junk``
regex of their scenario (information, not a score), and ``failures``: one line per
failed check, to read why a number is low.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any, Iterable

#: turn categories in table order
CATEGORIES: tuple[str, ...] = (
    "intro", "question", "smalltalk", "assistant_self", "assistant_suggestion",
    "other_people", "hypothetical", "negation", "move_job", "correction", "forget",
    "relative_date", "pii", "long_message", "repeat")
LANGS: tuple[str, ...] = ("en", "zh", "mixed")

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_LATIN_WORD = re.compile(r"[a-zA-Z\u00c0-\u024f]+")
#: PII placeholders written by memory.pii (``[PHONE]``, ``[EMAIL]`` ...): not language
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


@lru_cache(maxsize=1)
def _latin_identifier():
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier
    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def lang_ok(text: str | None, lang: str | None) -> bool:
    """Whether ``text`` is in ``lang``: ``"zh"`` → :func:`is_chinese`; ``"en"`` → no CJK
    character; ``"ja"`` → kana or CJK ideographs; ``"ko"`` → Hangul; another language
    code (``"fr"``, ``"es"`` … of the tuning-only probe sets) → no CJK and langid.py's
    model (``py3langid``, the library, not the product's code), choosing between that
    language and English, picks that language; ``"mixed"`` or None → True."""
    if lang == "zh":
        return is_chinese(text)
    if lang == "en":
        return not has_cjk(text)
    if lang == "ja":
        return bool(_KANA.search(text or "")) or has_cjk(text)
    if lang == "ko":
        return bool(_HANGUL.search(text or ""))
    if lang and lang != "mixed":
        ident = _latin_identifier()
        ident.set_languages([lang, "en"])
        return not has_cjk(text) and ident.classify(text or "")[0] == lang
    return True


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
        self.added: set[tuple[int, str]] = set()
        self.junk: set[tuple[int, str]] = set()
        self.calls = 0.0
        self.tokens = 0.0
        self.seconds = 0.0

    def metrics(self) -> dict[str, Any]:
        def share(pair: list[int]) -> float | None:
            return pair[0] / pair[1] if pair[1] else None

        n = self.turns
        return {
            "n": n,
            "recall": share(self.present), "recall_n": self.present[1],
            "absent": share(self.absent), "absent_n": self.absent[1],
            "junk": len(self.junk) / len(self.added) if self.added else None,
            "junk_count": len(self.junk), "added": len(self.added),
            "update": share(self.update), "update_n": self.update[1],
            "forget": share(self.forget), "forget_n": self.forget[1],
            "lang": share(self.lang), "lang_n": self.lang[1],
            "calls_per_turn": self.calls / n if n else None,
            "tokens_per_turn": self.tokens / n if n else None,
            "seconds_per_turn": self.seconds / n if n else None,
        }


def _snapshot_lists(scenarios: list[dict[str, Any]],
                    snapshots: list[list[dict[str, Any]]] | dict[str, list[dict[str, Any]]]
                    ) -> list[list[dict[str, Any]]]:
    if isinstance(snapshots, dict):
        return [list(snapshots.get(s["id"]) or []) for s in scenarios]
    out = [list(s or []) for s in snapshots]
    return out + [[] for _ in range(len(scenarios) - len(out))]


def score(scenarios: list[dict[str, Any]],
          snapshots: list[list[dict[str, Any]]] | dict[str, list[dict[str, Any]]]
          ) -> dict[str, Any]:
    """Score a run. ``scenarios``: the ``"scenarios"`` list of the data file;
    ``snapshots``: per scenario (a list aligned with ``scenarios``, or a dict by scenario
    id) the per-turn snapshots (see the module docstring). Turns without a snapshot (a
    partial run) are skipped. Returns ``{"all": metrics, "categories": {cat: metrics},
    "langs": {lang: metrics}, "unmatched": [...], "failures": [...], "turns": n}``
    where metrics is ``_Acc.metrics()`` (``recall``, ``absent``, ``junk``, ``update``,
    ``forget``, ``lang``, per-turn averages and the counts behind each share)."""
    rows: dict[str, _Acc] = {}
    total = _Acc()
    unmatched: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []

    def accs(category: str, lang: str) -> list[_Acc]:
        return [total, rows.setdefault(f"cat:{category}", _Acc()),
                rows.setdefault(f"lang:{lang}", _Acc())]

    for si, (scen, snaps) in enumerate(zip(scenarios, _snapshot_lists(scenarios, snapshots))):
        sid, slang = scen.get("id", f"#{si}"), scen.get("lang", "en")
        turns = scen.get("turns") or []
        presents = [p.get("all") or [] for t in turns for p in (t.get("expect") or {}).get("present", [])]
        junk_rx: list[str] = []
        for ti, (turn, snap) in enumerate(zip(turns, snaps)):
            exp = turn.get("expect") or {}
            cat = turn.get("category", "?")
            junk_rx = junk_rx + list(exp.get("junk") or [])
            active = snap.get("active") or []
            history = snap.get("history") or []
            changes = snap.get("changes") or []
            here = accs(cat, slang)

            def fail(kind: str, detail: Any) -> None:
                failures.append({"scenario": sid, "turn": ti, "category": cat,
                                 "kind": kind, "detail": detail})

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

            # memories added by this turn (text from the ADD change, else the active list)
            texts = {m.get("id"): m.get("text") for m in active}
            texts.update({c.get("id"): c.get("text") for c in changes if _action(c) == "ADD"})
            added = list(dict.fromkeys(list(snap.get("added") or [])
                                       + [c.get("id") for c in changes if _action(c) == "ADD"]))
            for mid in added:
                if mid is None:
                    continue
                text = texts.get(mid, "")
                key = (si, str(mid))
                is_junk = exp.get("max_new") == 0 or matches_any(text, junk_rx)
                for acc in here:
                    acc.added.add(key)
                    if is_junk:
                        acc.junk.add(key)
                if is_junk:
                    why = "max_new" if exp.get("max_new") == 0 else "junk"
                    fail(why, text)
                elif not any(matches_all(text, p) for p in presents):
                    unmatched.append({"scenario": sid, "turn": ti, "category": cat, "text": text})

            if "update" in exp:
                old = (exp.get("update") or {}).get("history_old") or []
                hist_ok = any(str(e.get("event", "")).upper() in ("UPDATE", "DELETE")
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
                deleted = any(str(e.get("event", "")).upper() == "DELETE"
                              and matches_all(e.get("old_text"), gone) for e in history)
                ok = not left and deleted
                for acc in here:
                    acc.forget[0] += ok
                    acc.forget[1] += 1
                if left:
                    fail("forget-kept", left)
                if not deleted:
                    fail("forget-no-delete", gone)

            for c in changes:
                if _action(c) not in ("ADD", "UPDATE"):
                    continue
                ok = lang_ok(c.get("text"), slang)
                for acc in here:
                    acc.lang[0] += ok
                    acc.lang[1] += 1
                if not ok:
                    fail("lang", c.get("text"))

    cats = {c: rows[f"cat:{c}"].metrics() for c in CATEGORIES if f"cat:{c}" in rows}
    cats.update({k[4:]: v.metrics() for k, v in rows.items()
                 if k.startswith("cat:") and k[4:] not in cats})
    langs = {lang: rows[f"lang:{lang}"].metrics() for lang in LANGS if f"lang:{lang}" in rows}
    langs.update({k[5:]: acc.metrics() for k, acc in sorted(rows.items())
                  if k.startswith("lang:") and k[5:] not in langs})
    return {"all": total.metrics(), "categories": cats, "langs": langs,
            "turns": total.turns, "unmatched": unmatched, "failures": failures}


# ---- table ------------------------------------------------------------------------------
_COLUMNS = (("n", "n turns"), ("recall", "recall"), ("absent", "absent"), ("junk", "junk"),
            ("update", "update"), ("forget", "forget"), ("lang", "lang"),
            ("calls_per_turn", "calls/turn"), ("tokens_per_turn", "tokens/turn"),
            ("seconds_per_turn", "s/turn"))


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if key == "n":
        return str(int(value))
    if key == "tokens_per_turn":
        return f"{value:.0f}"
    if key in ("calls_per_turn", "seconds_per_turn"):
        return f"{value:.2f}"
    return f"{value:.3f}"


def format_table(result: dict[str, Any]) -> str:
    """The result of :func:`score` as a GitHub-markdown table: one row per category
    (in :data:`CATEGORIES` order), then ``all`` in bold, then one row per scenario
    language (``lang:en`` …). Columns: n turns, recall, absent, junk, update, forget,
    lang, calls/turn, tokens/turn, s/turn; "–" where there is nothing to measure."""
    head = "| category | " + " | ".join(label for _, label in _COLUMNS) + " |"
    lines = [head, "|---|" + "|".join("---:" for _ in _COLUMNS) + "|"]

    def row(name: str, m: dict[str, Any]) -> str:
        return f"| {name} | " + " | ".join(_cell(k, m.get(k)) for k, _ in _COLUMNS) + " |"

    for cat, m in result.get("categories", {}).items():
        lines.append(row(cat, m))
    lines.append(row("**all**", result["all"]))
    for lang, m in result.get("langs", {}).items():
        lines.append(row(f"lang:{lang}", m))
    return "\n".join(lines)
