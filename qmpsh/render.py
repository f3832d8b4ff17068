"""Replies on the terminal: pretty (rich: coloured JSON, tables), compact JSON, or raw wire form.

One ``Renderer`` serves every frontend.  Scripts use ``json`` or ``raw`` and must start
fast, so rich is imported only the first time something is printed in ``pretty``.
Very large replies (``query-qmp-schema`` is ~200 KB) skip rich's JSON highlighter, which
takes over a second on them, and go through ``json.dumps`` + pygments instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TextIO

from qmpsh.errors import CommandError
from qmpsh.spice import CHANNEL_NAMES, unsigned32

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

Format = Literal["pretty", "json", "raw"]

# Above this many characters of compact JSON, rich's highlighter is too slow to wait for.
BIG_REPLY = 20_000

SPICE_CHANNEL_NAMES = CHANNEL_NAMES


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def compact(value: Any) -> str:
    """One-line JSON, the form scripts parse line by line."""
    return _COMPACT.encode(value)  # json.dumps would build this encoder on every call


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
        """Print one whole wire reply (``{"return": ...}`` or ``{"error": ...}``)."""
        if self.fmt == "raw":
            _write_line(self.out, compact(reply))
        elif "error" in reply:
            self._command_error(reply)
        elif self.fmt == "json":
            _write_line(self.out, compact(reply.get("return")))
        else:
            self._pretty(command, reply.get("return"))

    def text(self, text: str) -> None:
        """Plain text such as HMP output: never parsed as markup, one trailing newline."""
        text = text.replace("\r\n", "\n")
        if text:
            _write_line(self.out, text.removesuffix("\n"))

    def error(self, message: str) -> None:
        """One line ``error: ...`` on the error stream."""
        self._error_line("error: " + " ".join(message.splitlines()))

    # -- helpers ------------------------------------------------------------------------

    def _command_error(self, reply: dict[str, Any]) -> None:
        text = str(CommandError.from_reply(reply))  # one line, whatever ``error`` holds
        if self.fmt == "pretty":
            self._error_line(text)
        else:
            self._error_line("error: " + text)

    def _error_line(self, text: str) -> None:
        if self.fmt != "pretty" or not self.color:
            _write_line(self.err, text)
            return
        from rich.text import Text

        self._console(err=True).print(Text(text, style="bold red"), soft_wrap=True)

    def _pretty(self, command: str | None, value: Any) -> None:
        if value == {}:
            return  # a bare success: silence, as in a shell
        if isinstance(value, str) and command == "human-monitor-command":
            self.text(value)
            return
        renderables = _table_for(command, value)
        if renderables is not None:
            console = self._console()
            for item in renderables:
                console.print(item)
            return
        self._pretty_json(value)

    def _pretty_json(self, value: Any) -> None:
        text = compact(value)
        if len(text) > BIG_REPLY:
            self._fast_json(value)
            return
        from rich.json import JSON

        self._console().print(JSON(text), soft_wrap=True)

    def _fast_json(self, value: Any) -> None:
        text = json.dumps(value, indent=2, ensure_ascii=False)
        if self.color:
            # No stubs for pygments are installed (types-Pygments is not a dependency).
            from pygments import highlight  # type: ignore[import-untyped]
            from pygments.formatters import TerminalFormatter  # type: ignore[import-untyped]
            from pygments.lexers import JsonLexer  # type: ignore[import-untyped]

            text = highlight(text, JsonLexer(), TerminalFormatter())
        _write_line(self.out, text.removesuffix("\n"))

    def _console(self, *, err: bool = False) -> Console:
        if self._consoles is None:
            self._consoles = (self._make_console(self.out), self._make_console(self.err))
        return self._consoles[1] if err else self._consoles[0]

    def _make_console(self, file: TextIO) -> Console:
        from rich.console import Console

        if not self.color:
            return Console(
                file=file,
                width=self.width,
                color_system=None,
                force_terminal=False,
                no_color=True,
                highlight=False,
                emoji=False,
            )
        return Console(file=file, width=self.width, force_terminal=True, emoji=False)


def _write_line(stream: TextIO, text: str) -> None:
    stream.write(text)  # two writes, not text + "\n": a 64 MiB reply is not copied again
    stream.write("\n")
    stream.flush()


# -- tables for known queries ---------------------------------------------------------------

Cell = Callable[[dict[str, Any]], Any]


def _table_for(command: str | None, value: Any) -> list[RenderableType] | None:
    """Renderables for a known query, or None to fall back to JSON (also on odd shapes)."""
    builder = _BUILDERS.get(command or "")
    if builder is None:
        return None
    try:
        return builder(value)
    except (KeyError, TypeError, AttributeError, ValueError):
        return None


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def _table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> RenderableType:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        # Text, not str: a "[tls]" or "json:{...}" cell must not be read as rich markup.
        table.add_row(*(Text(_cell(v)) for v in row))
    return table


def _line(text: str, style: str = "") -> RenderableType:
    from rich.text import Text

    return Text(text, style=style)


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
    groups: dict[int, list[dict[str, Any]]] = {}
    for chan in channels:
        groups.setdefault(unsigned32(chan["connection-id"]), []).append(chan)
    for n, (session, members) in enumerate(groups.items()):
        for i, chan in enumerate(members):
            row = _spice_row(session if i == 0 else None, chan)
            last = i == len(members) - 1 and n < len(groups) - 1
            table.add_row(*(Text(cell) for cell in row), end_section=last)
    return table


def _spice_row(session: int | None, chan: dict[str, Any]) -> list[str]:
    kind = chan["channel-type"]
    return [
        _cell(session),
        SPICE_CHANNEL_NAMES.get(kind, "unknown"),
        f"{kind}:{chan['channel-id']}",
        f"{chan['host']}:{chan['port']}",
        chan["family"],
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
