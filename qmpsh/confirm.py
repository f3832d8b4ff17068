"""Which requests stop, reset or pause QEMU, and so are asked about before they are sent.

``quit`` belongs to QMP and kills the VM, and it is one word away from ``exit``;
the interactive shells (the Application and the TERM=dumb loop) ask first, however
the request was written: a QMP command, raw JSON, an HMP line (``hmp quit``, or any
line under ``-H``), ``human-monitor-command`` or a transaction holding such an
action.  This is the one place that decides; scripts and ``-y`` never ask.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qmpsh.request import Command, HmpLine, RawJson, Request, Transaction

WARNINGS = {
    "quit": "quit stops QEMU (the VM is gone)",
    "system_reset": "system_reset resets the guest",
    "system_powerdown": "system_powerdown asks the guest to power off",
    "stop": "stop pauses the guest",
    # the guest agent's: qemu-ga acts inside the guest
    "guest-shutdown": "guest-shutdown powers the guest off (or halts or reboots it)",
    "guest-suspend-disk": "guest-suspend-disk hibernates the guest",
    "guest-suspend-ram": "guest-suspend-ram suspends the guest to RAM",
    "guest-suspend-hybrid": "guest-suspend-hybrid suspends the guest to RAM and disk",
}
HMP_ALIASES = {"q": "quit", "s": "stop"}  # HMP's `quit|q` and `stop|s`
HMP_COMMAND = "human-monitor-command"


YES = ("y", "yes")


def ends_qemu(reason: str) -> bool:
    """The confirmed request stops QEMU itself: a lost connection after it is expected."""
    return reason == WARNINGS["quit"]


def question(reason: str) -> str:
    """The question, worded unlike a prompt: it takes a whole line, then Enter."""
    return f"confirm: {reason}: really? [y/N] then Enter: "


def is_yes(answer: str) -> bool:
    """Only a whole ``y``/``yes`` sends: typed-ahead ``query-status`` holds a y but is a no."""
    return answer.strip().lower() in YES


def confirmation(request: Request) -> str | None:
    """Why ``request`` needs a yes before it is sent, or None when it does not."""
    if isinstance(request, Command):
        line = next((a.value for a in request.arguments if a.key == "command-line"), None)
        return _for_command(request.name, line)
    if isinstance(request, Transaction):
        return _first(_for_command(action.name, None) for action in request.actions)
    if isinstance(request, RawJson):
        return _for_message(request.message)
    if isinstance(request, HmpLine):
        return _for_hmp(request.text)
    return None


def _for_command(name: str, hmp_line: Any) -> str | None:
    if name == HMP_COMMAND:
        return _for_hmp(hmp_line) if isinstance(hmp_line, str) else None
    return WARNINGS.get(name)


def _for_message(message: dict[str, Any]) -> str | None:
    name = message.get("execute", message.get("exec-oob"))
    arguments = message.get("arguments")
    arguments = arguments if isinstance(arguments, dict) else {}
    if name == "transaction":
        actions = arguments.get("actions")
        listed = actions if isinstance(actions, list) else []
        names = (action.get("type") for action in listed if isinstance(action, dict))
        return _first(_for_command(n, None) for n in names if isinstance(n, str))
    return _for_command(name, arguments.get("command-line")) if isinstance(name, str) else None


def _for_hmp(line: str) -> str | None:
    words = line.split(maxsplit=1)
    first = words[0].lower() if words else ""
    return WARNINGS.get(HMP_ALIASES.get(first, first))


def _first(reasons: Iterable[str | None]) -> str | None:
    return next((reason for reason in reasons if reason is not None), None)
