"""Text qmpsh did not write itself, made safe to put on a terminal.

QEMU echoes strings a guest or a user of the VM chose: disk image names, the VM's
name, SPICE client data, HMP output.  A string holding ``ESC ] 2 ; … BEL`` would
retitle the terminal, ``ESC [ 2 J`` would clear it, and U+202E (right-to-left
override) would make ``gpj.exe`` read as ``exe.jpg``.  Every such character is shown
as an escape instead (``\\x1b``, ``\\u202e``), so it is visible and inert; only
qmpsh's own styling ever sends escape sequences.

Two forms, one decision (``UNSAFE``):

* ``visible(text)`` for text: C0/C1 controls, DEL, format (bidi, zero-width)
  characters, line/paragraph separators and lone surrogates become Python-style
  escapes; ``newlines=True`` keeps ``\\n`` for multi-line text such as HMP output.
* ``json_safe(text)`` for JSON text the encoder wrote with ``ensure_ascii=False``:
  the same characters become JSON ``\\uXXXX`` escapes, so the text stays valid JSON
  with the same meaning (outside strings JSON text is ASCII, so nothing else changes;
  a raw newline there is indentation, and stays).
"""

from __future__ import annotations

import re

# Unicode categories Cc, Cf, Cs, Zl and Zp as of Unicode 14 (Python 3.11); a test
# checks this list against ``unicodedata`` of the running Python.  Written out because
# computing it at start-up would scan 1.1 million code points.
_RANGES = (
    (0x00, 0x1F),
    (0x7F, 0x9F),
    (0xAD, 0xAD),
    (0x600, 0x605),
    (0x61C, 0x61C),
    (0x6DD, 0x6DD),
    (0x70F, 0x70F),
    (0x890, 0x891),
    (0x8E2, 0x8E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xD800, 0xDFFF),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)


def _char_class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(
        re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"
        for lo, hi in ranges
    )


UNSAFE = re.compile(f"[{_char_class(_RANGES)}]")
# The same without the newline, for text whose lines are meant to stay lines.
_UNSAFE_BUT_NEWLINE = re.compile(f"(?!\n)[{_char_class(_RANGES)}]")


_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}  # as Python's ascii() writes them


def _python_escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON spells characters beyond the BMP as a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def visible(text: str, *, newlines: bool = False) -> str:
    """``text`` with every control or format character shown as an escape such as ``\\x1b``.

    With ``newlines`` a ``\\n`` stays a line break (HMP's multi-line output); a lone
    ``\\r`` does not, since it would let a later line overwrite an earlier one.
    """
    pattern = _UNSAFE_BUT_NEWLINE if newlines else UNSAFE
    if text.isascii() and text.isprintable():
        return text  # the common case, decided in C without the regex
    return pattern.sub(_python_escape, text)


def json_safe(text: str) -> str:
    """JSON text (from ``ensure_ascii=False``) with unsafe characters as ``\\uXXXX``.

    Also what makes a lone surrogate (legal in JSON text, ``"\\ud800"``) printable:
    written raw it cannot be encoded as UTF-8 at all.
    """
    if text.isascii() and "\x7f" not in text:
        return text  # the encoder already escaped C0; DEL is the only other ASCII one
    # Raw newlines can only be indentation: the encoder escaped those inside strings.
    return _UNSAFE_BUT_NEWLINE.sub(_json_escape, text)
