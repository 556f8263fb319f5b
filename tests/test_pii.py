"""PII redaction: positives and negatives in Chinese and English, the labelled set in
tests/data/pii_labelled.json, and failing closed when a detector breaks."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from stdnum import luhn
from stdnum.cn import ric

from memory.safety import pii
from memory.safety.pii import PIIError, contains_pii, find_pii, redact

LABELLED = json.loads((Path(__file__).parent / "data" / "pii_labelled.json")
                      .read_text(encoding="utf-8"))["items"]

VALID_RIC = "11010519491231002X"          # checksum X is correct
WRONG_RIC = "110105194912310021"          # same number, wrong checksum
VISA = "4111 1111 1111 1111"              # Luhn-valid test card
UNIONPAY = "6222021234567894"             # Luhn-valid, UnionPay prefix 62


def test_fixture_numbers_are_what_they_claim():
    assert ric.is_valid(VALID_RIC) and not ric.is_valid(WRONG_RIC)
    assert not luhn.is_valid(WRONG_RIC)   # so it is not a card either
    assert luhn.is_valid(VISA.replace(" ", "")) and luhn.is_valid(UNIONPAY)
    assert not luhn.is_valid("4111111111111112")


@pytest.mark.parametrize("text, expected", [
    ("我的手机是13812345678，有事打给我", "我的手机是[PHONE]，有事打给我"),
    ("手机 138-1234-5678", "手机 [PHONE]"),
    ("我的电话是+86 138 1234 5678", "我的电话是[PHONE]"),
    ("办公室座机 010-12345678", "办公室座机 [PHONE]"),
    ("Call me at (415) 555-2671 tonight", "Call me at [PHONE] tonight"),
    ("My UK number is +44 20 7946 0958.", "My UK number is [PHONE]."),
    ("邮箱 zhang.san@example.com，谢谢", "邮箱 [EMAIL]，谢谢"),
    ("Mail me: first.last+tag@mail.example.co.uk!", "Mail me: [EMAIL]!"),
    ("13812345678@qq.com is my QQ mail", "[EMAIL] is my QQ mail"),
    (f"身份证号：{VALID_RIC}，请保密", "身份证号：[ID_NUMBER]，请保密"),
    ("身份证 110105 19491231 002x", "身份证 [ID_NUMBER]"),
    ("My SSN is 536-90-4399.", "My SSN is [ID_NUMBER]."),
    (f"card {VISA} expires 2027", "card [BANK_CARD] expires 2027"),
    ("银行卡号6222-0212-3456-7894", "银行卡号[BANK_CARD]"),
    (f"工资卡 {UNIONPAY} 在工商银行", "工资卡 [BANK_CARD] 在工商银行"),
])
def test_positives(text, expected):
    out, findings = redact(text)
    assert out == expected
    assert findings and all(set(f) == {"type", "kind", "start", "end"} for f in findings)


def test_findings_hold_spans_not_values():
    text = "Tel 13812345678, mail a.b@example.org"
    out, findings = redact(text)
    assert out == "Tel [PHONE], mail [EMAIL]"
    assert [f["type"] for f in findings] == ["PHONE", "EMAIL"]
    assert text[findings[0]["start"]:findings[0]["end"]] == "13812345678"
    assert text[findings[1]["start"]:findings[1]["end"]] == "a.b@example.org"
    assert "13812345678" not in repr(findings) and "example" not in repr(findings)


def test_many_in_one_chinese_message():
    text = (f"我叫张三，手机13812345678，身份证{VALID_RIC}，"
            f"卡号{UNIONPAY}，邮箱zs@example.cn。2024年5月8日我买了3只猫。")
    out, findings = redact(text)
    assert out == ("我叫张三，手机[PHONE]，身份证[ID_NUMBER]，卡号[BANK_CARD]，"
                   "邮箱[EMAIL]。2024年5月8日我买了3只猫。")
    assert sorted(f["type"] for f in findings) == ["BANK_CARD", "EMAIL", "ID_NUMBER", "PHONE"]


@pytest.mark.parametrize("text", [
    "I was born in 1990 and moved here in 2008.",
    "The laptop cost $1,299.99, the phone ¥4,999.",
    "I have 3 cats and 2 dogs.",
    "We met on 2024-05-08 at 14:30, again on 2024/06/01.",
    "Running macOS 10.15.7, Python 3.11.7 and IP 192.168.1.1.",
    "2024年5月8日，我花了12800元买了一台电脑，体重65公斤，身高175cm。",
    f"身份证写错了：{WRONG_RIC}",                   # wrong checksum
    "卡号 4111-1111-1111-1112 无效",                  # Luhn-invalid 16 digits
    "card 4111111111111112",
    "timestamp 1715155200000 and order 20240508123456789",
    "ISBN 978-3-16-148410-0, room 1203, zip 94103",
    "pi is 3.14159265358979323846",
    "call 10086 or 911",
    "user@localhost is not an address; neither is @mention",
    "",
    "没有任何数字的句子",
])
def test_negatives(text):
    out, findings = redact(text)
    assert out == text
    assert findings == [] and not contains_pii(text)


def test_bad_input_type():
    with pytest.raises(TypeError):
        redact(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        find_pii(b"13812345678")  # type: ignore[arg-type]


def test_labelled_set_counts():
    """Every labelled PII string is caught with exactly its types; no near-miss is
    touched. The figures are printed (pytest -s) and quoted in tests/reliability/README."""
    positives = [it for it in LABELLED if it["pii"]]
    near_misses = [it for it in LABELLED if not it["pii"]]
    assert len(LABELLED) >= 60 and len(near_misses) >= 20
    caught = [it for it in positives
              if Counter(f["type"] for f in find_pii(it["text"])) == Counter(it["pii"])]
    false_pos = [it["text"] for it in near_misses if find_pii(it["text"])]
    missed = [it["text"] for it in positives if it not in caught]
    print(f"\nPII set: {len(LABELLED)} strings; caught {len(caught)}/{len(positives)}, "
          f"false positives {len(false_pos)}/{len(near_misses)}")
    assert missed == [] and len(caught) == len(positives) == 44
    assert false_pos == [] and len(near_misses) == 25


@pytest.mark.parametrize("text, expected", [
    ("ssn: 212 67 4430", "ssn: [ID_NUMBER]"),                  # spaced: stdnum alone rejects it
    ("ssn: 212-67-4430", "ssn: [ID_NUMBER]"),
    ("张三@例子.中国", "[EMAIL]"),                               # IDN e-mail, Unicode local part
    ("邮箱zs@example.cn谢谢", "邮箱[EMAIL]谢谢"),               # the ASCII address only
    ("ID110101199003071233", "ID[ID_NUMBER]"),                 # glued to a word
    ("tel13812345678", "tel[PHONE]"),
    ("１３８１２３４５６７８", "[PHONE]"),                        # full-width digits
    ("x" * 5000 + " call 13812345678 " + "y" * 5000,
     "x" * 5000 + " call [PHONE] " + "y" * 5000),              # deep inside a long text
])
def test_former_misses(text, expected):
    assert redact(text)[0] == expected


@pytest.mark.parametrize("target", ["PhoneNumberMatcher", "validate_email", "ric"])
def test_detector_failure_fails_closed(monkeypatch, target):
    """A broken library must not let the raw number through: PIIError (a ValueError)
    whose message names the detector and never holds the text."""
    def boom(*args, **kwargs):
        raise RuntimeError("library exploded")
    if target == "ric":
        class BrokenRic:
            validate = is_valid = staticmethod(boom)
        monkeypatch.setattr(pii, "ric", BrokenRic)
    else:
        monkeypatch.setattr(pii, target, boom)
    text = "id 110101199003071233, mail a@example.org, call 13812345678"
    with pytest.raises(PIIError) as info:
        redact(text)
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert "PII check failed" in msg and "13812345678" not in msg and "\n" not in msg
    with pytest.raises(PIIError):
        contains_pii(text)


def test_text_without_candidates_skips_the_detectors(monkeypatch):
    """No digit and no @: nothing can be PII, and a broken detector is not even run."""
    monkeypatch.setattr(pii, "PhoneNumberMatcher", None)
    assert redact("no numbers here") == ("no numbers here", [])
