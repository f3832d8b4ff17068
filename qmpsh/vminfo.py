"""A VM on one screen (``vminfo``, ``--vminfo``): the seed's ``vm-info``, from QMP queries.

Three steps, each its own function, so the shell command, the one-shot option and
a fan-out table all share them:

* ``gather(client, timeout)`` asks QEMU and returns a plain dict (the JSON form).
  The queries are independent, so they all go on the wire at once (``submit``) and
  the answers are collected afterwards: one round trip instead of twenty.  Network
  devices need two more rounds (QOM: which devices have a ``netdev`` property, then
  their MAC), since QEMU 7.2 has no query that lists NICs.
* ``format_pretty(info, width)`` lays the dict out with rich for a terminal.
* ``summary_row(info)`` is one line of it, for a table of many VMs.

Everything in the answers is untrusted: each value is read through the small
accessors below (a wrong type reads as None, shown "?"), lists are capped, and
every string shown is passed through ``visible`` first.  A query that fails (an old
QEMU, a guest agent, a server without SPICE) makes its section None, with the
reason under ``"unavailable"``; the rest of the screen still shows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qmpsh.spice import channel_name, unsigned32
from qmpsh.tables import human_size
from qmpsh.visible import visible

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

    from qmpsh.monitor import Monitor, Pending
    from qmpsh.render import Renderer
    from qmpsh.session import Session

MAX_ITEMS = 256  # per list (disks, NICs, clients …): a runaway reply cannot flood the screen
MAX_QOM_CHILDREN = 512  # devices probed for a netdev property, over the three containers
# Where qdev puts devices: ``-device … id=X``, ``-device`` without id, and board-made ones
# (``-nic`` creates its NIC here on ``-machine pc``).
DEVICE_CONTAINERS = ("/machine/peripheral", "/machine/peripheral-anon", "/machine/unattached")
# QOM children that are never devices, skipped to save a request each.
NOT_DEVICES = frozenset({"memory-region", "irq", "container", "qemu:memory-region"})

FIRST_ROUND: dict[str, dict[str, Any]] = {
    "name": {"execute": "query-name"},
    "uuid": {"execute": "query-uuid"},
    "status": {"execute": "query-status"},
    "version": {"execute": "query-version"},
    "machine-type": {"execute": "qom-get", "arguments": {"path": "/machine", "property": "type"}},
    "machines": {"execute": "query-machines"},
    "target": {"execute": "query-target"},
    "kvm": {"execute": "query-kvm"},
    "cpus": {"execute": "query-cpus-fast"},
    "memory": {"execute": "query-memory-size-summary"},
    "block": {"execute": "query-block"},
    "block-nodes": {"execute": "query-named-block-nodes", "arguments": {"flat": True}},
    "spice": {"execute": "query-spice"},
    "vnc": {"execute": "query-vnc-servers"},
    "chardevs": {"execute": "query-chardev"},
    **{
        f"qom:{path}": {"execute": "qom-list", "arguments": {"path": path}}
        for path in DEVICE_CONTAINERS
    },
}


@dataclass(frozen=True)
class Answer:
    """One query's outcome: its return value, or why there is none."""

    value: Any = None
    error: str | None = None


# -- asking -------------------------------------------------------------------------------


def ask_all(
    client: Monitor, messages: dict[str, dict[str, Any]], deadline: float | None
) -> dict[str, Answer]:
    """Send every message before waiting for any reply; QMP errors become ``Answer.error``.

    A lost connection or a timeout propagates (the caller's exit code 3); the replies
    still outstanding are abandoned so they are dropped when they come.
    """
    pending: dict[str, Pending] = {}
    try:
        for key, message in messages.items():
            pending[key] = client.submit(message)
        return {key: _answer(p.result(_left(deadline))) for key, p in pending.items()}
    except BaseException:
        for p in pending.values():
            p.abandon()
        raise


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _answer(reply: Any) -> Answer:
    if not isinstance(reply, dict):
        return Answer(error="not a QMP reply")
    if "error" in reply:
        error = _dict(reply.get("error"))
        cls = _str(error.get("class")) or "?"
        return Answer(error=f"{cls}: {_str(error.get('desc')) or ''}".rstrip(": "))
    return Answer(reply.get("return"))


def gather(client: Monitor, timeout: float) -> dict[str, Any]:
    """Everything ``vminfo`` shows, as one JSON-ready dict (see the module docstring)."""
    deadline = None if math.isinf(timeout) else time.monotonic() + timeout
    answers = ask_all(client, FIRST_ROUND, deadline)
    info: dict[str, Any] = {}
    unavailable: dict[str, str] = {}

    def section(name: str, keys: tuple[str, ...], build: Callable[..., Any]) -> None:
        failed = next((answers[k].error for k in keys if answers[k].error), None)
        if failed is not None:
            info[name] = None
            unavailable[name] = failed
            return
        try:
            info[name] = build(*(answers[k].value for k in keys))
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
            # The accessors should make this unreachable; a shape nobody foresaw costs
            # its section, never the screen.
            info[name] = None
            unavailable[name] = f"unreadable reply ({type(exc).__name__})"

    section("name", ("name",), lambda v: _str(_dict(v).get("name")))
    section("uuid", ("uuid",), lambda v: _str(_dict(v).get("UUID")))
    section("status", ("status",), _status)
    section("qemu", ("version",), _version)
    section("machine", ("machine-type",), lambda t: _machine(t, answers["machines"].value))
    section("arch", ("target",), lambda v: _str(_dict(v).get("arch")))
    section("accelerator", ("kvm",), _accelerator)
    section("vcpus", ("cpus",), _vcpus)
    section("memory", ("memory",), _memory)
    section("block", ("block",), lambda b: _block(b, answers["block-nodes"].value))
    section("block-nodes", ("block-nodes",), _block_nodes)
    section("spice", ("spice",), _spice)
    section("vnc", ("vnc",), _vnc)
    section("chardevs", ("chardevs",), _chardevs)
    qom_keys = tuple(f"qom:{path}" for path in DEVICE_CONTAINERS)
    answers.update(_probe_nics(client, answers, qom_keys, deadline))
    section("network", (*qom_keys, "nics"), lambda *_: answers["nics"].value)
    info["unavailable"] = unavailable
    return info


# -- reading answers (any JSON value survives) ---------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value[:MAX_ITEMS] if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in _list(value) if isinstance(item, dict)]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    # bool is an int to Python, never to QMP
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _port(value: Any) -> str | None:
    """Ports come as ints (query-spice's server) or strings (its channels, VNC)."""
    number = _int(value)
    return str(number) if number is not None else _str(value)


# -- sections -------------------------------------------------------------------------------


def _status(value: Any) -> dict[str, Any]:
    status = _dict(value)
    return {"status": _str(status.get("status")), "running": _bool(status.get("running"))}


def _version(value: Any) -> dict[str, Any]:
    version = _dict(value)
    qemu = _dict(version.get("qemu"))
    parts = [_int(qemu.get(k)) for k in ("major", "minor", "micro")]
    text = ".".join(map(str, parts)) if all(p is not None for p in parts) else None
    return {"version": text, "package": _str(version.get("package"))}


def _machine(qom_type: Any, machines: Any) -> dict[str, Any]:
    """``qom-get /machine type`` names the class (``pc-i440fx-7.2-machine``); 7.2's
    ``query-machines`` has no ``is-current``, so the alias is found by that name."""
    name = _str(qom_type)
    if name is not None:
        name = name.removesuffix("-machine")
    alias = None
    for machine in _dicts(machines) if name is not None else ():
        if machine.get("name") == name:
            alias = _str(machine.get("alias"))
            break
    return {"type": name, "alias": alias}


def _accelerator(value: Any) -> dict[str, Any]:
    """QEMU 7.2 has no ``query-accelerators``: on x86 not KVM means TCG."""
    kvm = _dict(value)
    enabled = _bool(kvm.get("enabled"))
    name = None if enabled is None else "kvm" if enabled else "tcg"
    return {"name": name, "kvm-present": _bool(kvm.get("present"))}


def _vcpus(value: Any) -> dict[str, Any]:
    cpus = [
        {"cpu-index": _int(cpu.get("cpu-index")), "thread-id": _int(cpu.get("thread-id"))}
        for cpu in _dicts(value)
    ]
    return {"count": len(cpus) if isinstance(value, list) else None, "cpus": cpus}


def _memory(value: Any) -> dict[str, Any]:
    memory = _dict(value)
    return {"base": _int(memory.get("base-memory")), "plugged": _int(memory.get("plugged-memory"))}


def _block(devices: Any, nodes: Any) -> list[dict[str, Any]]:
    """One row per ``query-block`` device; the size from the node list when the image lacks it."""
    sizes = {
        node.get("node-name"): _int(_dict(node.get("image")).get("virtual-size"))
        for node in _dicts(nodes)
        if isinstance(node.get("node-name"), str)
    }
    rows = []
    for device in _dicts(devices):
        inserted = _dict(device.get("inserted"))
        node = _str(inserted.get("node-name"))
        size = _int(_dict(inserted.get("image")).get("virtual-size"))
        rows.append(
            {
                "device": _str(device.get("device")),
                "qdev": _str(device.get("qdev")),
                "node": node,
                "driver": _str(inserted.get("drv")),
                "file": _str(inserted.get("file")),
                "size": size if size is not None else sizes.get(node),
                "read-only": _bool(inserted.get("ro")),
                "inserted": bool(inserted),
                "removable": _bool(device.get("removable")),
                "tray-open": _bool(device.get("tray_open")),
                "locked": _bool(device.get("locked")),
            }
        )
    return rows


def _block_nodes(value: Any) -> list[dict[str, Any]]:
    return [
        {
            "node": _str(node.get("node-name")),
            "driver": _str(node.get("drv")),
            "file": _str(node.get("file")),
            "size": _int(_dict(node.get("image")).get("virtual-size")),
            "read-only": _bool(node.get("ro")),
        }
        for node in _dicts(value)
    ]


def _spice(value: Any) -> dict[str, Any]:
    spice = _dict(value)
    clients: dict[int | None, dict[str, Any]] = {}
    for channel in _dicts(spice.get("channels")):
        connection = _int(channel.get("connection-id"))
        session = None if connection is None else unsigned32(connection)
        client = clients.get(session)
        if client is None:  # the first channel of a session (main) names its client
            if len(clients) >= MAX_ITEMS:
                continue
            client = clients[session] = {
                "session": session,
                "host": _str(channel.get("host")),
                "port": _port(channel.get("port")),
                "tls": _bool(channel.get("tls")),
                "channels": [],
            }
        kind = _int(channel.get("channel-type"))
        client["channels"].append("?" if kind is None else channel_name(kind, str(kind)))
    return {
        "enabled": _bool(spice.get("enabled")),
        "host": _str(spice.get("host")),
        "port": _port(spice.get("port")),
        "tls-port": _port(spice.get("tls-port")),
        "auth": _str(spice.get("auth")),
        "clients": list(clients.values()),
    }


def _vnc(value: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": _str(display.get("id")),
            "servers": [_vnc_endpoint(s) for s in _dicts(display.get("server"))],
            "clients": [_vnc_endpoint(c) for c in _dicts(display.get("clients"))],
        }
        for display in _dicts(value)
    ]


def _vnc_endpoint(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "host": _str(item.get("host")),
        "service": _port(item.get("service")),
        "auth": _str(item.get("auth")),
        "websocket": _bool(item.get("websocket")),
    }


def _chardevs(value: Any) -> list[dict[str, Any]]:
    return [
        {
            "label": _str(chardev.get("label")),
            "filename": _str(chardev.get("filename")),
            "frontend-open": _bool(chardev.get("frontend-open")),
        }
        for chardev in _dicts(value)
    ]


# -- network devices: QOM, two more rounds -----------------------------------------------------


def _probe_nics(
    client: Monitor,
    answers: dict[str, Answer],
    qom_keys: tuple[str, ...],
    deadline: float | None,
) -> dict[str, Answer]:
    """NICs are the devices with a ``netdev`` property (qdev's NIC properties).

    Every device in the three containers is asked for it at once; the ones that
    answer are asked for their ``mac``.  Returns ``{"nics": Answer}``.
    """
    if any(answers[k].error for k in qom_keys):
        return {"nics": Answer()}
    devices: list[tuple[str, str | None, str]] = []  # path, id, type
    for key in qom_keys:
        container = key.removeprefix("qom:")
        for child in _dicts(answers[key].value):
            name, kind = _str(child.get("name")), _child_type(child.get("type"))
            if name is not None and kind is not None and len(devices) < MAX_QOM_CHILDREN:
                own_id = name if container == DEVICE_CONTAINERS[0] else None
                devices.append((f"{container}/{name}", own_id, kind))
    netdevs = ask_all(client, {path: _qom_get(path, "netdev") for path, _, _ in devices}, deadline)
    nics = [(path, own_id, kind) for path, own_id, kind in devices if not netdevs[path].error]
    macs = ask_all(client, {path: _qom_get(path, "mac") for path, _, _ in nics}, deadline)
    rows = [
        {
            "id": own_id,
            "path": path,
            "model": kind,
            "mac": _str(macs[path].value),
            "netdev": _str(netdevs[path].value) or None,
        }
        for path, own_id, kind in nics[:MAX_ITEMS]
    ]
    return {"nics": Answer(rows)}


def _child_type(value: Any) -> str | None:
    """``child<e1000>`` → ``e1000``; links, properties and non-devices → None."""
    text = _str(value)
    if text is None or not text.startswith("child<") or not text.endswith(">"):
        return None
    kind = text[len("child<") : -1]
    return None if kind in NOT_DEVICES else kind


def _qom_get(path: str, prop: str) -> dict[str, Any]:
    return {"execute": "qom-get", "arguments": {"path": path, "property": prop}}


# -- one line of it (fan-out tables) -------------------------------------------------------------

ROW_COLUMNS = ("name", "state", "machine", "vcpus", "memory", "disks", "nics", "spice", "vnc")


def summary_row(info: dict[str, Any]) -> dict[str, str]:
    """The overview as one table row (columns ``ROW_COLUMNS``), strings made visible."""
    spice, vnc = info.get("spice"), info.get("vnc")
    row = {
        "name": _shown(info.get("name"), none="-"),
        "state": _shown(_dict(info.get("status")).get("status")),
        "machine": _shown(_dict(info.get("machine")).get("type")),
        "vcpus": _shown(_dict(info.get("vcpus")).get("count")),
        "memory": _size(_dict(info.get("memory")).get("base")),
        "disks": _count(info.get("block")),
        "nics": _count(info.get("network")),
        "spice": "n/a" if spice is None else _spice_clients(spice),
        "vnc": "n/a" if vnc is None else str(sum(len(d["clients"]) for d in vnc)),
    }
    for name in ("name", "state", "machine", "vcpus"):
        if info.get(_SECTION_OF[name]) is None:
            row[name] = "n/a"
    return row


_SECTION_OF = {"name": "name", "state": "status", "machine": "machine", "vcpus": "vcpus"}


def _count(items: Any) -> str:
    return "n/a" if items is None else str(len(items))


def _spice_clients(spice: dict[str, Any]) -> str:
    return str(len(spice["clients"])) if spice.get("enabled") else "off"


# -- pretty ---------------------------------------------------------------------------------------


def format_pretty(info: dict[str, Any], width: int | None, *, color: bool = False) -> str:
    """The overview laid out for a terminal ``width`` columns wide (no line is longer);
    ``width`` None is no terminal: nothing wraps."""
    return _printed(_renderables(info), width, color)


def format_rows(
    rows: Iterable[tuple[str, dict[str, str]]], width: int | None, *, color: bool
) -> str:
    """Many VMs (``qmpsh libvirt:* --vminfo``): one ``summary_row`` line per target."""
    table = _table(
        ("target", *ROW_COLUMNS),
        ([visible(target), *(row.get(c, "?") for c in ROW_COLUMNS)] for target, row in rows),
    )
    return _printed([table], width, color)


def _printed(renderables: Iterable[RenderableType], width: int | None, color: bool) -> str:
    from io import StringIO

    from rich.console import Console

    from qmpsh.render import MAX_WIDTH, unpadded

    out = StringIO()
    console = Console(
        file=out,
        width=MAX_WIDTH if width is None else width,
        color_system="standard" if color else None,
        force_terminal=color,
        no_color=not color,
        highlight=False,
        markup=False,
        emoji=False,
    )
    for renderable in renderables:
        console.print(renderable)
    return unpadded(out.getvalue())


def _renderables(info: dict[str, Any]) -> list[RenderableType]:
    return [
        _summary(info),
        *_section("block devices", info.get("block"), _block_table),
        *_section("network devices", info.get("network"), _nic_table),
        *_section("SPICE", info.get("spice"), _spice_table),
        *_section("VNC", info.get("vnc"), _vnc_table),
        *_section("chardevs", info.get("chardevs"), _chardev_table),
    ]


def _summary(info: dict[str, Any]) -> Table:
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in _summary_lines(info):
        grid.add_row(_text(label), _text(value))
    return grid


def _summary_lines(info: dict[str, Any]) -> list[tuple[str, str]]:
    def na(section: str, show: Callable[[Any], str]) -> str:
        value = info.get(section)
        return "n/a" if value is None and section in _dict(info.get("unavailable")) else show(value)

    return [
        ("name", na("name", lambda v: _shown(v, none="-"))),
        ("uuid", na("uuid", _shown)),
        ("state", na("status", _state)),
        ("QEMU", na("qemu", _qemu)),
        ("machine", na("machine", _machine_line) + _arch(info)),
        ("accel", na("accelerator", _accel_line)),
        ("vCPUs", na("vcpus", lambda v: _shown(_dict(v).get("count")))),
        ("memory", na("memory", _memory_line)),
    ]


def _state(status: Any) -> str:
    status = _dict(status)
    running = status.get("running")
    suffix = "" if running is None else " (running)" if running else " (not running)"
    return _shown(status.get("status")) + suffix


def _qemu(version: Any) -> str:
    version = _dict(version)
    package = version.get("package")
    return _shown(version.get("version")) + (f"  package {_shown(package)}" if package else "")


def _machine_line(machine: Any) -> str:
    machine = _dict(machine)
    alias = machine.get("alias")
    return _shown(machine.get("type")) + (f" (alias {_shown(alias)})" if alias else "")


def _arch(info: dict[str, Any]) -> str:
    arch = info.get("arch")
    return f", {_shown(arch)}" if arch is not None else ""


def _accel_line(accel: Any) -> str:
    accel = _dict(accel)
    present = accel.get("kvm-present")
    note = "" if present is None else " (KVM available)" if present else " (no KVM)"
    return _shown(accel.get("name")) + ("" if accel.get("name") == "kvm" else note)


def _memory_line(memory: Any) -> str:
    memory = _dict(memory)
    return f"{_size(memory.get('base'))} base + {_size(memory.get('plugged'))} hotplugged"


def _section(
    title: str, value: Any, table: Callable[[Any], RenderableType | None]
) -> list[RenderableType]:
    """A bold title line (with "n/a" or "none" when there is nothing to list), then a table."""
    from rich.text import Text

    if value is None:
        return [Text.assemble((title, "bold"), "  n/a")]
    body = table(value)
    if body is None:
        return [Text.assemble((title, "bold"), "  none")]
    return [Text(title, style="bold"), body]


def _table(columns: Iterable[str], rows: Iterable[Iterable[str]], fold: str = "") -> Table:
    """Compact, borderless, indented by one space; ``fold`` wraps rather than cuts."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", padding=(0, 1))
    for column in columns:
        table.add_column(column, overflow="fold" if column == fold else "ellipsis")
    for row in rows:
        table.add_row(*(_text(cell) for cell in row))
    return table


def _block_table(devices: list[dict[str, Any]]) -> Table | None:
    if not devices:
        return None
    rows = [
        (
            _shown(dev["device"] or dev["qdev"], none="-"),
            _shown(dev["node"], none="-"),
            _shown(dev["driver"], none="-"),
            _shown(dev["file"], none="-") if dev["inserted"] else "(empty)",
            _size(dev["size"]) if dev["inserted"] else "-",
            _yes_no(dev["read-only"]) if dev["inserted"] else "-",
            _tray(dev),
        )
        for dev in devices
    ]
    columns = ("device", "node", "driver", "file", "size", "ro", "tray")
    return _table(columns, rows, fold="file")


def _tray(dev: dict[str, Any]) -> str:
    if not dev["removable"]:
        return "-"
    tray = {True: "open", False: "closed"}.get(dev["tray-open"], "?")
    return tray + (", locked" if dev["locked"] else "")


def _nic_table(nics: list[dict[str, Any]]) -> Table | None:
    if not nics:
        return None
    rows = [
        (
            _shown(nic["id"] or nic["path"]),
            _shown(nic["model"]),
            _shown(nic["mac"]),
            _shown(nic["netdev"], none="-"),
        )
        for nic in nics
    ]
    return _table(("device", "model", "mac", "netdev"), rows, fold="device")


def _spice_table(spice: dict[str, Any]) -> RenderableType | None:
    from rich.console import Group

    if not spice["enabled"]:
        return _text(" disabled" if spice["enabled"] is False else " ?")
    where = [f"{_shown(spice['host'])}:{_shown(spice['port'])}"] if spice["port"] else []
    if spice["tls-port"]:
        where.append(f"{_shown(spice['host'])}:{_shown(spice['tls-port'])} (tls)")
    server = _text(f" server {', '.join(where) or '?'}  auth {_shown(spice['auth'])}")
    if not spice["clients"]:
        return Group(server, _text(" no clients"))
    rows = [
        (
            f"{_shown(c['host'])}:{_shown(c['port'])}",
            _shown(c["session"]),
            _yes_no(c["tls"]),
            ", ".join(_shown(ch) for ch in c["channels"]),
        )
        for c in spice["clients"]
    ]
    return Group(server, _table(("client", "session", "tls", "channels"), rows, fold="channels"))


def _vnc_table(displays: list[dict[str, Any]]) -> RenderableType | None:
    from rich.console import Group

    if not displays:
        return None
    parts: list[RenderableType] = []
    for display in displays:
        servers = ", ".join(_endpoint(s) for s in display["servers"]) or "?"
        auth = ", ".join(sorted({_shown(s["auth"]) for s in display["servers"]})) or "?"
        parts.append(_text(f" {_shown(display['id'])}: server {servers}  auth {auth}"))
        rows = [(_endpoint(c), _yes_no(c["websocket"])) for c in display["clients"]]
        parts.append(_table(("client", "websocket"), rows) if rows else _text(" no clients"))
    return Group(*parts)


def _endpoint(item: dict[str, Any]) -> str:
    return f"{_shown(item['host'])}:{_shown(item['service'])}"


def _chardev_table(chardevs: list[dict[str, Any]]) -> Table | None:
    if not chardevs:
        return None
    rows = [
        (_shown(c["label"]), _shown(c["filename"]), _yes_no(c["frontend-open"])) for c in chardevs
    ]
    return _table(("label", "filename", "open"), rows, fold="filename")


# -- cells ----------------------------------------------------------------------------------------


def _text(value: str) -> Text:
    """A cell as rich Text: never parsed as markup, whatever QEMU put in it."""
    from rich.text import Text

    return Text(value)


def _shown(value: Any, none: str = "?") -> str:
    """A value from QEMU as safe terminal text: "?" for a missing or mistyped one."""
    if value is None:
        return none
    if isinstance(value, bool):
        return _yes_no(value)
    return visible(str(value))


def _yes_no(value: Any) -> str:
    return {True: "yes", False: "no"}.get(value, "?") if isinstance(value, bool) else "?"


def _size(value: Any) -> str:
    number = _int(value)
    return "?" if number is None else human_size(number)


# -- the shell command --------------------------------------------------------------------------


def show_vminfo(session: Session, renderer: Renderer) -> int:
    """``vminfo``: gather, then print in the session's format (pretty text or one JSON object)."""
    info = gather(session.client, session.settings.timeout)
    if renderer.fmt == "pretty":
        renderer.text(format_pretty(info, renderer.layout_width(), color=renderer.color))
    else:
        renderer.reply("vminfo", {"return": info})
    return 0
