"""Replies on the terminal: pretty (rich: coloured JSON, tables), compact JSON, or raw wire form.

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
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TextIO

from qmpsh.errors import CommandError
from qmpsh.jsontext import compact, iter_json
from qmpsh.spice import CHANNEL_NAMES, session_id
from qmpsh.visible import visible

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

__all__ = ["BIG_REPLY", "PLAIN_REPLY", "Format", "Renderer", "compact"]

Format = Literal["pretty", "json", "raw"]

HMP_COMMAND = "human-monitor-command"
# Above this many characters of JSON, rich's highlighter is too slow to wait for.
BIG_REPLY = 20_000
# Above this, pygments is too (~1.7 s per MB): the JSON is streamed without colour.
PLAIN_REPLY = 512 * 1024
# A list this long is shown as JSON, not as a table rich would have to measure.
MAX_TABLE_ROWS = 500  # rich lays out ~600 rows a second
# What a terminal width may be, whatever $COLUMNS or the pty says (0 printed nothing).
MIN_WIDTH, MAX_WIDTH = 20, 10_000

SPICE_CHANNEL_NAMES = CHANNEL_NAMES


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
        renderables = _table_for(command, value)
        if renderables is not None:
            console = self._console()
            for item in renderables:
                console.print(item)
            return
        self._pretty_json(value)

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

    def _make_console(self, file: TextIO) -> Console:
        from rich.console import Console

        width = usable_width(self.width)
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


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else compact(value)


def _one_line(text: str) -> str:
    """qmpsh's own message, visible and on one line: its line breaks become spaces."""
    return " ".join(visible(text, newlines=True).splitlines())


def _write_line(stream: TextIO, text: str) -> None:
    stream.write(text)  # two writes, not text + "\n": a 64 MiB reply is not copied again
    stream.write("\n")
    stream.flush()


# -- tables for known queries ---------------------------------------------------------------

Cell = Callable[[dict[str, Any]], Any]


def _table_for(command: str | None, value: Any) -> list[RenderableType] | None:
    """Renderables for a known query, or None to fall back to JSON (also on odd shapes)."""
    builder = _BUILDERS.get(command or "")
    if builder is None or (isinstance(value, list) and len(value) > MAX_TABLE_ROWS):
        return None
    try:
        return builder(value)
    except (LookupError, TypeError, AttributeError, ValueError, ArithmeticError):
        return None


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else _as_text(value)


def _table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> RenderableType:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        # Text, not str: a "[tls]" or "json:{...}" cell must not be read as rich markup.
        table.add_row(*(Text(visible(_cell(v))) for v in row))
    return table


def _line(text: str, style: str = "") -> RenderableType:
    from rich.text import Text

    return Text(visible(text), style=style)


def _none() -> list[RenderableType]:
    return [_line("(none)", "dim")]


def _columns(spec: Sequence[tuple[str, Cell]]) -> Callable[[Any], list[RenderableType]]:
    """A builder for a list-of-objects query: one row per object, one column per getter."""

    def build(items: list[dict[str, Any]]) -> list[RenderableType]:
        if not isinstance(items, list):
            raise TypeError("expected a list")
        if not items:
            return _none()
        names = [name for name, _ in spec]
        return [_table(names, [[get(item) for _, get in spec] for item in items])]

    return build


def _spice(info: dict[str, Any]) -> list[RenderableType]:
    if not info["enabled"]:
        return [_line("SPICE server: disabled", "dim")]
    out = [_line(_spice_server_line(info))]
    channels = info.get("channels") or []
    if not channels:
        return [*out, _line("no channels", "dim")]
    return [*out, _spice_channels(channels)]


def _spice_server_line(info: dict[str, Any]) -> str:
    addresses = []
    if "port" in info:
        addresses.append(f"{info['host']}:{info['port']}")
    if "tls-port" in info:
        addresses.append(f"{info['host']}:{info['tls-port']} (tls)")
    return (
        f"SPICE server {', '.join(addresses) or info.get('host', '')}  auth {info['auth']}"
        f"  mouse-mode {info['mouse-mode']}  compiled {info['compiled-version']}"
        f"  migrated {'true' if info['migrated'] else 'false'}"
    )


def _spice_channels(channels: list[dict[str, Any]]) -> RenderableType:
    """One table, rows grouped by session (connection-id shown unsigned, once per group)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for name in ("session", "channel", "type:id", "address", "family", "tls"):
        table.add_column(name)
    groups: dict[int | str, list[dict[str, Any]]] = {}
    for chan in channels:
        groups.setdefault(session_id(chan["connection-id"]), []).append(chan)
    for n, (session, members) in enumerate(groups.items()):
        for i, chan in enumerate(members):
            row = _spice_row(session if i == 0 else None, chan)
            last = i == len(members) - 1 and n < len(groups) - 1
            table.add_row(*(Text(visible(cell)) for cell in row), end_section=last)
    return table


def _spice_row(session: int | str | None, chan: dict[str, Any]) -> list[str]:
    kind = chan["channel-type"]
    return [
        _cell(session),
        SPICE_CHANNEL_NAMES.get(kind, "unknown"),
        f"{kind}:{chan['channel-id']}",
        f"{chan['host']}:{chan['port']}",
        _cell(chan["family"]),
        _cell(chan["tls"]),
    ]


def _vnc(info: dict[str, Any]) -> list[RenderableType]:
    if not info["enabled"]:
        return [_line("VNC server: disabled", "dim")]
    auth = info.get("auth", "none") + (f" ({info['vencrypt']})" if "vencrypt" in info else "")
    server = f"VNC server {info['host']}:{info['service']} ({info['family']})  auth {auth}"
    clients = info.get("clients") or []
    if not clients:
        return [_line(server), _line("no clients", "dim")]
    rows = [
        [
            f"{c['host']}:{c['service']}",
            c["family"],
            c.get("websocket"),
            c.get("x509_dname"),
            c.get("sasl_username"),
        ]
        for c in clients
    ]
    return [_line(server), _table(("client", "family", "websocket", "x509", "sasl"), rows)]


def _status(info: dict[str, Any]) -> list[RenderableType]:
    style = "green" if info["running"] else "yellow"
    step = "  (single step)" if info.get("singlestep") else ""
    return [_line(f"VM status: {info['status']}{step}", style)]


def _get(*path: str) -> Cell:
    """A getter following nested keys; missing levels give None (an empty cell)."""

    def get(item: dict[str, Any]) -> Any:
        value: Any = item
        for key in path:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return get


def _job_progress(job: dict[str, Any]) -> str:
    total = job["len"]
    percent = f" ({100 * job['offset'] // total}%)" if total else ""
    return f"{job['offset']}/{total}{percent}"


def _tray(dev: dict[str, Any]) -> str:
    if not dev.get("removable"):
        return ""
    return ("open" if dev.get("tray_open") else "closed") + (
        ", locked" if dev.get("locked") else ""
    )


def _cpu_props(cpu: dict[str, Any]) -> str:
    props = cpu.get("props") or {}
    return " ".join(f"{k.removesuffix('-id')}={v}" for k, v in props.items())


_BUILDERS: dict[str, Callable[[Any], list[RenderableType]]] = {
    "query-spice": _spice,
    "query-vnc": _vnc,
    "query-status": _status,
    "query-block": _columns(
        [
            ("device", _get("device")),
            ("node", _get("inserted", "node-name")),
            ("file", _get("inserted", "file")),
            ("drv", _get("inserted", "drv")),
            ("ro", _get("inserted", "ro")),
            ("tray", _tray),
            ("qdev", _get("qdev")),
        ]
    ),
    "query-named-block-nodes": _columns(
        [
            ("node", _get("node-name")),
            ("drv", _get("drv")),
            ("file", _get("file")),
            ("ro", _get("ro")),
            ("size", _get("image", "virtual-size")),
            ("backing", _get("backing_file")),
        ]
    ),
    "query-cpus-fast": _columns(
        [
            ("cpu", _get("cpu-index")),
            ("thread-id", _get("thread-id")),
            ("target", _get("target")),
            ("props", _cpu_props),
            ("qom-path", _get("qom-path")),
        ]
    ),
    "query-chardev": _columns(
        [
            ("label", _get("label")),
            ("filename", _get("filename")),
            ("open", _get("frontend-open")),
        ]
    ),
    "query-block-jobs": _columns(
        [
            ("job", _get("device")),
            ("type", _get("type")),
            ("status", _get("status")),
            ("progress", _job_progress),
            ("speed", _get("speed")),
            ("ready", _get("ready")),
            ("paused", _get("paused")),
        ]
    ),
}
