"""Replies on the terminal: pretty (rich: coloured JSON, tables), compact JSON, or raw wire form.

Which queries get a table, and how it looks, is ``tables``' business; here is where a
reply is written and laid out (no wrapping and no padding where the output is no terminal).

One ``Renderer`` serves every frontend.  Scripts use ``json`` or ``raw`` and must start
fast, so rich is imported only the first time something is printed in ``pretty``.
Very large replies (``query-qmp-schema`` is ~200 KB) skip rich's JSON highlighter, which
takes over a second on them, and go through pygments instead; beyond ``PLAIN_REPLY``
even pygments is too slow (a 20 MB reply took 34 s) and the JSON is streamed plain.

Everything here came from QEMU or a guest unless qmpsh wrote it: text goes through
``visible`` and JSON through ``jsontext``, so the only escape sequences that reach the
terminal are qmpsh's own colours.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any, Literal, TextIO

from qmpsh.errors import CommandError
from qmpsh.jsontext import compact, iter_json
from qmpsh.visible import visible

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["BIG_REPLY", "PLAIN_REPLY", "Format", "Renderer", "compact"]

Format = Literal["pretty", "json", "raw"]

HMP_COMMAND = "human-monitor-command"
# Above this many characters of JSON, rich's highlighter is too slow to wait for.
BIG_REPLY = 20_000
# Above this, pygments is too (~1.7 s per MB): the JSON is streamed without colour.
PLAIN_REPLY = 512 * 1024
# What a terminal width may be, whatever $COLUMNS or the pty says (0 printed nothing).
MIN_WIDTH, MAX_WIDTH = 20, 10_000
# Spaces that pad a table's last cell, before any colour codes that end its line.
TRAILING_SPACES = re.compile(r" +((?:\x1b\[[0-9;]*m)*)$", re.MULTILINE)


class Renderer:
    """Writes replies, plain text and errors in the current format (``fmt`` may change)."""

    def __init__(
        self,
        fmt: Format,
        out: TextIO,
        err: TextIO,
        *,
        color: bool,
        width: int | None = None,
    ) -> None:
        self.fmt: Format = fmt
        self.out = out
        self.err = err
        self.color = color
        self.width = width
        self._consoles: tuple[Console, Console] | None = None

    # -- public -------------------------------------------------------------------------

    def reply(self, command: str | None, reply: dict[str, Any]) -> None:
        """Print one whole wire reply (``{"return": ...}`` or ``{"error": ...}``).

        An HMP reply is text in every format but ``raw`` (as qmp-shell prints it):
        a script reading ``info mtree`` wants the lines, not one quoted JSON string.
        """
        value = reply.get("return")
        if self.fmt == "raw":
            _write_line(self.out, compact(reply))
        elif "error" in reply:
            self._command_error(reply)
        elif command == HMP_COMMAND and isinstance(value, str):
            self.text(value)
        elif self.fmt == "json":
            _write_line(self.out, compact(value))
        else:
            self._pretty(command, value)

    def text(self, text: str) -> None:
        """Plain text such as HMP output: never parsed as markup, one trailing newline.

        Line breaks stay; every other control character is shown, not obeyed.
        """
        text = text.replace("\r\n", "\n")
        if text:
            _write_line(self.out, visible(text.removesuffix("\n"), newlines=True))

    def error(self, message: str) -> None:
        """One line ``error: ...`` on the error stream."""
        self._error_line("error: " + _one_line(message))

    # -- helpers ------------------------------------------------------------------------

    def _command_error(self, reply: dict[str, Any]) -> None:
        """QEMU's ``class: desc`` on one visible line, whatever ``error`` holds."""
        text = str(CommandError.from_reply(reply))
        self._error_line(text if self.fmt == "pretty" else "error: " + text)

    def _error_line(self, text: str) -> None:
        """``text`` must already be visible(): here it is only coloured."""
        if self.fmt != "pretty" or not self.color:
            _write_line(self.err, text)
            return
        from rich.text import Text

        self._console(err=True).print(Text(text, style="bold red"), soft_wrap=True)

    def _pretty(self, command: str | None, value: Any) -> None:
        if value == {}:
            return  # a bare success: silence, as in a shell
        from qmpsh.tables import table_for

        renderables = table_for(command, value, wrap=self.on_terminal())
        if renderables is None:
            self._pretty_json(value)
            return
        console = self._console()
        with console.capture() as captured:
            for item in renderables:
                console.print(item)
        _write_line(self.out, unpadded(captured.get()).removesuffix("\n"))

    def _pretty_json(self, value: Any) -> None:
        size = _json_size(value, PLAIN_REPLY + 1)
        if not self.color or size > PLAIN_REPLY:
            self._plain_json(value)
        elif size > BIG_REPLY:
            self._pygments_json(value)
        else:
            from rich.highlighter import JSONHighlighter

            text = JSONHighlighter()("".join(iter_json(value, 2)))
            text.no_wrap, text.overflow = True, None
            self._console().print(text, soft_wrap=True)

    def _plain_json(self, value: Any) -> None:
        """Indented JSON in chunks: a 64 MiB reply is never held as one indented string."""
        for chunk in iter_json(value, 2):
            self.out.write(chunk)
        self.out.write("\n")
        self.out.flush()

    def _pygments_json(self, value: Any) -> None:
        # No stubs for pygments are installed (types-Pygments is not a dependency).
        from pygments import highlight  # type: ignore[import-untyped]
        from pygments.formatters import TerminalFormatter  # type: ignore[import-untyped]
        from pygments.lexers import JsonLexer  # type: ignore[import-untyped]

        text = highlight("".join(iter_json(value, 2)), JsonLexer(), TerminalFormatter())
        _write_line(self.out, text.removesuffix("\n"))

    def _console(self, *, err: bool = False) -> Console:
        if self._consoles is None:
            self._consoles = (self._make_console(self.out), self._make_console(self.err))
        return self._consoles[1] if err else self._consoles[0]

    def on_terminal(self) -> bool:
        """Whether replies go to a screen: a width was given (the shell knows its own)
        or standard output is a terminal."""
        return self.width is not None or _is_terminal(self.out)

    def layout_width(self) -> int | None:
        """The columns replies are laid out in (see the module function)."""
        return layout_width(self.out, self.width)

    def _make_console(self, file: TextIO) -> Console:
        from rich.console import Console

        width = self.layout_width() or MAX_WIDTH
        if not self.color:
            return Console(
                file=file,
                width=width,
                color_system=None,
                force_terminal=False,
                no_color=True,
                highlight=False,
                emoji=False,
            )
        return Console(file=file, width=width, force_terminal=True, emoji=False)


def acknowledgement(color: bool) -> str:
    """What an interactive shell prints for a success that showed nothing (``cont``,
    ``query-name`` of an unnamed VM): without it the user wonders whether it ran.
    Scripts and one-shot calls print nothing, so their output stays the reply's."""
    return "\x1b[2mok\x1b[0m\n" if color else "ok\n"


def unpadded(text: str) -> str:
    """rich's output without the spaces that pad each line's last cell to its column's
    width: noise in a pipe or a file, and invisible on a terminal."""
    return TRAILING_SPACES.sub(r"\1", text)


def layout_width(stream: TextIO, width: int | None = None) -> int | None:
    """The columns output to ``stream`` is laid out in: ``width`` if given, else
    ``$COLUMNS``, else the terminal's.  None in a pipe or a file with no ``$COLUMNS``:
    nothing wraps (rich would wrap at 80, cutting paths and padding lines).  The one
    rule for replies, tables, ``--vminfo`` and the fan-out."""
    columns = usable_width(width)
    if columns is None and _is_terminal(stream):
        import shutil

        columns = usable_width(shutil.get_terminal_size((80, 24)).columns)
    return columns


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):  # a closed or odd stream
        return False


def usable_width(width: int | None) -> int | None:
    """A width rich can lay out in: ``width`` or ``$COLUMNS`` clamped, else rich's own guess.

    rich takes ``COLUMNS=0`` at its word and prints nothing at all.
    """
    if width is None:
        try:
            width = int(os.environ.get("COLUMNS", ""))
        except ValueError:
            return None  # unset or garbage: rich asks the terminal, or uses 80
    return min(max(width, MIN_WIDTH), MAX_WIDTH)


def _json_size(value: Any, limit: int) -> int:
    """Length of the value's JSON text, counted only up to ``limit`` (cheap for huge ones)."""
    size = 0
    for chunk in iter_json(value):
        size += len(chunk)
        if size >= limit:
            break
    return size


def _one_line(text: str) -> str:
    """qmpsh's own message, visible and on one line: its line breaks become spaces."""
    return " ".join(visible(text, newlines=True).splitlines())


def _write_line(stream: TextIO, text: str) -> None:
    stream.write(text)  # two writes, not text + "\n": a 64 MiB reply is not copied again
    stream.write("\n")
    stream.flush()
