"""The raw SPICE/VNC peers really make QEMU see clients (events and queries agree)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from peers import (
    CHANNEL_INPUTS,
    CHANNEL_MAIN,
    make_spice_x509_dir,
    spice_link,
    spice_session,
    vnc_connect,
)
from qemu import Qemu, RawMonitor, free_port

HOST = "127.0.0.1"


def test_spice_session_links_main_and_inputs(qemu: Qemu) -> None:
    assert qemu.spice_port is not None
    with RawMonitor(qemu.socket) as mon:
        channels = spice_session(HOST, qemu.spice_port)
        try:
            main = channels[0]
            assert main.session_id is not None
            for _ in channels:
                mon.wait_event("SPICE_CONNECTED")
                ev = mon.wait_event("SPICE_INITIALIZED")
                assert ev["data"]["client"]["connection-id"] % 2**32 == main.session_id
            info = mon.execute("query-spice")
            seen = {(c["channel-type"], int(c["port"])) for c in info["channels"]}
            assert seen == {
                (CHANNEL_MAIN, main.local_port),
                (CHANNEL_INPUTS, channels[1].local_port),
            }
            assert {c["connection-id"] % 2**32 for c in info["channels"]} == {main.session_id}
        finally:
            for ch in channels:
                ch.close()
        mon.wait_event("SPICE_DISCONNECTED")


def test_vnc_connect_initializes_and_disconnects(qemu: Qemu) -> None:
    assert qemu.vnc_port is not None
    with RawMonitor(qemu.socket) as mon:
        sock = vnc_connect(HOST, qemu.vnc_port)
        port = sock.getsockname()[1]
        ev = mon.wait_event("VNC_INITIALIZED")
        assert ev["data"]["client"]["service"] == str(port)
        clients = mon.execute("query-vnc")["clients"]
        assert [c["service"] for c in clients] == [str(port)]
        sock.close()
        ev = mon.wait_event("VNC_DISCONNECTED")
        assert ev["data"]["client"]["service"] == str(port)


def test_spice_tls_link(qemu_factory: Callable[..., Qemu], tmp_path: Path) -> None:
    certs = make_spice_x509_dir(tmp_path / "x509")
    port = free_port()
    spice = f"addr={HOST},tls-port={port},disable-ticketing=on,x509-dir={certs}"
    q = qemu_factory("-spice", spice)
    with RawMonitor(q.socket) as mon, spice_link(HOST, port, CHANNEL_MAIN, tls=True) as main:
        ev = mon.wait_event("SPICE_INITIALIZED")
        assert ev["data"]["client"]["tls"] is True
        info = mon.execute("query-spice")
        assert info["tls-port"] == port
        assert [c["tls"] for c in info["channels"]] == [True]
        assert info["channels"][0]["connection-id"] % 2**32 == main.session_id
