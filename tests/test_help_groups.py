"""``help`` for a newcomer: shell words first, QMP grouped by task, and the topics
that are not QMP commands (``help info``, ``help hmp``, the event filter syntax).

Before: ``help`` listed ``stop``, ``cont``, ``quit`` and ``eject`` under "other", the
shell's commands last and neither ``info`` nor ``hmp``; ``help info`` was an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from qemu import Qemu, RawMonitor
from test_events_cli import run

from qmpsh.events import EventFilter
from qmpsh.help_groups import FALLBACK, FILTER_TERMS, GROUPS, group_of, grouped
from qmpsh.hmp import INFO_QUERIES


@pytest.fixture(scope="module")
def qmp_commands(qemu: Qemu) -> list[str]:
    """Every command of the real QEMU's schema (7.2 in CI)."""
    with RawMonitor(qemu.socket) as mon:
        entries = mon.execute("query-qmp-schema")
    return sorted(e["name"] for e in entries if e["meta-type"] == "command")


def test_every_real_command_has_a_group_of_its_own(qmp_commands: list[str]) -> None:
    assert len(qmp_commands) > 150
    assert [name for name in qmp_commands if group_of(name) == FALLBACK] == []


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("stop", "VM lifecycle"),
        ("cont", "VM lifecycle"),
        ("quit", "VM lifecycle"),
        ("system_reset", "VM lifecycle"),
        ("eject", "block devices and media"),
        ("blockdev-add", "block devices and media"),
        ("block-job-cancel", "block jobs"),
        ("device_add", "devices and memory"),
        ("query-spice", "display and input"),
        ("migrate", "migration and replication"),
        ("query-qmp-schema", "introspection and the monitor"),
        ("qom-list", "objects (QOM)"),
    ],
)
def test_commands_land_where_a_user_looks(name: str, group: str) -> None:
    assert group_of(name) == group


def test_no_pattern_is_dead(qmp_commands: list[str]) -> None:
    """Every pattern in the table names at least one real command (no stale rows)."""
    unused = [
        pattern
        for _, patterns in GROUPS
        for pattern in patterns
        if not any(re.fullmatch(pattern.replace("*", ".*"), n) for n in qmp_commands)
    ]
    assert unused == []


def test_grouped_keeps_table_order_and_a_fallback_last() -> None:
    assert grouped(["zz-new", "quit", "eject"]) == [
        ("VM lifecycle", ["quit"]),
        ("block devices and media", ["eject"]),
        (FALLBACK, ["zz-new"]),
    ]


def test_help_lists_shell_words_first_then_qmp_by_task(qemu: Qemu) -> None:
    result = run(qemu.socket, "-c", "help")
    assert result.returncode == 0, result.stderr
    headings = re.findall(r"^(\S.*):$", result.stdout, re.M)
    assert headings[0] == "qmpsh's own commands"
    assert headings[1] == "QMP, VM lifecycle"
    assert "QMP, other" not in headings
    shell = result.stdout.split("QMP, VM lifecycle:")[0]
    for word in ("info WHAT", "hmp LINE", "events", "wait EVENT", "exit"):
        assert re.search(rf"^  {re.escape(word)}", shell, re.M), word
    lifecycle = result.stdout.split("QMP, VM lifecycle:")[1].split("QMP, ")[0]
    assert {"stop", "cont", "quit", "system_reset"} <= set(lifecycle.split())


def test_help_info_lists_the_shortcuts_hmp_answers(qemu: Qemu) -> None:
    result = run(qemu.socket, "-c", "help info", "-c", "info?")
    assert result.returncode == 0, result.stderr
    rows = dict(re.findall(r"^  info (\S+) +(\S+)", result.stdout, re.M))
    assert rows == INFO_QUERIES
    assert result.stdout.count("info WHAT:") == 2  # `info?` is `help info`


def test_help_hmp_explains_passthrough(qemu: Qemu) -> None:
    result = run(qemu.socket, "-c", "help hmp")
    assert result.returncode == 0, result.stderr
    assert "human-monitor-command" in result.stdout and "hmp info mtree" in result.stdout


@pytest.mark.parametrize("word", ["events", "wait"])
def test_help_events_and_wait_explain_the_filter(qemu: Qemu, word: str) -> None:
    result = run(qemu.socket, "-c", f"help {word}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(word)  # the usage line still comes first
    for term, _ in FILTER_TERMS:
        assert term in result.stdout


SAMPLES = {
    "SPICE_CONNECTED": ({"event": "SPICE_CONNECTED"}, {"event": "SPICE_INITIALIZED"}),
    "SPICE_*": ({"event": "SPICE_INITIALIZED"}, {"event": "VNC_CONNECTED"}),
    "!JOB_STATUS_CHANGE": ({"event": "STOP"}, {"event": "JOB_STATUS_CHANGE"}),
    "action=stop": (
        {"event": "BLOCK_IO_ERROR", "data": {"action": "stop"}},
        {"event": "BLOCK_IO_ERROR", "data": {"action": "report"}},
    ),
    "action!=stop": (
        {"event": "RESET", "data": {}},
        {"event": "BLOCK_IO_ERROR", "data": {"action": "stop"}},
    ),
    "client.host=127.0.0.1": (
        {"event": "VNC_CONNECTED", "data": {"client": {"host": "127.0.0.1"}}},
        {"event": "VNC_CONNECTED", "data": {"server": {"host": "127.0.0.1"}}},
    ),
    "host=127.0.0.1": (
        {"event": "VNC_CONNECTED", "data": {"server": {"host": "127.0.0.1"}}},
        {"event": "VNC_CONNECTED", "data": {"server": {"host": "::1"}}},
    ),
    'reason="No space left on device"': (
        {"event": "BLOCK_IO_ERROR", "data": {"reason": "No space left on device"}},
        {"event": "BLOCK_IO_ERROR", "data": {"reason": "No space"}},
    ),
}


@pytest.mark.parametrize(("term", "meaning"), FILTER_TERMS)
def test_each_filter_example_in_help_does_what_help_says(term: str, meaning: str) -> None:
    """The help's examples go through the real parser: they cannot drift from it."""
    passes, fails = SAMPLES[term]
    flt = EventFilter.parse(term)
    assert flt.matches(passes) and not flt.matches(fails)


@pytest.fixture(scope="module")
def qemu() -> Iterator[Qemu]:
    with Qemu() as q:
        yield q
