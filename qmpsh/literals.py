"""Values as typed after ``key=``: qmp-shell's guesses, JSON, or Python literals — data, never code.

A bare word is guessed as qmp-shell does (``123`` an int, ``true`` a bool) and the
schema may retype it later; a bracketed value is JSON, else a Python literal read by
``ast.literal_eval``.  Nesting is bounded (``MAX_DEPTH``) before anything recursive
reads the text, so no value can exhaust the stack or memory.
"""

from __future__ import annotations

import ast
import json
import math
import re
from typing import Any

_INT = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][+-]?[0-9]+)?\Z")
_JSON_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None}
QUOTES = "\"'"
OPENERS = "{["
CLOSERS = "}]"
_SHOWN = 40  # characters of a key or word quoted in an error message

# How deep one argument may nest, dotted key parts and bracketed value together (and a
# whole JSON line).  Real QMP values stay far below; the bound keeps every later step
# (typing, validation, masking secrets, json.dumps) clear of Python's recursion limit.
MAX_DEPTH = 128


class LiteralError(Exception):
    """A value (or line) that cannot be read, and the offset of the fault in the line."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def shown(text: str) -> str:
    """``text`` quoted for a one-line message, cut if it is long."""
    return repr(text) if len(text) <= _SHOWN else repr(text[:_SHOWN]) + "…"


def skip_quote(text: str, i: int) -> int | None:
    """Index after the quote closing the one at ``i``; a backslash escapes the next char."""
    quote, j, n = text[i], i + 1, len(text)
    while j < n:
        c = text[j]
        if c == "\\":
            j += 2
        elif c == quote:
            return j + 1
        else:
            j += 1
    return None


def scalar(raw: str) -> Any:
    """qmp-shell's guesses: ints, true/false in any case, plus null/None and floats."""
    if _INT.match(raw):
        try:
            return int(raw)
        except ValueError:  # beyond Python's int-from-text limit; the schema decides
            return raw
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if raw in ("null", "None"):
        return None
    if _FLOAT.match(raw):
        number = float(raw)
        return number if math.isfinite(number) else raw
    return raw


def max_depth(text: str) -> int:
    depth = deepest = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in QUOTES:
            i = skip_quote(text, i) or n
            continue
        if c in OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif c in CLOSERS:
            depth -= 1
        i += 1
    return deepest


def bracketed(raw: str, offset: int, key: str, depth_left: int) -> Any:
    """A bracketed value as JSON, else as a Python literal (never ``eval``)."""
    if max_depth(raw) > depth_left:
        raise LiteralError(
            f"the value of {shown(key)} is nested more than {MAX_DEPTH} levels deep", offset
        )
    try:
        return json_value(raw, depth_left)
    except LiteralError as bad:
        json_error = LiteralError(
            f"the value of {shown(key)} is neither JSON nor a Python literal: {bad.message}",
            offset + bad.offset,
        )
    try:
        return _python_literal(raw)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise json_error from None


def json_value(text: str, limit: int) -> Any:
    """``json.loads`` that refuses NaN, Infinity and nesting deeper than ``limit``."""
    if max_depth(text) > limit:
        raise LiteralError(
            f"nested more than {MAX_DEPTH} levels deep", len(text) - len(text.lstrip())
        )
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as err:
        raise LiteralError(err.msg, err.pos) from None
    except (ValueError, RecursionError, MemoryError) as err:
        raise LiteralError(str(err), len(text) - len(text.lstrip())) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in QMP")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:20]} is out of range")
    return number


class _FuzzyJson(ast.NodeTransformer):
    """Let JSON's true/false/null appear inside Python literals, as qmp-shell does."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in _JSON_NAMES:
            return ast.Constant(value=_JSON_NAMES[node.id])
        return node


def _python_literal(raw: str) -> Any:
    tree = _FuzzyJson().visit(ast.parse(raw, mode="eval"))
    return _jsonable(ast.literal_eval(tree))


def _jsonable(value: Any) -> Any:
    """Tuples become lists; sets, bytes, complex and NaN are refused: QMP is JSON."""
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("object keys must be strings")
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("number out of range")
    if value is None or isinstance(value, str | int | float):
        return value
    raise ValueError(f"{type(value).__name__} is not a JSON value")
