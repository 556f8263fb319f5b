"""What a user's message asks of the memory, decided without an LLM.

A chat turn is one of three things for the memory:

* nothing to learn: acknowledgements, small talk, questions, requests ("tell me a
  joke"), hypotheticals and wishes ("if I were rich I'd buy a boat") — no LLM call;
* a forget request ("forget that I like sushi", "别记这个") — handled by
  ``memory.write.forget``, never extracted (extraction would re-store the very fact);
* statements to learn from — only their statement sentences are shown to the
  extractor (``learnable_text``), so a question or a hypothetical beside a fact cannot
  become a memory either.

The word lists (``memory/data/lexicon/<language>.json``, read by ``memory.text.lexicon``)
cover English and Chinese, and for some checks French, Spanish, German, Italian,
Portuguese, Japanese and Korean; other languages fall through to the extractor, whose
prompt carries the same rules.
"""
from __future__ import annotations

import re
import unicodedata

from memory.text import lexicon
from memory.text.language import has_cjk, has_hangul

_LATIN = tuple(lang for lang in lexicon.languages() if lexicon.spaced(lang))
_CJK = tuple(lang for lang in lexicon.languages() if not lexicon.spaced(lang))
_EN = ["en"]


def _speaker(langs) -> str:
    """A regex of the speaker's own words in ``langs`` (``memory.text.lexicon.speaker_words``
    and ``self_prefixes``): whole words in spaced languages, anywhere in the others."""
    spaced = [lang for lang in langs if lexicon.spaced(lang)]
    unspaced = [lang for lang in langs if not lexicon.spaced(lang)]
    parts = [rf"\b(?:{lexicon.alternation(lexicon.speaker_words(spaced))})\b"] if spaced else []
    if lexicon.words("self_prefixes", spaced):
        parts.append(rf"\b(?:{lexicon.words_re('self_prefixes', spaced)})")
    if unspaced:
        parts.append(lexicon.alternation(lexicon.speaker_words(unspaced)))
    return "|".join(parts)


#: Acknowledgements and small talk that never carry a memory, in English and Chinese
#: (``memory.text.lexicon`` ``trivial``).
_TRIVIAL = lexicon.words("trivial", ["en", "zh"])
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)

#: Any reference to the speaker: a request that mentions the user ("Help me plan my
#: trip to Rome") is not a bare request, and a clause of a question that is not itself a
#: question is kept ("I'm Tom, what's my score?" → "I'm Tom").
FIRST_PERSON = re.compile(
    rf"\b({lexicon.words_re('self_statements', _EN)})\b|{lexicon.words_re('self_subject', ['zh'])}", re.IGNORECASE)
_QUESTION_END = re.compile(rf"([?？]|{lexicon.words_re('question_endings', _CJK)})[\s!！。.~]*$")
_QUESTION_START = re.compile(rf"^({lexicon.words_re('question_openers', _LATIN)})\b", re.IGNORECASE)
_REQUEST = re.compile(rf"^(please\s+)?({lexicon.words_re('request_openers', _LATIN)})\b"
                      rf"|^({lexicon.words_re('request_openers', _CJK)})", re.IGNORECASE)
#: "if I were rich", "要是我有钱", "si j'étais riche", "wenn ich reich wäre", "もし", "만약": a
#: conditional opening the sentence (after a filler: "well, if …") or a hypothetical
#: phrase anywhere; a conditional verb ("würde", "j'aimerais être") marks a wish, not a fact
_HYPOTHETICAL = re.compile(
    rf"\b({lexicon.words_re('hypotheticals', _LATIN)}|wenn ich \w+ (?:wäre|hätte|könnte))\b"
    rf"|{lexicon.words_re('hypotheticals', _CJK)}"
    rf"|^\W*(({lexicon.words_re('discourse_fillers', _EN)})\W+)?({lexicon.words_re('conditionals', _EN)})\b"
    rf"|^\W*({lexicon.words_re('conditionals', [lang for lang in _LATIN if lang != 'en'])})\b"
    rf"|^\W*({lexicon.words_re('conditionals', _CJK)})",
    re.IGNORECASE)
#: The speaker in a sentence (English or Chinese). A sentence without it says nothing
#: about the user ("It's freezing today", "哈哈，你好贴心") unless it answers the
#: assistant's question.
_SPEAKER = re.compile(_speaker(["en", "zh"]), re.IGNORECASE)
#: The same request in French, Spanish, German, Italian, Portuguese, Japanese and Korean:
#: the imperative at the start of a clause with what follows it ("Oublie que j'habite à
#: Lyon", "Olvida que vivo en Madrid", "Vergiss, dass …", "忘れてください", "잊어 줘").
#: Not "n'oublie pas de …", "no olvides …", "忘れないで" (reminders) or "忘れてしまった"
#: (an event). Also used by ``memory.write.forget`` to cut the trigger from the target, which
#: is why its word lists stay here, in their order (``memory.text.lexicon`` sorts longest first).
FORGET_OTHER = (
    r"^\W*(?:s'il te plaît|s'il vous plaît|stp|por favor|bitte|per favore|por favor)?\W*"
    r"(?:(?:oublie|oubliez|olvida|olvide|olvídate de|olvídese de|vergiss|vergessen sie|dimentica|"
    r"dimenticati|esqueça|esquece|esqueca)\b(?!,?\s*nicht\b),?\s*(?:que|qu'|ça|cela|ce que|dass|das|che|di|isso|isto|eso|esto|lo)?"
    r"|(?:efface|effacez|supprime|supprimez|borra|borre|elimina|elimine|lösch|lösche|cancella|apague|apaga)"
    r"\s+(?:ça|cela|eso|esto|lo|das|questo|quello|isso|isto|mon|ma|mes|mi|mis|mein|meine|meinen|mio|mia|meu|minha))"
    r"|忘れて(?:ください|下さい|くれ|ほしい|もらえ)|忘れて[。！!\s]*$|覚えないで|記憶しないで"
    r"|잊어\s?(?:줘|주세요|버려|버리세요)|기억하지\s?마")
#: The speaker in French and German sentences, the languages besides English and Chinese
#: that name the speaker ("Il fait froid aujourd'hui" says nothing about the user);
#: Spanish, Italian, Portuguese, Japanese and Korean drop the pronoun (``pro_drop``).
_SPEAKER_OTHER = {lang: re.compile(_speaker([lang]), re.IGNORECASE) for lang in lexicon.languages()
                  if lang not in ("en", "zh") and not lexicon.pro_drop(lang) and lexicon.speaker_words([lang])}
#: Talk about the weather, in the languages that drop the pronoun (Japanese, Korean,
#: Spanish, Italian, Portuguese), where the speaker check above cannot work: "今日はいい
#: 天気ですね", "날씨가 좋네요", "Hoy hace buen tiempo". Small talk unless the sentence names
#: the speaker ("私は雨が好きです" is a like); a Latin-script sentence counts only when short
#: (≤ 5 words), since "trabajo en casa cuando llueve" names the speaker by its verb alone.
_WEATHER = re.compile(
    rf"{lexicon.words_re('weather', _CJK)}|(?:暑|寒|涼し)い(?:です)?[ねよな]?[。！!]*$"
    rf"|\b(?:{lexicon.words_re('weather', _LATIN)})\b", re.IGNORECASE)
#: ... and the speaker in those languages: "私", "yo", "mi", Korean "저는"/"제가"/"우리는"
#: (not inside a word), or a like or dislike with the pronoun dropped ("寒いのが苦手です",
#: "추운 날씨를 싫어해요", "me gusta")
_PRO_DROP = [lang for lang in lexicon.languages() if lexicon.pro_drop(lang) and lang != "ko"]
_SELF_PRO_DROP = re.compile(
    rf"{_speaker(_PRO_DROP)}|(?<![\uac00-\ud7af])(?:{_speaker(['ko'])})(?:는|가|도|를|의|\s)"
    rf"|{lexicon.words_re('likes', _CJK)}|\b(?:{lexicon.words_re('likes', _LATIN)})\b", re.IGNORECASE)
#: A request to forget, in the imperative at the start of a clause: "forget that …",
#: "please don't save this", "别记这个", "把地址忘掉". Not: "don't forget to …" (a
#: reminder), "I'll never forget it" or "I don't remember that" (statements), "I forgot
#: my keys" (an event), "forget it" (never mind).
_FORGET = re.compile(
    r"^\W*((please|pls|can you|could you|just|and|also|so|oh|actually|wait)\W+)*"
    r"(forget|stop remembering|delete|remove|erase|unlearn)\b(?!\s+(to|it|about it)\b)"
    r"|^\W*((please|pls|and|also|so|actually)\W+)*(don'?t|do not|no need to) "
    r"(remember|store|save|keep|record) (that|this|it|my|what)\b"
    r"|\bplease (forget|delete|remove|erase)\b(?!\s+(to|it)\b)"
    r"|(别|不要|不用|不必|无需)(再)?(记|记住|保存|存)|忘(掉|记掉)(吧|了吧)?[。！!.~\s]*$|(删掉|删除|去掉)(这|那|我的|关于)"
    r"|" + FORGET_OTHER,
    re.IGNORECASE)
#: one-character Chinese relation words: "我妈说过" is not "我说过"
_ZH_ONE_CHAR = "".join(w for w in lexicon.words("relations", ["zh"]) + lexicon.words("short_relations", ["zh"])
                       if len(w) == 1)
#: "as I said", "like I told you", "I mentioned", "我之前说过", "跟你说过的": the user repeats
_ALREADY_SAID = re.compile(
    r"\b(?:as|like) I (?:said|told you|mentioned)\b|\bI (?:already|just) (?:told you|said|mentioned)\b|"
    r"\bI(?:'ve| have)? (?:already )?(?:told you|said|mentioned)(?: (?:this|that|it))? (?:before|already|earlier)\b|"
    r"\bI told you(?: that)? I\b|"
    rf"(?:我(?![{_ZH_ONE_CHAR}的])|之前|以前|已经|早就)[^，,。！!？?]{{0,4}}(?:说过|讲过|提过)|跟你说过|跟你讲过|告诉过你", re.IGNORECASE)
_CLAUSE = re.compile(r"[,，、—–]|\s-\s")
_SENTENCE = re.compile(r"[^.!?。！？;；\n]+[.!?。！？;；]*")


def normalize(text: str) -> str:
    """Return ``text`` NFKC-normalised, case-folded, without punctuation or spaces: the
    key under which two memories count as exact duplicates."""
    return _PUNCT.sub("", unicodedata.normalize("NFKC", text).casefold())


_TRIVIAL_KEYS = frozenset(normalize(t) for t in _TRIVIAL)
_TRIVIAL_WORDS = frozenset(normalize(w) for t in _TRIVIAL + lexicon.words("trivial_fillers", _EN) for w in t.split())


def sentences(text: str) -> list[str]:
    """Split ``text`` into sentences on . ! ? ; (ASCII and full-width) and newlines;
    each keeps its end punctuation. A dot between digits or letters without a space
    ("3.5", "e.g.") does not split."""
    protected = re.sub(r"(?<=\w)\.(?=\w)", "\u2024", text)
    return [s.strip().replace("\u2024", ".") for s in _SENTENCE.findall(protected) if s.strip()]


def is_question(sentence: str) -> bool:
    """True for a question sentence: ends with ?/？ or a Chinese question particle, or
    starts with an English question word and has no first-person statement."""
    s = sentence.strip()
    if _QUESTION_END.search(s):
        return True
    return bool(_QUESTION_START.match(s)) and not s.endswith((".", "。", "!", "！"))


def is_request(sentence: str) -> bool:
    """True for a request to the assistant that says nothing about the user ("Tell me a
    joke", "帮我写一首诗"); "Help me plan my trip to Rome" is not one (it says "my")."""
    s = sentence.strip()
    return bool(_REQUEST.match(s)) and not FIRST_PERSON.search(s[2:] if has_cjk(s[:2]) else s)


def is_hypothetical(sentence: str) -> bool:
    """True for a hypothetical or wish ("If I were rich I'd buy a boat", "要是我有钱就去环游
    世界"): what would be, not what is."""
    return bool(_HYPOTHETICAL.search(sentence))


def is_forget_request(text: str) -> bool:
    """True when the message asks the assistant to forget something ("forget that I
    like sushi", "please don't remember my phone number", "别记这个", "把我住址忘掉")."""
    t = unicodedata.normalize("NFKC", text).strip()
    clauses = [c for s in sentences(t) or [t] for c in re.split(r"[,，;；:：—]", s)]
    return any(_FORGET.search(c.strip()) for c in clauses if c.strip())


def says_already_told(text: str) -> bool:
    """True when the user's ``text`` marks what it says as a repeat ("Oh and I'm learning
    piano, like I told you", "我之前说过，我是教语文的"): its facts are meant to be stored
    already, so reconciliation keeps the stored wording instead of adding a reworded copy."""
    return bool(_ALREADY_SAID.search(text))


def learnable_text(user_text: str, answering: bool = False) -> str:
    """Return the part of a user's message the extractor may learn from: its sentences
    minus acknowledgements, questions, requests, hypotheticals, weather talk without the
    speaker (``is_weather_talk``) and — in English,
    Chinese, French or German text — sentences that do not mention the speaker ("It's freezing today"),
    joined by spaces ("" when nothing is left, so no LLM call is spent).
    ``"I'm vegetarian. Can you recommend a restaurant?"`` → ``"I'm vegetarian."``.
    ``answering``: the message answers a question of the assistant, so a sentence
    without "I" ("Lyon.", "A nurse.") is kept."""
    from memory.text.language import is_surely

    text = (user_text or "").strip()
    speaker = None
    if not answering:
        if is_surely(text, "zh") or is_surely(text, "en"):
            speaker = _SPEAKER
        else:  # French and German always name the speaker ("je", "ich"); pro-drop languages do not
            speaker = next((rx for code, rx in _SPEAKER_OTHER.items() if is_surely(text, code)), None)
    keep = []
    for s in sentences(text):
        if _is_small_talk(s) or (speaker is not None and not speaker.search(s)):
            continue
        if speaker is None and not answering and is_weather_talk(s):
            continue
        if is_hypothetical(s) or is_request(s):
            continue
        if is_question(s):
            # keep only the statement clauses of a question ("I'm Tom, what's my score?")
            s = ", ".join(c.strip() for c in _CLAUSE.split(s)
                          if FIRST_PERSON.search(c) and not is_question(c.strip()))
            if not s:
                continue
        keep.append(s)
    return " ".join(keep)


def is_weather_talk(sentence: str) -> bool:
    """True for a remark about the weather that does not name the speaker ("今日はいい天気
    ですね", "날씨가 정말 좋네요", "Hoy hace buen tiempo"); "私は雨の日が好きです" (a like)
    and long Latin-script sentences are not (see ``_WEATHER``)."""
    if not _WEATHER.search(sentence) or _SELF_PRO_DROP.search(sentence):
        return False
    return has_cjk(sentence) or has_hangul(sentence) \
        or len(sentence.split()) <= 5


def _is_small_talk(sentence: str) -> bool:
    key = normalize(sentence)
    if not key or key in _TRIVIAL_KEYS:
        return True
    words = [normalize(w) for w in sentence.split()]
    return all(not w or w in _TRIVIAL_WORDS for w in words)


def is_trivial_turn(user_text: str, answering: bool = False) -> bool:
    """True when the user's message cannot carry a memory, so no LLM call is spent:
    acknowledgements ("ok", "thanks", "嗯嗯"), emoji-only text, questions ("Who am I?
    What do you know about me?"), requests and hypotheticals, unless a sentence also
    states something about the user ("I'm Tom, what's my score?" is not skipped)."""
    return not learnable_text(user_text, answering)
