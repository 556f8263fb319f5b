"""LoCoMo's answer F1, as its evaluation script (``task_eval/evaluation.py``) scores it.

The answer is normalised (commas dropped, lower case, punctuation removed, the words
a/an/the/and removed, whitespace collapsed), tokens are Porter-stemmed
(``snowballstemmer`` "porter": the original Porter algorithm; LoCoMo uses NLTK's
PorterStemmer, whose default mode differs on a few rare words) and F1 of the token
multiset overlap is taken. Category 1 (multi-hop): prediction and gold are split on
``,`` and the best F1 of any prediction part is averaged over the gold parts. Category 3:
only the gold answer's part before the first ``;`` counts. :func:`rewrite_iso_dates`
turns the product's ISO dates into LoCoMo's "7 May 2023" for a second score.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any

_PUNCT = frozenset(string.punctuation)
_DROP_WORDS = re.compile(r"\b(a|an|the|and)\b")
_STEMMER = None


def normalize_answer(text: Any) -> str:
    """LoCoMo's answer normalisation: drop commas, lower-case, remove punctuation, remove
    the words a/an/the/and, collapse whitespace."""
    s = str(text).replace(",", "").lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _DROP_WORDS.sub(" ", s)
    return " ".join(s.split())


def _stems(text: Any) -> list[str]:
    global _STEMMER
    if _STEMMER is None:
        import snowballstemmer
        _STEMMER = snowballstemmer.stemmer("porter")
    return _STEMMER.stemWords(normalize_answer(text).split())


def token_f1(prediction: Any, gold: Any) -> float:
    """F1 of the Porter-stemmed, normalised token multisets (0.0 when nothing overlaps,
    also for an empty side)."""
    pred, ref = _stems(prediction), _stems(gold)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def multi_hop_f1(prediction: Any, gold: Any) -> float:
    """LoCoMo's category-1 score: split both on ``,``; for each gold part take the best
    :func:`token_f1` of any prediction part; average over the gold parts."""
    preds = [p.strip() for p in str(prediction).split(",")]
    golds = [g.strip() for g in str(gold).split(",")]
    return sum(max(token_f1(p, g) for p in preds) for g in golds) / len(golds)


_ISO_DAY = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_ISO_MONTH = re.compile(r"\b(\d{4})-(\d{1,2})\b")
_MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August",
                "September", "October", "November", "December"]


def rewrite_iso_dates(text: str) -> str:
    """Rewrite ISO dates as LoCoMo writes them: ``2023-05-07`` → ``7 May 2023``,
    ``2023-06`` → ``June 2023`` (other text unchanged)."""
    def day(m: re.Match) -> str:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        return f"{d} {_MONTH_NAMES[mo - 1]} {y}" if 1 <= mo <= 12 and 1 <= d <= 31 else m.group(0)

    def month(m: re.Match) -> str:
        y, mo = int(m.group(1)), int(m.group(2))
        return f"{_MONTH_NAMES[mo - 1]} {y}" if 1 <= mo <= 12 else m.group(0)

    return _ISO_MONTH.sub(month, _ISO_DAY.sub(day, str(text)))


def score_answer(prediction: Any, gold: Any, category: int) -> float:
    """LoCoMo's F1 for one answer of ``category`` (1: :func:`multi_hop_f1`; 3: gold cut at
    the first ``;``; 2/4: :func:`token_f1`). Raises ValueError for another category."""
    if category == 1:
        return multi_hop_f1(prediction, gold)
    if category == 3:
        return token_f1(prediction, str(gold).split(";")[0].strip())
    if category in (2, 4):
        return token_f1(prediction, gold)
    raise ValueError(f"category {category} is not scored with F1")

