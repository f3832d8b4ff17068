"""File descriptors (``getfd``/``add-fd`` with ``file=``) and out-of-band commands (``oob``).

Against a real QEMU through a real ``python -m qmpsh``, with the transcript as the
witness of what went on the wire.  The fd tests run as one script: QEMU drops an
fdset nobody uses when its last QMP client disconnects, so the ``blockdev-add`` that
opens ``/dev/fdset/N`` must come in the same session as the ``add-fd``.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from libvirt_lab import LibvirtLab
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from qemu import Qemu, RawMonitor, free_port
from qga_lab import QemuGa
from support import private_env

from qmpsh.completer import QmpCompleter
from qmpsh.errors import InputError
from qmpsh.fds import close_passed, open_passed
from qmpsh.request import Argument
from qmpsh.schema import Schema
from qmpsh.syntax import Syntax

# What QEMU 7.2's schema marks "allow-oob": true (reach-lab.md checked it by hand).
OOB_COMMANDS = ["migrate-pause", "migrate-recover", "query-yank", "yank"]
IMAGE_SIZE = 3 * 1024 * 1024 + 512 * 7  # an odd size QEMU can only learn from the file


def qmpsh(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qmpsh", "--format", "json", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=private_env(tmp_path),
        timeout=60,
    )


def transcript(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(direction, message) of every line; each line must be JSON on its own."""
    return [(e["dir"], e["msg"]) for e in map(json.loads, path.read_text().splitlines())]


def sent(entries: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [msg for way, msg in entries if way == "out"]


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.raw"
    path.write_bytes(b"\0" * IMAGE_SIZE)
    return path


# -- file descriptors ----------------------------------------------------------------


def test_add_fd_then_blockdev_add_opens_the_fdset_qemu_never_sees_the_path(
    qemu: Qemu, tmp_path: Path, image: Path
) -> None:
    log = tmp_path / "t.jsonl"
    script = "\n".join(
        [
            f"add-fd fdset-id=7 opaque=mine file={image}",
            "blockdev-add driver=raw node-name=viafd file.driver=file file.filename=/dev/fdset/7",
            "query-named-block-nodes",
            "blockdev-del node-name=viafd",
        ]
    )
    result = qmpsh(tmp_path, qemu.socket, "--transcript", str(log), stdin=script)
    assert result.returncode == 0, result.stderr
    added, blockdev, nodes, deleted = map(json.loads, result.stdout.splitlines())
    assert added["fdset-id"] == 7 and isinstance(added["fd"], int)
    assert blockdev == {} and deleted == {}
    node = next(n for n in nodes if n["node-name"] == "viafd")
    assert node["image"]["virtual-size"] == IMAGE_SIZE  # QEMU read the file through the fd
    assert node["file"] == "/dev/fdset/7"

    entries = transcript(log)
    outgoing = sent(entries)
    add = next(m for m in outgoing if m.get("execute") == "add-fd")
    assert add["arguments"] == {"fdset-id": 7, "opaque": "mine"}  # file= stayed here
    assert all(str(image) not in json.dumps(m) for m in outgoing)  # never on the wire
    at = entries.index(("out", add))
    assert entries[at - 1] == ("fd", {"file": str(image)})  # the transcript notes the fd


def test_getfd_then_closefd_proves_the_fd_arrived(qemu: Qemu, tmp_path: Path, image: Path) -> None:
    script = f"getfd fdname=passed file={image}\nclosefd fdname=passed\nclosefd fdname=never\n"
    result = qmpsh(tmp_path, qemu.socket, stdin=script)
    assert result.returncode == 1  # the last line failed, as it must
    assert result.stdout.splitlines() == ["{}", "{}"]
    assert result.stderr.splitlines() == [
        "error: GenericError: File descriptor named 'never' not found"
    ]


def test_a_file_that_cannot_be_written_is_passed_read_only(tmp_path: Path) -> None:
    # root may write any plain file; a directory never opens read-write (EISDIR)
    word = f"file={tmp_path}"
    argument = Argument(("file",), str(tmp_path), str(tmp_path), False, 1, 6)
    passed = open_passed(argument)
    try:
        assert passed.path == str(tmp_path) and word.endswith(passed.path)
        flags = fcntl.fcntl(passed.fd, fcntl.F_GETFL)
        assert flags & os.O_ACCMODE == os.O_RDONLY
        assert fcntl.fcntl(passed.fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    finally:
        close_passed((passed,))


def test_a_missing_file_is_one_input_error_and_nothing_is_sent(qemu: Qemu, tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    missing = tmp_path / "no-such.img"
    lines = f"getfd fdname=x file={missing}\nquery-status\n"
    result = qmpsh(tmp_path, qemu.socket, "--transcript", str(log), stdin=lines)
    assert result.returncode == 2
    column = len("getfd fdname=x file=") + 1
    assert result.stderr.splitlines() == [
        f"error: line 1, col {column}: file={str(missing)!r}: No such file or directory"
    ]
    assert json.loads(result.stdout)["status"]  # the session went on
    assert not [m for m in sent(transcript(log)) if m.get("execute") == "getfd"]


def test_getfd_without_file_is_refused_before_sending(qemu: Qemu, tmp_path: Path) -> None:
    result = qmpsh(tmp_path, qemu.socket, "-c", "getfd fdname=x")
    assert result.returncode == 2
    assert "getfd needs file=PATH" in result.stderr


def test_a_tcp_monitor_cannot_take_a_descriptor(
    qemu_factory: Any, tmp_path: Path, image: Path
) -> None:
    port = free_port()
    qemu_factory("-qmp", f"tcp:127.0.0.1:{port},server=on,wait=off")
    log = tmp_path / "t.jsonl"
    line = f"getfd fdname=x file={image}"
    result = qmpsh(tmp_path, f"127.0.0.1:{port}", "--wait", "10", "-l", str(log), "-c", line)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: col 16: file=: 127.0.0.1:{port} cannot take a file descriptor "
        "(only a QMP unix socket can; nothing was sent)"
    ]
    assert not [m for m in sent(transcript(log)) if m.get("execute") == "getfd"]


# -- out of band --------------------------------------------------------------------


def test_oob_goes_as_exec_oob_with_an_id_and_others_are_refused_locally(
    qemu: Qemu, tmp_path: Path
) -> None:
    log = tmp_path / "t.jsonl"
    script = "oob query-yank\noob migrate-pause\nmigrate-pause\noob query-status\n"
    result = qmpsh(tmp_path, qemu.socket, "--transcript", str(log), stdin=script)
    assert result.returncode == 2  # the worst: a line refused before sending
    assert isinstance(json.loads(result.stdout.splitlines()[0]), list)  # query-yank's list
    errors = result.stderr.splitlines()
    paused = "error: GenericError: migrate-pause is currently only supported"
    assert errors[0].startswith(paused) and errors[1] == errors[0]  # QEMU's words, both ways
    assert errors[2] == (
        "error: line 4, col 5: query-status cannot run out of band "
        f"(these can: {', '.join(OOB_COMMANDS)})"
    )

    entries = transcript(log)
    outgoing = sent(entries)
    negotiation = next(m for m in outgoing if m.get("execute") == "qmp_capabilities")
    assert negotiation["arguments"] == {"enable": ["oob"]}
    yank = next(m for m in outgoing if m.get("exec-oob") == "query-yank")
    pauses = [m for m in outgoing if "migrate-pause" in (m.get("execute"), m.get("exec-oob"))]
    assert [("exec-oob" in m) for m in pauses] == [True, False]
    assert isinstance(yank.get("id"), str) and isinstance(pauses[0].get("id"), str)
    replies = [msg for way, msg in entries if way == "in" and msg.get("id") == yank["id"]]
    assert len(replies) == 1 and "return" in replies[0]
    assert not [m for m in outgoing if "query-status" in (m.get("execute"), m.get("exec-oob"))]


@pytest.fixture(scope="module")
def ga() -> Iterator[QemuGa]:
    with QemuGa() as agent:
        yield agent


def test_the_guest_agent_refuses_oob_and_fds_locally(
    ga: QemuGa, tmp_path: Path, image: Path
) -> None:
    log = tmp_path / "t.jsonl"
    lines = f"oob guest-ping\ngetfd fdname=x file={image}\nguest-ping\n"
    result = qmpsh(tmp_path, f"qga:{ga.socket_path}", "-l", str(log), stdin=lines)
    assert result.returncode == 2
    oob_error, fd_error = result.stderr.splitlines()
    assert oob_error.startswith("error: line 1, col 5: oob: ") and "out-of-band" in oob_error
    assert fd_error.startswith("error: line 2, col 16: file=: ") and "cannot take" in fd_error
    assert result.stdout.strip() == "{}"  # guest-ping still ran
    outgoing = sent(transcript(log))
    assert not [m for m in outgoing if "exec-oob" in m or m.get("execute") == "getfd"]
    assert [m for m in outgoing if m.get("execute") == "guest-ping"]


# -- the language and completion ---------------------------------------------------------


def test_oob_is_a_prefix_of_one_command() -> None:
    syntax = Syntax(shell_words={"help"})
    command = syntax.parse("oob yank instances=[]")
    assert command is not None and command.name == "yank" and command.oob  # type: ignore[union-attr]
    with pytest.raises(InputError, match="'oob' needs a command"):
        syntax.parse("oob")
    assert syntax.analyze("oob y").oob and not syntax.analyze("y").oob
    assert [t.kind for t in syntax.tokenize("oob yank")] == ["shell", "whitespace", "command"]


@pytest.fixture(scope="module")
def completer(qemu: Qemu) -> QmpCompleter:
    monitor = RawMonitor(qemu.socket)
    try:
        schema = Schema.from_entries(monitor.execute("query-qmp-schema"))
    finally:
        monitor.sock.close()
    return QmpCompleter(lambda: schema)


def offered(completer: QmpCompleter, text: str) -> list[str]:
    found = completer.get_completions(Document(text), CompleteEvent())
    return [c.text for c in found]


def test_completion_after_oob_offers_only_out_of_band_commands(completer: QmpCompleter) -> None:
    assert sorted(offered(completer, "oob ")) == OOB_COMMANDS
    assert "oob" in offered(completer, "oo")


def test_completion_offers_file_and_local_paths_for_fd_commands(
    completer: QmpCompleter, tmp_path: Path
) -> None:
    assert "file=" in offered(completer, "getfd fdname=x ")
    assert "file=" in offered(completer, "add-fd ")
    assert "file=" not in offered(completer, "closefd ")
    (tmp_path / "disk-a.img").touch()
    (tmp_path / "disk-b.img").touch()
    assert sorted(offered(completer, f"add-fd file={tmp_path}/disk-")) == ["a.img", "b.img"]


# -- libvirt: qemuMonitorCommandWithFiles, and no oob ----------------------------------------


@pytest.fixture(scope="module")
def libvirt_domain() -> Iterator[str]:
    lab = LibvirtLab()
    try:
        lab.start()
        yield lab.create_domain("fds")
    finally:
        lab.stop()


def test_libvirt_passes_fds_and_refuses_oob(
    libvirt_domain: str, tmp_path: Path, image: Path
) -> None:
    log = tmp_path / "t.jsonl"
    script = "\n".join(
        [
            f"getfd fdname=viavirt file={image}",
            "closefd fdname=viavirt",
            "closefd fdname=viavirt",  # gone now: QEMU's own "not found"
            "oob query-yank",
        ]
    )
    result = qmpsh(tmp_path, f"libvirt:{libvirt_domain}", "-q", "-l", str(log), stdin=script)
    assert result.returncode == 2, result.stderr
    assert result.stdout.splitlines() == ["{}", "{}"]
    not_found, refused = result.stderr.splitlines()
    assert not_found == "error: GenericError: File descriptor named 'viavirt' not found"
    assert refused.startswith("error: line 4, col 5: oob: libvirt:") and "out-of-band" in refused
    entries = transcript(log)
    getfd = next(m for m in sent(entries) if m.get("execute") == "getfd")
    assert entries[entries.index(("out", getfd)) - 1] == ("fd", {"file": str(image)})
    assert not [m for m in sent(entries) if "exec-oob" in m]


def test_help_explains_oob_and_file(qemu: Qemu, tmp_path: Path) -> None:
    result = qmpsh(tmp_path, qemu.socket, "-c", "oob?", "-c", "help getfd", "-c", "help")
    assert result.returncode == 0, result.stderr
    assert f"these allow it: {', '.join(OOB_COMMANDS)}" in result.stdout
    assert "file=PATH (qmpsh's)" in result.stdout
    assert "oob COMMAND [key=value …]" in result.stdout.split("shell commands:")[-1]
