"""Which requests are asked about before they are sent: one decision for every spelling.

Requests are parsed by the real parser, so each row is what a user could type.
"""

from __future__ import annotations

import pytest

from qmpsh.confirm import confirmation
from qmpsh.syntax import syntax_for

QUIT = "quit stops QEMU (the VM is gone)"
RESET = "system_reset resets the guest"


@pytest.mark.parametrize(
    ("line", "hmp_mode", "expected"),
    [
        ("quit", False, QUIT),
        ('{"execute": "quit"}', False, QUIT),
        ('{"execute": "quit", "id": 7}', False, QUIT),
        ("hmp quit", False, QUIT),
        ("hmp q", False, QUIT),
        ("quit", True, QUIT),
        ("Q", True, QUIT),
        ("system_reset", True, RESET),
        ("system_reset", False, RESET),
        ("human-monitor-command command-line=quit", False, QUIT),
        ('{"execute": "human-monitor-command", "arguments": {"command-line": "q"}}', False, QUIT),
        ('{"execute": "transaction", "arguments": {"actions": [{"type": "quit"}]}}', False, QUIT),
        ("transaction( quit )", False, QUIT),
        ("stop", False, "stop pauses the guest"),
        ("s", True, "stop pauses the guest"),
        ("system_powerdown", False, "system_powerdown asks the guest to power off"),
        ("query-status", False, None),
        ("info status", True, None),
        ("hmp info status", False, None),
        ("human-monitor-command command-line='info status'", False, None),
        ("transaction( abort )", False, None),
        ('{"execute": "transaction", "arguments": {"actions": "quit"}}', False, None),
        ('{"execute": "human-monitor-command", "arguments": {"command-line": 5}}', False, None),
        ("help quit", False, None),
    ],
)
def test_requests_that_stop_or_reset_qemu_ask(
    line: str, hmp_mode: bool, expected: str | None
) -> None:
    request = syntax_for(hmp_mode, frozenset({"help"})).parse(line)
    assert request is not None
    assert confirmation(request) == expected
