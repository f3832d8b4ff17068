"""The input language: one logical line of text becomes a ``Request``.

The language is qmp-shell's (``command key=value ...``, dotted keys, JSON or
Python-literal values, ``transaction(`` ... ``)``), so its users and QEMU's
documentation work unchanged.  Where qmp-shell was loose we are stricter and
say why in one line: a dotted key nests only itself, a bracketed value that is
neither JSON nor a Python literal is an error rather than a silent string, and
every error carries the column of the culprit.

One scanner (``_lex``) serves four callers: ``parse`` for the session,
``tokenize`` for the highlighter, ``analyze`` for the completer and
``is_complete`` for frontends that join continuation lines, so they can never
disagree about where a word ends.
"""

from __future__ import annotations

import ast
import json
import math
import re
import shlex
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from qmpsh.errors import InputError
from qmpsh.request import Argument, Command, HmpLine, RawJson, Request, ShellCommand, Transaction

# QAPI names; dots appear in downstream extensions such as __com.redhat_foo.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
_KEY_PART = re.compile(r"[A-Za-z0-9_-]+\Z")
_KEYISH = re.compile(r"[A-Za-z0-9_.-]*\Z")
_TXN = re.compile(r"transaction[ \t]*\(")
_SPACE = re.compile(r"\s*")
_NONSPACE = re.compile(r"\S*")
_INT = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][+-]?[0-9]+)?\Z")
_ESCAPE = re.compile(r"\\([\\\"'])")
_QUOTES = "\"'"
_JSON_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None}
_OPENERS = "{["
_CLOSERS = "}]"

# Deeper values could not be sent anyway: json.dumps and QEMU's parser both give up
# long before Python's recursion limit would save us.
MAX_DEPTH = 256

LexKind = Literal["word", "space", "comment", "open", "sep", "close"]
TokenKind = Literal[
    "command",
    "key",
    "equals",
    "value",
    "string",
    "number",
    "keyword",
    "json",
    "punct",
    "comment",
    "error",
    "whitespace",
]
ContextKind = Literal[
    "command", "key", "value", "hmp-info", "hmp-command", "shell-argument", "none"
]


class Token(NamedTuple):
    """A run of the input with one meaning, for the highlighter."""

    kind: TokenKind
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Context:
    """What the completer should offer at the cursor (pgcli's ``suggest_type`` idea).

    ``command`` is the QMP command or transaction action in effect; ``given`` the
    arguments already typed, nested (so unions can follow a typed tag); ``key_path``
    the parent path of a dotted key being typed, or the full key of a value.  The
    completer replaces ``word``, which starts at ``word_start``.
    """

    kind: ContextKind
    command: str | None = None
    in_transaction: bool = False
    given: dict[str, Any] = field(default_factory=dict)
    key_path: tuple[str, ...] = ()
    word: str = ""
    word_start: int = 0


class _Bad(Exception):
    """A syntax problem at an offset into the whole text; ``parse`` maps it to line/col."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


# NamedTuples and a plain class rather than frozen dataclasses: each of those costs
# ~0.4 ms to build at import, paid by every ``-c`` call and script.


class _Lexeme(NamedTuple):
    kind: LexKind
    start: int
    end: int
    # ("quote" | "bracket", offset of the unterminated quote or first unclosed bracket)
    problem: tuple[str, int] | None = None


class _Layout:
    """A line cut into commands: one segment, or a transaction's actions."""

    __slots__ = ("after_close", "close", "open", "segments")

    def __init__(self) -> None:
        self.open: _Lexeme | None = None
        self.segments: list[list[_Lexeme]] = [[]]
        self.close: _Lexeme | None = None
        self.after_close: list[_Lexeme] = []


# ---------------------------------------------------------------- public API


def parse(
    text: str, *, hmp_mode: bool = False, shell_commands: Collection[str] = ()
) -> Request | None:
    """Turn one logical line into a request; None for blank lines and comments.

    Raises only ``InputError``; for multi-line text its ``line`` is relative (1-based).
    """
    try:
        return _parse(text, hmp_mode, shell_commands)
    except _Bad as bad:
        raise error_at(text, bad.offset + 1, bad.message) from None
    except (RecursionError, MemoryError):
        raise InputError("input is too large or too deeply nested", 1) from None


def is_complete(text: str, *, hmp_mode: bool = False, shell_commands: Collection[str] = ()) -> bool:
    """False while a bracket or ``transaction(`` is still open, so frontends read on.

    An unterminated quote counts as complete: neither JSON nor Python strings span
    lines, so waiting would only hide the mistake; ``parse`` reports it at once.
    """
    if "(" not in text and "[" not in text and "{" not in text:
        return True  # nothing can be open: the common case, without scanning (scripts)
    try:
        return _is_complete(text, hmp_mode, shell_commands)
    except Exception:  # never let a frontend's read loop die on a scanner bug
        return True


def build_arguments(
    arguments: Iterable[Argument],
    value_of: Callable[[Argument], Any] = lambda a: a.value,
) -> dict[str, Any]:
    """Nest dotted keys into a dict; ``value_of`` lets the schema retype each value.

    A key set twice, or used both as a value and as a parent, is an ``InputError``
    at the column of the later key.
    """
    try:
        return _nest(arguments, value_of)
    except _Bad as bad:
        raise InputError(bad.message, bad.offset + 1) from None


def tokenize(
    text: str, *, hmp_mode: bool = False, shell_commands: Collection[str] = ()
) -> list[Token]:
    """Cut ``text`` into tokens that cover it exactly; never raises (it runs per keystroke)."""
    try:
        tokens = _tokenize(text, hmp_mode, shell_commands)
    except Exception:  # a highlighter must not take the prompt down
        tokens = []
    if "".join(t.text for t in tokens) != text:
        return [Token("error", 0, len(text), text)] if text else []
    return tokens


def analyze(
    text_before_cursor: str, *, hmp_mode: bool = False, shell_commands: Collection[str] = ()
) -> Context:
    """Say what is expected at the end of ``text_before_cursor``; never raises.

    Inside a multi-line transaction pass every line typed so far, joined with '\\n'.
    """
    try:
        return _analyze(text_before_cursor, hmp_mode, shell_commands)
    except Exception:  # completion is a convenience; a bug must not break typing
        return Context("none", word_start=len(text_before_cursor))


def error_at(text: str, column: int, message: str) -> InputError:
    """An ``InputError`` for a 1-based column into ``text``, as line and column if multi-line.

    ``Argument`` columns count from the start of the whole text; a validator that
    finds a bad value in a multi-line transaction uses this to point at the right line.
    """
    offset = max(0, min(column - 1, len(text)))
    if "\n" not in text:
        return InputError(message, offset + 1)
    line_start = text.rfind("\n", 0, offset) + 1
    return InputError(message, offset - line_start + 1, text.count("\n", 0, offset) + 1)


# ---------------------------------------------------------------- scanner


def _first_word(text: str) -> tuple[int, int]:
    start = _SPACE.match(text).end()  # type: ignore[union-attr]
    return start, _NONSPACE.match(text, start).end()  # type: ignore[union-attr]


def _skip_quote(text: str, i: int) -> int | None:
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


def _ends_word(text: str, i: int, txn: bool, last: int) -> bool:
    """Whitespace ends a word; in a transaction so do ``, `` and a final ``)``."""
    c = text[i]
    if c.isspace():
        return True
    if not txn:
        return False
    if c == ",":
        return i + 1 == len(text) or text[i + 1].isspace() or text[i + 1] == ")"
    return c == ")" and i == last


def _scan_word(text: str, i: int, txn: bool, last: int) -> tuple[int, tuple[str, int] | None]:
    """End of the word at ``i``: quotes and brackets may hold spaces."""
    opened: list[int] = []
    n = len(text)
    while i < n:
        c = text[i]
        if c in _QUOTES:
            after = _skip_quote(text, i)
            if after is None:
                return n, ("quote", i)
            i = after
            continue
        if not opened and _ends_word(text, i, txn, last):
            break
        if c in _OPENERS:
            opened.append(i)
        elif c in _CLOSERS and opened:
            opened.pop()
        i += 1
    return i, (("bracket", opened[0]) if opened else None)


def _lex(text: str, txn: re.Match[str] | None) -> list[_Lexeme]:
    out: list[_Lexeme] = []
    i, n = 0, len(text)
    last = len(text.rstrip()) - 1
    if txn is not None:
        if txn.start():
            out.append(_Lexeme("space", 0, txn.start()))
        out.append(_Lexeme("open", txn.start(), txn.end()))
        i = txn.end()
    while i < n:
        lexeme = _lex_one(text, i, txn is not None, last)
        out.append(lexeme)
        i = lexeme.end
    return out


def _lex_one(text: str, i: int, txn: bool, last: int) -> _Lexeme:
    c = text[i]
    if c.isspace():
        return _Lexeme("space", i, _SPACE.match(text, i).end())  # type: ignore[union-attr]
    if c == "#":
        end = text.find("\n", i)
        return _Lexeme("comment", i, len(text) if end < 0 else end)
    if txn and c in ",)":
        return _Lexeme("sep" if c == "," else "close", i, i + 1)
    end, problem = _scan_word(text, i, txn, last)
    return _Lexeme("word", i, end, problem)


def _txn_match(text: str) -> re.Match[str] | None:
    return _TXN.match(text, _first_word(text)[0])


def _group(text: str, lexemes: list[_Lexeme]) -> _Layout:
    """Cut lexemes into segments; in a transaction newlines and commas end an action."""
    layout = _Layout()
    for lx in lexemes:
        if lx.kind in ("space", "comment") and not _ends_action(text, lx, layout):
            continue
        if layout.close is not None:
            layout.after_close.append(lx)
        elif lx.kind == "open":
            layout.open = lx
        elif lx.kind == "close":
            layout.close = lx
        elif lx.kind == "word":
            layout.segments[-1].append(lx)
        elif layout.segments[-1]:
            layout.segments.append([])
    return layout


def _ends_action(text: str, lx: _Lexeme, layout: _Layout) -> bool:
    return (
        layout.open is not None
        and layout.close is None
        and lx.kind == "space"
        and "\n" in text[lx.start : lx.end]
    )


def _problem(text: str, problem: tuple[str, int]) -> _Bad:
    kind, offset = problem
    if kind == "quote":
        return _Bad("unterminated quote", offset)
    return _Bad(f"unbalanced '{text[offset]}': it is never closed", offset)


# ---------------------------------------------------------------- parse


def _parse(text: str, hmp_mode: bool, shell_commands: Collection[str]) -> Request | None:
    start, end = _first_word(text)
    if start == len(text) or text[start] == "#":
        return None
    word = text[start:end]
    if word in shell_commands:
        return ShellCommand(word, _shell_split(text, end), start + 1)
    if hmp_mode:
        return HmpLine(text[start:].rstrip(), start + 1, passthrough=True)
    if text[start] == "{":
        return _raw_json(text, start)
    if word.endswith("?"):
        argv = (word[:-1],) if len(word) > 1 else ()
        return ShellCommand("help", argv + _shell_split(text, end), start + 1)
    if word == "hmp":
        return _hmp(text, start, end)
    if word == "info":
        return HmpLine(text[start:].rstrip(), start + 1)
    txn = _txn_match(text)
    if txn is not None:
        return _transaction(text, txn)
    return _command(text, _group(text, _lex(text, None)).segments[0], "a command")


def _shell_split(text: str, start: int) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(text[start:]))
    except ValueError:
        raise _Bad("unterminated quote or trailing backslash", _shell_fault(text, start)) from None


def _shell_fault(text: str, i: int) -> int:
    """Where shlex gave up: the unclosed quote, else the trailing backslash."""
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                return i
            i += 2
        elif c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                return i
            i = end + 1
        elif c == '"':
            after = _skip_quote(text, i)
            if after is None:
                return i
            i = after
        else:
            i += 1
    return n


def _hmp(text: str, start: int, end: int) -> HmpLine:
    line_start = _SPACE.match(text, end).end()  # type: ignore[union-attr]
    line = text[line_start:].rstrip()
    if not line:
        raise _Bad("'hmp' needs a monitor command line, e.g. 'hmp info status'", start)
    return HmpLine(line, line_start + 1, passthrough=True)


def _raw_json(text: str, start: int) -> RawJson:
    _, problem = _scan_word(text, start, False, len(text))
    if problem is not None and problem[0] == "bracket":
        raise _problem(text, problem)
    try:
        message = _json(text)
    except _Bad as bad:
        raise _Bad(f"invalid JSON: {bad.message}", bad.offset) from None
    if not isinstance(message, dict):
        raise _Bad("a JSON line must be an object", start)
    name = message.get("execute", message.get("exec-oob"))
    if not isinstance(name, str):
        raise _Bad('a JSON line needs "execute" (or "exec-oob") naming a command', start)
    return RawJson(message)


def _transaction(text: str, txn: re.Match[str]) -> Transaction:
    layout = _group(text, _lex(text, txn))
    actions = tuple(_command(text, seg, "an action") for seg in layout.segments if seg)
    if layout.close is None:
        raise _Bad("'transaction(' has no closing ')'", txn.start())
    if layout.after_close:
        raise _Bad("unexpected text after ')'", layout.after_close[0].start)
    return Transaction(actions, txn.start() + 1)


def _command(text: str, words: list[_Lexeme], what: str) -> Command:
    head = words[0]
    if head.problem is not None:
        raise _problem(text, head.problem)
    name = text[head.start : head.end]
    if not _NAME.match(name):
        raise _Bad(f"expected {what} name, got {name!r}", head.start)
    arguments = tuple(_argument(text, lx) for lx in words[1:])
    _nest(arguments, lambda a: None)  # conflicts are syntax errors: report them now
    return Command(name, arguments, head.start + 1)


def _key_end(word: str) -> int:
    """Index of the '=' after a key; -1 when a quote or bracket (or nothing) comes first."""
    for i, c in enumerate(word):
        if c == "=":
            return i
        if c in _QUOTES or c in _OPENERS:
            return -1
    return -1


def _argument(text: str, lx: _Lexeme) -> Argument:
    if lx.problem is not None:
        raise _problem(text, lx.problem)
    word = text[lx.start : lx.end]
    cut = _key_end(word)
    if cut < 0:
        raise _Bad(f"expected key=value, got {word!r}", lx.start)
    key = word[:cut]
    path = _key_path(key, lx.start)
    value_start = lx.start + cut + 1
    plain, value, quoted = _value(word[cut + 1 :], value_start, key)
    return Argument(path, plain, value, quoted, lx.start + 1, value_start + 1)


def _key_path(key: str, offset: int) -> tuple[str, ...]:
    if not key:
        raise _Bad("missing key before '='", offset)
    path = tuple(key.split("."))
    if not all(_KEY_PART.match(part) for part in path):
        raise _Bad(f"bad key {key!r}: use letters, digits, '-', '_' and dots", offset)
    return path


def _value(raw: str, offset: int, key: str) -> tuple[str, Any, bool]:
    """(text, schema-blind value, quoted) of one value as typed."""
    if raw and raw[0] in _QUOTES:
        closing = _skip_quote(raw, 0) or len(raw)
        if closing != len(raw):
            raise _Bad("unexpected text after the closing quote", offset + closing)
        plain = _ESCAPE.sub(r"\1", raw[1:-1])
        return plain, plain, True
    if raw and raw[0] in _OPENERS:
        return raw, _literal(raw, offset, key), False
    return raw, _scalar(raw), False


def _scalar(raw: str) -> Any:
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


def _max_depth(text: str) -> int:
    depth = deepest = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _QUOTES:
            i = _skip_quote(text, i) or n
            continue
        if c in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif c in _CLOSERS:
            depth -= 1
        i += 1
    return deepest


def _literal(raw: str, offset: int, key: str) -> Any:
    """A bracketed value as JSON, else as a Python literal (never ``eval``)."""
    try:
        return _json(raw)
    except _Bad as bad:
        json_error = _Bad(
            f"the value of {key!r} is neither JSON nor a Python literal: {bad.message}",
            offset + bad.offset,
        )
    try:
        return _python_literal(raw)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise json_error from None


def _json(text: str) -> Any:
    """``json.loads`` that refuses NaN, Infinity and nesting QEMU would not take."""
    if _max_depth(text) > MAX_DEPTH:
        raise _Bad(f"nested more than {MAX_DEPTH} levels deep", len(text) - len(text.lstrip()))
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as err:
        raise _Bad(err.msg, err.pos) from None
    except (ValueError, RecursionError, MemoryError) as err:
        raise _Bad(str(err), len(text) - len(text.lstrip())) from None


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


# ---------------------------------------------------------------- nesting


def _nest(arguments: Iterable[Argument], value_of: Callable[[Argument], Any]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    leaves: set[tuple[str, ...]] = set()
    parents: dict[tuple[str, ...], str] = {}
    for arg in arguments:
        _claim(arg, leaves, parents)
        _place(root, arg.path, value_of(arg))
    return root


def _claim(
    arg: Argument, leaves: set[tuple[str, ...]], parents: dict[tuple[str, ...], str]
) -> None:
    """Record ``arg``'s path, refusing one that clashes with an earlier argument."""
    offset, path = arg.key_column - 1, arg.path
    if not path:
        raise _Bad("missing key", offset)
    for n in range(1, len(path)):
        prefix = path[:n]
        if prefix in leaves:
            dotted = ".".join(prefix)
            raise _Bad(f"{dotted!r} is used both as a value and as a parent of {arg.key!r}", offset)
        parents.setdefault(prefix, arg.key)
    if path in leaves:
        raise _Bad(f"key {arg.key!r} is set twice", offset)
    if path in parents:
        child = parents[path]
        raise _Bad(f"{arg.key!r} is used both as a value and as a parent of {child!r}", offset)
    leaves.add(path)


def _place(root: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = root
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


# ---------------------------------------------------------------- is_complete


def _is_complete(text: str, hmp_mode: bool, shell_commands: Collection[str]) -> bool:
    start, end = _first_word(text)
    if start == len(text) or text[start] == "#":
        return True
    word = text[start:end]
    if hmp_mode or word in shell_commands or word in ("hmp", "info") or word.endswith("?"):
        return True
    txn = _txn_match(text)
    lexemes = _lex(text, txn)
    for lx in lexemes:
        if lx.problem is not None:
            return lx.problem[0] == "quote"
    return txn is None or any(lx.kind == "close" for lx in lexemes)


# ---------------------------------------------------------------- tokenize


def _tokenize(text: str, hmp_mode: bool, shell_commands: Collection[str]) -> list[Token]:
    start, end = _first_word(text)
    if start == len(text):
        return [_token("whitespace", text, 0, start)] if text else []
    head = [_token("whitespace", text, 0, start)] if start else []
    word = text[start:end]
    if text[start] == "#":
        return [*head, _token("comment", text, start, len(text))]
    if hmp_mode or word in shell_commands or word in ("hmp", "info") or word.endswith("?"):
        return head + _plain_tokens(text, start, end)
    if text[start] == "{":
        body_end = len(text.rstrip())
        tail = [_token("whitespace", text, body_end, len(text))] if body_end < len(text) else []
        return [*head, _token("json", text, start, body_end), *tail]
    return _lexeme_tokens(text, _lex(text, _txn_match(text)))


def _token(kind: TokenKind, text: str, start: int, end: int) -> Token:
    return Token(kind, start, end, text[start:end])


def _plain_tokens(text: str, start: int, end: int) -> list[Token]:
    """HMP and shell-command lines: a command word, then plain words."""
    tokens = [_token("command", text, start, end)]
    for match in re.finditer(r"\s+|\S+", text[end:]):
        kind: TokenKind = "whitespace" if match.group().isspace() else "value"
        tokens.append(_token(kind, text, end + match.start(), end + match.end()))
    return tokens


def _lexeme_tokens(text: str, lexemes: list[_Lexeme]) -> list[Token]:
    tokens: list[Token] = []
    in_txn = any(lx.kind == "open" for lx in lexemes)
    expect_name, closed = True, False
    for lx in lexemes:
        kind: TokenKind
        if lx.kind == "space":
            kind = "whitespace"
            if in_txn and not closed and "\n" in text[lx.start : lx.end]:
                expect_name = True
        elif lx.kind == "comment":
            kind = "comment"
        elif lx.kind != "word":  # transaction( , )
            kind = "error" if closed else "punct"
            expect_name, closed = lx.kind != "close", closed or lx.kind == "close"
        elif expect_name and not closed:
            kind, expect_name = _name_kind(text, lx), False
        else:
            tokens.extend(_argument_tokens(text, lx, closed))
            continue
        tokens.append(_token(kind, text, lx.start, lx.end))
    return tokens


def _name_kind(text: str, lx: _Lexeme) -> TokenKind:
    ok = lx.problem is None and _NAME.match(text[lx.start : lx.end])
    return "command" if ok else "error"


def _argument_tokens(text: str, lx: _Lexeme, closed: bool) -> list[Token]:
    word = text[lx.start : lx.end]
    cut = _key_end(word)
    if cut < 0 or closed:
        typing = lx.end == len(text) and _KEYISH.match(word) and not closed
        return [_token("key" if typing else "error", text, lx.start, lx.end)]
    equals = lx.start + cut
    tokens = [_token("equals", text, equals, equals + 1)]
    if cut:
        key_ok = all(_KEY_PART.match(p) for p in word[:cut].split("."))
        tokens.insert(0, _token("key" if key_ok else "error", text, lx.start, equals))
    if equals + 1 < lx.end:
        kind = _value_kind(word[cut + 1 :], lx.problem)
        tokens.append(_token(kind, text, equals + 1, lx.end))
    return tokens


def _value_kind(raw: str, problem: tuple[str, int] | None) -> TokenKind:
    """How a value would be typed; values still being typed are not shown as errors."""
    if raw[0] in _QUOTES:
        closing = _skip_quote(raw, 0)
        return "string" if closing in (None, len(raw)) else "error"
    if raw[0] in _OPENERS:
        return "json" if problem is not None or _parses(raw) else "error"
    if problem is not None:
        return "value"
    value = _scalar(raw)
    if value is None or isinstance(value, bool):
        return "keyword"
    return "number" if isinstance(value, int | float) else "value"


def _parses(raw: str) -> bool:
    try:
        _literal(raw, 0, "")
    except _Bad:
        return False
    return True


# ---------------------------------------------------------------- analyze


def _analyze(text: str, hmp_mode: bool, shell_commands: Collection[str]) -> Context:
    n = len(text)
    start, end = _first_word(text)
    if start == n:
        return Context("hmp-command" if hmp_mode else "command", word_start=n)
    if text[start] in "#{":
        return Context("none", word_start=n)
    word = text[start:end]
    txn = _txn_match(text)
    if end == n and txn is None:
        if word.endswith("?"):
            return Context("none", word_start=n)
        return Context("hmp-command" if hmp_mode else "command", word=word, word_start=start)
    if word in shell_commands:
        return _shell_context(text, word)
    if hmp_mode or word == "info":
        return _hmp_context(text, start)
    if word == "hmp":
        return _hmp_context(text, end)
    if word.endswith("?"):
        return Context("none", word_start=n)
    return _command_context(text, txn)


def _last_word(text: str) -> tuple[str, int]:
    """The word the cursor is in ('' after whitespace) and where it starts."""
    start = len(text) - len(_NONSPACE.match(text[::-1]).group())  # type: ignore[union-attr]
    return text[start:], start


def _shell_context(text: str, name: str) -> Context:
    word, start = _last_word(text)
    return Context("shell-argument", command=name, word=word, word_start=start)


def _hmp_context(text: str, i: int) -> Context:
    """Complete an HMP command name, or the topic of ``info``; HMP arguments are not known."""
    words = [(m.group(), i + m.start()) for m in re.finditer(r"\S+", text[i:])]
    word, start = _last_word(text)
    typed = len(words) - (1 if word else 0)  # words finished before the cursor
    if typed == 0:
        return Context("hmp-command", word=word, word_start=start)
    if typed == 1 and words[0][0] == "info":
        return Context("hmp-info", command="info", word=word, word_start=start)
    return Context("none", word_start=len(text))


def _command_context(text: str, txn: re.Match[str] | None) -> Context:
    lexemes = _lex(text, txn)
    layout = _group(text, lexemes)
    in_txn, n = txn is not None, len(text)
    if layout.close is not None or lexemes[-1].kind == "comment":
        return Context("none", in_transaction=in_txn and layout.close is None, word_start=n)
    segment = layout.segments[-1]
    typing = lexemes[-1].kind == "word"
    if not segment or (typing and len(segment) == 1):
        word = text[segment[0].start :] if segment else ""
        return Context("command", in_transaction=in_txn, word=word, word_start=n - len(word))
    done = segment[1:-1] if typing else segment[1:]
    name = text[segment[0].start : segment[0].end]
    given = _given(text, done)
    if not typing:
        return Context("key", name, in_txn, given, word_start=n)
    return _word_context(text, segment[-1], Context("key", name, in_txn, given))


def _given(text: str, lexemes: list[_Lexeme]) -> dict[str, Any]:
    """Arguments typed so far, skipping any that are broken or clash."""
    root: dict[str, Any] = {}
    leaves: set[tuple[str, ...]] = set()
    parents: dict[tuple[str, ...], str] = {}
    for lx in lexemes:
        try:
            arg = _argument(text, lx)
            _claim(arg, leaves, parents)
        except _Bad:
            continue
        _place(root, arg.path, arg.value)
    return root


def _word_context(text: str, lx: _Lexeme, base: Context) -> Context:
    word = text[lx.start : lx.end]
    cut = _key_end(word)
    if cut < 0:
        if not _KEYISH.match(word):
            return Context("none", base.command, base.in_transaction, word_start=len(text))
        dot = word.rfind(".")
        path = tuple(word[:dot].split(".")) if dot >= 0 else ()
        return _with(base, "key", path, word[dot + 1 :], lx.start + dot + 1)
    path = tuple(word[:cut].split("."))
    raw, value_start = word[cut + 1 :], lx.start + cut + 1
    if raw and raw[0] in _QUOTES:
        if _skip_quote(raw, 0) is not None:  # the quoted value is finished
            return _with(base, "none", path, "", len(text))
        return _with(base, "value", path, raw[1:], value_start + 1)
    if raw and raw[0] in _OPENERS:
        return _with(base, "none", path, "", len(text))
    return _with(base, "value", path, raw, value_start)


def _with(base: Context, kind: ContextKind, path: tuple[str, ...], word: str, at: int) -> Context:
    return Context(kind, base.command, base.in_transaction, base.given, path, word, at)
