"""``ssh://HOST/PATH`` through a real sshd on 127.0.0.1, to a real QEMU behind it.

The sshd lab (tests/sshd_lab.py) is started per module and stopped by PID; qmpsh is
pointed at its client config with ``QMPSH_SSH``.  Every ssh process qmpsh starts is
found among qmpsh's own children (by PID, through /proc) and must be gone when qmpsh
is, whichever way it ends; qmpsh's temp dir (``TMPDIR``) must be empty again.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO

import pexpect
import pytest
import support
from qemu import Qemu, free_port
from sshd_lab import SshdLab

from qmpsh.errors import InputError
from qmpsh.ssh_sockets import parse_listing
from qmpsh.ssh_tunnel import SshAddress, parse_ssh_address, ssh_argv

QMPSH = [sys.executable, "-m", "qmpsh"]
TIMEOUT = 30
PROMPT = r"\(qemu \d+\.\d+\.\d+\) "


@pytest.fixture(scope="module")
def lab() -> Iterator[SshdLab]:
    with SshdLab() as sshd:
        yield sshd


@pytest.fixture(scope="module")
def vm() -> Iterator[Qemu]:
    with Qemu() as q:
        yield q


@pytest.fixture
def env(lab: SshdLab, tmp_path: Path) -> dict[str, str]:
    """qmpsh's environment: private HOME and XDG dirs, the lab's ssh, its own TMPDIR."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    return support.private_env(tmp_path, TMPDIR=str(temp), **lab.ssh_env())


def leftovers(env: dict[str, str]) -> list[str]:
    """What qmpsh left in its temp dir (forward dirs, sockets)."""
    return sorted(os.listdir(env["TMPDIR"]))


def run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*QMPSH, *args], env=env, input=stdin, capture_output=True, text=True, timeout=TIMEOUT
    )


def ssh_children(pid: int) -> list[int]:
    """qmpsh's child processes that run ssh, from every thread of it (the spawner's too)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            words = (task / "children").read_text().split()
        except FileNotFoundError:
            continue
        for child in map(int, words):
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if cmdline and os.path.basename(cmdline[0]) == b"ssh":
                found.append(child)
    return found


def gone(pid: int) -> bool:
    """Not running: no such process, or a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 3, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("qmpsh: error: "), result.stderr
    return lines[0]


# -- addresses and listings (pure) ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ssh://h/run/q.sock", SshAddress("h", "/run/q.sock")),
        ("ssh://root@h:2222/q.sock", SshAddress("h", "/q.sock", "root", 2222)),
        ("ssh://[::1]:22/a/b", SshAddress("::1", "/a/b", None, 22)),
        ("ssh://u@[fe80::1]/a", SshAddress("fe80::1", "/a", "u")),
        ("ssh://a.b@host.example/x y.sock", SshAddress("host.example", "/x y.sock", "a.b")),
    ],
)
def test_ssh_addresses_parse_and_print_back(text: str, expected: SshAddress) -> None:
    parsed = parse_ssh_address(text)
    assert parsed == expected
    assert str(parsed) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ssh://h", "missing socket path"),
        ("ssh://h/", "missing socket path"),
        ("ssh:///q.sock", "missing host"),
        ("ssh://@h/q.sock", "empty user name"),
        ("ssh://h:0/q.sock", "bad ssh port '0'"),
        ("ssh://h:ssh/q.sock", "bad ssh port 'ssh'"),
        ("ssh://-oProxyCommand=x/q.sock", "bad ssh host"),
        ("ssh://-l@h/q.sock", "bad ssh user"),
        ("ssh://[::1/q.sock", "missing ']'"),
        ("ssh://h/a:b.sock", "with ':' in it"),
        ("ssh://h/a\x1bb.sock", "control characters"),
    ],
)
def test_bad_ssh_addresses_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_ssh_address(text)
    assert message in str(info.value)


def test_a_listing_from_the_remote_is_parsed_defensively() -> None:
    output = (
        b"D/home/u\0./vm.sock\0./sub/../x.sock\0"
        b"./bad\nname\0./esc\x1b[2J\0./colon:x\0not-a-path\0\xff\xfe\0./vm.sock\0"
        b"D relative\0./orphan.sock\0/var/lib/libvirt/qemu/domain-1-a/monitor.sock\0"
        b"/cut-short"  # no final NUL: the remote was cut off at the size limit
    )
    assert parse_listing(output) == [
        "/home/u/vm.sock",
        "/home/u/x.sock",
        "/var/lib/libvirt/qemu/domain-1-a/monitor.sock",
    ]


# -- a real QEMU behind sshd ----------------------------------------------------------


def test_a_command_goes_through_sshd(lab: SshdLab, vm: Qemu, env: dict[str, str]) -> None:
    accepted = lab.log().count("Accepted publickey")
    result = run(env, f"ssh://127.0.0.1{vm.socket}", "-c", "query-status")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "running"
    assert lab.log().count("Accepted publickey") == accepted + 1  # it really used our sshd
    assert leftovers(env) == []


def test_a_piped_script_and_its_events_go_through_sshd(vm: Qemu, env: dict[str, str]) -> None:
    user = pwd.getpwuid(os.getuid()).pw_name
    address = f"ssh://{user}@127.0.0.1{vm.socket}"  # with a user in it
    result = run(env, address, "--events", stdin="stop\nquery-status\ncont\n")
    assert result.returncode == 0, result.stderr
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert replies[1]["status"] == "paused"
    events = [json.loads(line)["event"] for line in result.stderr.splitlines()]
    assert events == ["STOP", "RESUME"]
    assert leftovers(env) == []


class Running:
    """A piped qmpsh on an ssh:// address, connected and waiting for its next line."""

    def __init__(self, env: dict[str, str], address: str) -> None:
        self.proc = subprocess.Popen(
            [*QMPSH, address],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.ask("query-status")
        self.ssh = ssh_children(self.proc.pid)
        assert len(self.ssh) == 1, self.ssh  # the forward

    @property
    def stdin(self) -> IO[str]:
        assert self.proc.stdin is not None
        return self.proc.stdin

    def ask(self, line: str) -> dict[str, object]:
        assert self.proc.stdout is not None
        self.stdin.write(line + "\n")
        self.stdin.flush()
        reply: dict[str, object] = json.loads(self.proc.stdout.readline())
        return reply

    def finish(self) -> tuple[int, str]:
        """Close qmpsh's standard input and wait for it to end."""
        _, err = self.proc.communicate(timeout=TIMEOUT)
        return self.proc.returncode, err


@pytest.mark.parametrize(
    ("how", "status"),
    [("EOF", 0), ("SIGINT", 130), ("SIGTERM", 128 + 15), ("SIGHUP", 128 + 1), ("SIGKILL", -9)],
)
def test_the_forward_is_torn_down_when_qmpsh_ends(
    vm: Qemu, env: dict[str, str], how: str, status: int
) -> None:
    shell = Running(env, f"ssh://127.0.0.1{vm.socket}")
    assert shell.ask("query-status")["status"] == "running"
    if how != "EOF":
        shell.proc.send_signal(getattr(signal, how))
    code, err = shell.finish()  # closes qmpsh's standard input
    assert code == status, err
    assert "Traceback" not in err
    # SIGKILL too: ssh dies with its parent, and the socket was removed once connected.
    assert support.wait_until(lambda: all(gone(pid) for pid in shell.ssh)), shell.ssh
    assert leftovers(env) == []


def test_qemu_death_ends_the_script_with_3_and_the_forward_with_it(
    env: dict[str, str], qemu_factory: type[Qemu]
) -> None:
    doomed = qemu_factory()
    shell = Running(env, f"ssh://127.0.0.1{doomed.socket}")
    doomed.kill()
    doomed.proc.wait()
    shell.stdin.write("query-status\n")
    code, err = shell.finish()
    assert code == 3, err
    assert "lost" in err and "ssh://127.0.0.1" in err and "Traceback" not in err
    assert support.wait_until(lambda: all(gone(pid) for pid in shell.ssh)), shell.ssh
    assert leftovers(env) == []


# -- failures: one line each, exit 3, nothing left behind ------------------------------


def test_a_missing_remote_path_is_named(lab: SshdLab, env: dict[str, str], tmp_path: Path) -> None:
    missing = f"{tmp_path}/no-such/qmp.sock"
    line = one_line_error(run(env, f"ssh://127.0.0.1{missing}", "-c", "query-status"))
    assert f"the remote socket {missing} on 127.0.0.1 is missing or refused" in line
    assert f"connect to {missing} port -2 failed" in lab.log()  # sshd's side of the story
    assert leftovers(env) == []


def test_an_unknown_host(env: dict[str, str]) -> None:
    line = one_line_error(run(env, "ssh://no-such-host.invalid/q.sock", "-c", "query-status"))
    assert "unknown host" in line and "no-such-host.invalid" in line
    assert leftovers(env) == []


def test_a_closed_port(env: dict[str, str]) -> None:
    port = free_port()
    line = one_line_error(run(env, f"ssh://127.0.0.1:{port}/q.sock", "-c", "query-status"))
    assert "connection refused" in line and str(port) in line
    assert leftovers(env) == []


def test_a_key_the_server_does_not_know(lab: SshdLab, vm: Qemu, env: dict[str, str]) -> None:
    env.update(lab.ssh_env(lab.client_config_with(lab.wrong_key, "wrong_key_config")))
    line = one_line_error(run(env, f"ssh://127.0.0.1{vm.socket}", "-c", "query-status"))
    assert "authentication failed" in line and "Permission denied" in line
    assert leftovers(env) == []


def test_no_ssh_on_path(vm: Qemu, env: dict[str, str], tmp_path: Path) -> None:
    del env["QMPSH_SSH"]
    env["PATH"] = str(tmp_path / "empty-bin")
    line = one_line_error(run(env, f"ssh://127.0.0.1{vm.socket}", "-c", "query-status"))
    assert "cannot run ssh" in line and "openssh-client" in line


# -- --wait, --list-sockets, the interactive shell ------------------------------------


def qemu_at(path: Path) -> Qemu:
    """A QEMU with a second QMP monitor at ``path`` (the first is Qemu's own)."""
    return Qemu(("-qmp", f"unix:{path},server=on,wait=off"))


def test_wait_retries_until_qemu_creates_the_remote_socket(
    lab: SshdLab, env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "later" / "qmp.sock"
    path.parent.mkdir()
    failed = f"connect to {path} port -2 failed"
    proc = subprocess.Popen(
        [*QMPSH, f"ssh://127.0.0.1{path}", "--wait", "120", "-c", "query-status"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with ExitStack() as stack:
        stack.callback(lambda: proc.poll() is None and proc.kill())
        # sshd has failed to reach the socket at least once: a retry must follow.
        assert support.wait_until(lambda: failed in lab.log(), timeout=TIMEOUT), lab.log()
        assert proc.poll() is None
        stack.enter_context(qemu_at(path))
        out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert json.loads(out)["status"] == "running"
    assert leftovers(env) == []


def test_list_sockets_on_the_remote(lab: SshdLab, env: dict[str, str]) -> None:
    run_dir = lab.runtime_dir
    (run_dir / "vm1").mkdir()
    deep = run_dir / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    (run_dir / "elsewhere").mkdir()
    (run_dir / "link").symlink_to(run_dir / "elsewhere")
    with ExitStack() as stack:
        stack.enter_context(qemu_at(run_dir / "vm1" / "qmp.sock"))
        for name in ("a/b/c/ok.sock", "a/b/c/d/too-deep.sock", "bad\nname.sock", "c:d.sock"):
            listener = stack.enter_context(socket.socket(socket.AF_UNIX))
            listener.bind(str(run_dir / name))
        listener = stack.enter_context(socket.socket(socket.AF_UNIX))
        listener.bind(str(run_dir / "elsewhere" / "behind-link.sock"))
        (run_dir / "plain-file.sock").write_text("not a socket")
        result = run(env, "--list-sockets", "ssh://127.0.0.1")
        assert result.returncode == 0, result.stderr
        listed = result.stdout.splitlines()
        assert f"ssh://127.0.0.1{run_dir}/vm1/qmp.sock" in listed
        assert f"ssh://127.0.0.1{run_dir}/a/b/c/ok.sock" in listed
        assert f"ssh://127.0.0.1{run_dir}/elsewhere/behind-link.sock" in listed
        mine = [line for line in listed if str(run_dir) in line]
        assert len(mine) == 3, mine  # not too deep, not through the link, no odd names
        # What is listed is an address qmpsh can use as it is.
        reply = run(env, f"ssh://127.0.0.1{run_dir}/vm1/qmp.sock", "-c", "query-status")
        assert json.loads(reply.stdout)["status"] == "running"


def test_list_sockets_on_an_unreachable_host(env: dict[str, str]) -> None:
    line = one_line_error(run(env, "--list-sockets", f"ssh://127.0.0.1:{free_port()}"))
    assert "connection refused" in line


def test_interactive_shell_reconnects_through_a_new_forward(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "vm" / "qmp.sock"
    path.parent.mkdir()
    env.update(TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1")
    with ExitStack() as stack:
        first = stack.enter_context(qemu_at(path))
        child = pexpect.spawn(
            QMPSH[0], [*QMPSH[1:], f"ssh://127.0.0.1{path}"], env=env, encoding="utf-8"
        )
        child.timeout = TIMEOUT
        stack.callback(child.close, force=True)
        child.expect(PROMPT)
        child.send("query-status\r")
        child.expect("running")
        (old_ssh,) = ssh_children(child.pid)
        first.stop()
        child.expect("reconnect")  # the shell says the connection is lost, and stays
        stack.enter_context(qemu_at(path))
        child.send("reconnect\r")
        child.expect(f"reconnected to ssh://127.0.0.1{path}")
        child.send("query-status\r")
        child.expect("running")
        assert support.wait_until(lambda: gone(old_ssh))
        (new_ssh,) = ssh_children(child.pid)
        assert new_ssh != old_ssh
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    assert support.wait_until(lambda: gone(new_ssh))
    assert leftovers(env) == []


def test_qmpsh_ssh_words_come_first_so_the_users_options_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OpenSSH keeps the first value of an option: ask the real ssh (-G) what it would use."""
    monkeypatch.setenv("QMPSH_SSH", "ssh -F /dev/null -o 'BatchMode no'")
    argv = ssh_argv(SshAddress("example.invalid", "/q.sock", "u", 2200))
    assert argv[:4] == ["ssh", "-F", "/dev/null", "-o"]
    assert argv[-2:] == ["--", "example.invalid"]  # the host can never be an option
    argv.insert(argv.index("--"), "-G")  # print the configuration, connect nowhere
    settings = dict(
        line.split(" ", 1)
        for line in subprocess.run(
            argv, capture_output=True, text=True, check=True
        ).stdout.splitlines()
    )
    assert settings["batchmode"] == "no"  # the user's word beat ours
    assert settings["loglevel"] == "ERROR"  # ours, where the user said nothing
    assert settings["user"] == "u" and settings["port"] == "2200"
