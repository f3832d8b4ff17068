"""The input language: one logical line of text becomes a ``Request``.

The language is qmp-shell's (``command key=value ...``, dotted keys, JSON or
Python-literal values, ``transaction(`` ... ``)``), so its users and QEMU's
documentation work unchanged.  Where qmp-shell was loose we are stricter and
say why in one line: a dotted key nests only itself, a bracketed value that is
neither JSON nor a Python literal is an error rather than a silent string, and
every error carries the column of the culprit.

A ``Syntax`` is the language in one mode (HMP or not, and the words that name the
shell's own commands).  It reads the first word of a line once (``head``) and
serves four callers from one scanner (``_lex``): ``parse`` for the session,
``tokenize`` for the highlighter (each token with its completion context, in one
pass), ``analyze`` for the completer and ``is_complete`` for frontends that join
continuation lines, so they can never disagree about what a line is or where a
word ends.  The work per line is linear in its length, and nesting (dotted keys
plus bracketed values) is bounded by ``MAX_DEPTH``.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from qmpsh.errors import InputError
from qmpsh.literals import (
    CLOSERS,
    MAX_DEPTH,
    OPENERS,
    QUOTES,
    LiteralError,
    bracketed,
    json_value,
    scalar,
    shown,
    skip_quote,
)
from qmpsh.request import Argument, Command, HmpLine, RawJson, Request, ShellCommand, Transaction

# QAPI names; dots appear in downstream extensions such as __com.redhat_foo.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
_KEY_PART = re.compile(r"[A-Za-z0-9_-]+\Z")
_KEYISH = re.compile(r"[A-Za-z0-9_.-]*\Z")
_TXN = re.compile(r"transaction[ \t]*\(")
_SPACE = re.compile(r"\s*")
_NONSPACE = re.compile(r"\S*")
_ESCAPE = re.compile(r"\\([\\\"'])")
# Words that continue a bracketed value across lines rather than start a request.
_LITERAL_WORDS = frozenset({"true", "false", "null", "True", "False", "None"})


LexKind = Literal["word", "space", "comment", "open", "sep", "close"]
TokenKind = Literal[
    "command",
    "shell",
    "hmp",
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
HeadKind = Literal[
    "blank",
    "comment",
    "shell",
    "hmp-line",
    "json",
    "help",
    "hmp",
    "info",
    "oob",
    "transaction",
    "command",
]
# Lines made of plain words (no key=value): a shell command, HMP, ``info``, ``NAME?``.
_PLAIN_HEADS = frozenset({"shell", "hmp-line", "help", "hmp", "info"})
# Lines whose comments ``parse`` removes itself (the lexer finds the others').
_UNLEXED_HEADS = _PLAIN_HEADS | {"json"}


@dataclass(frozen=True)
class Context:
    """What the completer should offer at the cursor (pgcli's ``suggest_type`` idea).

    ``command`` is the QMP command or transaction action in effect; ``given`` the
    arguments already typed, nested (so unions can follow a typed tag); ``key_path``
    the parent path of a dotted key being typed, or the full key of a value.  The
    completer replaces ``word``, which starts at ``word_start``.  A value token's
    context also carries its parsed ``argument``, so the schema can type it.
    ``oob`` marks a command name typed after ``oob``: only out-of-band ones fit.
    """

    kind: ContextKind
    command: str | None = None
    in_transaction: bool = False
    given: dict[str, Any] = field(default_factory=dict)
    key_path: tuple[str, ...] = ()
    word: str = ""
    word_start: int = 0
    argument: Argument | None = None
    oob: bool = False


class Token(NamedTuple):
    """A run of the input with one meaning, for the highlighter.

    ``context`` says, for command names, keys and values, what the schema must be
    asked about them (found in the same pass, so highlighting stays linear).
    """

    kind: TokenKind
    start: int
    end: int
    text: str
    context: Context | None = None


class Head(NamedTuple):
    """What the first word makes of a line; decided once, in ``Syntax.head``."""

    kind: HeadKind
    start: int  # the first word's offset
    end: int  # and its end
    txn: re.Match[str] | None = None  # the ``transaction(`` opener


# A syntax problem at an offset into the whole text; ``parse`` maps it to line/col.
_Bad = LiteralError


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


# ---------------------------------------------------------------- the language in one mode


class Syntax:
    """The input language in one mode; every frontend reads lines through one of these.

    The mode is fixed at construction, so a caller cannot parse a line in one mode
    and ask whether it is complete in another (``syntax_for`` shares instances).
    """

    __slots__ = ("hmp_mode", "shell_words")

    def __init__(self, *, hmp_mode: bool = False, shell_words: Collection[str] = ()) -> None:
        self.hmp_mode = hmp_mode
        self.shell_words = frozenset(shell_words)

    def head(self, text: str) -> Head:
        """Classify a line by its first word: the one place that ladder is climbed."""
        start, end = _first_word(text)
        if start == len(text):
            return Head("blank", start, end)
        if text[start] == "#":
            return Head("comment", start, end)
        word = text[start:end]
        if word in self.shell_words:
            return Head("shell", start, end)
        if self.hmp_mode:
            return Head("hmp-line", start, end)
        if text[start] == "{":
            return Head("json", start, end)
        if word.endswith("?"):
            return Head("help", start, end)
        if word in ("hmp", "info", "oob"):
            return Head(word, start, end)  # type: ignore[arg-type]
        txn = _TXN.match(text, start)
        return Head("command" if txn is None else "transaction", start, end, txn)

    def parse(self, text: str) -> Request | None:
        """Turn one logical line into a request; None for blank lines and comments.

        Raises only ``InputError``; for multi-line text its ``line`` is relative (1-based).
        """
        try:
            head = self.head(text)
            if head.kind in _UNLEXED_HEADS:
                text = _without_comments(text, head.start)
            return _PARSERS[head.kind](text, head)
        except _Bad as bad:
            raise error_at(text, bad.offset + 1, bad.message) from None
        except (RecursionError, MemoryError):
            raise InputError("input is too large or too deeply nested", 1) from None

    def is_complete(self, text: str) -> bool:
        """False while a bracket or ``transaction(`` is still open, so frontends read on.

        An unterminated quote counts as complete: neither JSON nor Python strings span
        lines, so waiting would only hide the mistake; ``parse`` reports it at once.
        """
        if "(" not in text and "[" not in text and "{" not in text:
            return True  # nothing can be open: the common case, without scanning (scripts)
        try:
            return _is_complete(text, self.head(text))
        except Exception:  # never let a frontend's read loop die on a scanner bug
            return True

    def breaks_off(self, pending: str, line: str) -> bool:
        """True when ``line`` starts a new request although ``pending`` is still open.

        A bracket left open in a value (or a JSON line) would otherwise swallow the
        rest of a script; the next line that reads as a request ends it, so the parser
        reports the open bracket and the requests after it still run.  In a
        transaction, whose lines are action names, only ``closes`` ends it early.
        """
        if self.head(pending).kind not in ("command", "json", "oob"):
            return False
        head = self.head(line)
        if head.kind in ("blank", "comment", "json"):
            return False
        word = line[head.start : head.end]
        if head.kind != "command":
            return True
        return bool(_NAME.match(word)) and word not in _LITERAL_WORDS

    def closes(self, pending: str, line: str) -> bool:
        """True when ``line`` (a lone ``)``) ends a transaction a bracket left open."""
        return line.strip() == ")" and self.head(pending).kind == "transaction"

    def tokenize(self, text: str) -> list[Token]:
        """Cut ``text`` into tokens that cover it exactly; never raises (it runs per keystroke)."""
        try:
            tokens = _tokenize(text, self.head(text))
        except Exception:  # a highlighter must not take the prompt down
            tokens = []
        if "".join(t.text for t in tokens) != text:
            return [Token("error", 0, len(text), text)] if text else []
        return tokens

    def analyze(self, text_before_cursor: str) -> Context:
        """Say what is expected at the end of ``text_before_cursor``; never raises.

        Inside a multi-line transaction pass every line typed so far, joined with '\\n'.
        """
        try:
            return self._analyze(text_before_cursor)
        except Exception:  # completion is a convenience; a bug must not break typing
            return Context("none", word_start=len(text_before_cursor))

    def _analyze(self, text: str) -> Context:
        head = self.head(text)
        n, kind = len(text), head.kind
        if kind == "blank":
            return Context("hmp-command" if self.hmp_mode else "command", word_start=n)
        if kind in ("comment", "json") or (kind == "help" and head.end == n):
            return Context("none", word_start=n)
        if kind in _PLAIN_HEADS and _comment_span(text, head.start) is not None:
            return Context("none", word_start=n)  # nothing to complete inside a comment
        if head.end == n and head.txn is None:  # still typing the first word
            word = text[head.start :]
            first: ContextKind = "hmp-command" if kind == "hmp-line" else "command"
            return Context(first, word=word, word_start=head.start)
        if kind == "shell":
            return _shell_context(text, text[head.start : head.end])
        if kind in ("hmp-line", "info"):
            return _hmp_context(text, head.start)
        if kind == "hmp":
            return _hmp_context(text, head.end)
        if kind == "help":
            return Context("none", word_start=n)
        if kind == "oob":
            return _command_context(text, None, head.end)
        return _command_context(text, head.txn)


@functools.lru_cache(maxsize=16)
def syntax_for(hmp_mode: bool, shell_words: frozenset[str]) -> Syntax:
    """The shared ``Syntax`` of a mode (a session asks on every line; building is cheap)."""
    return Syntax(hmp_mode=hmp_mode, shell_words=shell_words)


def build_arguments(
    arguments: Iterable[Argument],
    value_of: Callable[[Argument], Any] = lambda a: a.value,
) -> dict[str, Any]:
    """Nest dotted keys into a dict; ``value_of`` lets the schema retype each value.

    A key set twice, or used both as a value and as a parent, is an ``InputError``
    at the column of the later key.  ``value_of`` is asked once per argument, in order.
    """
    try:
        return _nest(arguments, value_of)
    except _Bad as bad:
        raise InputError(bad.message, bad.offset + 1) from None


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


# ---------------------------------------------------------------- comments


def starts_comment(text: str, i: int) -> bool:
    """The comment rule, the same for every kind of line (commands, transactions, HMP,
    ``info``, ``help``, the shell's own commands, raw JSON).

    A ``#`` at the start of a line or right after whitespace, and outside quotes and
    brackets, starts a comment that runs to the end of its line: ``info spice  # why``
    is ``info spice``.  A ``#`` inside a word (``id=a#b``), a quote (``data="x #y"``) or
    a bracket (``{"k": "a #b"}``) is data, and so is ``#`` before a digit after the
    first word of a line: ``events show #12`` takes the number the event pane prints,
    while a line whose first word starts with ``#`` is a comment whatever follows.
    Callers ask only where a word could start, having skipped quoted and bracketed text
    with ``_scan_word``, so "outside quotes and brackets" holds by construction; an
    unclosed quote hides what follows.
    """
    if text[i] != "#" or (i > 0 and not text[i - 1].isspace()):
        return False
    if not text[text.rfind("\n", 0, i) + 1 : i].strip():
        return True  # the first word of its line
    return not text[i + 1 : i + 2].isdigit()


def _comment_span(text: str, start: int) -> tuple[int, int] | None:
    """The first comment at or after ``start`` (its offsets), reading words as the lexer does."""
    i, n = start, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
        elif starts_comment(text, i):
            end = text.find("\n", i)
            return i, n if end < 0 else end
        else:
            i = _scan_word(text, i, False, n)[0]
    return None


def _without_comments(text: str, start: int) -> str:
    """``text`` with its comments blanked out, so every offset (error columns) stays true.

    For lines the lexer does not read (HMP, ``info``, ``help``, shell commands, JSON),
    which would otherwise hand the comment to HMP, to ``shlex`` or to the JSON parser.
    """
    while (span := _comment_span(text, start)) is not None:
        begin, start = span
        text = text[:begin] + " " * (start - begin) + text[start:]
    return text


# ---------------------------------------------------------------- scanner


def _first_word(text: str) -> tuple[int, int]:
    start = _SPACE.match(text).end()  # type: ignore[union-attr]
    return start, _NONSPACE.match(text, start).end()  # type: ignore[union-attr]


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
        if c in QUOTES:
            after = skip_quote(text, i)
            if after is None:
                return n, ("quote", i)
            i = after
            continue
        if not opened and _ends_word(text, i, txn, last):
            break
        if c in OPENERS:
            opened.append(i)
        elif c in CLOSERS and opened:
            opened.pop()
        i += 1
    return i, (("bracket", opened[0]) if opened else None)


def _lex(text: str, txn: re.Match[str] | None, start: int = 0) -> list[_Lexeme]:
    """Lexemes from ``start`` (after an ``oob`` prefix) to the end."""
    out: list[_Lexeme] = []
    i, n = start, len(text)
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
    if starts_comment(text, i):
        end = text.find("\n", i)
        return _Lexeme("comment", i, len(text) if end < 0 else end)
    if txn and c in ",)":
        return _Lexeme("sep" if c == "," else "close", i, i + 1)
    end, problem = _scan_word(text, i, txn, last)
    return _Lexeme("word", i, end, problem)


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


def _parse_blank(text: str, head: Head) -> None:
    return None


def _parse_shell(text: str, head: Head) -> ShellCommand:
    return ShellCommand(text[head.start : head.end], _shell_split(text, head.end), head.start + 1)


def _parse_hmp_line(text: str, head: Head) -> HmpLine:
    return HmpLine(text[head.start :].rstrip(), head.start + 1, passthrough=True)


def _parse_help(text: str, head: Head) -> ShellCommand:
    word = text[head.start : head.end]
    argv = (word[:-1],) if len(word) > 1 else ()
    return ShellCommand("help", argv + _shell_split(text, head.end), head.start + 1)


def _parse_info(text: str, head: Head) -> HmpLine:
    return HmpLine(text[head.start :].rstrip(), head.start + 1)


def _parse_hmp(text: str, head: Head) -> HmpLine:
    line_start = _SPACE.match(text, head.end).end()  # type: ignore[union-attr]
    line = text[line_start:].rstrip()
    if not line:
        raise _Bad("'hmp' needs a monitor command line, e.g. 'hmp info status'", head.start)
    return HmpLine(line, line_start + 1, passthrough=True)


def _parse_json(text: str, head: Head) -> RawJson:
    start = head.start
    _, problem = _scan_word(text, start, False, len(text))
    if problem is not None and problem[0] == "bracket":
        raise _problem(text, problem)
    try:
        message = json_value(text, MAX_DEPTH)
    except _Bad as bad:
        raise _Bad(f"invalid JSON: {bad.message}", bad.offset) from None
    if not isinstance(message, dict):
        raise _Bad("a JSON line must be an object", start)
    name = message.get("execute", message.get("exec-oob"))
    if not isinstance(name, str):
        raise _Bad('a JSON line needs "execute" (or "exec-oob") naming a command', start)
    return RawJson(message)


def _parse_transaction(text: str, head: Head) -> Transaction:
    txn = head.txn
    assert txn is not None
    layout = _group(text, _lex(text, txn))
    actions = tuple(_command(text, seg, "an action") for seg in layout.segments if seg)
    if layout.close is None:
        raise _Bad("'transaction(' has no closing ')'", txn.start())
    if layout.after_close:
        raise _Bad("unexpected text after ')'", layout.after_close[0].start)
    return Transaction(actions, txn.start() + 1)


def _parse_command(text: str, head: Head) -> Command:
    return _command(text, _group(text, _lex(text, None)).segments[0], "a command")


def _parse_oob(text: str, head: Head) -> Command:
    """``oob COMMAND k=v``: a command to send out of band (``exec-oob``)."""
    segment = _group(text, _lex(text, None, head.end)).segments[0]
    if not segment:
        raise _Bad("'oob' needs a command, e.g. 'oob query-yank'", head.start)
    command = _command(text, segment, "a command")
    return Command(command.name, command.arguments, command.column, oob=True)


_PARSERS: dict[HeadKind, Callable[[str, Head], Request | None]] = {
    "blank": _parse_blank,
    "comment": _parse_blank,
    "shell": _parse_shell,
    "hmp-line": _parse_hmp_line,
    "json": _parse_json,
    "help": _parse_help,
    "hmp": _parse_hmp,
    "info": _parse_info,
    "oob": _parse_oob,
    "transaction": _parse_transaction,
    "command": _parse_command,
}


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
            after = skip_quote(text, i)
            if after is None:
                return i
            i = after
        else:
            i += 1
    return n


def _command(text: str, words: list[_Lexeme], what: str) -> Command:
    head = words[0]
    if head.problem is not None:
        raise _problem(text, head.problem)
    name = text[head.start : head.end]
    if not _NAME.match(name):
        raise _Bad(f"expected {what} name, got {shown(name)}", head.start)
    arguments = tuple(_argument(text, lx) for lx in words[1:])
    _nest(arguments, lambda a: None)  # conflicts are syntax errors: report them now
    return Command(name, arguments, head.start + 1)


def _key_end(word: str) -> int:
    """Index of the '=' after a key; -1 when a quote or bracket (or nothing) comes first."""
    for i, c in enumerate(word):
        if c == "=":
            return i
        if c in QUOTES or c in OPENERS:
            return -1
    return -1


def _argument(text: str, lx: _Lexeme) -> Argument:
    if lx.problem is not None:
        raise _problem(text, lx.problem)
    word = text[lx.start : lx.end]
    cut = _key_end(word)
    if cut < 0:
        raise _Bad(f"expected key=value, got {shown(word)}", lx.start)
    key = word[:cut]
    path = _key_path(key, lx.start)
    value_start = lx.start + cut + 1
    depth_left = MAX_DEPTH - (len(path) - 1)  # a dotted key is nesting too
    plain, value, quoted = _value(word[cut + 1 :], value_start, key, depth_left)
    return Argument(path, plain, value, quoted, lx.start + 1, value_start + 1)


def _key_path(key: str, offset: int) -> tuple[str, ...]:
    if not key:
        raise _Bad("missing key before '='", offset)
    if key.count(".") >= MAX_DEPTH:
        raise _Bad(f"key {shown(key)} is nested more than {MAX_DEPTH} levels deep", offset)
    path = tuple(key.split("."))
    if not all(_KEY_PART.match(part) for part in path):
        raise _Bad(f"bad key {shown(key)}: use letters, digits, '-', '_' and dots", offset)
    return path


def _value(raw: str, offset: int, key: str, depth_left: int) -> tuple[str, Any, bool]:
    """(text, schema-blind value, quoted) of one value as typed."""
    if raw and raw[0] in QUOTES:
        closing = skip_quote(raw, 0) or len(raw)
        if closing != len(raw):
            raise _Bad("unexpected text after the closing quote", offset + closing)
        plain = _ESCAPE.sub(r"\1", raw[1:-1])
        return plain, plain, True
    if raw and raw[0] in OPENERS:
        return raw, bracketed(raw, offset, key, depth_left), False
    return raw, scalar(raw), False


# ---------------------------------------------------------------- nesting

_MISSING = object()


class _Nester:
    """Nests dotted keys into one object, refusing clashes, in time linear in the key parts.

    Objects made for a dotted key's parents are told from objects given as values by
    identity (``_parents`` maps each to the key that made it), so no set of path
    prefixes is built: a key with thousands of parts costs its length, not its square.
    """

    __slots__ = ("_parents", "root")

    def __init__(self) -> None:
        self.root: dict[str, Any] = {}
        self._parents: dict[int, str] = {}

    def check(self, arg: Argument) -> None:
        """Refuse ``arg`` if its path clashes with an argument added before."""
        offset, path = arg.key_column - 1, arg.path
        if not path:
            raise _Bad("missing key", offset)
        node = self.root
        for n, part in enumerate(path[:-1]):
            below = node.get(part, _MISSING)
            if below is _MISSING:
                return  # the rest of the path is new
            if id(below) not in self._parents:
                dotted = shown(".".join(path[: n + 1]))
                raise _Bad(
                    f"{dotted} is used both as a value and as a parent of {shown(arg.key)}", offset
                )
            node = below
        last = node.get(path[-1], _MISSING)
        if last is _MISSING:
            return
        if id(last) in self._parents:
            child = shown(self._parents[id(last)])
            raise _Bad(
                f"{shown(arg.key)} is used both as a value and as a parent of {child}", offset
            )
        raise _Bad(f"key {shown(arg.key)} is set twice", offset)

    def place(self, arg: Argument, value: Any) -> None:
        """Put ``value`` at ``arg``'s path (``check`` first)."""
        node = self.root
        for part in arg.path[:-1]:
            below = node.get(part, _MISSING)
            if below is _MISSING:
                below = node[part] = {}
                self._parents[id(below)] = arg.key
            node = below
        node[arg.path[-1]] = value


def _nest(arguments: Iterable[Argument], value_of: Callable[[Argument], Any]) -> dict[str, Any]:
    nester = _Nester()
    for arg in arguments:
        nester.check(arg)
        nester.place(arg, value_of(arg))
    return nester.root


# ---------------------------------------------------------------- is_complete


def _is_complete(text: str, head: Head) -> bool:
    if head.kind in ("blank", "comment") or head.kind in _PLAIN_HEADS:
        return True
    lexemes = _lex(text, head.txn)
    for lx in lexemes:
        if lx.problem is not None:
            return lx.problem[0] == "quote"
    return head.txn is None or any(lx.kind == "close" for lx in lexemes)


# ---------------------------------------------------------------- tokenize


def _tokenize(text: str, head: Head) -> list[Token]:
    start, end = head.start, head.end
    if head.kind == "blank":
        return [_token("whitespace", text, 0, start)] if text else []
    lead = [_token("whitespace", text, 0, start)] if start else []
    if head.kind == "comment":
        return [*lead, _token("comment", text, start, len(text))]
    if head.kind in _PLAIN_HEADS:
        return lead + _plain_tokens(text, start, end, "hmp" if head.kind == "hmp-line" else "shell")
    if head.kind == "json":
        span = _comment_span(text, start)
        stop = len(text) if span is None else span[0]
        body_end = len(text[:stop].rstrip())
        tail = [_token("whitespace", text, body_end, stop)] if body_end < stop else []
        return [*lead, _token("json", text, start, body_end), *tail, *_comment_tokens(text, span)]
    if head.kind == "oob":
        prefix = [*lead, _token("shell", text, start, end)]
        return prefix + _lexeme_tokens(text, _lex(text, None, end), False)
    return _lexeme_tokens(text, _lex(text, head.txn), head.txn is not None)


def _token(kind: TokenKind, text: str, start: int, end: int, ctx: Context | None = None) -> Token:
    return Token(kind, start, end, text[start:end], ctx)


def _plain_tokens(text: str, start: int, end: int, first: TokenKind) -> list[Token]:
    """HMP and shell-command lines: a command word, then plain words, then a comment."""
    span = _comment_span(text, end)
    stop = len(text) if span is None else span[0]
    tokens = [_token(first, text, start, end)]
    for match in re.finditer(r"\s+|\S+", text[end:stop]):
        kind: TokenKind = "whitespace" if match.group().isspace() else "value"
        tokens.append(_token(kind, text, end + match.start(), end + match.end()))
    return tokens + _comment_tokens(text, span)


def _comment_tokens(text: str, span: tuple[int, int] | None) -> list[Token]:
    """A comment and whatever follows its line (a plain or JSON line is one line)."""
    if span is None:
        return []
    rest = [_token("value", text, span[1], len(text))] if span[1] < len(text) else []
    return [_token("comment", text, *span), *rest]


class _Segments:
    """Per word of a line: the context of the command (or action) it belongs to.

    Built once per line, so every token learns its command and the arguments given
    beside it without re-reading the line (the highlighter used to, per token).
    """

    def __init__(self, text: str, lexemes: list[_Lexeme], in_txn: bool) -> None:
        self.base: dict[int, Context] = {}  # word start → its segment's context
        self.names: set[int] = set()  # starts of the words that name a command
        self.arguments: dict[int, Argument] = {}  # word start → the argument it parses to
        for segment in _group(text, lexemes).segments:
            if segment:
                self._add(text, segment, in_txn)

    def _add(self, text: str, segment: list[_Lexeme], in_txn: bool) -> None:
        name = segment[0]
        self.names.add(name.start)
        given = _given(text, segment[1:], self.arguments)
        base = Context("key", text[name.start : name.end], in_txn, given)
        for lx in segment:
            self.base[lx.start] = base


def _lexeme_tokens(text: str, lexemes: list[_Lexeme], in_txn: bool) -> list[Token]:
    segments = _Segments(text, lexemes, in_txn)
    tokens: list[Token] = []
    closed = False
    for lx in lexemes:
        base = segments.base.get(lx.start) if lx.kind == "word" else None
        if lx.kind == "space":
            tokens.append(_token("whitespace", text, lx.start, lx.end))
        elif lx.kind == "comment":
            tokens.append(_token("comment", text, lx.start, lx.end))
        elif lx.kind != "word":  # transaction( , )
            tokens.append(_token("error" if closed else "punct", text, lx.start, lx.end))
            closed = closed or lx.kind == "close"
        elif base is None:  # after the closing ')'
            tokens.append(_token("error", text, lx.start, lx.end))
        elif lx.start in segments.names:
            tokens.append(_name_token(text, lx, base))
        else:
            tokens += _argument_tokens(text, lx, base, segments.arguments.get(lx.start))
    return tokens


def _name_token(text: str, lx: _Lexeme, base: Context) -> Token:
    ok = lx.problem is None and _NAME.match(text[lx.start : lx.end])
    ctx = Context("command", base.command, base.in_transaction, word=base.command or "")
    return _token("command" if ok else "error", text, lx.start, lx.end, ctx if ok else None)


def _argument_tokens(
    text: str, lx: _Lexeme, base: Context, argument: Argument | None
) -> list[Token]:
    word = text[lx.start : lx.end]
    cut = _key_end(word)
    if cut < 0:
        if lx.end == len(text) and _KEYISH.match(word):  # a key still being typed
            dot = word.rfind(".")
            path = tuple(word[:dot].split(".")) if dot >= 0 else ()
            ctx = _with(base, "key", path, word[dot + 1 :], lx.start + dot + 1)
            return [_token("key", text, lx.start, lx.end, ctx)]
        return [_token("error", text, lx.start, lx.end)]
    equals = lx.start + cut
    tokens = [_token("equals", text, equals, equals + 1)]
    if cut:
        tokens.insert(0, _key_token(text, lx.start, equals, base))
    if equals + 1 < lx.end:
        raw = word[cut + 1 :]
        path = argument.path if argument is not None else ()
        ctx = _with(base, "value", path, raw, equals + 1, argument)
        kind = _value_kind(raw, lx.problem, argument)
        tokens.append(_token(kind, text, equals + 1, lx.end, ctx))
    return tokens


def _key_token(text: str, start: int, end: int, base: Context) -> Token:
    parts = text[start:end].split(".")
    if not all(_KEY_PART.match(p) for p in parts):
        return _token("error", text, start, end)
    last = end - len(parts[-1])
    return _token("key", text, start, end, _with(base, "key", tuple(parts[:-1]), parts[-1], last))


def _value_kind(raw: str, problem: tuple[str, int] | None, argument: Argument | None) -> TokenKind:
    """How a value is typed without a schema; values still being typed are not errors."""
    if raw[0] in QUOTES:
        closing = skip_quote(raw, 0)
        return "string" if closing in (None, len(raw)) else "error"
    if raw[0] in OPENERS:
        ok = problem is not None or argument is not None or _parses(raw)
        return "json" if ok else "error"
    if problem is not None:
        return "value"
    value = scalar(raw)
    if value is None or isinstance(value, bool):
        return "keyword"
    return "number" if isinstance(value, int | float) else "value"


def _parses(raw: str) -> bool:
    try:
        bracketed(raw, 0, "", MAX_DEPTH)
    except _Bad:
        return False
    return True


# ---------------------------------------------------------------- analyze


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


def _command_context(text: str, txn: re.Match[str] | None, start: int = 0) -> Context:
    """What is expected at the end of a command line; ``start`` skips an ``oob`` prefix."""
    lexemes = _lex(text, txn, start)
    layout = _group(text, lexemes)
    in_txn, n, oob = txn is not None, len(text), start > 0
    if layout.close is not None or lexemes[-1].kind == "comment":
        return Context("none", in_transaction=in_txn and layout.close is None, word_start=n)
    segment = layout.segments[-1]
    typing = lexemes[-1].kind == "word"
    if not segment or (typing and len(segment) == 1):
        word = text[segment[0].start :] if segment else ""
        return Context(
            "command", in_transaction=in_txn, word=word, word_start=n - len(word), oob=oob
        )
    done = segment[1:-1] if typing else segment[1:]
    name = text[segment[0].start : segment[0].end]
    given = _given(text, done)
    if not typing:
        return Context("key", name, in_txn, given, word_start=n)
    return _word_context(text, segment[-1], Context("key", name, in_txn, given))


def _given(
    text: str, lexemes: list[_Lexeme], parsed: dict[int, Argument] | None = None
) -> dict[str, Any]:
    """Arguments typed so far, skipping any that are broken or clash (``parsed`` collects them)."""
    nester = _Nester()
    for lx in lexemes:
        try:
            arg = _argument(text, lx)
        except _Bad:
            continue
        if parsed is not None:
            parsed[lx.start] = arg
        try:
            nester.check(arg)
        except _Bad:
            continue
        nester.place(arg, arg.given)
    return nester.root


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
    if raw and raw[0] in QUOTES:
        if skip_quote(raw, 0) is not None:  # the quoted value is finished
            return _with(base, "none", path, "", len(text))
        return _with(base, "value", path, raw[1:], value_start + 1)
    if raw and raw[0] in OPENERS:
        return _with(base, "none", path, "", len(text))
    return _with(base, "value", path, raw, value_start)


def _with(
    base: Context,
    kind: ContextKind,
    path: tuple[str, ...],
    word: str,
    at: int,
    argument: Argument | None = None,
) -> Context:
    return Context(kind, base.command, base.in_transaction, base.given, path, word, at, argument)
