"""``vminfo`` / ``--vminfo`` against a real QEMU with disks, NICs, SPICE and VNC clients.

Every expectation is read from QEMU's own queries through an independent monitor
(``RawMonitor``), never written down: the overview must say what QEMU says.  The
fake server appears only for what no QEMU does: a query missing from a server that
has the others, and replies of the wrong shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

import pytest
from fake_qmp_server import FakeConnection, FakeQmpServer
from libvirt_lab import LibvirtLab, domain_state, virsh
from peers import spice_session, vnc_connect
from qemu import Qemu, RawMonitor
from support import private_env, wait_until

from qmpsh.vminfo import format_pretty, gather, summary_row

ESC_NAME = "vm\x1b[31mred"
PC = ("-machine", "pc", "-display", "none", "-nodefaults")
TIMEOUT = 60


def qmpsh(tmp_path: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qmpsh", *args],
        capture_output=True,
        text=True,
        env=private_env(tmp_path, COLUMNS=str(columns)),
        timeout=TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Qemu]:
    """-machine pc: a null-co disk, an IDE CD-ROM, two NICs, a chardev, SPICE and VNC
    clients connected (held open for the whole module)."""
    chardev_dir = tmp_path_factory.mktemp("chardev")
    extra = [
        "-name", ESC_NAME,
        "-blockdev", "driver=null-co,node-name=null0,size=1048576",
        "-device", "ide-hd,drive=null0,id=disk0,bus=ide.0",
        "-drive", "if=ide,media=cdrom,id=cd0,index=2",
        "-nic", "user,model=e1000,id=n0",
        "-netdev", "user,id=u1",
        "-device", "e1000,id=nic1,netdev=u1",
        "-chardev", f"file,id=log0,path={chardev_dir}/console\x1b]2;title\x07.log",
        "-smp", "2",
        "-S",
    ]  # fmt: skip
    with Qemu(extra, machine=PC, vnc=True, spice=True) as q, ExitStack() as peers:
        assert q.vnc_port is not None and q.spice_port is not None
        peers.enter_context(closing(vnc_connect("127.0.0.1", q.vnc_port)))
        for channel in spice_session("127.0.0.1", q.spice_port):
            peers.enter_context(channel)
        with RawMonitor(q.socket) as mon:
            assert wait_until(lambda: _clients_seen(mon)), "QEMU never listed the clients"
        yield q


def _clients_seen(mon: RawMonitor) -> bool:
    vnc = mon.execute("query-vnc")["clients"]
    spice = mon.execute("query-spice")["channels"]
    return bool(vnc) and len(spice) >= 2


@pytest.fixture(scope="module")
def truth(vm: Qemu) -> dict[str, Any]:
    """What QEMU itself answers, through the independent monitor."""
    with RawMonitor(vm.socket) as mon:
        answers = {
            name: mon.execute(name)
            for name in (
                "query-name",
                "query-uuid",
                "query-status",
                "query-version",
                "query-target",
                "query-kvm",
                "query-cpus-fast",
                "query-memory-size-summary",
                "query-block",
                "query-spice",
                "query-vnc",
                "query-chardev",
                "query-pci",
            )
        }
        answers["machine-type"] = mon.execute("qom-get", path="/machine", property="type")
        answers["nic-props"] = {
            path: (
                mon.execute("qom-get", path=path, property="mac"),
                mon.execute("qom-get", path=path, property="netdev"),
            )
            for path in _nic_paths(mon)
        }
    return answers


def _nic_paths(mon: RawMonitor) -> list[str]:
    """Every device with a netdev property, found by asking QEMU, not by our code."""
    paths = []
    for container in ("/machine/peripheral", "/machine/peripheral-anon", "/machine/unattached"):
        for child in mon.execute("qom-list", path=container):
            if not child["type"].startswith("child<"):
                continue
            path = f"{container}/{child['name']}"
            props = {p["name"] for p in mon.execute("qom-list", path=path)}
            if "netdev" in props:
                paths.append(path)
    return paths


@pytest.fixture(scope="module")
def info(vm: Qemu, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    done = qmpsh(tmp_path_factory.mktemp("json"), vm.socket, "--vminfo")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    [line] = done.stdout.splitlines()  # one JSON object
    value: dict[str, Any] = json.loads(line)
    return value


def test_json_identity_matches_qemu(info: dict[str, Any], truth: dict[str, Any]) -> None:
    assert info["name"] == truth["query-name"]["name"] == ESC_NAME
    assert info["uuid"] == truth["query-uuid"]["UUID"]
    status = truth["query-status"]
    assert info["status"] == {"status": status["status"], "running": status["running"]}
    version = truth["query-version"]
    assert info["qemu"]["version"] == "{major}.{minor}.{micro}".format(**version["qemu"])
    assert info["qemu"]["package"] == version["package"]
    assert info["machine"]["type"] + "-machine" == truth["machine-type"]
    assert info["arch"] == truth["query-target"]["arch"]
    kvm = truth["query-kvm"]
    assert info["accelerator"]["name"] == ("kvm" if kvm["enabled"] else "tcg")
    assert info["accelerator"]["kvm-present"] == kvm["present"]
    assert info["unavailable"] == {}


def test_json_cpus_and_memory_match_qemu(info: dict[str, Any], truth: dict[str, Any]) -> None:
    cpus = truth["query-cpus-fast"]
    assert info["vcpus"]["count"] == len(cpus)
    assert [c["thread-id"] for c in info["vcpus"]["cpus"]] == [c["thread-id"] for c in cpus]
    memory = truth["query-memory-size-summary"]
    assert info["memory"] == {"base": memory["base-memory"], "plugged": memory["plugged-memory"]}


def test_json_block_devices_match_query_block(info: dict[str, Any], truth: dict[str, Any]) -> None:
    expected = []
    for dev in truth["query-block"]:
        inserted = dev.get("inserted", {})
        expected.append(
            (
                dev["device"],
                dev["qdev"],
                inserted.get("node-name"),
                inserted.get("drv"),
                inserted.get("file"),
                inserted.get("image", {}).get("virtual-size"),
                inserted.get("ro"),
                dev.get("tray_open"),
            )
        )
    keys = ("device", "qdev", "node", "driver", "file", "size", "read-only", "tray-open")
    got = [tuple(d[k] for k in keys) for d in info["block"]]
    assert got == expected
    assert any(d["removable"] and not d["inserted"] for d in info["block"])  # the empty CD


def test_json_nics_match_qom_and_pci(info: dict[str, Any], truth: dict[str, Any]) -> None:
    got = {nic["path"]: (nic["mac"], nic["netdev"]) for nic in info["network"]}
    assert got == truth["nic-props"]
    ethernet = [
        dev
        for bus in truth["query-pci"]
        for dev in bus["devices"]
        if dev["class_info"]["class"] >> 8 == 0x02  # PCI class 02: network controller
    ]
    assert len(info["network"]) == len(ethernet) >= 2
    ids = {dev["qdev_id"] for dev in ethernet if dev["qdev_id"]}
    assert {nic["id"] for nic in info["network"] if nic["id"]} == ids


def test_json_displays_and_chardevs_match_qemu(info: dict[str, Any], truth: dict[str, Any]) -> None:
    spice = truth["query-spice"]
    assert (info["spice"]["host"], info["spice"]["port"]) == (spice["host"], str(spice["port"]))
    mains = [c for c in spice["channels"] if c["channel-type"] == 1]
    assert [(c["host"], c["port"]) for c in info["spice"]["clients"]] == [
        (c["host"], c["port"]) for c in mains
    ]
    assert sum(len(c["channels"]) for c in info["spice"]["clients"]) == len(spice["channels"])
    vnc = truth["query-vnc"]
    [display] = info["vnc"]
    assert [(s["host"], s["service"]) for s in display["servers"]] == [
        (vnc["host"], vnc["service"])
    ]
    assert [(c["host"], c["service"]) for c in display["clients"]] == [
        (c["host"], c["service"]) for c in vnc["clients"]
    ]
    assert [(c["label"], c["filename"], c["frontend-open"]) for c in info["chardevs"]] == [
        (c["label"], c["filename"], c["frontend-open"]) for c in truth["query-chardev"]
    ]


def test_pretty_fits_80_columns_shows_clients_and_no_raw_escape(
    vm: Qemu, truth: dict[str, Any], tmp_path: Path
) -> None:
    done = qmpsh(tmp_path, vm.socket, "--vminfo", "--format", "pretty", columns=80)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert "vm\\x1b[31mred" in done.stdout  # the name, shown with its ESC made visible
    vnc_client = truth["query-vnc"]["clients"][0]
    assert f"{vnc_client['host']}:{vnc_client['service']}" in done.stdout
    main = next(c for c in truth["query-spice"]["channels"] if c["channel-type"] == 1)
    assert f"{main['host']}:{main['port']}" in done.stdout
    for dev in truth["query-block"]:
        assert (dev["device"] or dev["qdev"]) in done.stdout


def test_pretty_uses_a_wide_terminal(vm: Qemu, truth: dict[str, Any], tmp_path: Path) -> None:
    """At 160 columns the disk's long file name stays on one line instead of wrapping."""
    done = qmpsh(tmp_path, vm.socket, "--vminfo", "--format", "pretty", columns=160)
    assert done.returncode == 0, done.stderr
    assert max(len(line) for line in done.stdout.splitlines()) <= 160
    [disk] = [d for d in truth["query-block"] if "inserted" in d]
    assert disk["inserted"]["file"] in done.stdout
    narrow = qmpsh(tmp_path, vm.socket, "--vminfo", "--format", "pretty", columns=80)
    assert disk["inserted"]["file"] not in narrow.stdout  # folded at 80


def test_shell_command_in_a_script_gives_the_same_object(
    vm: Qemu, info: dict[str, Any], tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qmpsh", vm.socket],
        input="query-status\nvminfo\n",
        capture_output=True,
        text=True,
        env=private_env(tmp_path),
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    status, overview = map(json.loads, done.stdout.splitlines())
    assert overview["status"]["status"] == status["status"]
    assert overview["network"] == info["network"]
    again = qmpsh(tmp_path, vm.socket, "-c", "vminfo extra")
    assert again.returncode == 2 and "usage: vminfo" in again.stderr


def test_machine_none_has_empty_sections_not_failures(qemu: Qemu, tmp_path: Path) -> None:
    """The conftest QEMU (-machine none): no disks, no NICs; still exit 0, nothing n/a."""
    done = qmpsh(tmp_path, qemu.socket, "--vminfo")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    with RawMonitor(qemu.socket) as mon:
        assert info["block"] == mon.execute("query-block") == []
        assert info["vcpus"]["count"] == len(mon.execute("query-cpus-fast"))
    assert info["network"] == []
    pretty = qmpsh(tmp_path, qemu.socket, "--vminfo", "--format", "pretty")
    assert "block devices  none" in pretty.stdout
    assert "network devices  none" in pretty.stdout


# -- what no QEMU does: missing queries, wrong shapes (fake server) ---------------------------


def _serve(answers: dict[str, Any]) -> Any:
    """A server answering by command name; a name missing from ``answers`` is not found."""

    def script(conn: FakeConnection) -> None:
        conn.handshake()
        while True:
            request = conn.read()
            name = request.get("execute")
            if name in answers:
                conn.reply(request, answers[name])
                continue
            error = {"class": "CommandNotFound", "desc": f"The command {name} has not been found"}
            conn.send({"error": error, **({"id": request["id"]} if "id" in request else {})})

    return script


def test_missing_queries_say_na_and_the_rest_shows(tmp_path: Path) -> None:
    sock = str(tmp_path / "fake.sock")
    answers = {"query-name": {"name": "old"}, "query-status": {"status": "running"}}
    with FakeQmpServer(sock, _serve(answers)):
        done = qmpsh(tmp_path, sock, "--vminfo")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["name"] == "old" and info["status"]["status"] == "running"
    assert info["spice"] is None and "CommandNotFound" in info["unavailable"]["spice"]
    assert info["network"] is None and info["block"] is None
    with FakeQmpServer(sock, _serve(answers)):
        pretty = qmpsh(tmp_path, sock, "--vminfo", "--format", "pretty")
    assert pretty.returncode == 0, pretty.stderr
    assert "SPICE  n/a" in pretty.stdout and "block devices  n/a" in pretty.stdout
    assert "running" in pretty.stdout


def test_guest_agent_like_server_is_all_na(tmp_path: Path) -> None:
    sock = str(tmp_path / "fake.sock")
    with FakeQmpServer(sock, _serve({})):
        done = qmpsh(tmp_path, sock, "--vminfo", "--format", "pretty")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("n/a") >= 12


HOSTILE = [None, True, -1, 2**70, 1.5, "\x1b[2J", [], {}, [None, 1, "x", [], {}], {"x": [1]}]
SHAPED = {  # the right outer shape, with hostile values inside
    "query-block": lambda v: [{"device": v, "inserted": {"drv": v, "image": v, "ro": v}}, v],
    "query-spice": lambda v: {"enabled": True, "port": v, "channels": [{"connection-id": v}, v]},
    "query-vnc-servers": lambda v: [{"id": v, "server": [v, {"host": v}], "clients": v}],
    "query-chardev": lambda v: [{"label": v, "filename": v, "frontend-open": v}, v],
    "qom-list": lambda v: [{"name": v, "type": "child<e1000>"}, {"name": "a", "type": v}, v],
    "qom-get": lambda v: v,
    "query-memory-size-summary": lambda v: {"base-memory": v, "plugged-memory": v},
    "query-version": lambda v: {"qemu": {"major": v, "minor": 1, "micro": 2}, "package": v},
    "query-status": lambda v: {"status": v, "running": v},
    "query-cpus-fast": lambda v: [v, {"thread-id": v}],
}


class _Replies:
    """Answers ``submit`` from a table at once: the parsing is under test, not the wire."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def submit(self, message: dict[str, Any]) -> Any:
        return _Done(self.answer(message["execute"]))


class _Done:
    def __init__(self, reply: Any) -> None:
        self.reply = reply

    def result(self, timeout: float | None = None) -> Any:
        return self.reply

    def abandon(self) -> None:
        pass


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_any_json_value_in_any_field_is_survived(value: Any) -> None:
    """Whole replies of the wrong type, and right shapes with wrong leaves."""
    for answer in (
        lambda name: {"return": value},
        lambda name: {"return": SHAPED.get(name, lambda v: v)(value)},
        lambda name: {"error": value},
        lambda name: value,
    ):
        info = gather(_Replies(answer), 5.0)  # type: ignore[arg-type]
        json.dumps(info)  # still one JSON object
        for width in (40, 80, 160):
            text = format_pretty(info, width)
            assert max(len(line) for line in text.splitlines()) <= width
            assert "\x1b" not in text
        assert all("\x1b" not in cell for cell in summary_row(info).values())


# -- exit codes ----------------------------------------------------------------------------------


def test_vminfo_exit_codes(tmp_path: Path, vm: Qemu) -> None:
    with_c = qmpsh(tmp_path, vm.socket, "--vminfo", "-c", "query-status")
    assert with_c.returncode == 2 and "--vminfo" in with_c.stderr
    gone = qmpsh(tmp_path, str(tmp_path / "no.sock"), "--vminfo")
    assert gone.returncode == 3 and gone.stdout == ""
    sock = str(tmp_path / "hangup.sock")

    def hang_up_after_greeting(conn: FakeConnection) -> None:
        conn.handshake()
        conn.read()  # the first query: then the line goes dead

    with FakeQmpServer(sock, hang_up_after_greeting):
        lost = qmpsh(tmp_path, sock, "--vminfo")
    assert lost.returncode == 3, lost.stderr
    assert "Traceback" not in lost.stderr and len(lost.stderr.splitlines()) == 1


# -- libvirt targets -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab() -> Iterator[LibvirtLab]:
    lab = LibvirtLab()
    try:
        yield lab.start()
    finally:
        lab.stop()


def test_libvirt_domain_overview_matches_libvirt(lab: LibvirtLab, tmp_path: Path) -> None:
    """The same overview through libvirt-python; facts checked with virsh."""
    name = lab.create_domain("vminfo")
    done = qmpsh(tmp_path, f"libvirt:{name}", "--vminfo", "-q")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["name"] == name
    assert info["uuid"] == virsh("domuuid", name).stdout.strip()
    assert info["status"]["running"] is (domain_state(name) == "running")
    display = virsh("domdisplay", name).stdout.strip()  # spice://127.0.0.1:PORT
    assert display.endswith(f"{info['spice']['host']}:{info['spice']['port']}")
    chardevs = json.loads(
        virsh("qemu-monitor-command", name, '{"execute":"query-chardev"}').stdout
    )["return"]
    assert [c["label"] for c in info["chardevs"]] == [c["label"] for c in chardevs]
    assert info["unavailable"] == {}
