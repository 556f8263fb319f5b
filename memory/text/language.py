"""The language a user writes in, so memories are stored in it ("住在成都", never
"Lives in成都").

Scripts decide first (CJK ideographs → Chinese, kana → Japanese, Hangul → Korean);
Latin-script text is identified with ``py3langid`` (langid.py's model, shipped in the
package, no download), which is reliable enough on one chat message to name the language
in the extraction prompt ("Write every memory in French").
"""
from __future__ import annotations

import re
from functools import lru_cache

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")

#: ISO 639-1 code → the name the extraction prompt uses.
NAMES = {"zh": "Chinese", "ja": "Japanese", "ko": "Korean", "en": "English", "fr": "French",
         "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese", "nl": "Dutch",
         "ru": "Russian", "pl": "Polish", "tr": "Turkish", "sv": "Swedish", "vi": "Vietnamese",
         "id": "Indonesian", "ar": "Arabic", "uk": "Ukrainian", "cs": "Czech", "da": "Danish",
         "no": "Norwegian", "fi": "Finnish", "el": "Greek", "he": "Hebrew", "hi": "Hindi",
         "th": "Thai", "ro": "Romanian", "hu": "Hungarian"}


def has_cjk(text: str) -> bool:
    """True when ``text`` holds a CJK ideograph."""
    return bool(_CJK.search(text))


def has_kana(text: str) -> bool:
    """True when ``text`` holds hiragana or katakana (Japanese)."""
    return bool(_KANA.search(text))


def has_hangul(text: str) -> bool:
    """True when ``text`` holds a Hangul syllable (Korean)."""
    return bool(_HANGUL.search(text))


def has_east_asian(text: str) -> bool:
    """True when ``text`` holds a CJK ideograph, kana or Hangul: a script whose words are
    not separated by spaces the way Latin words are."""
    return has_cjk(text) or has_kana(text) or has_hangul(text)


def cjk_weight(text: str) -> tuple[int, int]:
    """Return ``(CJK characters, Latin-script words)`` of ``text``."""
    return len(_CJK.findall(text)), len(_LATIN_WORD.findall(text))


def detect(text: str) -> str:
    """Return the ISO 639-1 code of the language ``text`` is mostly written in.

    Chinese when CJK ideographs outweigh Latin words (one ideograph counts as half a
    word: "我在Google工作" is Chinese, "I work at 华为 as an engineer" is English);
    Japanese/Korean by kana/Hangul; otherwise py3langid's answer restricted to
    ``NAMES``, and "en" for text with no letters."""
    if _KANA.search(text):
        return "ja"
    if _HANGUL.search(text):
        return "ko"
    cjk, latin = cjk_weight(text)
    if cjk and cjk >= 2 * latin:
        return "zh"
    if latin < 2:
        return "zh" if cjk else "en"
    return _langid(text)


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier
    ident = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
    ident.set_languages([c for c in NAMES if c not in ("zh", "ja", "ko")])
    return ident


def _langid(text: str) -> str:
    code, prob = _identifier().classify(text)
    # short English messages are often mis-labelled with low confidence
    return code if prob >= 0.9 else "en"


def is_surely(text: str, code: str) -> bool:
    """True when ``text`` is confidently in language ``code`` ("zh": by script; others:
    py3langid with probability ≥ 0.9). Used where a wrong guess would drop a message,
    so a short, ambiguous one is never claimed."""
    if code == "zh":
        return detect(text) == "zh"
    if detect(text) == "zh" or _KANA.search(text) or _HANGUL.search(text):
        return False
    if len(_LATIN_WORD.findall(text)) < 2:
        return False
    got, prob = _identifier().classify(text)
    return got == code and prob >= 0.9


def is_mixed(text: str) -> bool:
    """True for a message that mixes Chinese and a Latin-script language in earnest (at
    least 4 ideographs and 3 Latin words: "对了 I passed my thesis proposal 昨天！"), where a
    memory in either script is in the user's language."""
    cjk, latin = cjk_weight(text)
    return cjk >= 4 and latin >= 3


def name(code: str) -> str:
    """Return the English name of language ``code`` ("zh" → "Chinese"); unknown → the
    code itself."""
    return NAMES.get(code, code)


def is_written_in(text: str, code: str) -> bool:
    """True when a memory ``text`` is written in language ``code`` as far as can be told:
    for Chinese the ideographs must outweigh the Latin words ("在Google工作" yes,
    "Lives in成都" no); for a Latin-script language the text must hold no CJK, and for
    one other than English it must not be confidently English (langid.py's model
    choosing between ``code`` and English gives English ≥ 0.9: "Now does yoga" for a
    French user; short or ambiguous texts such as "Vive a Roma" pass); Japanese and
    Korean are not checked (True)."""
    cjk, latin = cjk_weight(text)
    if code == "zh":
        return cjk > 0 and cjk >= 2 * latin
    if code in ("ja", "ko"):
        return True
    if cjk:
        return False
    if code == "en" or code not in NAMES or latin < 2:
        return True
    found, prob = _pair_identifier(code).classify(text)
    return not (found == "en" and prob >= 0.9)


@lru_cache(maxsize=8)
def _pair_identifier(code: str):
    """A langid.py identifier that chooses only between ``code`` and English (one per
    language: ``set_languages`` changes the instance, so it is never shared)."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier
    ident = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
    ident.set_languages([code, "en"])
    return ident