"""Renderer output in each format, on replies fetched from a real QEMU."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from peers import spice_session, vnc_connect
from qemu import Qemu, RawMonitor

from qmpsh.render import BIG_REPLY, Format, Renderer
from qmpsh.tables import human_size

HOST = "127.0.0.1"
WIDTH = 100
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def mon(qemu: Qemu) -> Iterator[RawMonitor]:
    with RawMonitor(qemu.socket) as m:
        yield m


def wire(mon: RawMonitor, name: str, **args: Any) -> dict[str, Any]:
    """The whole reply message as QEMU sent it, errors included (RawMonitor raises)."""
    msg: dict[str, Any] = {"execute": name, "arguments": args} if args else {"execute": name}
    mon.sock.sendall(json.dumps(msg).encode() + b"\n")
    while True:
        reply = mon._read()
        if "event" not in reply:
            return reply
        mon.events.append(reply)


def render(
    fmt: Format, command: str | None, reply: dict[str, Any], color: bool = False
) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    Renderer(fmt, out, err, color=color, width=WIDTH).reply(command, reply)
    return out.getvalue(), err.getvalue()


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def rows(text: str) -> list[list[str]]:
    """Table text as whitespace-separated cells per line (rules and blank lines dropped)."""
    lines = [line.split() for line in text.splitlines()]
    return [cells for cells in lines if cells and set(cells[0]) != {"─"}]


# -- json / raw ---------------------------------------------------------------------------


def test_json_success_is_one_compact_document_per_line(mon: RawMonitor) -> None:
    out, err = io.StringIO(), io.StringIO()
    renderer = Renderer("json", out, err, color=True)
    for name in ("query-status", "query-version", "query-chardev"):
        renderer.reply(name, wire(mon, name))
    values = [mon.execute(name) for name in ("query-status", "query-version", "query-chardev")]
    assert out.getvalue().splitlines() == [compact(v) for v in values]
    assert err.getvalue() == ""
    assert "\x1b" not in out.getvalue()


def test_json_keeps_non_ascii() -> None:
    out, _ = render("json", "query-name", {"return": {"name": "vé"}})
    assert out == '{"name":"vé"}\n'


def test_json_error_goes_to_err(mon: RawMonitor) -> None:
    reply = wire(mon, "no-such-command")
    out, err = render("json", "no-such-command", reply)
    assert out == ""
    assert err == f"error: CommandNotFound: {reply['error']['desc']}\n"


def test_raw_prints_whole_message_errors_too(mon: RawMonitor) -> None:
    for name in ("query-status", "no-such-command"):
        reply = wire(mon, name)
        out, err = render("raw", name, reply)
        assert out == compact(reply) + "\n"
        assert err == ""


# -- pretty -------------------------------------------------------------------------------


def test_pretty_error_is_class_and_desc_without_ansi(mon: RawMonitor) -> None:
    reply = wire(mon, "no-such-command")
    out, err = render("pretty", "no-such-command", reply)
    assert (out, err) == ("", f"CommandNotFound: {reply['error']['desc']}\n")
    _, colored = render("pretty", "no-such-command", reply, color=True)
    assert "\x1b[" in colored
    assert ANSI.sub("", colored) == err


def test_pretty_empty_return_prints_nothing(mon: RawMonitor) -> None:
    assert render("pretty", "qmp_capabilities", {"return": {}}) == ("", "")
    reply = wire(mon, "cont")
    assert render("pretty", "cont", reply) == ("", "")


def test_pretty_json_is_indented_and_colored_only_on_request(mon: RawMonitor) -> None:
    reply = wire(mon, "query-version")
    out, _ = render("pretty", "query-version", reply)
    assert out == json.dumps(reply["return"], indent=2) + "\n"
    colored, _ = render("pretty", "query-version", reply, color=True)
    assert "\x1b[" in colored and ANSI.sub("", colored) == out


def test_pretty_status_line(mon: RawMonitor) -> None:
    out, _ = render("pretty", "query-status", wire(mon, "query-status"))
    assert out == "VM status: running\n"


def test_pretty_hmp_string_is_plain_text(mon: RawMonitor) -> None:
    reply = wire(mon, "human-monitor-command", **{"command-line": "info status"})
    out, _ = render("pretty", "human-monitor-command", reply)
    assert out == "VM status: running\n"


def test_text_is_not_markup_and_error_is_one_line() -> None:
    out, err = io.StringIO(), io.StringIO()
    renderer = Renderer("pretty", out, err, color=True)
    renderer.text("[bold]x[/bold]\r\nnext\r\n")
    renderer.text("")
    renderer.error("bad value\nat column 3")
    assert out.getvalue() == "[bold]x[/bold]\nnext\n"
    assert ANSI.sub("", err.getvalue()) == "error: bad value at column 3\n"


def test_unknown_shape_for_a_table_query_falls_back_to_json() -> None:
    out, _ = render("pretty", "query-spice", {"return": ["odd"]})
    assert json.loads(out) == ["odd"]


# -- tables -------------------------------------------------------------------------------


def spice_expected(info: dict[str, Any]) -> list[list[str]]:
    server = (
        f"SPICE server {info['host']}:{info['port']} auth {info['auth']}"
        f" mouse-mode {info['mouse-mode']} compiled {info['compiled-version']} migrated false"
    )
    expected = [server.split(), ["session", "channel", "type:id", "address", "family", "tls"]]
    names = {1: "main", 3: "inputs"}
    for i, chan in enumerate(info["channels"]):
        session = [str(chan["connection-id"] % 2**32)] if i == 0 else []
        kind = chan["channel-type"]
        address = f"{chan['host']}:{chan['port']}"
        expected.append([*session, names[kind], f"{kind}:0", address, "ipv4", "no"])
    return expected


def test_query_spice_table_with_live_channels(qemu: Qemu, mon: RawMonitor) -> None:
    assert qemu.spice_port is not None
    channels = spice_session(HOST, qemu.spice_port)
    try:
        for _ in channels:
            mon.wait_event("SPICE_INITIALIZED")
        reply = wire(mon, "query-spice")
    finally:
        for ch in channels:
            ch.close()
    info = reply["return"]
    assert [c["connection-id"] % 2**32 for c in info["channels"]] == [channels[0].session_id] * 2
    out, err = render("pretty", "query-spice", reply)
    assert rows(out) == spice_expected(info)
    assert err == "" and "\x1b" not in out
    assert max(len(line) for line in out.splitlines()) <= WIDTH
    # Whatever sign QEMU happened to give it, the session id is shown unsigned.
    for chan in info["channels"]:
        cid = chan["connection-id"]
        chan["connection-id"] = cid - 2**32 if cid >= 0 else cid
    assert rows(render("pretty", "query-spice", reply)[0]) == spice_expected(info)


def test_query_spice_disabled_and_no_channels(qemu_factory: Callable[..., Qemu]) -> None:
    with RawMonitor(qemu_factory().socket) as m:
        out, _ = render("pretty", "query-spice", wire(m, "query-spice"))
    assert out == "SPICE server: disabled\n"


def test_query_vnc_table_with_client(qemu: Qemu, mon: RawMonitor) -> None:
    assert qemu.vnc_port is not None
    with vnc_connect(HOST, qemu.vnc_port) as sock:
        mon.wait_event("VNC_INITIALIZED")
        info = wire(mon, "query-vnc")["return"]
        client_port = sock.getsockname()[1]
    mon.wait_event("VNC_DISCONNECTED")
    out, _ = render("pretty", "query-vnc", {"return": info})
    assert rows(out) == [
        f"VNC server {info['host']}:{info['service']} (ipv4) auth none".split(),
        ["client", "family", "websocket", "x509", "sasl"],
        [f"{HOST}:{client_port}", "ipv4", "no"],
    ]


def test_query_chardev_table(mon: RawMonitor) -> None:
    reply = wire(mon, "query-chardev")
    out, _ = render("pretty", "query-chardev", reply)
    expected = [["label", "filename", "open"]]
    for dev in reply["return"]:
        expected.append([dev["label"], dev["filename"], "yes" if dev["frontend-open"] else "no"])
    assert rows(out) == expected


def test_empty_list_tables_say_none(mon: RawMonitor) -> None:
    for name in ("query-block", "query-cpus-fast", "query-block-jobs"):
        reply = wire(mon, name)
        assert reply == {"return": []}
        assert render("pretty", name, reply) == ("(none)\n", "")


def test_block_tables(qemu_factory: Callable[..., Qemu]) -> None:
    q = qemu_factory("-drive", "if=none,id=drive0,driver=null-co,read-only=on")
    with RawMonitor(q.socket) as m:
        block = wire(m, "query-block")
        nodes = wire(m, "query-named-block-nodes")
        m.execute("blockdev-add", driver="null-co", **{"node-name": "src", "size": 2**30})
        m.execute("blockdev-add", driver="null-co", **{"node-name": "tgt", "size": 2**30})
        m.execute(
            "blockdev-backup",
            **{"job-id": "job0"},
            device="src",
            target="tgt",
            sync="full",
            speed=1,
        )
        jobs = wire(m, "query-block-jobs")
    dev = block["return"][0]["inserted"]
    assert rows(render("pretty", "query-block", block)[0]) == [
        ["device", "node", "file", "drv", "ro", "tray", "qdev"],
        ["drive0", dev["node-name"], "null-co://", "null-co", "yes", "closed"],
    ]
    node = nodes["return"][0]
    assert rows(render("pretty", "query-named-block-nodes", nodes)[0]) == [
        ["node", "drv", "file", "ro", "size", "backing"],
        [
            node["node-name"],
            "null-co",
            "null-co://",
            "yes",
            *human_size(node["image"]["virtual-size"]).split(),
        ],
    ]
    job = jobs["return"][0]
    table = rows(render("pretty", "query-block-jobs", jobs)[0])
    assert table[0] == ["job", "type", "status", "progress", "speed", "ready", "paused"]
    assert table[1][:3] == ["job0", "backup", job["status"]]
    assert table[1][3].startswith(f"{job['offset']}/{job['len']}")
    assert len(table) == 2


def test_cpus_table(qemu_factory: Callable[..., Qemu]) -> None:
    q = qemu_factory("-smp", "2", machine=("-M", "pc", "-S", "-display", "none", "-nodefaults"))
    with RawMonitor(q.socket) as m:
        reply = wire(m, "query-cpus-fast")
    table = rows(render("pretty", "query-cpus-fast", reply)[0])
    assert table[0] == ["cpu", "thread-id", "target", "props", "qom-path"]
    for cells, cpu in zip(table[1:], reply["return"], strict=True):
        assert cells[:3] == [str(cpu["cpu-index"]), str(cpu["thread-id"]), "x86_64"]
        assert cells[-1] == cpu["qom-path"]
        assert f"core={cpu['props']['core-id']}" in cells


# -- big replies ---------------------------------------------------------------------------


def test_big_reply_fast_path_is_valid_indented_json(mon: RawMonitor) -> None:
    reply = wire(mon, "query-qmp-schema")
    assert len(json.dumps(reply["return"])) > BIG_REPLY
    out, _ = render("pretty", "query-qmp-schema", reply)
    assert out == json.dumps(reply["return"], indent=2) + "\n"
    colored, _ = render("pretty", "query-qmp-schema", reply, color=True)
    assert "\x1b[" in colored
    assert json.loads(ANSI.sub("", colored)) == reply["return"]


def printed_then_modules(body: str, packages: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """What ``body`` prints in a fresh interpreter (``sys`` and ``Renderer`` imported):
    its stdout lines, then one line naming the modules of ``packages`` it loaded; and
    its stderr lines."""
    code = (
        "import sys\n"
        "from qmpsh.render import Renderer\n"
        f"{body}"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {packages!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout.splitlines(), done.stderr.splitlines()


def test_json_and_raw_never_import_rich() -> None:
    body = (
        "for fmt in ('json', 'raw'):\n"
        "    r = Renderer(fmt, sys.stdout, sys.stderr, color=True)\n"
        "    r.reply('q', {'return': {'a': [1]}})\n"
        "    r.reply('q', {'error': {'class': 'GenericError', 'desc': 'no'}})\n"
        "    r.text('t'); r.error('e')\n"
    )
    out, err = printed_then_modules(body, ("rich", "pygments"))
    assert out == [
        '{"a":[1]}',
        "t",
        '{"return":{"a":[1]}}',
        '{"error":{"class":"GenericError","desc":"no"}}',
        "t",
        "[]",
    ]
    assert err == ["error: GenericError: no", "error: e", "error: e"]
