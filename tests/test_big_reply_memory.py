"""A 64 MiB reply of small objects costs at most ~10x its size in every format.

What qmpsh pays on top of parsing the reply (the Python objects themselves, in
client.py) must stay small: json and raw write one compact string, pretty streams
indented JSON in chunks.  Pretty used to build the whole indented text as a list of
every token first (1168 MiB peak for this reply; 484 MiB now, the same as json).
The FAKE server sends the reply: QEMU has no command answering 64 MiB.  Memory is
asserted, never time (see benchmarks/ and the report for timings).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fake_qmp_server import FakeConnection, FakeQmpServer
from support import private_env
from test_faults import MEASURE

SIZE = 64 << 20
ITEM = b'{"node-name": "n1", "drv": "qcow2", "ro": false, "file": "/var/lib/x.qcow2"}'
COUNT = SIZE // (len(ITEM) + 2)
LIMIT_MIB = 10 * 64


def serve_big(conn: FakeConnection) -> None:
    conn.handshake()
    request = conn.read()
    echo = b', "id": ' + json.dumps(request["id"]).encode() if "id" in request else b""
    conn.send_raw(b'{"return": [' + b", ".join([ITEM] * COUNT) + b"]" + echo + b"}\n")
    conn.read()


@pytest.mark.parametrize("fmt", ["json", "raw", "pretty"])
def test_a_64_mib_reply_of_small_objects_stays_within_10x(tmp_path: Path, fmt: str) -> None:
    path = str(tmp_path / "fake.sock")
    maxrss = tmp_path / "maxrss"
    with FakeQmpServer(path, serve_big) as server:
        args = [sys.executable, "-m", "qmpsh", path, "--format", fmt, "--color", "always"]
        with open(tmp_path / "out", "wb") as out:
            done = subprocess.run(
                [sys.executable, "-c", MEASURE, str(maxrss), *args, "-c", '{"execute": "q"}'],
                stdout=out,
                stderr=subprocess.PIPE,
                env=private_env(tmp_path),
                timeout=600,  # a bound on a hang, not a timing assertion
                check=False,
            )
    assert server.error is None, server.error
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr
    peak_mib = int(maxrss.read_text()) / 1024
    print(f"{fmt}: 64 MiB reply, peak RSS {peak_mib:.0f} MiB")
    assert peak_mib < LIMIT_MIB
    assert (tmp_path / "out").stat().st_size > SIZE // 2  # it was printed, not dropped
