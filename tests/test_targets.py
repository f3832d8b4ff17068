"""Several targets: one session each, fan-out in parallel, the worst status wins.

Real QEMUs; one of them is killed (by PID) after its session connected, so its
requests fail with a lost connection while the others carry on.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import pytest
from qemu import Qemu
from support import wait_until

from qmpsh.errors import EXIT_COMMAND_ERROR, EXIT_CONNECTION, EXIT_OK, EXIT_TIMEOUT, InputError
from qmpsh.monitor import open_monitor
from qmpsh.script import run_lines
from qmpsh.session import Output, Session, Settings
from qmpsh.targets import Targets, worst


def connected(qemu: Qemu, out: io.StringIO) -> Session:
    client = open_monitor(qemu.socket, timeout=10.0)
    session = Session(client, Settings(fmt="json"), Output(out, out))
    client.connect(wait=5.0)
    return session


@pytest.fixture
def targets() -> Iterator[Targets]:
    found = Targets()
    yield found
    found.close()


def test_worst_status_ranks_a_lost_target_highest() -> None:
    assert worst([]) == EXIT_OK
    assert worst([EXIT_OK, EXIT_COMMAND_ERROR]) == EXIT_COMMAND_ERROR
    assert worst([EXIT_TIMEOUT, EXIT_CONNECTION, EXIT_OK]) == EXIT_CONNECTION
    assert worst([2, 4]) == EXIT_TIMEOUT


def test_fan_out_runs_everywhere_and_one_dead_target_stops_nothing(
    qemu_factory: Callable[..., Qemu], targets: Targets
) -> None:
    outputs = {name: io.StringIO() for name in ("a", "b", "dead")}
    machines = {name: qemu_factory("-name", f"vm-{name}") for name in outputs}
    for name, machine in machines.items():
        targets.add(name, connected(machine, outputs[name]))
    machines["dead"].kill()
    assert wait_until(lambda: targets.get("dead").client.failure is not None)

    lines = ["query-name", "query-status"]
    statuses = targets.fan_out(lambda name, s: run_lines(s, lines, numbered=True))

    assert statuses == {"a": EXIT_OK, "b": EXIT_OK, "dead": EXIT_CONNECTION}
    assert worst(statuses.values()) == EXIT_CONNECTION
    for name in ("a", "b"):  # each target's own replies, in line order
        replies = outputs[name].getvalue().splitlines()
        assert len(replies) == 2 and replies[0] == f'{{"name":"vm-{name}"}}', replies
        assert '"status":"running"' in replies[1]
    assert "lost" in outputs["dead"].getvalue() or "closed" in outputs["dead"].getvalue()


def test_use_picks_the_current_target_and_remove_closes_it(
    qemu_factory: Callable[..., Qemu], targets: Targets
) -> None:
    out = io.StringIO()
    first, second = qemu_factory(), qemu_factory()
    targets.add("one", connected(first, out))
    targets.add("two", connected(second, out))
    assert targets.current_name == "one"
    assert targets.use("two") is targets.get("two")
    with pytest.raises(InputError, match="no target named 'three'"):
        targets.use("three")
    with pytest.raises(InputError, match="already exists"):
        targets.add("one", targets.get("two"))
    removed = targets.remove("two")
    assert removed.client.failure is not None  # closed
    assert targets.current_name == "one" and len(targets) == 1
