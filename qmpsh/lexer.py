"""Highlighting of the input line, from the same tokenizer and schema as completion.

``syntax.tokenize`` says what each run of text is (command, key, value, …); this
module adds what only the schema knows — is the command real, is the key a member of
that command (given the union tags typed so far), is an enum value allowed — and
maps the answer to a style class.  The classes, which ``style.py`` colours:

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
``class:value.number``     an integer or float
``class:value.keyword``    true / false / null
``class:value.json``       a ``{…}`` / ``[…]`` value, or a whole JSON line
``class:value.unknown``    a value outside the member's enum
``class:punct``            ``transaction(``, ``,`` and ``)``
``class:comment``          ``# …``
``class:error``            text that cannot parse (bad key, stray bracket, …)
=========================  ===================================================
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.lexers import Lexer

from qmpsh.completer import IndexFollower, SchemaIndex, dig
from qmpsh.schema import Schema
from qmpsh.syntax import Context, Token, analyze, tokenize

if TYPE_CHECKING:
    from qmpsh.session import Session

# Colours for the classes above; ``style.py`` merges this with the UI's own styles.
DEFAULT_STYLE: dict[str, str] = {
    "command": "bold ansigreen",
    "command.unknown": "bold ansired",
    "command.shell": "bold ansicyan",
    "command.hmp": "bold ansiyellow",
    "key": "ansiblue",
    "key.unknown": "ansired underline",
    "equals": "ansibrightblack",
    "value": "",
    "value.string": "ansiyellow",
    "value.number": "ansimagenta",
    "value.keyword": "ansicyan",
    "value.json": "ansiyellow",
    "value.unknown": "ansired",
    "punct": "bold",
    "comment": "italic ansibrightblack",
    "error": "bg:ansired ansiwhite",
}

_PLAIN = {
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
FREE_FORM_COMMANDS = frozenset({"device_add"})  # keys also come from the device type


class Highlighter:
    """Styles one text against one schema; a new one per keystroke is cheap."""

    def __init__(
        self,
        index: SchemaIndex | None,
        hmp_mode: bool = False,
        shell_words: Collection[str] = frozenset(),
    ) -> None:
        self.index = index
        self.hmp_mode = hmp_mode
        self.shell_words = shell_words

    def fragments(self, text: str) -> StyleAndTextTuples:
        """``(style, text)`` pairs covering ``text`` exactly."""
        tokens = tokenize(text, hmp_mode=self.hmp_mode, shell_commands=self.shell_words)
        return [(self.style(text, t), t.text) for t in tokens]

    def style(self, text: str, token: Token) -> str:
        if token.kind == "command":
            return self._command_style(text, token)
        if token.kind == "key":
            return self._key_style(text, token)
        if token.kind == "value":
            return self._value_style(text, token)
        return _PLAIN.get(token.kind, "")

    def _context(self, text: str, end: int) -> Context:
        return analyze(text[:end], hmp_mode=self.hmp_mode, shell_commands=self.shell_words)

    def _command_style(self, text: str, token: Token) -> str:
        name = token.text
        if self.hmp_mode and name not in self.shell_words:
            return "class:command.hmp"
        if name in self.shell_words or name in ("info", "hmp") or name.endswith("?"):
            return "class:command.shell"
        if self.index is None:
            return "class:command"
        ctx = self._context(text, token.end)
        known = index_has_command(self.index, name, ctx.in_transaction)
        if known or (token.end == len(text) and self._is_prefix(name, ctx.in_transaction)):
            return "class:command"
        return "class:command.unknown"

    def _is_prefix(self, name: str, in_transaction: bool) -> bool:
        """A command still being typed is not an error yet."""
        assert self.index is not None
        names = self.index.actions if in_transaction else self.index.commands
        return any(n.startswith(name) for n in names)

    def _key_style(self, text: str, token: Token) -> str:
        ctx = self._context(text, token.end)
        if self.index is None or ctx.kind != "key" or ctx.command is None:
            return "class:key"
        if ctx.command in FREE_FORM_COMMANDS and not ctx.in_transaction:
            return "class:key"
        typing = token.end == len(text)
        return "class:key" if self._key_known(ctx, typing) else "class:key.unknown"

    def _key_known(self, ctx: Context, typing: bool) -> bool:
        assert self.index is not None
        arg_type = self.index.arg_type(ctx.command or "", ctx.in_transaction)
        if arg_type is None:
            return True  # an unknown command is flagged already; do not repeat it per key
        schema = self.index.schema
        if schema.type_in(arg_type, (*ctx.key_path, ctx.word), ctx.given) is not None:
            return True
        if not typing:
            return False
        parent = schema.type_in(arg_type, ctx.key_path, ctx.given)
        obj = None if parent is None else schema.object_branch(parent.name)
        members = schema.members(obj, dig(ctx.given, ctx.key_path)) if obj else []
        return any(m.name.startswith(ctx.word) for m in members)

    def _value_style(self, text: str, token: Token) -> str:
        if self.index is None:
            return "class:value"
        ctx = self._context(text, token.end)
        allowed = self._enum_values(ctx)
        if not allowed or token.text in allowed:
            return "class:value"
        if token.end == len(text) and any(v.startswith(token.text) for v in allowed):
            return "class:value"
        return "class:value.unknown"

    def _enum_values(self, ctx: Context) -> tuple[str, ...]:
        assert self.index is not None
        if ctx.kind != "value" or ctx.command is None:
            return ()
        ref = self.index.type_in_command(ctx.command, ctx.in_transaction, ctx.key_path, ctx.given)
        return ref.values if ref is not None and ref.meta == "enum" else ()


def index_has_command(index: SchemaIndex, name: str, in_transaction: bool) -> bool:
    if in_transaction:
        return name in index.actions
    return index.schema.command(name) is not None


class QmpLexer(Lexer):
    """prompt_toolkit's view of ``Highlighter``: the whole buffer is styled, then split by line."""

    def __init__(
        self,
        schema: Callable[[], Schema | None],
        hmp_mode: Callable[[], bool] = lambda: False,
        shell_words: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        self._hmp_mode = hmp_mode
        self._shell_words = shell_words
        self._current_index = IndexFollower(schema)

    def lex_document(self, document: Document) -> Callable[[int], StyleAndTextTuples]:
        highlighter = Highlighter(self._current_index(), self._hmp_mode(), self._shell_words())
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
    """The input line's lexer for a session whose schema may still be loading."""
    return QmpLexer(
        schema=lambda: session.schema,
        hmp_mode=lambda: bool(session.settings.hmp_mode),
        shell_words=lambda: session.shell_words,
    )
