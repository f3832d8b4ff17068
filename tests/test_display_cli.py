"""The real ``python -m qmpsh`` prints whatever the terminal width and the reply hold.

* Any ``$COLUMNS`` (0, negative, huge, garbage) still prints (``COLUMNS=0 -p`` used to
  print nothing at all, with exit 0), on a real QEMU.
* A lone surrogate (``"\\ud800"``, legal JSON text) in a reply or an event prints in
  every format: json and raw keep the escape and stay valid JSON, pretty shows it.
  No QEMU sends one, so the FAKE server does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_qmp_server import FakeConnection, FakeQmpServer
from qemu import Qemu
from support import private_env

QMPSH = [sys.executable, "-m", "qmpsh"]


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*QMPSH, *args],
        capture_output=True,
        text=True,
        env=private_env(tmp_path, **env),
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("columns", ["0", "-5", "1", "99999999999", "abc", "", "1e3"])
def test_any_terminal_width_still_prints(qemu: Qemu, tmp_path: Path, columns: str) -> None:
    lines = ["query-status", "query-chardev", "query-version"]
    args = [qemu.socket, "-p"] + [arg for line in lines for arg in ("-c", line)]
    result = run(tmp_path, *args, COLUMNS=columns)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "VM status: running" in result.stdout
    assert "label" in result.stdout  # the chardev table's header
    assert '"qemu"' in result.stdout


SURROGATE_REPLY = b'{"return": {"name": "vm-\\ud800-\\udfff"}%s}\n'
SURROGATE_EVENT = (
    b'{"event": "ODD", "data": {"who": "\\udcff"},'
    b' "timestamp": {"seconds": 1, "microseconds": 2}}\n'
)


def serve_surrogates(conn: FakeConnection) -> None:
    conn.handshake()
    while True:
        request = conn.read()
        if request.get("execute") == "query-name":
            conn.send_raw(SURROGATE_EVENT)
            echo = b', "id": ' + json.dumps(request["id"]).encode() if "id" in request else b""
            conn.send_raw(SURROGATE_REPLY % echo)
        else:
            conn.reply(request, {})


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[str]:
    path = str(tmp_path / "fake.sock")
    with FakeQmpServer(path, serve_surrogates) as server:
        yield path
    assert server.error is None, server.error


@pytest.mark.parametrize("fmt", ["json", "raw", "pretty"])
def test_a_lone_surrogate_prints_in_every_format(fake: str, tmp_path: Path, fmt: str) -> None:
    result = run(
        tmp_path,
        fake,
        "--format",
        fmt,
        "-c",
        '{"execute": "query-name"}',
        "-c",
        "wait ODD",
        "--timeout",
        "20",
        COLUMNS="200",
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    if fmt == "pretty":
        assert "vm-\\ud800-\\udfff" in result.stdout  # shown as an escape
        assert "\\udcff" in result.stdout
        return
    reply, event = (json.loads(line) for line in result.stdout.splitlines())
    name = reply["return"]["name"] if fmt == "raw" else reply["name"]
    assert name == "vm-\ud800-\udfff"  # the same string, read back from valid JSON
    data = event["return"]["data"] if fmt == "raw" else event["data"]
    assert data == {"who": "\udcff"}
