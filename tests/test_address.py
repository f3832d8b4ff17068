"""Address parsing (a table) and ``launch_qemu`` against a real QEMU."""

from __future__ import annotations

import os
import socket
import stat
import tempfile
from pathlib import Path

import pytest

from qmpsh import address
from qmpsh.address import TcpAddress, UnixAddress, launch_qemu, parse_address
from qmpsh.client import QmpClient
from qmpsh.errors import InputError, LaunchError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/tmp/qmp.sock", UnixAddress("/tmp/qmp.sock")),
        ("qmp.sock", UnixAddress("qmp.sock")),
        ("./dir:with:colons/qmp", UnixAddress("./dir:with:colons/qmp")),
        ("unix:/run/q.sock", UnixAddress("/run/q.sock")),
        ("unix:rel:colon", UnixAddress("rel:colon")),
        ("  /padded.sock ", UnixAddress("/padded.sock")),
        ("localhost:4444", TcpAddress("localhost", 4444)),
        ("127.0.0.1:4444", TcpAddress("127.0.0.1", 4444)),
        ("example.org:1", TcpAddress("example.org", 1)),
        ("[::1]:4444", TcpAddress("::1", 4444)),
        ("tcp:127.0.0.1:65535", TcpAddress("127.0.0.1", 65535)),
    ],
)
def test_parse_good(text: str, expected: object) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("", "empty monitor address", None),
        ("   ", "empty monitor address", None),
        ("unix:", "needs a socket path", 6),
        ("host:notaport", "bad port 'notaport'", 6),
        ("host:", "bad port ''", 6),
        ("host:0", "bad port '0'", 6),
        ("host:65536", "bad port '65536'", 6),
        ("[::1", "missing ']'", 1),
        ("[::1]4444", "missing ':PORT'", 6),
        ("[::1]:x", "bad port 'x'", 7),
        ("tcp:[::1]:", "bad port ''", 11),
        (":4444", "missing host", 1),
        ("::1:4444", "IPv6 addresses need brackets", 1),
    ],
)
def test_parse_bad(text: str, message: str, column: int | None) -> None:
    with pytest.raises(InputError) as info:
        parse_address(text)
    assert message in info.value.message
    assert info.value.column == column


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        (UnixAddress("/x.sock"), "/x.sock"),
        (TcpAddress("localhost", 4444), "localhost:4444"),
        (TcpAddress("::1", 4444), "[::1]:4444"),
    ],
)
def test_display_form(address: object, shown: str) -> None:
    assert str(address) == shown


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("127.0.0.1", True), ("127.3.4.5", True), ("::1", True),
     ("10.0.0.1", False), ("example.org", False), ("::2", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert TcpAddress(host, 1).is_loopback is loopback


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_launch_gives_working_qemu_with_vnc_and_spice() -> None:
    qemu = launch_qemu()
    try:
        assert stat.S_IMODE(qemu.temp_dir.stat().st_mode) == 0o700
        assert qemu.vnc_port >= 5900
        assert qemu.spice_port != qemu.vnc_port
        with QmpClient(UnixAddress(qemu.socket_path), timeout=10) as client:
            client.connect()
            assert client.execute("query-status")["status"] == "prelaunch"  # -S: no CPU burnt
            vnc = client.execute("query-vnc")
            spice = client.execute("query-spice")
        assert vnc["enabled"] and vnc["service"] == str(qemu.vnc_port)
        assert spice["enabled"] and spice["port"] == qemu.spice_port
    finally:
        qemu.stop()
    assert not _pid_alive(qemu.pid)
    assert not qemu.temp_dir.exists()
    qemu.stop()  # idempotent


def test_extra_args_override_machine() -> None:
    with launch_qemu(["-M", "q35", "-S"]) as qemu, QmpClient(UnixAddress(qemu.socket_path)) as c:
        c.connect()
        assert c.execute("qom-get", {"path": "/machine", "property": "type"}).startswith("pc-q35")
        assert c.execute("query-status")["status"] == "prelaunch"


def test_stop_after_qemu_quit_itself() -> None:
    qemu = launch_qemu()
    try:
        with QmpClient(UnixAddress(qemu.socket_path)) as client:
            client.connect()
            client.execute("quit")
        assert qemu.proc.wait(timeout=10) == 0
    finally:
        qemu.stop()
    assert not qemu.temp_dir.exists()


def test_missing_binary_is_a_clear_error() -> None:
    with pytest.raises(LaunchError) as info:
        launch_qemu(binary="qemu-system-nonexistent")
    assert str(info.value) == (
        "qemu-system-nonexistent not found on PATH; "
        "install it (Debian: apt-get install qemu-system-x86)"
    )


def test_early_exit_reports_stderr_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # mkdtemp creates it here
    with pytest.raises(LaunchError) as info:
        launch_qemu(["-bogus"])
    assert "QEMU exited early" in str(info.value)
    assert "-bogus: invalid option" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_port_taken_after_check_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """QEMU greets, then exits on the VNC clash: launch must notice and try new ports."""
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", address.free_port(address.VNC_BASE_PORT)))
    blocker.listen()
    taken = blocker.getsockname()[1]
    real_free_port = address.free_port
    handed: list[int] = []

    def first_one_taken(start: int = 0, *, avoid: int = 0) -> int:
        port = taken if start and not handed else real_free_port(start, avoid=avoid)
        handed.append(port)
        return port

    monkeypatch.setattr(address, "free_port", first_one_taken)
    with blocker, launch_qemu() as qemu, QmpClient(UnixAddress(qemu.socket_path)) as c:
        c.connect()
        assert c.execute("query-vnc")["service"] == str(qemu.vnc_port)
    assert handed[0] == taken and qemu.vnc_port != taken
