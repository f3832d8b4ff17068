"""How long ``vminfo`` takes to ask QEMU everything it shows, and what pipelining buys.

One QEMU (``-machine pc``: a null-co disk, an IDE CD-ROM, two e1000 NICs, a chardev,
SPICE and VNC on unix sockets) serves every run.  ``gather`` is run once to record the
messages it sends (about 20 queries, then one ``qom-get netdev`` per device and one
``qom-get mac`` per NIC).  Then, runs interleaved:

In process (the time of asking, no interpreter start-up):
- qmpsh: ``qmpsh.vminfo.gather`` (each round's requests in flight together);
- qmpsh, lock-step: the same messages through the same client, one at a time;
- raw limit: a bare socket sending each round at once and counting reply lines.

Whole processes, start to exit:
- qmpsh: ``qmpsh SOCK --vminfo`` (JSON out);
- qmp-shell (the peer): fed the same messages as lines on stdin, one at a time, as it
  can only do (it has no overview command);
- raw limit: the bare-socket client as a process.

    python benchmarks/vminfo.py            # 20 runs in process, 5 whole-process runs
    python benchmarks/vminfo.py --quick    # 5 and 2
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import (
    Qemu,
    install_sigterm_handler,
    median,
    peer_python,
    peer_qmp_shell,
    qmpsh_argv,
    table,
)

from qmpsh.address import parse_address
from qmpsh.client import QmpClient
from qmpsh.vminfo import FIRST_ROUND, gather

MACHINE = ("-machine", "pc", "-display", "none", "-nodefaults", "-S")

RAW_SCRIPT = r"""
import json, socket, sys
path, rounds = sys.argv[1], json.loads(sys.stdin.read())
s = socket.socket(socket.AF_UNIX)
s.connect(path)
f = s.makefile("rb")
while b'"QMP"' not in f.readline():
    pass
s.sendall(b'{"execute":"qmp_capabilities"}\n')
while b'"return"' not in f.readline():
    pass
for batch in rounds:
    s.sendall(b"".join(json.dumps(m).encode() + b"\n" for m in batch))
    left = len(batch)
    while left:
        line = f.readline()
        if b'"return"' in line or b'"error"' in line:
            left -= 1
sys.stdout.write("ok\n")
"""


def qemu_args(tmp: str) -> list[str]:
    return [
        *MACHINE,
        "-blockdev", "driver=null-co,node-name=null0,size=1048576",
        "-device", "ide-hd,drive=null0,id=disk0,bus=ide.0",
        "-drive", "if=ide,media=cdrom,id=cd0,index=2",
        "-nic", "user,model=e1000,id=n0",
        "-netdev", "user,id=u1", "-device", "e1000,id=nic1,netdev=u1",
        "-chardev", "null,id=ch0",
        "-vnc", f"unix:{tmp}/vnc.sock",
        "-spice", f"unix=on,addr={tmp}/spice.sock,disable-ticketing=on",
    ]  # fmt: skip


def record_rounds(sock: str) -> list[list[dict[str, Any]]]:
    """The messages ``gather`` sends, split into its three rounds."""
    sent: list[dict[str, Any]] = []
    with QmpClient(parse_address(sock)) as client:
        client.add_transcript_listener(
            lambda direction, m: sent.append(m) if direction == "out" else None
        )
        client.connect()
        gather(client, 30.0)
    sent = [{k: v for k, v in m.items() if k != "id"} for m in sent[1:]]  # no negotiation
    first = sent[: len(FIRST_ROUND)]
    rest = sent[len(FIRST_ROUND) :]

    def prop(name: str) -> list[dict[str, Any]]:
        return [m for m in rest if m.get("arguments", {}).get("property") == name]

    return [first, prop("netdev"), prop("mac")]


def time_gather(client: QmpClient) -> float:
    start = time.perf_counter()
    gather(client, 30.0)
    return time.perf_counter() - start


def time_lockstep(client: QmpClient, messages: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    for message in messages:
        client.execute_message(message)
    return time.perf_counter() - start


def time_raw(sock: str, rounds: list[list[dict[str, Any]]]) -> float:
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    f = s.makefile("rb")
    while b'"QMP"' not in f.readline():
        pass
    s.sendall(b'{"execute":"qmp_capabilities"}\n')
    while b'"return"' not in f.readline():
        pass
    start = time.perf_counter()
    for batch in rounds:
        s.sendall(b"".join(json.dumps(m).encode() + b"\n" for m in batch))
        for _ in batch:
            f.readline()
    elapsed = time.perf_counter() - start
    f.close()
    s.close()
    return elapsed


def time_process(argv: list[str], stdin: str, check: Callable[[str], bool]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or not check(done.stdout):
        raise SystemExit(f"{argv[0]} failed: {done.stderr[-500:]}")
    return elapsed


def shell_line(message: dict[str, Any]) -> str:
    """A message as a qmp-shell line (key=value; values here are plain words)."""
    args = " ".join(
        f"{k}={json.dumps(v) if isinstance(v, bool) else v}"
        for k, v in message.get("arguments", {}).items()
    )
    return f"{message['execute']} {args}".rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    install_sigterm_handler()
    runs, process_runs = (5, 2) if quick else (20, 5)
    peer = peer_qmp_shell()
    import tempfile

    with (
        tempfile.TemporaryDirectory(prefix="qmpsh-bench-vminfo-") as tmp,
        Qemu(qemu_args(tmp), monitors=2) as qemu,
    ):
        rounds = record_rounds(qemu.socket)
        messages = [m for batch in rounds for m in batch]
        inproc: dict[str, list[float]] = {"qmpsh": [], "qmpsh lock-step": [], "raw": []}
        with QmpClient(parse_address(qemu.socket)) as client:
            client.connect()
            for _ in range(runs):
                inproc["qmpsh"].append(time_gather(client))
                inproc["qmpsh lock-step"].append(time_lockstep(client, messages))
                inproc["raw"].append(time_raw(qemu.sockets[1], rounds))  # its own monitor
        whole: dict[str, list[float]] = {"qmpsh --vminfo": [], "qmp-shell": [], "raw": []}
        lines = "\n".join(shell_line(m) for m in messages) + "\n"
        for _ in range(process_runs):
            whole["qmpsh --vminfo"].append(
                time_process(qmpsh_argv(qemu.socket, "--vminfo"), "", lambda o: '"vcpus"' in o)
            )
            whole["qmp-shell"].append(
                time_process([str(peer), qemu.socket], lines, lambda o: "return" in o)
            )
            whole["raw"].append(
                time_process(
                    [str(peer_python()), "-c", RAW_SCRIPT, qemu.socket],
                    json.dumps(rounds),
                    lambda o: o == "ok\n",
                )
            )
    print(f"messages per overview: {len(messages)} in {len(rounds)} rounds "
          f"({', '.join(str(len(b)) for b in rounds)})")  # fmt: skip
    print(f"\nasking, in process (median of {runs}):")
    limit = median(inproc["raw"])
    print(table(("client", "ms", "x raw"), _rows(inproc, limit)))
    print(f"\nwhole process, start to exit (median of {process_runs}):")
    limit = median(whole["raw"])
    print(table(("client", "ms", "x raw"), _rows(whole, limit)))


def _rows(results: dict[str, list[float]], limit: float) -> list[list[str]]:
    return [
        [name, f"{median(times) * 1000:.1f}", f"{median(times) / limit:.2f}"]
        for name, times in results.items()
    ]


if __name__ == "__main__":
    sys.exit(main())
