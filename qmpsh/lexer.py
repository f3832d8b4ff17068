"""Highlighting of the input line, from the same tokenizer and schema as completion.

``Syntax.tokenize`` says what each run of text is (command, key, value, …) and, in
the same pass, in which command and beside which arguments; this module adds what
only the schema knows — is the command real, is the key a member of that command
(given the union tags typed so far), and what the value will be sent as
(``Schema.value_of``: ``id=123`` is a string, ``force=on`` a bool) — and maps the
answer to a style class.  Without a schema a value is coloured by the schema-blind
guess that is then sent.  The classes, which ``style.py`` colours:

=========================  ===================================================
``class:command``          a QMP command (or transaction action) the schema has
``class:command.unknown``  a command name the server does not know
``class:command.shell``    one of qmpsh's own commands, ``info`` or ``hmp``
``class:command.hmp``      the first word of an HMP line (``-H`` mode)
``class:key``              an argument name the command takes
``class:key.unknown``      an argument name it does not take
``class:equals``           the ``=`` between key and value
``class:value``            an unquoted word value (a string to QMP)
``class:value.string``     a quoted string
``class:value.number``     a value sent as an integer or float
``class:value.keyword``    a value sent as true / false / null
``class:value.json``       a ``{…}`` / ``[…]`` value, or a whole JSON line
``class:value.unknown``    a value the member's type does not take
``class:punct``            ``transaction(``, ``,`` and ``)``
``class:comment``          ``# …``
``class:error``            text that cannot parse (bad key, stray bracket, …)
=========================  ===================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.lexers import Lexer

from qmpsh.schema import IndexFollower, Mismatch, Schema, SchemaIndex, takes_any_key
from qmpsh.syntax import Context, Syntax, Token

if TYPE_CHECKING:
    from qmpsh.session import Session

_PLAIN = {
    "command": "class:command",
    "key": "class:key",
    "shell": "class:command.shell",
    "hmp": "class:command.hmp",
    "equals": "class:equals",
    "value": "class:value",
    "string": "class:value.string",
    "number": "class:value.number",
    "keyword": "class:value.keyword",
    "json": "class:value.json",
    "punct": "class:punct",
    "comment": "class:comment",
    "error": "class:error",
    "whitespace": "",
}
_VALUE_KINDS = frozenset({"value", "string", "number", "keyword", "json"})


class Highlighter:
    """Styles one text against one schema; a new one per keystroke is cheap.

    The line is tokenized once and every token carries its context, so styling is
    linear in the line's length (no token re-reads the text before it).
    """

    def __init__(self, index: SchemaIndex | None, syntax: Syntax | None = None) -> None:
        self.index = index
        self.syntax = syntax if syntax is not None else Syntax()

    def fragments(self, text: str) -> StyleAndTextTuples:
        """``(style, text)`` pairs covering ``text`` exactly."""
        return [(self.style(text, t), t.text) for t in self.syntax.tokenize(text)]

    def style(self, text: str, token: Token) -> str:
        ctx = token.context
        if ctx is None or self.index is None or ctx.command is None:
            return _PLAIN.get(token.kind, "")
        typing = token.end == len(text)
        if token.kind == "command":
            return self._command_style(self.index, ctx, typing)
        if token.kind == "key":
            return self._key_style(self.index, ctx, typing)
        if token.kind in _VALUE_KINDS and ctx.argument is not None:
            return self._value_style(self.index, ctx, token, typing)
        return _PLAIN.get(token.kind, "")

    def _command_style(self, index: SchemaIndex, ctx: Context, typing: bool) -> str:
        name = ctx.word
        if index.has_command(name, ctx.in_transaction):
            return "class:command"
        names = index.schema.actions if ctx.in_transaction else index.commands
        if typing and any(n.startswith(name) for n in names):
            return "class:command"  # a command still being typed is not an error yet
        return "class:command.unknown"

    def _key_style(self, index: SchemaIndex, ctx: Context, typing: bool) -> str:
        command = ctx.command or ""
        if takes_any_key(command) and not ctx.in_transaction:
            return "class:key"  # keys also come from the device type
        if not index.has_command(command, ctx.in_transaction):
            return "class:key"  # an unknown command is flagged already; not again per key
        path = (*ctx.key_path, ctx.word)
        if index.type_in_command(command, ctx.in_transaction, path, ctx.given) is not None:
            return "class:key"
        if typing:
            members = index.members_at(command, ctx.in_transaction, ctx.key_path, ctx.given)
            if any(m.name.startswith(ctx.word) for m in members):
                return "class:key"
        return "class:key.unknown"

    def _value_style(self, index: SchemaIndex, ctx: Context, token: Token, typing: bool) -> str:
        """The class of what the value is sent as, which the schema decides."""
        assert ctx.argument is not None
        command = ctx.command or ""
        ref = index.type_in_command(command, ctx.in_transaction, ctx.key_path, ctx.given)
        if ref is None:
            return _PLAIN.get(token.kind, "")  # sent as the parser guessed
        try:
            value = index.schema.value_of(ref, ctx.argument)
        except Mismatch:
            words = index.schema.value_words(ref)
            if typing and (not words or any(w.startswith(token.text) for w in words)):
                return "class:value"  # still being typed
            return "class:value.unknown"
        return _class_of(value, ctx.argument.quoted)


def _class_of(value: Any, quoted: bool) -> str:
    if quoted:
        return "class:value.string"
    if value is None or isinstance(value, bool):
        return "class:value.keyword"
    if isinstance(value, int | float):
        return "class:value.number"
    return "class:value.json" if isinstance(value, dict | list) else "class:value"


class QmpLexer(Lexer):
    """prompt_toolkit's view of ``Highlighter``: the whole buffer is styled, then split by line."""

    def __init__(
        self,
        schema: Callable[[], Schema | None],
        syntax: Callable[[], Syntax] = Syntax,
    ) -> None:
        self._syntax = syntax
        self._current_index = IndexFollower(schema)

    def lex_document(self, document: Document) -> Callable[[int], StyleAndTextTuples]:
        highlighter = Highlighter(self._current_index(), self._syntax())
        lines = split_lines(highlighter.fragments(document.text))

        def get_line(lineno: int) -> StyleAndTextTuples:
            return lines[lineno] if lineno < len(lines) else []

        return get_line


def split_lines(fragments: StyleAndTextTuples) -> list[StyleAndTextTuples]:
    """Cut styled fragments at newlines (a transaction may span several lines)."""
    lines: list[StyleAndTextTuples] = [[]]
    for style, text, *_ in fragments:
        first, *rest = text.split("\n")
        if first:
            lines[-1].append((style, first))
        for piece in rest:
            lines.append([(style, piece)] if piece else [])
    return lines


def make_lexer(session: Session) -> QmpLexer:
    """The input line's lexer for a session whose schema may still be loading: until it
    is loaded (``ShellUI.warm_schema`` does that after the first draw), lines are
    highlighted without types, and a draw never waits for QEMU."""
    return QmpLexer(schema=lambda: session.loaded_schema, syntax=lambda: session.syntax)
