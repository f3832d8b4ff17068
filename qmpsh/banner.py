"""What an interactive shell shows about its target: the banner and the prompt.

Shared by the Application (``ui``) and the TERM=dumb loop (``plain``); no terminal
library is needed for either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qmpsh.errors import QmpshError
from qmpsh.visible import visible

if TYPE_CHECKING:
    from qmpsh.session import Session
    from qmpsh.targets import Targets


def banner(session: Session) -> str:
    """One line: which QEMU, where, and how to get help and leave."""
    major, minor, micro = session.client.version
    return (
        f"qmpsh: {peer_name(session)} {major}.{minor}.{micro} at {session.client.address}; "
        "'help' for help, F2 toggles events, Ctrl-D leaves\n"
    )


def shell_banner(targets: Targets) -> str:
    """The banner of the current target, and with several targets, how to move between them."""
    text = banner(targets.current)
    if len(targets) > 1:
        names = ", ".join(visible(name) for name, _ in targets)
        text += f"qmpsh: targets {names}; `use NAME` switches, `targets` lists\n"
    return text


def shell_prompt(targets: Targets, several: bool) -> str:
    """``(NAME) `` once there are (or were) several targets; until then the VM's name or
    version, as ``prompt_text`` says."""
    if several and targets.current_name is not None:
        return f"({visible(targets.current_name)}) "
    return prompt_text(targets.current)


def prompt_text(session: Session) -> str:
    """``(vm-name) `` from query-name, else ``(qemu X.Y.Z) ``."""
    major, minor, micro = session.client.version
    if peer_name(session) == "qemu-ga":  # it has no query-name
        return f"(qga {major}.{minor}.{micro}) "
    try:
        name = session.client.execute("query-name").get("name")
    except (QmpshError, AttributeError):  # no such query, or not an object
        name = None
    if name:
        return f"({visible(str(name))}) "  # the guest's -name: shown, never obeyed
    return f"(qemu {major}.{minor}.{micro}) "


def peer_name(session: Session) -> str:
    """What the shell talks to, in words: QEMU's monitor or the guest agent."""
    from qmpsh.guest_agent import is_guest_agent

    return "qemu-ga" if is_guest_agent(session.client) else "QEMU"
