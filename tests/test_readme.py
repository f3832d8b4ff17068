"""The README's promises, checked: its input-language examples parse, type and run.

The README is the front door; an example there that the parser rejects, that the
connected QEMU's schema would refuse, or that fails against the ``--launch`` demo
machine the README tells a new user to try it on, is a bug in one or the other.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack, closing
from pathlib import Path

import pytest
from support import private_env, wait_until

from qmpsh.fds import split_file
from qmpsh.request import Command, HmpLine, RawJson, ShellCommand, Transaction
from qmpsh.schema import Schema
from qmpsh.syntax import Syntax
from qmpsh.validate import type_command, type_transaction

README = Path(__file__).parent.parent / "README.md"
SHELL_WORDS = ("help", "exit", "format", "events", "wait", "spice", "reconnect")
QMPSH = [sys.executable, "-m", "qmpsh"]


def _section_blocks() -> dict[str, list[str]]:
    """The code blocks of the section 'The input language', by language ('' for none)."""
    text = README.read_text()
    start = text.index("## The input language")
    section = text[start : text.index("\n## ", start + 1)]
    blocks: dict[str, list[str]] = {}
    for chunk in section.split("```")[1::2]:
        lang, _, body = chunk.partition("\n")
        blocks.setdefault(lang.strip(), [line for line in body.splitlines() if line.strip()])
    return blocks


def input_examples() -> list[str]:
    """The example requests, exactly as written (comments included: the parser takes them)."""
    return _section_blocks()[""]


def preparation() -> list[str]:
    """The shell lines the README says to run first (files, and an NBD server)."""
    return _section_blocks()["sh"]


def test_the_readme_has_input_examples() -> None:
    assert len(input_examples()) >= 10


@pytest.mark.parametrize("line", input_examples())
def test_each_input_example_parses_and_types(line: str, schema: Schema) -> None:
    """Each line alone, against the schema (the run below proves they work in order)."""
    request = Syntax(shell_words=SHELL_WORDS).parse(line)
    assert request is not None
    if isinstance(request, Command):
        request, _ = split_file(request)  # file= is qmpsh's, as in Session.run
        type_command(request, schema)  # raises InputError if the schema would refuse it
    elif isinstance(request, Transaction):
        assert len(type_transaction(request, schema)) >= 2
    else:
        assert isinstance(request, RawJson | HmpLine | ShellCommand)


def _prepare(directory: Path, stack: ExitStack) -> None:
    """Run the README's preparation in ``directory``: lines ending in ``&`` are servers,
    started here and stopped by PID when the test ends."""
    env = private_env(directory)
    for line in preparation():
        if not line.rstrip().endswith("&"):
            subprocess.run(["sh", "-c", line], cwd=directory, env=env, check=True)
            continue
        server = subprocess.Popen(
            ["sh", "-c", "exec " + line.rstrip().removesuffix("&")], cwd=directory, env=env
        )
        stack.callback(_stop, server)
        assert wait_until(_accepts(directory, line)), f"the README's server never listened: {line}"


def _accepts(directory: Path, line: str) -> Callable[[], bool]:
    """Whether the server started by ``line`` accepts on its ``--socket=`` yet."""
    [word] = [w for w in shlex.split(line) if w.startswith("--socket=")]
    path = str(directory / word.partition("=")[2].replace("$PWD/", ""))

    def accepts() -> bool:
        with closing(socket.socket(socket.AF_UNIX)) as probe:
            try:
                probe.connect(path)
            except OSError:
                return False
            return True

    return accepts


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


# Asked after the examples: what each of them should have left behind.
AFTERWARDS = {
    "query-block": lambda r: [d["tray_open"] for d in r if d["device"] == "ide1-cd0"] == [True],
    "qom-list path=/machine/peripheral": lambda r: (
        {"net1", "virtio-disk0"} <= {p["name"] for p in r}
    ),
    "qom-list path=/objects": lambda r: "sec0" in {p["name"] for p in r},
    "query-named-block-nodes": lambda r: (
        {"disk1", "disk2"} <= {n["node-name"] for n in r}
        and "b0" in {b["name"] for n in r for b in n.get("dirty-bitmaps", []) if "name" in b}
    ),
    "query-block-jobs": lambda r: [(j["type"], j["device"]) for j in r] == [("mirror", "disk0")],
}


def test_every_input_example_runs_in_order_against_launch(tmp_path: Path) -> None:
    """The examples, as written, piped into ``qmpsh --launch`` after the README's
    preparation: every request gets a reply and none is an error."""
    examples = input_examples()
    expected_replies = sum(
        not isinstance(Syntax(shell_words=SHELL_WORDS).parse(line), ShellCommand)
        for line in examples
    )
    with ExitStack() as stack:
        _prepare(tmp_path, stack)
        result = subprocess.run(
            [*QMPSH, "--launch", "--format", "raw", "--exit-on-error"],
            input="\n".join([*examples, *AFTERWARDS]) + "\n",
            cwd=tmp_path,
            env=private_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
    replies = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    errors = [r for r in replies if "error" in r]
    assert (result.returncode, errors) == (0, []), result.stderr
    assert len(replies) == expected_replies + len(AFTERWARDS)
    for (request, holds), reply in zip(
        AFTERWARDS.items(), replies[-len(AFTERWARDS) :], strict=True
    ):
        assert holds(reply["return"]), (request, reply)
    assert "node-name" in result.stdout  # `help blockdev-add` printed its members
    assert (tmp_path / "s.qcow2").is_file()  # made by the transaction's snapshot
