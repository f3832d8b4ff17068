"""JSON text of any value a peer could send, safe for a terminal and valid for a parser.

``json.dumps`` alone is not enough for what comes off the wire:

* a lone surrogate (``"\\ud800"`` is legal JSON text) is copied raw by
  ``ensure_ascii=False`` and then cannot be encoded as UTF-8 on output;
* C1 controls, DEL and bidi overrides are copied raw, and reach the terminal;
* ``1e400`` parses as ``inf``, which ``json.dumps`` writes as ``Infinity``: not JSON;
* nesting a few hundred levels deep exhausts the recursion limit, and the indented
  encoder is pure Python, recursive, and builds one list of every token before joining.

So the compact form takes the C encoder's fast path and falls back to an iterative
encoder, and the indented form is always that iterative encoder, streamed in chunks
(a 64 MiB reply is never held twice as a list of tokens).  Every chunk goes through
``visible.json_safe``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from json.encoder import encode_basestring
from typing import Any

from qmpsh.visible import json_safe

CHUNK_PIECES = 4096  # tokens joined per chunk of the streamed form

_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_END = object()

# What a non-finite float is written as: 1e999 reads back as inf (QEMU's 1e400 did too);
# NaN has no JSON spelling at all.
_NON_FINITE = {float("inf"): "1e999", float("-inf"): "-1e999"}


def compact(value: Any) -> str:
    """One-line JSON, the form scripts parse line by line."""
    try:
        text: str = _COMPACT.encode(value)
    except (ValueError, RecursionError):  # a non-finite float, or very deep nesting
        text = "".join(iter_json(value))
    return json_safe(text)


def indented(value: Any, indent: int = 2) -> str:
    """The whole indented form at once (for small values: events, error details)."""
    return "".join(iter_json(value, indent))


def iter_json(value: Any, indent: int | None = None) -> Iterator[str]:
    """JSON text in chunks, without recursion, already passed through ``json_safe``."""
    colon = ":" if indent is None else ": "
    pad = "" if indent is None else " " * indent
    frames: list[list[Any]] = []  # [items iterator, is_dict, closer, items so far]
    pieces: list[str] = []
    pending, have = value, True
    while True:
        if have:
            have = False
            opened = _open(pending)
            if opened is None:
                pieces.append(_scalar(pending))
            else:
                pieces.append(opened[0])
                frames.append([opened[1], opened[0] == "{", opened[2], 0])
        if not frames:
            break
        frame = frames[-1]
        item: Any = next(frame[0], _END)
        if item is _END:
            frames.pop()
            newline = "\n" + pad * len(frames) if indent is not None and frame[3] else ""
            pieces.append(newline + frame[2])
            continue
        lead = "," if frame[3] else ""
        frame[3] += 1
        if indent is not None:
            lead += "\n" + pad * len(frames)
        if frame[1]:
            key, pending = item
            pieces.append(lead + _key(key) + colon)
        else:
            pending = item
            if lead:
                pieces.append(lead)
        have = True
        if len(pieces) >= CHUNK_PIECES:
            yield json_safe("".join(pieces))
            pieces.clear()
    yield json_safe("".join(pieces))


def _open(value: Any) -> tuple[str, Iterator[Any], str] | None:
    """Opener, items and closer of a non-empty container; None for anything else."""
    if isinstance(value, dict) and value:
        return "{", iter(value.items()), "}"
    if isinstance(value, list | tuple) and value:
        return "[", iter(value), "]"
    return None


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return str(encode_basestring(value))
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value == value and value not in _NON_FINITE:
            return float.__repr__(value)
        return _NON_FINITE.get(value, "null")
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list | tuple):
        return "[]"
    return str(encode_basestring(str(value)))  # not JSON at all: shown as a string


def _key(key: Any) -> str:
    """Keys as ``json.dumps`` writes them: strings, and scalars turned into strings."""
    if isinstance(key, str):
        return str(encode_basestring(key))
    scalar = _scalar(key)
    return scalar if scalar.startswith('"') else str(encode_basestring(scalar))
