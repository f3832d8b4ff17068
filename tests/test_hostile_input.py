"""Hostile input from the command line, the environment and standard streams.

Each case runs the real ``python -m qmpsh`` against a real QEMU (the fake server only
for a lone surrogate, which QEMU never sends) and asserts the exit code, one line on
stderr and no traceback.  What was tried, and what happens now:

- durations: ``--timeout nan|inf|-1|0``, ``--wait nan``, ``wait X timeout=nan`` → exit 2;
- output files: a directory, a missing folder, a device, a symlink, someone else's
  file → exit 2, the target untouched; an existing 0644 file of ours → 0600;
- a full filesystem under ``--events=FILE``/``--transcript``: said at once, the
  session goes on, exit 1 at the end;
- ``>&-`` and ``> /dev/full`` → one line and exit 2 / 1;
- invalid UTF-8 on stdin and in ``-f``: the same error naming the line, exit 2;
- a lone surrogate in events and replies: written escaped, never dropped;
- ``--events SOCK`` keeps SOCK as the address; ``wait X p="a b"`` keeps the blank.
"""

from __future__ import annotations

import json
import os
import queue
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pexpect
import pytest
import support
from fake_qmp_server import FakeConnection, FakeQmpServer
from qemu import Qemu
from recipes import GUEST_IDE_READ, block_io_error_drive, start_tiny_guest

QMPSH = [sys.executable, "-m", "qmpsh"]
DEADLINE = 60.0  # a hung qmpsh is killed after this and the test fails
PROMPT = r"\(qemu \d+\.\d+\.\d+\) "


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def run(tmp_path: Path, *args: str, stdin: bytes = b"", **popen: Any) -> Outcome:
    proc = subprocess.run(
        [*QMPSH, *args],
        input=stdin,
        capture_output="stdout" not in popen,
        env=support.private_env(tmp_path),
        timeout=DEADLINE,
        **popen,
    )
    out = proc.stdout.decode("utf-8", "replace") if proc.stdout else ""
    err = proc.stderr.decode("utf-8", "replace") if proc.stderr else ""
    return Outcome(proc.returncode, out, err)


def one_line(outcome: Outcome, code: int, fragment: str) -> str:
    """The run ended with ``code`` and said one thing on stderr, containing ``fragment``."""
    assert "Traceback" not in outcome.stderr, outcome.stderr
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, outcome.stderr
    assert fragment in lines[0], lines[0]
    assert outcome.code == code, outcome
    return lines[0]


@pytest.fixture(scope="module")
def vm() -> Iterator[Qemu]:
    with Qemu() as q:
        yield q


# -- numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--timeout", "nan"), "--timeout must be a finite number"),
        (("--timeout", "inf"), "--timeout must be a finite number"),
        (("--timeout", "-1"), "--timeout must be positive"),
        (("--timeout", "0"), "--timeout must be positive"),
        (("--timeout", "1e300"), "--timeout must be at most"),
        (("--timeout", "soon"), "--timeout must be a number of seconds"),
        (("--wait", "nan"), "--wait must be a finite number"),
        (("--wait", "-5"), "--wait must be zero or more"),
    ],
)
def test_bad_durations_on_the_command_line(
    vm: Qemu, tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    one_line(run(tmp_path, vm.socket, *args, "-c", "query-status"), 2, fragment)


def test_bad_wait_never_retries_for_ever(tmp_path: Path) -> None:
    """``--wait nan`` once retried a missing socket for ever."""
    missing = str(tmp_path / "nobody.sock")
    one_line(run(tmp_path, missing, "--wait", "nan", "-c", "query-status"), 2, "--wait")


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "-inf", "1e999"])
def test_wait_timeout_must_be_finite(vm: Qemu, tmp_path: Path, value: str) -> None:
    """``wait X timeout=nan`` once spun a core for ever."""
    outcome = run(tmp_path, vm.socket, "-c", f"wait NEVER_HAPPENS timeout={value}")
    one_line(outcome, 2, "timeout must be")


# -- output files --------------------------------------------------------------------


def _not_file_cases(tmp_path: Path) -> dict[str, tuple[str, str]]:
    link_target = tmp_path / "precious"
    link_target.write_text("keep me\n")
    link_target.chmod(0o644)
    (tmp_path / "link").symlink_to(link_target)
    return {
        "dir": (str(tmp_path), "it is a directory"),
        "missing-folder": (str(tmp_path / "no" / "such" / "ev.jsonl"), "does not exist"),
        "device": ("/dev/null", "not a regular file"),
        "symlink": (str(tmp_path / "link"), "symbolic link"),
    }


@pytest.mark.parametrize("option", ["--events=", "--transcript=", "-l"])
@pytest.mark.parametrize("case", ["dir", "missing-folder", "device", "symlink"])
def test_output_files_that_are_not_ours_are_refused(
    vm: Qemu, tmp_path: Path, option: str, case: str
) -> None:
    path, fragment = _not_file_cases(tmp_path)[case]
    args = [option + path] if option.endswith("=") else [option, path]
    null_mode = os.stat("/dev/null").st_mode
    outcome = run(tmp_path, vm.socket, *args, "-c", "query-status")
    one_line(outcome, 2, fragment)
    assert os.stat("/dev/null").st_mode == null_mode
    precious = tmp_path / "precious"
    assert precious.read_text() == "keep me\n"
    assert stat.S_IMODE(precious.stat().st_mode) == 0o644


def test_a_file_of_another_user_is_refused(vm: Qemu, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs.jsonl"
    theirs.write_text("")
    theirs.chmod(0o666)
    os.chown(theirs, 65534, 65534)  # nobody: the tests run as root (see .ci/run)
    outcome = run(tmp_path, vm.socket, f"--events={theirs}", "-c", "query-status")
    one_line(outcome, 2, "belongs to another user")
    assert stat.S_IMODE(theirs.stat().st_mode) == 0o666 and theirs.read_text() == ""


@pytest.mark.parametrize("option", ["--events=", "--transcript="])
def test_an_existing_0644_file_of_ours_becomes_0600(vm: Qemu, tmp_path: Path, option: str) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"old": 1}\n')
    path.chmod(0o644)
    outcome = run(tmp_path, vm.socket, option + str(path), "-c", "stop", "-c", "cont")
    assert outcome.code == 0, outcome
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert lines[0] == '{"old": 1}' and len(lines) > 1  # appended, not truncated


@pytest.fixture
def full_fs(tmp_path: Path) -> Iterator[Path]:
    """A real, tiny tmpfs filled to the last block (mounted by us, unmounted by path)."""
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount)], check=True
    )
    try:
        filler = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(filler, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == 28  # ENOSPC: the disk is now full
        finally:
            os.close(filler)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_said_at_once_and_the_session_goes_on(
    vm: Qemu, tmp_path: Path, full_fs: Path
) -> None:
    events, transcript = full_fs / "ev.jsonl", full_fs / "t.jsonl"
    proc = subprocess.Popen(
        [*QMPSH, vm.socket, f"--events={events}", f"--transcript={transcript}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=support.private_env(tmp_path),
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        proc.stdin.write(b"stop\n")
        proc.stdin.flush()
        # Said at once: both files complain while the script is still open.
        first, second = _lines_within(proc.stderr, 2)
        said = first + second
        assert "No space left on device" in first and "No space left on device" in second
        assert f"transcript {transcript}" in said and f"events file {events}" in said
        # The session goes on: the next command still runs and answers.
        proc.stdin.write(b"cont\nquery-status\n")
        proc.stdin.close()
        out = proc.stdout.read().decode()
        rest = proc.stderr.read().decode()
        code = proc.wait(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert '"running":true' in out.replace(" ", "")
    assert "Traceback" not in said + rest
    assert "not written to events file" in rest and "not written to transcript" in rest
    assert code == 1


def _lines_within(stream: IO[bytes], count: int) -> list[str]:
    """The next ``count`` lines, read on a helper thread so a silent qmpsh fails the test."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for _ in range(count):
            lines.put(stream.readline().decode())

    threading.Thread(target=read, daemon=True).start()
    try:
        return [lines.get(timeout=support.WAIT) for _ in range(count)]
    except queue.Empty:
        pytest.fail("qmpsh did not say that the disk is full")


def test_closed_stdout_is_an_error_not_a_traceback(vm: Qemu, tmp_path: Path) -> None:
    command = f"exec {' '.join(QMPSH)} {vm.socket} -c query-status >&-"
    proc = subprocess.run(
        ["sh", "-c", command],
        capture_output=True,
        env=support.private_env(tmp_path),
        timeout=DEADLINE,
    )
    outcome = Outcome(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    one_line(outcome, 2, "standard output is closed")


@pytest.mark.parametrize(
    "args",
    [
        ("-c", "query-status"),
        ("--format", "raw", "-c", "query-qmp-schema"),
        ("--completions", "bash"),
    ],
    ids=["json", "big-raw", "completions"],
)
def test_stdout_on_a_full_device(vm: Qemu, tmp_path: Path, args: tuple[str, ...]) -> None:
    with open("/dev/full", "wb") as full:
        outcome = run(tmp_path, vm.socket, *args, stdout=full, stderr=subprocess.PIPE)
    one_line(outcome, 1, "cannot write standard output: No space left on device")


# -- text that is not UTF-8, and text that UTF-8 cannot hold ---------------------------

BAD_SCRIPT = b'query-status\nhuman-monitor-command command-line="info \xff"\nquery-status\n'


def test_invalid_utf8_on_stdin_and_in_a_file_is_the_same_error(vm: Qemu, tmp_path: Path) -> None:
    script = tmp_path / "bad.qmp"
    script.write_bytes(BAD_SCRIPT)
    piped = run(tmp_path, vm.socket, stdin=BAD_SCRIPT)
    from_file = run(tmp_path, vm.socket, "-f", str(script))
    piped_line = one_line(piped, 2, "line 2, col 42: standard input is not UTF-8 text")
    file_line = one_line(from_file, 2, f"line 2, col 42: {script} is not UTF-8 text")
    assert piped_line.replace("standard input", str(script)) == file_line
    for outcome in (piped, from_file):  # line 1 ran, nothing from line 2 on was sent
        assert outcome.stdout.count('"status"') == 1, outcome.stdout


def test_a_lone_surrogate_is_written_escaped_to_event_and_transcript_files(
    tmp_path: Path,
) -> None:
    """QEMU never sends one, so the FAKE server does: ``"\\ud800"`` is legal JSON text."""

    def script(conn: FakeConnection) -> None:
        conn.handshake()
        request = conn.read()
        stamp = b'"timestamp": {"seconds": 1, "microseconds": 2}'
        conn.send_raw(b'{"event": "ODD", "data": {"s": "\\ud800"}, ' + stamp + b"}\n")
        conn.send_raw(
            b'{"return": {"s": "x"}, "id": ' + json.dumps(request["id"]).encode() + b"}\n"
        )
        conn.read()

    events, transcript = tmp_path / "ev.jsonl", tmp_path / "t.jsonl"
    path = str(tmp_path / "fake.sock")
    with FakeQmpServer(path, script) as server:
        outcome = run(
            tmp_path,
            path,
            f"--events={events}",
            f"--transcript={transcript}",
            "--format",
            "raw",
            "-c",
            '{"execute": "query-odd", "id": 7}',
        )
    assert server.error is None, server.error
    assert outcome.code == 0 and outcome.stderr == "", outcome
    [event] = [json.loads(line) for line in events.read_text().splitlines()]
    assert event["data"]["s"] == "\ud800"
    logged = [json.loads(line) for line in transcript.read_text().splitlines()]
    assert {"s": "\ud800"} in [e["msg"].get("data") for e in logged if e["dir"] == "event"]


# -- small command-line traps --------------------------------------------------------


def test_events_before_the_address_keeps_the_address(vm: Qemu, tmp_path: Path) -> None:
    """``--events SOCK`` once took SOCK as the events file and left no address."""
    outcome = run(tmp_path, "--events", vm.socket, "-c", "stop", "-c", "cont")
    assert outcome.code == 0, outcome
    names = [json.loads(line)["event"] for line in outcome.stderr.splitlines()]
    assert names == ["STOP", "RESUME"]
    assert stat.S_ISSOCK(os.stat(vm.socket).st_mode)  # still a socket, not appended to


def test_events_with_an_empty_file_name_is_an_error(vm: Qemu, tmp_path: Path) -> None:
    outcome = run(tmp_path, vm.socket, "--events=", "-c", "query-status")
    one_line(outcome, 2, "--events= needs a file name")


def test_events_help_says_the_equals_sign_is_needed(tmp_path: Path) -> None:
    outcome = run(tmp_path, "--help")
    assert "--events=FILE (the = is" in " ".join(outcome.stdout.split())


def test_wait_keeps_quoted_blanks_in_values(tmp_path: Path) -> None:
    """``wait E reason="Input/output error"`` once lost its quotes and never matched."""
    drive = block_io_error_drive("read_aio", "report")
    with start_tiny_guest(tmp_path, GUEST_IDE_READ, drive) as q:
        outcome = run(
            tmp_path,
            q.socket,
            "-c",
            "cont",
            "-c",
            'wait BLOCK_IO_ERROR reason="Input/output error" operation=read timeout=30',
        )
    assert outcome.code == 0, outcome
    assert json.loads(outcome.stdout.splitlines()[-1])["data"]["reason"] == "Input/output error"


def test_wait_event_with_a_quoted_filter_value(tmp_path: Path) -> None:
    """--wait-event takes --events-filter's quoted values the same way."""
    drive = block_io_error_drive("read_aio", "report")
    with start_tiny_guest(tmp_path, GUEST_IDE_READ, drive) as q:
        outcome = run(
            tmp_path,
            q.socket,
            "-c",
            "cont",
            "--wait-event",
            "BLOCK_IO_ERROR",
            "--events-filter",
            "reason='Input/output error'",
        )
    assert outcome.code == 0, outcome


def test_a_pager_with_an_unbalanced_quote_warns_and_shows_the_reply(
    vm: Qemu, tmp_path: Path
) -> None:
    """In the real shell, in a pty: a long reply with ``PAGER='less "-R'``."""
    env = support.private_env(
        tmp_path, TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1", PAGER='less "-R'
    )
    child = pexpect.spawn(
        sys.executable, [*QMPSH[1:], vm.socket], env=env, encoding="utf-8", dimensions=(30, 120)
    )
    child.timeout = DEADLINE
    try:
        child.expect(PROMPT)
        child.sendline("query-commands")
        child.expect("cannot use PAGER='less \"-R' \\(no closing quotation\\); not paging")
        child.expect("query-status")  # the reply is printed instead
        child.expect(PROMPT)
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
        seen = child.before or ""
    finally:
        child.close(force=True)
    assert "Traceback" not in seen
    assert child.exitstatus == 0
