"""The prompt painted before prompt_toolkit is ready: keys typed at it are kept, shown
once, and the terminal's settings are as they were when qmpsh ends."""

from __future__ import annotations

import io
import os
import re
import termios
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pytest
from qemu import Qemu, RawMonitor
from support import negotiated, wait_for
from test_e2e_pty import PROMPT, leave, qmpsh_command, spawn_qmpsh

from qmpsh.early_prompt import PROMPT_SGR, early_prompt, wants_colour

ECHO_AND_LINES = termios.ECHO | termios.ICANON


def lflag(fd: int) -> int:
    flags = termios.tcgetattr(fd)[3]
    assert isinstance(flags, int)
    return flags


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    """A pseudo-terminal: (the side a terminal emulator holds, the program's side)."""
    main, terminal = os.openpty()
    yield main, terminal
    os.close(main)
    os.close(terminal)


def test_keys_are_held_unechoed_while_painted_and_the_settings_come_back(
    pty: tuple[int, int],
) -> None:
    main, terminal = pty
    before = termios.tcgetattr(terminal)
    assert lflag(terminal) & ECHO_AND_LINES == ECHO_AND_LINES
    out = io.StringIO()
    with early_prompt("banner\n", "(vm) ", colour=True, out=out, fd=terminal) as painted:
        assert lflag(terminal) & ECHO_AND_LINES == 0
        os.write(main, b"typed\r\x03")  # Enter and Ctrl-C are keys, as at the prompt
        os.set_blocking(terminal, False)  # a failure here, not a hang
        assert os.read(terminal, 100) == b"typed\r\x03"  # there for the Application
        os.set_blocking(main, False)
        with pytest.raises(BlockingIOError):
            os.read(main, 100)  # and the terminal showed nothing of it
        painted.hand_over()
    assert termios.tcgetattr(terminal) == before
    assert out.getvalue() == f"banner\n{PROMPT_SGR}(vm) \x1b[0m\r"


def test_the_settings_come_back_when_the_shell_fails(pty: tuple[int, int]) -> None:
    _, terminal = pty
    before = termios.tcgetattr(terminal)
    with (
        pytest.raises(RuntimeError),
        early_prompt("", "(vm) ", colour=False, out=io.StringIO(), fd=terminal),
    ):
        raise RuntimeError("the Application could not start")
    assert termios.tcgetattr(terminal) == before


def test_no_terminal_is_no_error_and_no_colour_means_plain_text() -> None:
    read_end, write_end = os.pipe()
    try:
        out = io.StringIO()
        with early_prompt("", "(vm) ", colour=False, out=out, fd=read_end):
            pass
        assert out.getvalue() == "(vm) "
    finally:
        os.close(read_end)
        os.close(write_end)


def test_colour_follows_the_applications_rule() -> None:
    assert wants_colour("auto", {})
    assert not wants_colour("auto", {"NO_COLOR": "1"})
    assert not wants_colour("never", {})
    assert wants_colour("always", {"NO_COLOR": "1"})


def test_keys_typed_at_the_painted_prompt_run_once_and_are_not_echoed_raw(
    qemu: Qemu, tmp_path: Path
) -> None:
    child = spawn_qmpsh([qemu.socket], tmp_path)
    try:
        child.expect(PROMPT)  # the painted prompt: prompt_toolkit is still loading
        child.send("query-status\r")  # at once, as a quick typist would
        child.expect(r"\r")
        # Until the Application takes over (its first draw starts at "\r"), the
        # terminal echoed nothing: the typed line is drawn once, by the Application.
        assert "query" not in child.before
        child.expect("VM status: running")
        child.expect(PROMPT)
        child.sendline("query-name")  # the shell goes on as usual
        child.expect(PROMPT)
    finally:
        leave(child)


def test_ctrl_c_at_the_painted_prompt_clears_the_line_as_at_the_prompt(
    qemu: Qemu, tmp_path: Path
) -> None:
    child = spawn_qmpsh([qemu.socket], tmp_path)
    try:
        child.expect(PROMPT)
        child.send("bogus words\x03query-status\r")  # Ctrl-C: a key, not SIGINT
        child.expect("VM status: running")
        assert child.isalive()
    finally:
        leave(child)
    assert child.exitstatus == 0


def test_an_event_from_before_the_shell_listened_is_shown(
    qemu_factory: Callable[..., Qemu], tmp_path: Path
) -> None:
    """At 90 columns events print above the prompt.  One that QEMU sends while qmpsh is
    still starting (connected, prompt_toolkit loading) used to be in the log only."""
    second = str(tmp_path / "second.sock")  # a -qmp monitor serves one client at a time
    q = qemu_factory("-qmp", f"unix:{second},server=on,wait=off")
    log = tmp_path / "transcript.jsonl"
    child = spawn_qmpsh([q.socket, "-l", str(log)], tmp_path)
    child.setwinsize(30, 90)
    try:
        wait_for(lambda: negotiated(log), "qmpsh to negotiate")  # QEMU sends it events now
        with RawMonitor(second) as mon:
            mon.execute("stop")
        child.expect("STOP")
        child.expect(PROMPT)
    finally:
        leave(child)


def test_the_terminal_is_as_before_after_the_shell(qemu: Qemu, tmp_path: Path) -> None:
    script = f'{qmpsh_command()} "$1"; stty -a'
    child = pexpect.spawn(
        "bash",
        ["--norc", "-c", script, "bash", qemu.socket],
        dimensions=(40, 140),
        env=dict(  # the private HOME and XDG dirs every test has (conftest)
            os.environ, TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1", NO_COLOR="1"
        ),
        encoding="utf-8",
        timeout=30,
    )
    try:
        child.expect(PROMPT)
        child.sendcontrol("d")
        child.expect("speed")  # stty's first words
        child.expect(pexpect.EOF)
        settings = child.before
        assert re.search(r"(?<![-\w])icanon\b", settings), settings
        assert re.search(r"(?<![-\w])echo\b", settings), settings
    finally:
        child.close()
