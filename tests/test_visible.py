"""``visible`` and ``json_safe``: the one decision on what a terminal may receive raw."""

from __future__ import annotations

import json
import sys
import unicodedata

from qmpsh.visible import UNSAFE, json_safe, visible

OBEYED = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def test_every_control_format_separator_and_surrogate_is_unsafe() -> None:
    """The written-out ranges cover this Python's Unicode tables (and nothing printable)."""
    missed = [
        hex(cp)
        for cp in range(sys.maxunicode + 1)
        if unicodedata.category(chr(cp)) in OBEYED and not UNSAFE.match(chr(cp))
    ]
    assert missed == []
    assert not any(UNSAFE.match(c) for c in "a é☃\U0001f512 ")


def test_text_form_shows_escapes_and_keeps_newlines_only_when_asked() -> None:
    text = "vm\x1b]2;PWNED\x07\u202e\r\n\ud800\x9b\U000e0041"
    assert visible(text) == "vm\\x1b]2;PWNED\\x07\\u202e\\r\\n\\ud800\\x9b\\U000e0041"
    assert visible(text, newlines=True).split("\n")[1] == "\\ud800\\x9b\\U000e0041"
    assert visible("plain café 🔒") == "plain café 🔒"


def test_json_form_stays_valid_json_with_the_same_meaning() -> None:
    raw = json.dumps({"k": "a\x7f\u202e\ud800\U000e0041\x85"}, ensure_ascii=False, indent=2)
    safe = json_safe(raw)
    assert json.loads(safe) == json.loads(raw)
    assert all(not UNSAFE.match(c) or c == "\n" for c in safe)
    safe.encode("utf-8")
