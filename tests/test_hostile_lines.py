"""Hostile input lines and schema-less servers, through the real ``python -m qmpsh``.

Issue 8: a line whose dotted key has tens of thousands of parts (or whose value nests
deeply) is refused in one line with its column, in bounded memory, with or without
validation; a bracket left open in a script costs one request, not the rest of the
script; a server without ``query-qmp-schema`` (qemu-ga, an old QEMU, another QMP
server) is driven untyped, as qmp-shell would, instead of refusing every command.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_qmp_server import FakeConnection, FakeQmpServer
from qemu import Qemu
from test_e2e_pty import PROMPT, leave, spawn_qmpsh
from test_faults import Outcome, finish, start

from qmpsh.completer import QmpCompleter
from qmpsh.live_values import LiveValues

# Far above what qmpsh needs for a line (~40 MiB), far below what the quadratic nesting
# took (1.5 GB at 16,000 parts): a regression shows as a clear failure.
LINE_RSS_LIMIT_MIB = 160


def run_script(tmp_path: Path, script: str, *args: str) -> Outcome:
    """Pipe ``script`` into qmpsh, measuring its peak RSS."""
    path = tmp_path / "script.qmp"
    path.write_text(script)
    with open(path) as stdin:
        return finish(start(tmp_path, *args, stdin=stdin), tmp_path)


def error_lines(outcome: Outcome) -> list[str]:
    assert "Traceback" not in outcome.stderr, outcome.stderr
    return [line for line in outcome.stderr.splitlines() if line.startswith("error:")]


# -- one line, bounded work -----------------------------------------------------------------


@pytest.mark.parametrize("parts", [16_000, 50_000])
@pytest.mark.parametrize("validate", [True, False])
def test_a_dotted_key_with_many_parts_is_refused_in_bounded_memory(
    qemu: Qemu, tmp_path: Path, parts: int, validate: bool
) -> None:
    key = "value." + ".".join(["a"] * parts)
    script = f"qom-set path=/machine property=x {key}=1\nquery-status\n"
    options = () if validate else ("--no-validate",)
    outcome = run_script(tmp_path, script, *options, qemu.socket)
    assert outcome.code == 2
    (line,) = error_lines(outcome)
    assert line.startswith("error: line 1, col 34: key 'value.a.a")
    assert "nested more than" in line and len(line) < 200
    assert json.loads(outcome.stdout)["status"]  # the next request still ran
    assert 0 < outcome.peak_rss_mib < LINE_RSS_LIMIT_MIB, outcome.peak_rss_mib


def test_a_deeply_nested_value_is_refused_with_its_column(qemu: Qemu, tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    script = f"qom-set path=/machine property=x value={deep}\nquery-status\n"
    outcome = run_script(tmp_path, script, "--no-validate", qemu.socket)
    (line,) = error_lines(outcome)
    assert line.startswith("error: line 1, col 40: ") and "nested more than" in line
    assert json.loads(outcome.stdout)["status"]
    assert 0 < outcome.peak_rss_mib < LINE_RSS_LIMIT_MIB, outcome.peak_rss_mib


def test_key_parts_and_value_depth_share_one_bound(qemu: Qemu, tmp_path: Path) -> None:
    """Each is fine alone; together they pass the bound, so the line is refused."""
    key = ".".join(["a"] * 100)
    value = "[" * 100 + "]" * 100
    script = f"qom-set path=/machine property=x value.{key}=1\n"
    script += f"qom-set path=/machine property=x value={value}\n"
    script += f"qom-set path=/machine property=x value.{key}={value}\n"
    outcome = run_script(tmp_path, script, "--no-validate", qemu.socket)
    errors = error_lines(outcome)
    assert errors[-1].startswith("error: line 3, col ") and "nested more than" in errors[-1]
    assert not any("nested" in line for line in errors[:-1]), errors  # QEMU's own refusals


def test_a_recursive_value_at_the_depth_bound_is_typed_without_recursion_error(
    qemu: Qemu, tmp_path: Path
) -> None:
    """blockdev-add's ``file`` is again a block node: the schema check walks it deeply."""
    levels = 60  # two nesting levels each: just under the bound
    value = '{"driver": "qcow2", "file": ' * levels + '"base"' + "}" * levels
    outcome = run_script(
        tmp_path, f"blockdev-add driver=raw node-name=n file={value}\n", qemu.socket
    )
    (line,) = error_lines(outcome)
    assert "base" in line  # QEMU refused the missing node: qmpsh typed and sent it


# -- an open bracket costs one request ----------------------------------------------------


def test_an_unbalanced_bracket_in_a_value_does_not_swallow_the_script(
    qemu: Qemu, tmp_path: Path
) -> None:
    script = 'query-status\nqom-list path=[/machine\n  "more"\nquery-name\nquery-status\n'
    outcome = run_script(tmp_path, script, qemu.socket)
    assert outcome.code == 2
    (line,) = error_lines(outcome)
    assert line == "error: line 2, col 15: unbalanced '[': it is never closed"
    replies = [json.loads(text) for text in outcome.stdout.splitlines()]
    assert len(replies) == 3 and "status" in replies[0] and "status" in replies[2]


def test_an_unbalanced_bracket_in_a_transaction_ends_at_its_close(
    qemu: Qemu, tmp_path: Path
) -> None:
    script = "transaction(\n  block-dirty-bitmap-add node=[x name=b\n)\nquery-status\n"
    outcome = run_script(tmp_path, script, qemu.socket)
    (line,) = error_lines(outcome)
    assert line == "error: line 2, col 31: unbalanced '[': it is never closed"
    assert "status" in json.loads(outcome.stdout)


def test_a_value_that_really_spans_lines_still_joins(qemu: Qemu, tmp_path: Path) -> None:
    script = 'qom-get path=/machine property=[\n  "type"\n]\nquery-status\n'
    outcome = run_script(tmp_path, script, "--no-validate", qemu.socket)
    # one request of three lines (QEMU refuses a list as a str), then query-status
    assert [line for line in outcome.stderr.splitlines() if "line" in line] == []
    assert len(outcome.stdout.splitlines()) == 1


# -- a server without query-qmp-schema -----------------------------------------------------


def schemaless(received: list[dict[str, Any]]) -> Callable[[FakeConnection], None]:
    """A FAKE server that has no query-qmp-schema (as qemu-ga or an old QEMU)."""

    def serve(conn: FakeConnection) -> None:
        conn.handshake()
        while True:
            request = conn.read()
            received.append(request)
            name = request.get("execute")
            if name == "query-qmp-schema":
                desc = "The command query-qmp-schema has not been found"
                error = {"error": {"class": "CommandNotFound", "desc": desc}}
                conn.send({**error, **({"id": request["id"]} if "id" in request else {})})
            elif name == "query-commands":
                names = ["guest-ping", "guest-sync", "guest-info", "query-commands"]
                conn.reply(request, [{"name": n} for n in names])
            else:
                conn.reply(request, {"echo": request.get("arguments", {})})

    return serve


@pytest.fixture
def fake_socket(tmp_path: Path) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    path = str(tmp_path / "fake.sock")
    with FakeQmpServer(path, schemaless(received)) as server:
        yield path, received
    assert server.error is None, server.error


@pytest.mark.parametrize("validate", [True, False])
def test_a_script_sends_arguments_untyped_without_a_schema(
    fake_socket: tuple[str, list[dict[str, Any]]], tmp_path: Path, validate: bool
) -> None:
    path, received = fake_socket
    options = () if validate else ("--no-validate",)
    script = "guest-sync id=123 flag=true word=on name='12' size=1.5 a.b=[1]\nguest-ping\n"
    outcome = run_script(tmp_path, script, *options, path)
    assert outcome.code == 0, outcome
    assert "Traceback" not in outcome.stderr
    sent = next(r for r in received if r.get("execute") == "guest-sync")
    # qmp-shell's typing: numbers and true/false by their look, quotes make strings
    expected = {"id": 123, "flag": True, "word": "on", "name": "12", "size": 1.5, "a": {"b": [1]}}
    assert sent["arguments"] == expected
    assert json.loads(outcome.stdout.splitlines()[0]) == {"echo": expected}


def test_the_shell_stays_up_without_a_schema(
    fake_socket: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    path, received = fake_socket
    child = spawn_qmpsh([path], tmp_path, XDG_CACHE_HOME=str(tmp_path / "cache"))
    try:
        child.expect(PROMPT)
        child.send("guest-sync id=7\r")
        child.expect('"echo"')
        child.expect(PROMPT)
        assert child.isalive()
        sent = next(r for r in received if r.get("execute") == "guest-sync")
        assert sent["arguments"] == {"id": 7}
    finally:
        leave(child)
    assert child.exitstatus == 0


def test_completion_offers_query_commands_without_a_schema(
    fake_socket: tuple[str, list[dict[str, Any]]],
) -> None:
    from qmpsh.address import parse_address
    from qmpsh.client import QmpClient

    path, _ = fake_socket
    client = QmpClient(parse_address(path), timeout=10.0)
    client.connect()
    try:
        from prompt_toolkit.completion import CompleteEvent
        from prompt_toolkit.document import Document

        completer = QmpCompleter(lambda: None, LiveValues.for_client(lambda: client))
        found = completer.get_completions(Document("guest-s"), CompleteEvent())
        assert [c.text for c in found] == ["guest-sync"]
    finally:
        client.close()
