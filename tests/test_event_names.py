"""Issue 11 items 6 and 11: event names are checked, and did-you-mean ranks well.

Against a real QEMU through the ``qmpsh`` command, as scripts use it: a mistyped
event name given to ``wait``, ``events filter``, ``--wait-event``,
``--events-filter`` or ``help`` is an input error at once (exit 2) with the nearest
names, never a silent empty filter or a wait that runs out its timeout (exit 4).
The subprocess timeout is far below the ``wait`` timeout, so a wait that does not
stop at once fails the test instead of passing late.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from qemu import Qemu
from support import private_env

from qmpsh.did_you_mean import closest, edit_distance, suggest
from qmpsh.errors import InputError
from qmpsh.events import EventFilter
from qmpsh.known_names import check_event_filter
from qmpsh.schema import Schema

QMPSH = [sys.executable, "-m", "qmpsh"]
NEVER = "600"  # a wait timeout no test may reach: the subprocess times out first
SUBPROCESS_TIMEOUT = 60


def qmpsh(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*QMPSH, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=private_env(tmp_path),
        timeout=SUBPROCESS_TIMEOUT,
    )


def test_wait_for_a_mistyped_event_fails_at_once(qemu: Qemu, tmp_path: Path) -> None:
    result = qmpsh(tmp_path, qemu.socket, stdin=f"wait STOPP timeout={NEVER}\nquery-name\n")
    assert result.returncode == 2, result.stderr
    assert "no event named 'STOPP' (did you mean 'STOP'?)" in result.stderr
    assert len(result.stdout.splitlines()) == 1  # the script went on to query-name
    assert "Traceback" not in result.stderr


def test_wait_event_flag_checks_the_name(qemu: Qemu, tmp_path: Path) -> None:
    args = ("--wait-event", "SPICE_CONECTED", "--timeout", NEVER, "-c", "query-name")
    result = qmpsh(tmp_path, qemu.socket, *args)
    assert result.returncode == 2, result.stderr
    assert "did you mean 'SPICE_CONNECTED'?" in result.stderr


def test_events_filter_flag_checks_names_and_globs(qemu: Qemu, tmp_path: Path) -> None:
    result = qmpsh(tmp_path, qemu.socket, "--events-filter", "!JOB_STATUS_CHANG", "-c", "stop")
    assert result.returncode == 2, result.stderr
    assert "no event named 'JOB_STATUS_CHANG' (did you mean 'JOB_STATUS_CHANGE'?)" in (
        result.stderr
    )
    assert json.loads(qmpsh(tmp_path, qemu.socket, "-c", "query-status").stdout)["running"]
    good = qmpsh(tmp_path, qemu.socket, "--events-filter", "SPICE_* !VNC_CONNECTED", "-c", "")
    assert good.returncode == 0, good.stderr


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bogus", "no event named 'BOGUS'"),
        ("STOP RESUM", "no event named 'RESUM' (did you mean 'RESUME'?)"),
        ("!STOPP", "no event named 'STOPP' (did you mean 'STOP'?)"),
        ("NOPE_*", "'NOPE_*' matches no event"),
    ],
)
def test_events_filter_refuses_names_no_event_has(
    qemu: Qemu, tmp_path: Path, spec: str, message: str
) -> None:
    result = qmpsh(tmp_path, qemu.socket, stdin=f"events filter {spec}\n")
    assert result.returncode == 2
    assert message in result.stderr


def test_events_filter_takes_globs_negations_and_lower_case(qemu: Qemu, tmp_path: Path) -> None:
    script = "events filter SPICE_* !SPICE_CONNECTED vnc_initialized channel-type=1\n"
    result = qmpsh(tmp_path, qemu.socket, stdin=script)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_help_suggests_events_and_commands(qemu: Qemu, tmp_path: Path) -> None:
    result = qmpsh(tmp_path, qemu.socket, stdin="help STOPP\nhelp query-stauts\n")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert "no command or event named 'STOPP' (did you mean 'STOP' or 'stop'?)" in lines[0]
    assert "did you mean 'query-status' or 'query-stats'?" in lines[1]


def test_without_a_schema_event_names_are_not_checked() -> None:
    """An old QEMU (no query-qmp-schema) or a schema without events: nothing is refused."""
    flt = EventFilter.parse("BOGUS !NOPE_*")
    check_event_filter(flt, None)
    check_event_filter(flt, Schema.from_entries([]))
    with pytest.raises(InputError, match="BOGUS"):
        check_event_filter(flt, Schema.from_entries([STOP_EVENT]))


STOP_EVENT = {"name": "STOP", "meta-type": "event", "arg-type": "0"}


# ------------------------------------------------------------------ item 11: did-you-mean


def test_a_transposition_is_one_edit() -> None:
    assert edit_distance("query-stauts", "query-status") == 1
    assert edit_distance("query-stauts", "query-stats") == 1
    assert edit_distance("abc", "acb") == 1
    assert edit_distance("ca", "abc") == 3  # optimal string alignment, not full Damerau
    assert edit_distance("", "abc") == 3


def test_closest_offers_ties_best_first_and_no_worse() -> None:
    assert closest("qcow3", ["qcow", "qcow2", "qed", "raw", "vmdk"]) == ["qcow2", "qcow"]
    assert closest("query-cpus", ["query-cpus-fast", "query-pci"]) == ["query-cpus-fast"]
    assert closest("x", ["y", "z"]) == ["y", "z"]
    assert closest("zzzzzz", ["query-status"]) == []
    assert closest("ab", ["ac", "ad", "ae", "af"]) == ["ac", "ad", "ae"]  # three at most


def test_suggest_reads_as_a_sentence() -> None:
    assert suggest("devce", ["device", "id"]) == " (did you mean 'device'?)"
    assert suggest("ab", ["ac", "ad", "ae"]) == " (did you mean 'ac', 'ad' or 'ae'?)"
    assert suggest("zzzz", ["device"]) == ""


def test_mistyped_command_and_enum_value_get_the_right_names(qemu: Qemu, tmp_path: Path) -> None:
    script = "query-stauts\nblockdev-add driver=qcow3 node-name=n\n"
    result = qmpsh(tmp_path, qemu.socket, stdin=script)
    assert result.returncode == 2
    first, second = result.stderr.splitlines()[:2]
    assert "unknown command 'query-stauts' (did you mean 'query-status' or 'query-stats'?)" in (
        first
    )
    assert "(did you mean 'qcow2' or 'qcow'?)" in second
