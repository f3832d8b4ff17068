"""`info X` rendered from QMP queries must read exactly like QEMU's own HMP output."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from peers import make_spice_x509_dir, spice_link, spice_session, vnc_connect
from qemu import Qemu, RawMonitor, free_port

from qmpsh.hmp import (
    INFO_QUERIES,
    format_info,
    hmp_command,
    info_subcommands,
    query_for_info,
)

HOST = "127.0.0.1"
PC = ("-M", "pc", "-S", "-display", "none", "-nodefaults")


@pytest.fixture(scope="module")
def mon(qemu: Qemu) -> Iterator[RawMonitor]:
    with RawMonitor(qemu.socket) as m:
        yield m


def hmp(mon: RawMonitor, line: str) -> str:
    name, args = hmp_command(line)
    text: str = mon.execute(name, **args)
    return text.replace("\r\n", "\n")


def assert_same(mon: RawMonitor, sub: str) -> None:
    """format_info(sub, query reply) == HMP's own `info sub`, read right after."""
    value = mon.execute(INFO_QUERIES[sub])
    assert format_info(sub, value) == hmp(mon, f"info {sub}")


@pytest.mark.parametrize("sub", ["status", "version", "name", "kvm", "uuid", "mice", "chardev"])
def test_simple_info_matches_hmp(mon: RawMonitor, sub: str) -> None:
    assert_same(mon, sub)


@pytest.mark.parametrize("sub", ["cpus", "block", "block-jobs", "vnc", "spice"])
def test_empty_or_idle_info_matches_hmp(mon: RawMonitor, sub: str) -> None:
    assert_same(mon, sub)


def test_info_spice_with_live_channels(qemu: Qemu, mon: RawMonitor) -> None:
    assert qemu.spice_port is not None
    channels = spice_session(HOST, qemu.spice_port)
    try:
        for _ in channels:
            mon.wait_event("SPICE_INITIALIZED")
        value = mon.execute("query-spice")
        assert len(value["channels"]) == 2
        text = format_info("spice", value)
        assert text == hmp(mon, "info spice")
        assert "     channel name: inputs\n" in (text or "")
    finally:
        for ch in channels:
            ch.close()
    mon.wait_event("SPICE_DISCONNECTED")


def test_info_vnc_with_client(qemu: Qemu, mon: RawMonitor) -> None:
    assert qemu.vnc_port is not None
    sock = vnc_connect(HOST, qemu.vnc_port)
    try:
        mon.wait_event("VNC_INITIALIZED")
        text = format_info("vnc", mon.execute("query-vnc-servers"))
        assert text == hmp(mon, "info vnc")
        assert f"  Client: {HOST}:{sock.getsockname()[1]} (ipv4)\n" in (text or "")
    finally:
        sock.close()
    mon.wait_event("VNC_DISCONNECTED")


def test_info_status_paused(mon: RawMonitor) -> None:
    mon.execute("stop")
    try:
        assert_same(mon, "status")
        assert hmp(mon, "info status") == "VM status: paused\n"
    finally:
        mon.execute("cont")


def test_info_spice_tls_and_disabled(qemu_factory: Callable[..., Qemu], tmp_path: Path) -> None:
    certs = make_spice_x509_dir(tmp_path / "x509")
    tls_port = free_port()
    spice = f"addr={HOST},port={free_port()},tls-port={tls_port},disable-ticketing=on"
    q = qemu_factory("-spice", f"{spice},x509-dir={certs}")
    with RawMonitor(q.socket) as m:
        assert_same(m, "spice")  # "Channels: none" and both addresses
        with spice_link(HOST, tls_port, 1, tls=True):
            m.wait_event("SPICE_INITIALIZED")
            assert_same(m, "spice")
            assert "[tls]\n     session:" in hmp(m, "info spice")
    plain = qemu_factory()
    with RawMonitor(plain.socket) as m:
        assert_same(m, "spice")
        assert hmp(m, "info spice") == "Server: disabled\n"


def test_pc_machine_infos(qemu_factory: Callable[..., Qemu]) -> None:
    drives = [
        "-smp", "2", "-name", "vm-test", "-chardev", "null,id=n0",
        "-drive", "if=ide,index=2,media=cdrom",
        "-drive", "if=none,id=drive0,driver=null-co,read-only=on",
        "-drive", "if=none,id=d1,format=raw,file.driver=null-co,cache=none,detect-zeroes=on",
    ]  # fmt: skip
    q = qemu_factory(*drives, machine=PC)
    with RawMonitor(q.socket) as m:
        for sub in ("cpus", "mice", "block", "status", "name", "chardev"):
            assert_same(m, sub)
        assert hmp(m, "info status") == "VM status: paused (prelaunch)\n"
        assert hmp(m, "info name") == "vm-test\n"


def test_block_throttled_defers_to_hmp(qemu_factory: Callable[..., Qemu]) -> None:
    q = qemu_factory("-drive", "if=none,id=d0,driver=null-co,throttling.bps-total=1000000")
    with RawMonitor(q.socket) as m:
        assert format_info("block", m.execute("query-block")) is None


def test_block_jobs_with_a_job(qemu_factory: Callable[..., Qemu]) -> None:
    q = qemu_factory()
    with RawMonitor(q.socket) as m:
        for node in ("src", "tgt"):
            m.execute("blockdev-add", driver="null-co", **{"node-name": node, "size": 2**30})
        m.execute("blockdev-backup", **{"job-id": "job0"}, device="src", target="tgt",
                  sync="full", speed=1)  # fmt: skip
        assert_same(m, "block-jobs")
        assert hmp(m, "info block-jobs").startswith("Type backup, device job0: Completed ")


def test_query_for_info() -> None:
    commands = {"query-spice", "query-status"}
    assert query_for_info(["info", "spice"], commands) == "query-spice"
    assert query_for_info(["status"], commands) == "query-status"
    assert query_for_info(["info", "vnc"], commands) is None  # server lacks it
    assert query_for_info(["info", "block", "-v"], {"query-block"}) is None
    assert query_for_info(["info", "registers"], commands) is None
    assert query_for_info([], commands) is None


def test_format_info_unknown_or_odd_shapes() -> None:
    assert format_info("registers", {}) is None
    assert format_info("vnc", {"enabled": False}) is None  # query-vnc shape, not servers
    assert format_info("status", {"running": True}) is not None
    assert format_info("kvm", {}) is None


def test_info_subcommands_from_live_help(mon: RawMonitor) -> None:
    names = info_subcommands(hmp(mon, "help info"))
    assert {"spice", "vnc", "block", "block-jobs", "registers", "qom-tree"} <= set(names)
    assert len(names) == len(set(names))
    assert set(INFO_QUERIES) <= set(names)
