"""Relative dates in seven more languages (memory.text.dates_intl through
memory.text.dates.resolve_relative_dates): resolved in the message's language only."""
from __future__ import annotations

from datetime import date

import pytest

from memory.text.dates import resolve_relative_dates

TODAY = date(2026, 11, 27)  # a Friday


@pytest.mark.parametrize("text,lang,expected", [
    ("Déménagé à Marseille le mois dernier", "fr", "Déménagé à Marseille en octobre 2026"),
    ("A adopté un chat hier", "fr", "A adopté un chat le 26 novembre 2026"),
    ("Se marie l'année prochaine", "fr", "Se marie en 2027"),
    ("Se mudó a Valencia el mes pasado", "es", "Se mudó a Valencia en octubre de 2026"),
    ("Empezó a correr la semana pasada", "es", "Empezó a correr la semana del 16 de noviembre de 2026"),
    ("Ist letzte Woche nach München umgezogen", "de",
     "Ist in der Woche vom 16. November 2026 nach München umgezogen"),
    ("Hat gestern einen Hund adoptiert", "de", "Hat am 26. November 2026 einen Hund adoptiert"),
    ("Si è trasferito a Milano l'anno scorso", "it", "Si è trasferito a Milano nel 2025"),
    ("Mudou-se para o Porto no mês passado", "pt", "Mudou-se para o Porto em outubro de 2026"),
    ("先月、大阪に引っ越しました", "ja", "2026年10月、大阪に引っ越しました"),
    ("지난달 부산으로 이사했어요", "ko", "2026년 10월 부산으로 이사했어요"),
])
def test_relative_dates_in_the_users_language(text, lang, expected):
    assert resolve_relative_dates(text, TODAY, lang) == expected


@pytest.mark.parametrize("text,lang", [
    ("Ich wohne hier in Berlin", "de"),      # German "hier" is "here", not French "yesterday"
    ("Hier ist mein Hund", "de"),
    ("Compró una playera roja", "es"),       # "ayer" inside a word
    ("Déménagé à Marseille le mois dernier", None),  # language unknown: left as written
    ("Déménagé à Marseille le mois dernier", "en"),
])
def test_phrases_of_another_language_are_left_alone(text, lang):
    assert resolve_relative_dates(text, TODAY, lang) == text


def test_english_and_chinese_still_resolve_without_a_language():
    assert resolve_relative_dates("Moved to Lyon last month", TODAY) == "Moved to Lyon in October 2026"
    assert resolve_relative_dates("上个月搬到北京", TODAY) == "2026年10月搬到北京"
