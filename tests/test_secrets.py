"""Secrets never reach the history file, a transcript or the ``--verbose`` echo.

Unit tests pin down what is masked (by schema type where the schema is known, by name
otherwise); the rest runs the real qmpsh against a real QEMU and greps the files it
wrote, since a leak is a property of the files, not of a function.
"""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest
from qemu import Qemu
from support import QMPSH, private_env

from qmpsh.redact import MASK, line_has_secret, redact_message
from qmpsh.request import Command
from qmpsh.schema import Schema

PROMPT = r"\(qemu \d+\.\d+\.\d+\) "

# Every secret below contains "hunter", so one grep finds any leak.
SCRIPT = """\
{"execute": "set_password", "arguments": {"protocol": "vnc", "password": "hunter1"}}
set_password protocol=vnc password=hunter2
change-vnc-password password=hunter3
object-add qom-type=secret id=sec0 data=hunter4
{"execute": "object-add", "arguments": {"qom-type": "secret", "id": "sec1", "data": "hunter5"}}
hmp set_password vnc hunter6
query-status
"""


def args_of(message: dict[str, Any]) -> dict[str, Any]:
    arguments: dict[str, Any] = message["arguments"]
    return arguments


# -- what is masked -----------------------------------------------------------------


@pytest.mark.parametrize("with_schema", [True, False])
@pytest.mark.parametrize(
    ("message", "path"),
    [
        (
            {"execute": "set_password", "arguments": {"protocol": "vnc", "password": "x"}},
            ["password"],
        ),
        ({"execute": "change-vnc-password", "arguments": {"password": "x"}}, ["password"]),
        (
            {"execute": "object-add", "arguments": {"qom-type": "secret", "id": "s", "data": "x"}},
            ["data"],
        ),
        (
            {
                "execute": "blockdev-add",
                "arguments": {
                    "driver": "qcow2",
                    "node-name": "n",
                    "file": "f",
                    "encrypt": {"format": "luks", "key-secret": "x"},
                },
            },
            ["encrypt", "key-secret"],
        ),
        (
            {
                "execute": "x-blockdev-amend",
                "arguments": {
                    "job-id": "j",
                    "node-name": "n",
                    "options": {"driver": "luks", "state": "active", "new-secret": "x"},
                },
            },
            ["options", "new-secret"],
        ),
    ],
    ids=["set_password", "change-vnc-password", "secret-object", "luks-key-secret", "amend"],
)
def test_secret_members_are_masked(
    schema: Schema, with_schema: bool, message: dict[str, Any], path: list[str]
) -> None:
    redacted = redact_message(message, schema if with_schema else None)
    value: Any = args_of(redacted)
    for key in path:
        value = value[key]
    assert value == MASK
    assert message != redacted  # a copy: the message that is sent keeps its secret


def test_other_members_are_kept(schema: Schema) -> None:
    message = {"execute": "set_password", "arguments": {"protocol": "vnc", "password": "x"}}
    assert args_of(redact_message(message, schema))["protocol"] == "vnc"


def test_secrets_inside_a_transaction_are_found_through_the_schema(schema: Schema) -> None:
    action = {"type": "blockdev-snapshot-sync", "data": {"device": "d", "snapshot-file": "f"}}
    secret = {"qom-type": "secret", "id": "s", "data": "x"}
    message = {"execute": "transaction", "arguments": {"actions": [action]}}
    assert redact_message(message, schema) == message  # nothing secret: unchanged
    nested = {"execute": "object-add", "arguments": secret}
    assert args_of(redact_message(nested, schema))["data"] == MASK


def test_schema_decides_by_type_and_names_decide_without_it() -> None:
    """A member named like a secret but typed int is no secret; unknown, a number is masked."""
    tiny = Schema.from_entries(
        [
            {"name": "cmd", "meta-type": "command", "arg-type": "A", "ret-type": "A"},
            {
                "name": "A",
                "meta-type": "object",
                "members": [
                    {"name": "secret-count", "type": "int"},
                    {"name": "password", "type": "str"},
                ],
            },
            {"name": "int", "meta-type": "builtin", "json-type": "int"},
            {"name": "str", "meta-type": "builtin", "json-type": "string"},
        ]
    )
    message = {"execute": "cmd", "arguments": {"secret-count": 3, "password": 123456}}
    assert args_of(redact_message(message, tiny)) == {"secret-count": 3, "password": MASK}
    assert args_of(redact_message(message)) == {"secret-count": MASK, "password": MASK}


def test_hmp_line_with_a_password_is_masked() -> None:
    message = {
        "execute": "human-monitor-command",
        "arguments": {"command-line": "set_password vnc hunter2"},
    }
    assert args_of(redact_message(message))["command-line"] == f"set_password {MASK}"
    harmless = {"execute": "human-monitor-command", "arguments": {"command-line": "info status"}}
    assert redact_message(harmless) == harmless


@pytest.mark.parametrize(
    "line",
    [
        "set_password protocol=vnc password=hunter2",
        "change-vnc-password password=hunter2",
        "object-add qom-type=secret id=s0 data=hunter2",
        '{"execute":"object-add","arguments":{"qom-type":"secret","id":"s","data":"hunter2"}}',
        '{"execute": "set_password", "arguments": {"protocol": "vnc", "password": "hunter2"}}',
        "blockdev-add driver=qcow2 node-name=n file=f encrypt.key-secret=s0",
        "x-blockdev-amend job-id=j node-name=n options={'driver': 'luks', 'new-secret': 's'}",
        "hmp set_password vnc hunter2",
        "hmp change vnc password hunter2",
        "hmp object_add secret,id=s0,data=hunter2",
    ],
)
def test_lines_with_secrets_stay_out_of_history(line: str) -> None:
    assert line_has_secret(line)


@pytest.mark.parametrize("line", ["query-status", "query-vnc", "info block", "stop"])
def test_ordinary_lines_go_to_history(line: str) -> None:
    assert not line_has_secret(line)


# -- real runs, files grepped -------------------------------------------------------------


@pytest.fixture(scope="module")
def vm() -> Iterator[Qemu]:
    with Qemu(vnc=True) as q:
        yield q


def run_script(tmp_path: Path, socket: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*QMPSH, socket, *args],
        input=SCRIPT,
        capture_output=True,
        text=True,
        env=private_env(tmp_path),
        timeout=60,
    )


def test_transcript_has_no_secret_and_is_private(vm: Qemu, tmp_path: Path) -> None:
    log = tmp_path / "transcript.jsonl"
    result = run_script(tmp_path, vm.socket, "-l", str(log))
    assert '"running"' in result.stdout, result.stderr  # the script ran to its end
    text = log.read_text()
    assert "hunter" not in text
    assert text.count(MASK) >= 6
    sent = [json.loads(line)["msg"].get("execute") for line in text.splitlines()]
    assert sent.count("object-add") == 2 and "human-monitor-command" in sent
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_verbose_echo_has_no_secret(vm: Qemu, tmp_path: Path) -> None:
    result = run_script(tmp_path, vm.socket, "--verbose")
    assert '"running"' in result.stdout, result.stderr
    echoed = [line for line in result.stderr.splitlines() if line.startswith("{")]
    assert len(echoed) >= 7
    assert "hunter" not in result.stderr
    assert result.stderr.count(MASK) >= 6


def test_history_has_no_secret_and_is_private(vm: Qemu, tmp_path: Path) -> None:
    env = private_env(tmp_path)
    env.update(TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1")
    args = [*QMPSH[1:], vm.socket, "--yes", "--format", "json"]
    child = pexpect.spawn(QMPSH[0], args, env=env, encoding="utf-8", timeout=20)
    try:
        child.expect(PROMPT)
        # The prompt is redrawn as Enter is pressed; the reply is what says a line is done
        # (QEMU refuses a VNC password when VNC has no password auth: a reply all the same).
        for line, reply in (
            ("set_password protocol=vnc password=hunter2", r"\{\}|error: "),
            ("query-status", '"running"'),
        ):
            child.send(line + "\r")
            child.expect(reply)
            child.expect(PROMPT)
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    history = tmp_path / "state" / "qmpsh" / "history"
    text = history.read_text()
    assert "query-status" in text
    assert "hunter" not in text
    assert stat.S_IMODE(history.stat().st_mode) == 0o600
    assert stat.S_IMODE(history.parent.stat().st_mode) == 0o700


# -- a remote monitor is announced (decided here, never by connecting) -------------------


@pytest.mark.parametrize(
    ("text", "quiet", "warned"),
    [
        ("192.0.2.10:4444", False, True),  # TEST-NET-1: documentation only, never contacted
        ("[2001:db8::1]:4444", False, True),
        ("192.0.2.10:4444", True, False),
        ("127.0.0.1:4444", False, False),
        ("localhost:4444", False, False),
        ("[::1]:4444", False, False),
        ("/run/qmp.sock", False, False),
    ],
)
def test_remote_warning_is_decided_without_connecting(text: str, quiet: bool, warned: bool) -> None:
    from qmpsh.address import parse_address
    from qmpsh.cli import remote_warning

    warning = remote_warning(parse_address(text), quiet=quiet)
    assert (warning is not None) == warned
    if warning is not None:
        assert "\n" not in warning and "not loopback" in warning and "no authentication" in warning


# -- the input language never runs code ---------------------------------------------------

PAYLOADS = [
    "__import__('os').system('touch {marker}')",
    "{{'a': __import__('os').system('touch {marker}')}}",
    "[(lambda: __import__('os').system('touch {marker}'))()]",
    "().__class__.__bases__[0].__subclasses__()",
    "eval(\"__import__('os').system('touch {marker}')\")",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_values_are_data_never_code(payload: str, tmp_path: Path) -> None:
    from qmpsh.errors import InputError
    from qmpsh.syntax import Syntax

    marker = tmp_path / "pwned"
    line = f"qom-set path=/machine property=x value={payload.format(marker=marker)}"
    try:
        request = Syntax().parse(line)
    except InputError:
        pass  # refused: fine, as long as nothing ran
    else:
        assert isinstance(request, Command)
        assert isinstance(request.arguments[-1].value, str)  # a bare word: just text
    assert not marker.exists()


def test_values_are_data_through_the_real_cli(vm: Qemu, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    lines = [f"qom-get path={p.format(marker=marker)} property=type" for p in PAYLOADS]
    result = subprocess.run(
        [*QMPSH, vm.socket, *[arg for line in lines for arg in ("-c", line)]],
        capture_output=True,
        text=True,
        env=private_env(tmp_path),
        timeout=60,
    )
    assert result.returncode in (1, 2), result.stderr  # QMP or input errors, nothing else
    assert "Traceback" not in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize(
    "line",
    [
        "object-add qom-type=secret id=nested0 props.data=hunter9",
        '{"execute": "object-add", "arguments": {"qom-type": "secret", "id": "nested1",'
        ' "props": {"data": "hunter9", "format": "raw"}}}',
    ],
    ids=["dotted", "raw-json"],
)
def test_nested_secret_data_is_masked_in_transcript_and_echo(
    vm: Qemu, tmp_path: Path, line: str
) -> None:
    """The older nested form (``props.data``) of a secret object is a secret too."""
    log = tmp_path / "transcript.jsonl"
    result = subprocess.run(
        [*QMPSH, vm.socket, "--no-validate", "-v", "-l", str(log)],
        input=line + "\n",
        capture_output=True,
        text=True,
        env=private_env(tmp_path),
        timeout=60,
    )
    assert "Traceback" not in result.stderr
    sent = [json.loads(entry)["msg"] for entry in log.read_text().splitlines()]
    [out] = [m for m in sent if m.get("execute") == "object-add"]
    assert out["arguments"]["props"]["data"] == MASK
    assert "hunter9" not in log.read_text() and "hunter9" not in result.stderr
    assert MASK in result.stderr  # the -v echo, masked


def test_nested_secret_data_is_masked_without_a_schema() -> None:
    message = {
        "execute": "object-add",
        "arguments": {"qom-type": "secret", "id": "s", "props": {"data": "x", "format": "raw"}},
    }
    assert redact_message(message)["arguments"]["props"] == {"data": MASK, "format": "raw"}
    assert message["arguments"]["props"]["data"] == "x"  # type: ignore[index]  (a copy)
