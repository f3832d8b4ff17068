"""The installed ``qmpsh`` in a real pseudo-terminal, against a real QEMU.

What a person at a terminal sees: completion on screen, replies in the scrollback,
events arriving while idle, the quit confirmation.  Timeouts are generous upper
bounds for slow CI machines, never assertions about speed.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pexpect
import pytest
from peers import vnc_connect
from qemu import Qemu, RawMonitor

TIMEOUT = 20
PROMPT = r"\(qemu \d+\.\d+\.\d+\) "


def qmpsh_command() -> str:
    found = shutil.which("qmpsh") or str(Path(sys.executable).parent / "qmpsh")
    assert Path(found).exists(), "qmpsh is not installed (pip install -e '.[test]')"
    return found


def spawn_qmpsh(args: list[str], tmp_path: Path, **env: str) -> pexpect.spawn:
    """The installed qmpsh in a 140x40 pty, its history and config in ``tmp_path``."""
    full_env = dict(
        os.environ,
        TERM="xterm-256color",
        PROMPT_TOOLKIT_NO_CPR="1",  # pexpect does not answer cursor position requests
        QMPSH_HISTFILE=str(tmp_path / "history"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    full_env.update(env)
    full_env.pop("NO_COLOR", None)
    return pexpect.spawn(
        qmpsh_command(),
        args,
        dimensions=(40, 140),
        env=full_env,
        encoding="utf-8",
        timeout=TIMEOUT,
    )


def leave(child: pexpect.spawn) -> None:
    """Ctrl-D if it still runs, and wait for it to end."""
    if child.isalive():
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    child.close()


def spawn_shell(qemu: Qemu, tmp_path: Path) -> pexpect.spawn:
    child = spawn_qmpsh([qemu.socket], tmp_path)
    child.expect(PROMPT)
    return child


@pytest.fixture
def shell(qemu: Qemu, tmp_path: Path) -> Iterator[pexpect.spawn]:
    child = spawn_shell(qemu, tmp_path)
    yield child
    leave(child)


def test_tab_completes_and_enter_shows_the_spice_reply(shell: pexpect.spawn, qemu: Qemu) -> None:
    shell.send("query-sp")
    shell.expect("query-spice")  # the menu, while typing
    shell.send("\t")
    shell.send("\r")
    shell.expect(str(qemu.spice_port))  # the reply names the port QEMU listens on
    shell.expect(PROMPT)


def test_enum_values_complete_from_the_schema(shell: pexpect.spawn) -> None:
    shell.send("blockdev-add driver=qc")
    shell.expect("qcow2")  # offered in the menu
    shell.send("\t")  # inserts the common part, qcow
    shell.send("2\r")
    shell.expect("blockdev-add driver=qcow2")  # the accepted line, echoed
    shell.expect("file")  # qcow2 needs a file: checked against the schema
    shell.expect(PROMPT)


def test_tab_picks_the_value_used_before(qemu: Qemu, tmp_path: Path) -> None:
    """`driver=qc<Tab>` → qcow2 for someone whose history says qcow2 (qcow also matches)."""
    (tmp_path / "history").write_text(
        "\n# 2026-11-25 10:00:00\n+blockdev-add driver=qcow2 node-name=d0 file=f0\n"
    )
    child = spawn_shell(qemu, tmp_path)
    try:
        child.send("blockdev-add driver=qc")
        child.expect("qcow2")  # the menu, while typing
        child.send("\t")  # selects the first of the menu: the value used before
        child.send("\r")  # Enter on a selected completion only closes the menu
        child.send("\r")
        child.expect("blockdev-add driver=qcow2")  # the accepted line, echoed
        child.expect("needs argument 'file'")  # it ran: checked against the schema
        child.expect(PROMPT)
    finally:
        leave(child)


def test_quit_asks_and_n_keeps_qemu(shell: pexpect.spawn, qemu: Qemu) -> None:
    shell.send("quit\r")
    shell.expect(r"really\? \[y/N\]")
    shell.send("n\r")
    shell.expect("not sent")
    # "not sent" is printed with the terminal in cooked mode, where the tty itself eats
    # a Ctrl-D (as EOF) before qmpsh could see it: wait for the prompt, drawn in raw mode.
    shell.expect(PROMPT)
    assert qemu.proc.poll() is None


def test_an_event_appears_while_idle_at_the_prompt(shell: pexpect.spawn, qemu: Qemu) -> None:
    assert qemu.vnc_port is not None
    with closing(vnc_connect("127.0.0.1", qemu.vnc_port)):
        shell.expect("VNC_CONNECTED")  # no key was pressed


def test_ctrl_d_leaves_with_status_0_and_qemu_keeps_running(
    shell: pexpect.spawn, qemu: Qemu
) -> None:
    shell.sendcontrol("d")
    shell.expect(pexpect.EOF)
    shell.close()
    assert shell.exitstatus == 0
    with RawMonitor(qemu.socket) as monitor:
        assert monitor.execute("query-status")["status"] == "running"


def test_ctrl_d_pressed_while_a_reply_prints_still_leaves(qemu: Qemu, tmp_path: Path) -> None:
    """Printing above the prompt used to switch the terminal to cooked mode, where the
    tty itself eats Ctrl-D as end-of-file: the shell never saw it and stayed.  The reply
    here is larger than the pty holds, so qmpsh is still writing it (blocked until this
    side reads) when Ctrl-D is pressed."""
    child = spawn_qmpsh([qemu.socket, "--no-pager", "--format", "json"], tmp_path)
    child.expect(PROMPT)
    child.send("query-qmp-schema\r")
    child.expect('"meta-type"')  # printing has begun, and fills the pty
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_the_pager_reads_the_terminal_in_cooked_mode(qemu: Qemu, tmp_path: Path) -> None:
    """Printing above the prompt keeps the terminal raw; the pager, a program reading the
    terminal itself, still gets cooked mode: Enter ends its line (in raw mode it sends a
    bare CR, and a line read would never end)."""
    pager = tmp_path / "pager.py"
    pager.write_text(
        "import sys\n"
        "size = len(sys.stdin.read())\n"
        "with open('/dev/tty') as tty:\n"
        "    print('pager got', size, 'chars; answer:', flush=True)\n"
        "    print('pager read', tty.readline().strip(), flush=True)\n"
    )
    child = spawn_qmpsh([qemu.socket], tmp_path, PAGER=f"{sys.executable} {pager}")
    try:
        child.expect(PROMPT)
        child.send("query-qmp-schema\r")  # far taller than 40 rows
        child.expect("answer:")
        child.send("done\r")
        child.expect("pager read done")
        child.expect(PROMPT)
    finally:
        leave(child)
    assert child.exitstatus == 0


def test_dumb_terminal_gets_a_plain_line_loop(qemu: Qemu, tmp_path: Path) -> None:
    env = dict(os.environ, TERM="dumb", QMPSH_HISTFILE=str(tmp_path / "history"))
    child = pexpect.spawn(
        qmpsh_command(), [qemu.socket], env=env, encoding="utf-8", timeout=TIMEOUT
    )
    child.expect(PROMPT)
    child.sendline("query-status")
    child.expect("running")
    child.sendline("cont")  # a success that prints nothing is acknowledged
    child.expect("cont\r\nok\r\n")
    child.sendline("quit")
    child.expect(r"really\? \[y/N\]")
    child.sendline("n")
    child.expect("not sent\r\n")
    child.expect(PROMPT)
    assert "ok" not in child.before  # what was not sent did not succeed
    child.sendline("")
    child.expect(PROMPT)
    assert "ok" not in child.before  # nor did an empty line
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert qemu.proc.poll() is None


def test_dumb_terminal_loop_needs_no_prompt_toolkit_and_asks_for_hmp_quit(
    qemu: Qemu, tmp_path: Path
) -> None:
    """The plain loop under -H -v: `q` (HMP's quit) asks first, each request is echoed,
    and prompt_toolkit is never imported (``-X importtime`` lists every import)."""
    env = dict(os.environ, TERM="dumb", QMPSH_HISTFILE=str(tmp_path / "history"))
    argv = ["-X", "importtime", "-m", "qmpsh", qemu.socket, "-H", "-v"]
    child = pexpect.spawn(sys.executable, argv, env=env, encoding="utf-8", timeout=TIMEOUT)
    seen = io.StringIO()
    child.logfile_read = seen
    child.expect(PROMPT)
    child.sendline("q")
    child.expect(r"quit stops QEMU \(the VM is gone\): really\? \[y/N\]")
    child.sendline("n")
    child.expect(PROMPT)
    child.sendline("info status")
    child.expect('"command-line":"info status"')  # the -v echo, before the reply
    child.expect("VM status: running")
    child.expect(PROMPT)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and qemu.proc.poll() is None
    assert "| qmpsh.plain" in seen.getvalue()  # importtime really listed our imports
    assert "prompt_toolkit" not in seen.getvalue()


def test_readme_first_command_launches_a_throwaway_qemu(tmp_path: Path) -> None:
    """`qmpsh --launch` at a terminal: a QEMU with VNC and SPICE, a prompt, and after
    Ctrl-D no QEMU left behind."""
    child = spawn_qmpsh(["--launch"], tmp_path)
    child.expect(r"launched QEMU \(pid (\d+)\): VNC 127\.0\.0\.1:(\d+), SPICE 127\.0\.0\.1:(\d+)")
    pid, vnc, spice = (int(child.match.group(i)) for i in (1, 2, 3))
    assert vnc >= 5900 and spice > 0 and vnc != spice
    child.expect(PROMPT)
    child.send("query-vnc\r")
    child.expect(f"{vnc}")
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert not Path(f"/proc/{pid}").exists()  # stopped and reaped by qmpsh, by PID


def test_launch_demo_machine_takes_readme_lines_with_comments_at_a_terminal(
    tmp_path: Path,
) -> None:
    """At the prompt of `qmpsh --launch`: a trailing `# comment` is dropped (it used to
    reach HMP or the parser), and the demo PC has the CD-ROM the README's examples
    eject (`-machine none` had none); the README test runs the rest."""
    child = spawn_qmpsh(["--launch"], tmp_path)
    child.expect(PROMPT)
    child.send("info status  # paused: the demo PC starts with -S\r")
    child.expect(r"VM status: paused \(prelaunch\)")
    child.send("eject device=ide1-cd0 force=true  # the demo CD-ROM\r")
    child.expect("DEVICE_TRAY_MOVED")
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


@pytest.mark.parametrize("term", ["xterm-256color", "dumb"])
def test_typed_ahead_line_answers_no_and_is_not_cut(qemu: Qemu, tmp_path: Path, term: str) -> None:
    """Issue 11.2: `query-status` typed before the question holds a y but is a whole no."""
    child = spawn_qmpsh([qemu.socket], tmp_path, TERM=term)
    try:
        child.expect(PROMPT)
        child.send("system_reset\rquery-status\r")
        child.expect(r"confirm: system_reset resets the guest: really\? \[y/N\]")
        child.expect("not sent")
        child.expect(PROMPT)
        child.send("query-name\r")  # the shell goes on
        child.expect(PROMPT)
        assert "uery-status'" not in child.before  # no cut command was tried
    finally:
        leave(child)
    with RawMonitor(qemu.socket) as mon:
        assert mon.execute("query-status")["status"] == "running"
