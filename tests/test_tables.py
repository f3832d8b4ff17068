"""Tables for lists of objects (``--format pretty``), on replies from a real QEMU.

Each table is checked against the reply it was made from: every object is a row, in
the documented order, and nothing but the table's own text is printed.  Odd shapes
fall back to JSON; in a pipe nothing wraps and no line ends in spaces.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from qemu import Qemu, RawMonitor
from support import run_qmpsh, wait_for
from test_render import ANSI, WIDTH, printed_then_modules, render, rows, wire

from qmpsh.render import Renderer
from qmpsh.tables import human_size

# Running, not -S: QEMU lists a bridge's devices once the firmware has numbered its bus.
PC = ("-M", "pc", "-display", "none", "-nodefaults")
Q35 = ("-M", "q35", "-display", "none", "-nodefaults")


def unwrapped(command: str, reply: dict[str, Any]) -> list[list[str]]:
    """The table's cells as a pipe gets them: one line per row, however long."""
    out = io.StringIO()
    Renderer("pretty", out, io.StringIO(), color=False).reply(command, reply)
    return rows(out.getvalue())


def pci_functions(buses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every function in QEMU's reply, bridges' children right after their bridge."""
    found: list[dict[str, Any]] = []

    def walk(devices: list[dict[str, Any]]) -> None:
        for device in devices:
            found.append(device)
            walk(device.get("pci_bridge", {}).get("devices", []))

    for bus in buses:
        walk(bus["devices"])
    return found


@pytest.mark.parametrize(
    ("machine", "bridge"),
    [
        (
            PC,
            (
                "-device",
                "pci-bridge,id=br1,chassis_nr=1",
                "-device",
                "e1000,bus=br1,addr=3,id=nic1",
            ),
        ),
        (Q35, ("-device", "pcie-root-port,id=rp1,chassis=1", "-device", "e1000e,bus=rp1,id=nic1")),
    ],
    ids=["pc", "q35"],
)
def test_query_pci_lists_every_function_with_bridges_flattened(
    qemu_factory: Callable[..., Qemu], machine: tuple[str, ...], bridge: tuple[str, ...]
) -> None:
    q = qemu_factory(*bridge, machine=machine)
    with RawMonitor(q.socket) as m:

        def numbered() -> bool:
            replies[:] = [wire(m, "query-pci")]
            return any(d["qdev_id"] == "nic1" for d in pci_functions(replies[0]["return"]))

        replies: list[dict[str, Any]] = []
        wait_for(numbered, "the firmware to number the bridge's bus")
    reply = replies[0]
    table = unwrapped("query-pci", reply)
    assert table[0] == ["address", "class", "vendor:device", "id", "irq", "bars"]
    functions = pci_functions(reply["return"])
    addresses = [f"{d['bus']:02x}:{d['slot']:02x}.{d['function']}" for d in functions]
    assert [cells[0] for cells in table[1:]] == addresses
    nic = next(d for d in functions if d["qdev_id"] == "nic1")
    assert nic["bus"] != 0  # behind the bridge: only flattening shows it
    nic_row = table[1 + functions.index(nic)]
    assert f"{nic['id']['vendor']:04x}:{nic['id']['device']:04x}" in nic_row
    sizes = [human_size(r["size"]) for r in nic["regions"]]
    assert all(size in " ".join(nic_row) for size in sizes)
    parent = next(d for d in functions if d["qdev_id"] in ("br1", "rp1"))
    assert f"(bus {parent['pci_bridge']['bus']['secondary']})" in " ".join(
        table[1 + functions.index(parent)]
    )


def test_qom_list_is_name_and_type_without_empty_columns(qemu: Qemu) -> None:
    with RawMonitor(qemu.socket) as m:
        reply = wire(m, "qom-list", path="/machine")
    out = render("pretty", "qom-list", reply)[0]
    table = rows(out)
    assert table[0] == ["name", "type"]  # QEMU 7.2 sends no description: no empty column
    assert [cells[0] for cells in table[1:]] == [p["name"] for p in reply["return"]]
    assert [" ".join(cells[1:]) for cells in table[1:]] == [p["type"] for p in reply["return"]]


def test_machines_and_cpu_models_are_sorted_rows(qemu: Qemu) -> None:
    with RawMonitor(qemu.socket) as m:
        machines = wire(m, "query-machines")
        cpus = wire(m, "query-cpu-definitions")
    table = rows(render("pretty", "query-machines", machines)[0])
    assert table[0] == ["name", "alias", "cpu-max", "deprecated"]
    assert [cells[0] for cells in table[1:]] == sorted(x["name"] for x in machines["return"])
    default = next(x for x in machines["return"] if x.get("is-default"))
    assert [default["name"], default["alias"], "default"] in [c[:3] for c in table]
    out = render("pretty", "query-cpu-definitions", cpus)[0]
    names = [line.split()[0] for line in out.splitlines()[2:] if not line.startswith(" ")]
    assert names == sorted(c["name"] for c in cpus["return"])


@pytest.mark.parametrize("wrap", [True, False], ids=["terminal", "pipe"])
def test_query_commands_is_its_names(qemu: Qemu, wrap: bool) -> None:
    with RawMonitor(qemu.socket) as m:
        reply = wire(m, "query-commands")
    out = io.StringIO()
    Renderer("pretty", out, io.StringIO(), color=False, width=WIDTH if wrap else None).reply(
        "query-commands", reply
    )
    names = sorted(c["name"] for c in reply["return"])
    lines = out.getvalue().splitlines()
    if wrap:  # columns, read down: the first column starts with the first names
        assert len(lines) <= (len(names) + 1) // 2  # two columns or more
        assert all(len(line) <= WIDTH for line in lines)
        assert sorted(word for line in lines for word in line.split()) == names
        assert [line.split()[0] for line in lines[:2]] == names[:2]
    else:  # for grep: one name per line
        assert lines == names


def test_sizes_are_for_people_in_tables_and_bytes_in_json(qemu: Qemu) -> None:
    with RawMonitor(qemu.socket) as m:
        m.execute("object-add", **{"qom-type": "memory-backend-ram", "id": "mem1", "size": 3 << 29})
        reply = wire(m, "query-memdev")
    mem = next(x for x in reply["return"] if x["id"] == "mem1")
    assert rows(render("pretty", "query-memdev", reply)[0])[-1][:3] == ["mem1", "1.5", "GiB"]
    assert json.loads(render("json", "query-memdev", reply)[0])[-1]["size"] == mem["size"]


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1 KiB"),
        (1536, "1.5 KiB"),
        (2**30, "1 GiB"),
        (2**64 - 1, "16 EiB"),
        (-1, "-1"),
        ("64M", "64M"),
        (True, "yes"),
        (None, ""),
    ],
)
def test_human_size(size: Any, text: str) -> None:
    assert human_size(size) == text


def deep_bridge(depth: int) -> dict[str, Any]:
    device: dict[str, Any] = {
        "bus": 9,
        "slot": 0,
        "function": 0,
        "class_info": {"class": 1540},
        "id": {"vendor": 1, "device": 2},
        "regions": [],
    }
    for _ in range(depth):
        device = {**device, "pci_bridge": {"bus": {"secondary": 9}, "devices": [device]}}
    return device


@pytest.mark.parametrize(
    ("command", "value"),
    [
        ("query-pci", [{"bus": 0, "devices": [deep_bridge(40)]}]),
        ("query-pci", [{"bus": 0, "devices": [deep_bridge(0)] * 501}]),  # too many rows
        ("query-pci", [{"bus": 0, "devices": "none"}]),
        ("query-commands", [{"name": "a"}, "b"]),
        ("query-commands", {"name": "a"}),
        ("qom-list", [["name", "type"]]),
        ("query-machines", [{"name": "pc"}, 5]),
    ],
)
def test_odd_shapes_fall_back_to_json(command: str, value: Any) -> None:
    out, err = render("pretty", command, {"return": value})
    assert json.loads(out) == value
    assert err == ""


def test_any_json_in_a_cell_is_shown_as_json() -> None:
    value = [{"name": {"nested": [1]}, "cpu-max": [], "deprecated": None}]
    assert rows(render("pretty", "query-machines", {"return": value})[0])[1] == [
        '{"nested":[1]}',
        "[]",
    ]


def test_hostile_cells_are_shown_not_obeyed() -> None:
    value = [{"name": "evil\x1b]0;title\x07[red]x[/red]", "type": "str\x1b[2J"}]
    out, _ = render("pretty", "qom-list", {"return": value}, color=True)
    assert "\x1b]" not in out and "\x1b[2J" not in out and "\x07" not in out
    assert "[red]x[/red]" in ANSI.sub("", out)


@pytest.mark.parametrize("targets", [1, 2], ids=["one-target", "fan-out"])
def test_pretty_into_a_pipe_neither_wraps_nor_pads(
    qemu_factory: Callable[..., Qemu], targets: int
) -> None:
    long_name = "d" * 31  # QEMU's longest node name
    drive = f"if=none,id=d0,driver=null-co,read-zeroes=on,node-name={long_name}"
    sockets = [qemu_factory("-drive", drive).socket for _ in range(targets)]
    result = run_qmpsh(*sockets, "-p", "-c", "query-named-block-nodes")  # no $COLUMNS
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if line != line.rstrip()] == []
    header = [line.split() for line in lines if line.split()[:1] == ["node"]]
    assert header == [["node", "drv", "file", "ro", "size", "backing"]] * targets
    rows = [line.split(maxsplit=2) for line in lines if line.startswith(long_name)]
    assert [row[:2] for row in rows] == [[long_name, "null-co"]] * targets
    for _, _, rest in rows:  # the whole json: file name on the row, then ro and size
        assert rest.startswith('json:{"read-zeroes": "on", "driver": "null-co"}')
        assert rest.split()[-3:] == ["no", "1", "GiB"]
    assert max(len(line) for line in lines) > 80  # rich alone would have wrapped at 80
    # $COLUMNS is how a width is asked for, in a pipe too; padding still goes.
    narrow = run_qmpsh(*sockets, "-p", "-c", "query-named-block-nodes", env={"COLUMNS": "50"})
    lines = narrow.stdout.splitlines()
    assert max(len(line) for line in lines) <= 50
    assert [line for line in lines if line != line.rstrip()] == []


def test_vminfo_into_a_pipe_neither_wraps_nor_pads(qemu_factory: Callable[..., Qemu]) -> None:
    q = qemu_factory("-drive", "if=none,id=drive0,driver=null-co,read-only=on,size=64M")
    result = run_qmpsh(q.socket, "--vminfo", "-p")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if line != line.rstrip()] == []
    [disk] = [line for line in lines if line.split()[:1] == ["drive0"]]
    assert '"size": "64M"}   64 MiB' in disk  # the file name whole, then the size


def test_a_reply_that_is_no_table_loads_no_rich() -> None:
    """Plain pretty output (no colour, no table) prints without importing rich."""
    body = (
        "r = Renderer('pretty', sys.stdout, sys.stderr, color=False)\n"
        "r.reply('query-name', {'return': {'name': 'vm1'}})\n"
    )
    (*printed, modules), _ = printed_then_modules(body, ("rich",))
    assert json.loads("\n".join(printed)) == {"name": "vm1"}
    assert modules == "[]"
