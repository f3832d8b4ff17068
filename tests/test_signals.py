"""SIGTERM, SIGHUP and SIGPIPE end qmpsh cleanly: history kept, launched QEMU gone, no noise.

The signals go to our own qmpsh child by PID.  The interactive cases run the real
shell in a pseudo-terminal (pexpect) with HOME and XDG dirs in a temp dir.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
import support
from qemu import QEMU, Qemu
from support import QMPSH, exec_done, qemu_pids_with, wait_for

PROMPT = r"\(qemu \d+\.\d+\.\d+\) "
TIMEOUT = 20


@pytest.fixture(scope="module")
def vm() -> Iterator[Qemu]:
    with Qemu() as q:
        yield q


def private_env(tmp_path: Path) -> dict[str, str]:
    env = support.private_env(
        tmp_path,
        TERM="xterm-256color",
        PROMPT_TOOLKIT_NO_CPR="1",  # pexpect does not answer cursor position requests
    )
    env.pop("QMPSH_HISTFILE", None)
    return env


def gone(pid: int) -> bool:
    """Not running: no such process, or a zombie waiting for its (dead) parent's reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(word) for word in text.split()]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signal_ends_the_shell_and_history_is_kept(
    vm: Qemu, tmp_path: Path, sig: signal.Signals
) -> None:
    child = pexpect.spawn(
        QMPSH[0], [*QMPSH[1:], vm.socket], env=private_env(tmp_path), encoding="utf-8"
    )
    child.timeout = TIMEOUT
    try:
        child.expect(PROMPT)
        child.send("query-status\r")
        child.expect("running")
        child.expect(PROMPT)
        child.kill(sig)
        child.expect(pexpect.EOF)
        output = child.before or ""
    finally:
        child.close(force=True)
    assert "Traceback" not in output
    assert child.exitstatus == 128 + sig
    history = tmp_path / "state" / "qmpsh" / "history"
    assert "query-status" in history.read_text()


def qemu_dir(qemu_pid: int) -> Path:
    """The temp dir ``--launch`` made, read from QEMU's own ``-qmp unix:DIR/qmp.sock``."""
    wait_for(lambda: exec_done(qemu_pid, QEMU), "the launched QEMU to exec")  # not the fork
    argv = Path(f"/proc/{qemu_pid}/cmdline").read_bytes().split(b"\0")
    qmp = next(a.decode() for a in argv if a.startswith(b"unix:"))
    return Path(qmp.removeprefix("unix:").split(",")[0]).parent


@pytest.mark.parametrize(
    ("sig", "settle"),
    [
        (signal.SIGTERM, True),
        (signal.SIGHUP, True),
        (signal.SIGTERM, False),
        (signal.SIGINT, False),
    ],
    ids=["SIGTERM", "SIGHUP", "SIGTERM-while-starting", "SIGINT-while-starting"],
)
def test_signal_stops_the_launched_qemu_and_removes_its_dir(
    tmp_path: Path, sig: signal.Signals, settle: bool
) -> None:
    """Also while QEMU is still starting, before qmpsh has a handle on it.

    The marker finds every QEMU this qmpsh started, a second one after a port clash too.
    """
    marker = f"qmpsh-signal-{tmp_path.name}"
    proc = subprocess.Popen(
        [*QMPSH, "--launch", "--", "-name", marker],
        stdin=subprocess.PIPE,  # a script that has not ended: qmpsh waits for lines
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=private_env(tmp_path),
    )
    try:
        wait_for(lambda: children(proc.pid), "the launched QEMU")
        [qemu_pid] = children(proc.pid)
        temp_dir = qemu_dir(qemu_pid)
        if settle:  # connected, waiting for script lines
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(b"query-status\n")
            proc.stdin.flush()
            assert b"running" in proc.stdout.readline()  # in its read loop
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == (130 if sig == signal.SIGINT else 128 + sig), err
    assert b"Traceback" not in err
    wait_for(lambda: gone(qemu_pid), "QEMU to go")
    wait_for(lambda: not qemu_pids_with(marker), "every QEMU it launched to go")
    assert not temp_dir.exists()


def test_sighup_at_the_interactive_launch_stops_qemu(tmp_path: Path) -> None:
    """Closing the terminal of ``qmpsh --launch`` takes its QEMU and temp dir with it."""
    child = pexpect.spawn(
        QMPSH[0], [*QMPSH[1:], "--launch"], env=private_env(tmp_path), encoding="utf-8"
    )
    child.timeout = TIMEOUT
    try:
        child.expect(PROMPT)
        [qemu_pid] = children(child.pid)
        temp_dir = qemu_dir(qemu_pid)
        child.kill(signal.SIGHUP)
        child.expect(pexpect.EOF)
        output = child.before or ""
    finally:
        child.close(force=True)
    assert "Traceback" not in output
    assert child.exitstatus == 128 + signal.SIGHUP
    wait_for(lambda: gone(qemu_pid), "QEMU to go")
    assert not temp_dir.exists()


def test_sigpipe_into_head_is_quiet(vm: Qemu, tmp_path: Path) -> None:
    script = tmp_path / "many.qmp"
    script.write_text("query-status\n" * 5000)  # far more than a pipe buffer of replies
    qmpsh = subprocess.Popen(
        [*QMPSH, vm.socket, "-f", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=private_env(tmp_path),
    )
    head = subprocess.Popen(["head", "-1"], stdin=qmpsh.stdout, stdout=subprocess.PIPE)
    assert qmpsh.stdout is not None and qmpsh.stderr is not None
    qmpsh.stdout.close()  # only head holds the read end now
    first, _ = head.communicate(timeout=TIMEOUT)
    err = qmpsh.stderr.read()
    qmpsh.stderr.close()
    assert qmpsh.wait(timeout=TIMEOUT) == 0
    assert b'"running"' in first
    assert err == b""


def launch_dirs_in(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("qmpsh-launch-*"))


def test_sigkill_on_qmpsh_takes_its_qemu_and_the_next_launch_sweeps_the_dir(
    tmp_path: Path,
) -> None:
    """``kill -9`` runs no cleanup of ours: the kernel stops QEMU, the next --launch tidies.

    A dir that a live qmpsh still uses is left alone by the sweep.
    """
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(private_env(tmp_path), TMPDIR=str(tmp))
    killed = subprocess.Popen(
        [*QMPSH, "--launch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    alive = subprocess.Popen(
        [*QMPSH, "--launch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    try:
        wait_for(lambda: children(killed.pid) and children(alive.pid), "both launched QEMUs")
        [qemu_pid] = children(killed.pid)
        [alive_qemu] = children(alive.pid)
        stale, kept = qemu_dir(qemu_pid), qemu_dir(alive_qemu)
        wait_for(lambda: (stale / "qmp.sock").exists(), "the QMP socket")
        killed.kill()  # SIGKILL: no handler, no finally, no atexit
        killed.wait(timeout=TIMEOUT)
        wait_for(lambda: gone(qemu_pid), "QEMU to die with qmpsh")
        assert stale.exists()  # nobody was left to remove it
        third = subprocess.run(
            [*QMPSH, "--launch", "-c", "query-status"],
            capture_output=True,
            env=env,
            timeout=TIMEOUT * 3,
        )
        assert third.returncode == 0, third.stderr
        assert not stale.exists()
        assert kept.exists() and not gone(alive_qemu)
        assert launch_dirs_in(tmp) == [kept]
    finally:
        for proc in (killed, alive):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    wait_for(lambda: gone(alive_qemu), "the second QEMU to die with its qmpsh")
