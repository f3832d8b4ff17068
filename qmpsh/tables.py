"""Tables for the queries a person reads at a glance, in ``--format pretty`` only.

A list of objects as indented JSON is tall and goes to the pager; the same list as a
table fits on a screen.  Tables show sizes for people (``1 GiB``) where JSON keeps
QEMU's bytes, so a script never sees a rounded number.  A reply of a shape a builder
does not expect (another QEMU version, a hostile peer) is shown as JSON instead: every
builder may raise, and ``table_for`` turns that into "no table".

Everything in a cell came from QEMU, so it goes through ``visible`` and into a rich
``Text`` (never markup).  rich is imported when a table is made, not with this module:
a reply that is no table (or a script in ``json``) never loads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from qmpsh.jsontext import compact
from qmpsh.spice import CHANNEL_NAMES, session_id
from qmpsh.visible import visible

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

__all__ = ["MAX_TABLE_ROWS", "human_size", "table_for"]

# A list this long is shown as JSON, not as a table rich would have to measure.
MAX_TABLE_ROWS = 500  # rich lays out ~600 rows a second
# How deep PCI bridges may nest before the reply is shown as JSON (real machines: 2-3).
MAX_BRIDGE_DEPTH = 32
# Unavailable CPU features named in a cell before the rest are counted.
FEATURES_SHOWN = 4

Cell = Callable[[dict[str, Any]], Any]
Builder = Callable[[Any], "list[RenderableType]"]


class Column(NamedTuple):
    """One column of a list-of-objects table; an ``optional`` one is left out when empty."""

    name: str
    get: Cell
    optional: bool = False


def table_for(command: str | None, value: Any, *, wrap: bool) -> list[RenderableType] | None:
    """Renderables for a known query, or None to show the reply as JSON.

    ``wrap`` is false when the output is not a terminal: a list of names is then one
    name per line (for grep), not columns as wide as a screen that is not there.
    """
    if isinstance(value, list) and len(value) > MAX_TABLE_ROWS:
        return None
    key = NAME_LISTS.get(command or "")
    builder = _BUILDERS.get(command or "")
    try:
        if key is not None:
            return _names(value, key, wrap)
        return None if builder is None else builder(value)
    except (LookupError, TypeError, AttributeError, ValueError, ArithmeticError):
        return None


def human_size(value: Any) -> str:
    """Bytes as a person reads them: ``512 B``, ``1.5 KiB``, ``1 GiB`` (exact when whole).

    Anything but a non-negative integer is shown as it came.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return _cell(value)
    size, unit = float(value), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    if unit == "B":
        return f"{value} B"
    return f"{size:.1f}".removesuffix(".0") + f" {unit}"


# -- building blocks ------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return ""
    return value if isinstance(value, str) else compact(value)


def _text(value: Any) -> Text:
    from rich.text import Text

    # Text, not str: a "[tls]" or "json:{...}" cell must not be read as rich markup.
    return Text(visible(_cell(value)))


def _new_table(columns: Iterable[str]) -> Table:
    """A borderless table; on a narrow screen later columns fold, the first (what a row
    is: a name, a device, an address) stays whole so it can be read and copied."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for i, name in enumerate(columns):
        table.add_column(name, overflow="fold", no_wrap=i == 0)
    return table


def _table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> RenderableType:
    table = _new_table(columns)
    for row in rows:
        table.add_row(*(_text(v) for v in row))
    return table


def _line(text: str, style: str = "") -> RenderableType:
    from rich.text import Text

    return Text(visible(text), style=style)


def _none() -> list[RenderableType]:
    return [_line("(none)", "dim")]


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


def _size(*path: str) -> Cell:
    """A getter for a byte count, shown as ``human_size``."""
    get = _get(*path)

    def size(item: dict[str, Any]) -> str | None:
        value = get(item)
        return None if value is None else human_size(value)

    return size


def _rows_of(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise TypeError("expected a list of objects")
    return value


def _columns(spec: Sequence[Column], *, sort_by: str | None = None) -> Builder:
    """A builder for a list-of-objects query: one row per object, one column per getter."""

    def build(value: Any) -> list[RenderableType]:
        items = _rows_of(value)
        if not items:
            return _none()
        if sort_by is not None:
            items = sorted(items, key=lambda item: _cell(item.get(sort_by)))
        cells = [[column.get(item) for column in spec] for item in items]
        keep = [
            i
            for i, column in enumerate(spec)
            if not column.optional or any(row[i] not in (None, "") for row in cells)
        ]
        return [_table([spec[i].name for i in keep], ([row[i] for i in keep] for row in cells))]

    return build


def _names(value: Any, key: str, wrap: bool) -> list[RenderableType]:
    """Only the names of a list (``query-commands``): columns on a terminal, lines elsewhere."""
    names = sorted(_cell(item[key]) for item in _rows_of(value))
    if not names:
        return _none()
    from rich.columns import Columns

    texts = [_text(name) for name in names]
    return [Columns(texts, padding=(0, 2), column_first=True)] if wrap else list(texts)


# -- SPICE, VNC, status -----------------------------------------------------------------------


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
    table = _new_table(("session", "channel", "type:id", "address", "family", "tls"))
    groups: dict[int | str, list[dict[str, Any]]] = {}
    for chan in channels:
        groups.setdefault(session_id(chan["connection-id"]), []).append(chan)
    for n, (session, members) in enumerate(groups.items()):
        for i, chan in enumerate(members):
            row = _spice_row(session if i == 0 else None, chan)
            last = i == len(members) - 1 and n < len(groups) - 1
            table.add_row(*(_text(cell) for cell in row), end_section=last)
    return table


def _spice_row(session: int | str | None, chan: dict[str, Any]) -> list[str]:
    kind = chan["channel-type"]
    return [
        _cell(session),
        CHANNEL_NAMES.get(kind, "unknown"),
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


# -- PCI --------------------------------------------------------------------------------------


def _pci(buses: Any) -> list[RenderableType]:
    """Every function on every bus, bridges' buses right under their bridge, as lspci."""
    rows: list[list[str]] = []
    for bus in _rows_of(buses):
        for device in _rows_of(bus["devices"]):
            _pci_rows(device, rows, 0)
    if not rows:
        return _none()
    return [_table(("address", "class", "vendor:device", "id", "irq", "bars"), rows)]


def _pci_rows(device: dict[str, Any], rows: list[list[str]], depth: int) -> None:
    if depth > MAX_BRIDGE_DEPTH or len(rows) >= MAX_TABLE_ROWS:
        raise ValueError("PCI bridges nest too deep, or too many functions for a table")
    ids, info = device["id"], device["class_info"]
    kind = _cell(info.get("desc")) or f"class {_hex(info['class'], 4)}"
    bridge = device.get("pci_bridge")
    if isinstance(bridge, dict):
        kind += f" (bus {_cell(_get('bus', 'secondary')(bridge))})"
    rows.append(
        [
            f"{_hex(device['bus'], 2)}:{_hex(device['slot'], 2)}.{_cell(device['function'])}",
            kind,
            f"{_hex(ids['vendor'], 4)}:{_hex(ids['device'], 4)}",
            _cell(device.get("qdev_id")),
            _cell(device.get("irq")),
            ", ".join(_pci_bar(region) for region in _rows_of(device.get("regions") or [])),
        ]
    )
    if isinstance(bridge, dict):
        for child in _rows_of(bridge.get("devices") or []):
            _pci_rows(child, rows, depth + 1)


def _pci_bar(region: dict[str, Any]) -> str:
    """``0:io 128 B`` or ``4:mem64 16 KiB``: the BAR, its kind and its size."""
    kind = "mem64" if region.get("mem_type_64") else _cell(region.get("type"))
    kind = "mem" if kind == "memory" else kind
    return f"{_cell(region.get('bar'))}:{kind} {human_size(region.get('size'))}"


def _hex(value: Any, digits: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return f"{value:0{digits}x}"
    return _cell(value)


# -- odd cells ----------------------------------------------------------------------------------


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


def _default_mark(machine: dict[str, Any]) -> str:
    return "default" if machine.get("is-default") else ""


def _features(cpu: dict[str, Any]) -> str:
    """The first few unavailable features and how many more: the full list is in json."""
    features = [_cell(name) for name in cpu.get("unavailable-features") or []]
    more = len(features) - FEATURES_SHOWN
    return " ".join(features[:FEATURES_SHOWN]) + (f" +{more}" if more > 0 else "")


# Queries whose reply is best read as its names alone (the key holding each name).
NAME_LISTS: dict[str, str] = {"query-commands": "name"}

_BUILDERS: dict[str, Builder] = {
    "query-spice": _spice,
    "query-vnc": _vnc,
    "query-status": _status,
    "query-pci": _pci,
    "query-block": _columns(
        [
            Column("device", _get("device")),
            Column("node", _get("inserted", "node-name")),
            Column("file", _get("inserted", "file")),
            Column("drv", _get("inserted", "drv")),
            Column("ro", _get("inserted", "ro")),
            Column("tray", _tray),
            Column("qdev", _get("qdev")),
        ]
    ),
    "query-named-block-nodes": _columns(
        [
            Column("node", _get("node-name")),
            Column("drv", _get("drv")),
            Column("file", _get("file")),
            Column("ro", _get("ro")),
            Column("size", _size("image", "virtual-size")),
            Column("backing", _get("backing_file")),
        ]
    ),
    "query-memdev": _columns(
        [
            Column("id", _get("id")),
            Column("size", _size("size")),
            Column("policy", _get("policy")),
            Column("prealloc", _get("prealloc")),
            Column("share", _get("share")),
        ]
    ),
    "query-cpus-fast": _columns(
        [
            Column("cpu", _get("cpu-index")),
            Column("thread-id", _get("thread-id")),
            Column("target", _get("target")),
            Column("props", _cpu_props),
            Column("qom-path", _get("qom-path")),
        ]
    ),
    "query-chardev": _columns(
        [
            Column("label", _get("label")),
            Column("filename", _get("filename")),
            Column("open", _get("frontend-open")),
        ]
    ),
    "query-block-jobs": _columns(
        [
            Column("job", _get("device")),
            Column("type", _get("type")),
            Column("status", _get("status")),
            Column("progress", _job_progress),
            Column("speed", _get("speed")),
            Column("ready", _get("ready")),
            Column("paused", _get("paused")),
        ]
    ),
    "qom-list": _columns(
        [
            Column("name", _get("name")),
            Column("type", _get("type")),
            Column("description", _get("description"), optional=True),
            Column("default", _get("default-value"), optional=True),
        ]
    ),
    "query-machines": _columns(
        [
            Column("name", _get("name")),
            Column("alias", _get("alias"), optional=True),
            Column("", _default_mark, optional=True),
            Column("cpu-max", _get("cpu-max")),
            Column("deprecated", _get("deprecated")),
        ],
        sort_by="name",
    ),
    "query-cpu-definitions": _columns(
        [
            Column("name", _get("name")),
            Column("alias-of", _get("alias-of"), optional=True),
            Column("migration-safe", _get("migration-safe")),
            Column("static", _get("static")),
            Column("deprecated", _get("deprecated")),
            Column("unavailable", _features, optional=True),
        ],
        sort_by="name",
    ),
}
