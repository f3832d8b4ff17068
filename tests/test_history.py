"""The history file: private modes, secrets never written, bounded on load."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from qmpsh.history import PrivateHistory


def modes(path: Path) -> tuple[int, int]:
    return stat.S_IMODE(path.parent.stat().st_mode), stat.S_IMODE(path.stat().st_mode)


def test_creates_dir_0700_and_file_0600_whatever_the_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        path = tmp_path / "state" / "qmpsh" / "history"
        PrivateHistory(path)
    finally:
        os.umask(old)
    assert modes(path) == (0o700, 0o600)


def test_an_existing_world_readable_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "history"
    path.write_text("")
    path.chmod(0o644)
    PrivateHistory(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "line",
    [
        "set_password protocol=vnc password=hunter2",
        "change-vnc-password password=x",
        "object-add qom-type=secret id=s0 data=letmein",
        '{"execute": "set_password", "arguments": {"password": "x"}}',
        "blockdev-add driver=luks key-secret=sec0 node-name=n",
    ],
)
def test_secret_lines_are_not_written(tmp_path: Path, line: str) -> None:
    path = tmp_path / "history"
    history = PrivateHistory(path)
    history.store_string("query-status")
    history.store_string(line)
    text = path.read_text()
    assert "query-status" in text
    assert line not in text


def test_lines_come_back_newest_first_and_bounded(tmp_path: Path) -> None:
    path = tmp_path / "history"
    writer = PrivateHistory(path)
    for i in range(5):
        writer.store_string(f"query-{i}")
    assert list(PrivateHistory(path).load_history_strings()) == [
        f"query-{i}" for i in range(4, -1, -1)
    ]
    assert list(PrivateHistory(path, max_entries=2).load_history_strings()) == [
        "query-4",
        "query-3",
    ]


def test_unwritable_location_keeps_the_session_going(tmp_path: Path) -> None:
    """Nothing can be written (the parent is a file), yet Up still recalls the line."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    history = PrivateHistory(blocker / "sub" / "history")  # parent is a file: cannot exist
    history.append_string("query-status")  # what the prompt calls on Enter; must not raise
    assert history.get_strings() == ["query-status"]
    assert blocker.read_text() == ""
    assert list(PrivateHistory(blocker / "sub" / "history").load_history_strings()) == []


# -- files that are not ours -----------------------------------------------------------


def _precious(tmp_path: Path) -> Path:
    target = tmp_path / "precious"
    target.write_text("keep me\n")
    target.chmod(0o644)
    return target


def _refused(tmp_path: Path, path: Path) -> list[str]:
    said: list[str] = []
    history = PrivateHistory(path, warn=said.append)
    history.store_string("query-status")
    assert list(history.load_history_strings()) == []
    return said


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    target = _precious(tmp_path)
    link = tmp_path / "history"
    link.symlink_to(target)
    [said] = _refused(tmp_path, link)
    assert "symbolic link" in said and "history is not saved" in said
    assert target.read_text() == "keep me\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_device_node_is_not_touched(tmp_path: Path) -> None:
    import os

    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    node.chmod(0o666)  # mknod's mode is masked by the umask
    [said] = _refused(tmp_path, node)
    assert "not a regular file" in said
    assert stat.S_IMODE(node.stat().st_mode) == 0o666


def test_a_fifo_neither_blocks_nor_is_touched(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o644)
    [said] = _refused(tmp_path, fifo)  # no reader: a blocking open would hang here
    assert "not a regular file" in said
    assert stat.S_IMODE(fifo.stat().st_mode) == 0o644


def test_a_full_disk_is_said_once_and_not_raised(tmp_path: Path) -> None:
    """A full filesystem, for real: a tiny tmpfs, filled (we are root, see .ci/run)."""
    import os
    import subprocess

    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)], check=True)
    try:
        said: list[str] = []
        history = PrivateHistory(mount / "history", warn=said.append)
        filler = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(filler, b"\0" * 4096):
                pass
        except OSError:
            pass  # full now
        finally:
            os.close(filler)
        for i in range(3):
            history.store_string(f"query-{i}")
        history.close()
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    assert len(said) == 1 and "No space left on device" in said[0]


def test_the_real_shell_carries_on_without_a_history_it_may_not_use(tmp_path: Path) -> None:
    """``QMPSH_HISTFILE`` at a link to someone's file: one warning, a working shell."""
    import sys

    import pexpect
    from qemu import Qemu
    from support import private_env

    target = _precious(tmp_path)
    link = tmp_path / "history-link"
    link.symlink_to(target)
    env = private_env(
        tmp_path, TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1", QMPSH_HISTFILE=str(link)
    )
    with Qemu() as vm:
        child = pexpect.spawn(
            sys.executable, ["-m", "qmpsh", vm.socket], env=env, encoding="utf-8", timeout=30
        )
        try:
            child.expect("symbolic link")
            child.expect(r"\(qemu \d+\.\d+\.\d+\) ")
            child.send("query-status\r")
            child.expect("VM status: running")  # answered: Ctrl-D now means leave
            child.sendcontrol("d")
            child.expect(pexpect.EOF)
            seen = child.before or ""
        finally:
            child.close(force=True)
    assert "Traceback" not in seen
    assert child.exitstatus == 0
    assert target.read_text() == "keep me\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
