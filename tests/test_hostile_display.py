"""Strings a guest or a VM's owner chose never reach the terminal as control characters.

A real QEMU carries them: its ``-name`` holds ``ESC ] 2 ; … BEL`` (an OSC that retitles
the terminal) and U+202E (right-to-left override), and its disk is a qcow2 image whose
backing file's name holds the same, made with ``qemu-img`` in a temp dir.  The real
``python -m qmpsh`` shows them through every path a person reads (tables, HMP text,
``info`` shortcuts, errors, JSON, the prompt and its echo); the bytes it writes are
checked: no control character except line breaks and, with ``--color always``,
qmpsh's own SGR colour codes.  json and raw stay valid JSON that reads back the same.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from qemu import Qemu
from support import private_env

OSC = "\x1b]2;PWNED\x07"  # "set the window title to PWNED"
RLO = "\u202e"  # right-to-left override
EVIL = f"vm{OSC}{RLO}"
QMPSH = [sys.executable, "-m", "qmpsh"]
SGR = re.compile(rb"\x1b\[[0-9;]*m")  # qmpsh's own colours: the only escapes allowed
TIMEOUT = 20


@pytest.fixture(scope="module")
def evil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Qemu]:
    """A QEMU named EVIL with a drive whose backing file is named after EVIL too."""
    images = tmp_path_factory.mktemp("images")
    backing = images / f"b{OSC}{RLO}.raw"
    top = images / "top.qcow2"
    for args in (
        ["-f", "raw", str(backing), "1M"],
        ["-f", "qcow2", "-b", str(backing), "-F", "raw", str(top), "1M"],
    ):
        subprocess.run(["qemu-img", "create", *args], check=True, capture_output=True)
    drive = f"if=none,id=d0,file={top},format=qcow2"
    with Qemu(["-name", EVIL, "-drive", drive]) as q:
        yield q


def qmpsh(
    tmp_path: Path, qemu: Qemu, *args: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*QMPSH, qemu.socket, *args],
        input=stdin,
        capture_output=True,
        env=private_env(tmp_path, COLUMNS="400"),  # tables unwrapped: a cell reads whole
        timeout=60,
        check=False,
    )


def raw_controls(data: bytes) -> list[str]:
    """Control and format characters in ``data`` other than line breaks and SGR colours."""
    text = SGR.sub(b"", data).decode("utf-8")  # strict: a lone surrogate could not be here
    return [
        repr(c)
        for c in text
        if c != "\n" and (not c.isprintable() or c == RLO) and c not in " \u00a0"
    ]


def strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def assert_clean(result: subprocess.CompletedProcess[bytes]) -> str:
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr
    for stream in (result.stdout, result.stderr):
        assert raw_controls(stream) == []
    return result.stdout.decode()


# The same bytes as they must appear instead: visible escapes.
SHOWN = ("\\x1b]2;PWNED\\x07", "\\u001b]2;PWNED\\u0007")


@pytest.mark.parametrize(
    "line",
    [
        "query-named-block-nodes",
        "query-block",  # its table has no backing column: nothing to show, nothing sent
        "query-name",
        "info block",
        "info name",
        "hmp info block -v",
        "hmp info name",
        "human-monitor-command command-line='info block'",
    ],
)
@pytest.mark.parametrize("color", ["always", "never"])
def test_pretty_shows_the_escape_and_sends_none(
    evil: Qemu, tmp_path: Path, line: str, color: str
) -> None:
    out = assert_clean(qmpsh(tmp_path, evil, "--format", "pretty", "--color", color, "-c", line))
    plain = SGR.sub(b"", out.encode()).decode()
    assert line == "query-block" or any(shown in plain for shown in SHOWN), plain
    if color == "never":
        assert "\x1b" not in out


@pytest.mark.parametrize("fmt", ["json", "raw"])
@pytest.mark.parametrize("line", ["query-named-block-nodes", "query-name", "query-block"])
def test_json_and_raw_are_valid_json_with_the_escape(
    evil: Qemu, tmp_path: Path, fmt: str, line: str
) -> None:
    out = assert_clean(qmpsh(tmp_path, evil, "--format", fmt, "-c", line))
    value = json.loads(out)
    assert any(OSC in text for text in strings(value))  # the meaning is intact
    assert "\\u001b]2;PWNED\\u0007" in out and "\\u202e" in out


def test_hmp_text_keeps_its_lines_and_shows_the_controls(evil: Qemu, tmp_path: Path) -> None:
    out = assert_clean(qmpsh(tmp_path, evil, "-H", "-c", "info block -v"))
    assert "\nImages:\n" in out  # HMP's lines stay lines
    assert "b\\x1b]2;PWNED\\x07\\u202e.raw" in out


def test_error_descriptions_show_the_controls(evil: Qemu, tmp_path: Path) -> None:
    """QEMU quotes the id back in its error: that is wire text too, on stderr."""
    request = json.dumps({"execute": "device_del", "arguments": {"id": EVIL}})
    for fmt in ("pretty", "json"):
        result = qmpsh(tmp_path, evil, "--format", fmt, "--color", "always", "-c", request)
        assert result.returncode == 1
        assert raw_controls(result.stderr) == [] and raw_controls(result.stdout) == []
        assert "vm\\x1b]2;PWNED\\x07\\u202e" in result.stderr.decode()
        assert len(result.stderr.decode().splitlines()) == 1


def spawn(evil: Qemu, tmp_path: Path, *args: str, **env: str) -> pexpect.spawn:
    full = private_env(tmp_path, PROMPT_TOOLKIT_NO_CPR="1", **env)
    full.pop("NO_COLOR", None)
    return pexpect.spawn(
        sys.executable,
        ["-m", "qmpsh", evil.socket, *args],
        dimensions=(30, 90),
        env=full,
        timeout=TIMEOUT,
    )


PROMPT = re.escape(b"(vm\\x1b]2;PWNED\\x07\\u202e) ")


@pytest.mark.parametrize("term", ["dumb", "xterm-256color"])
def test_the_prompt_and_its_echo_show_the_name_escaped(
    evil: Qemu, tmp_path: Path, term: str
) -> None:
    child = spawn(evil, tmp_path, "--no-pane", TERM=term)
    seen = b""
    try:
        child.expect(PROMPT)
        seen += child.before + child.after
        child.send(b"query-status\r")
        child.expect(b"running")
        seen += child.before + child.after
        child.expect(PROMPT)
        seen += child.before + child.after
        child.sendeof()
        child.expect(pexpect.EOF)
        seen += child.before
    finally:
        child.close(force=True)
    assert OSC.encode() not in seen and RLO.encode() not in seen
    assert b"\x07" not in seen  # not even the BEL alone
    if term == "dumb":
        assert raw_controls(seen.replace(b"\r", b"")) == []
