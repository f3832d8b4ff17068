"""The interactive shell's commands for several targets: connect, use, targets, disconnect.

They are shell commands like ``help`` or ``wait``, but closures over one ``Targets``
and over how the command line opens a session (``Opener``: the same flags, config
and outputs as the first target), so they are made by the frontend that owns the
targets and added to the registry its sessions get; nothing global changes.
``@NAME COMMAND`` is not a command: the frontend takes the prefix off
(``targets.split_at_target``) and runs the rest on that target.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qmpsh.commands import Registry, ShellCommandSpec
from qmpsh.errors import EXIT_OK, InputError, QmpshError
from qmpsh.targets import NAME, Targets
from qmpsh.visible import visible

if TYPE_CHECKING:
    from qmpsh.render import Renderer
    from qmpsh.session import Session

STATE_TIMEOUT = 2.0  # `targets` asks each one's run state; a stuck QEMU costs this much
# (address, notify) → a connected session (raises QmpshError); notify hears warnings
Opener = Callable[[str, Callable[[str], None]], "Session"]


def shell_registry(targets: Targets, opener: Opener) -> Registry:
    """qmpsh's own commands plus the target commands, for every session of one shell."""
    from qmpsh.shell_commands import SHELL_COMMANDS

    return Registry([*SHELL_COMMANDS.specs(), *target_commands(targets, opener)])


def target_commands(targets: Targets, opener: Opener) -> list[ShellCommandSpec]:
    def connect(session: Session, argv: tuple[str, ...], out: Renderer) -> int:
        if len(argv) not in (1, 3) or (len(argv) == 3 and argv[1] != "as"):
            raise InputError("usage: connect ADDRESS [as NAME]")
        wanted = argv[2] if len(argv) == 3 else None
        if wanted is not None and (not NAME.fullmatch(wanted) or wanted in dict(targets)):
            why = "is taken" if wanted in dict(targets) else "is not one word of letters, . : -"
            raise InputError(f"target name '{wanted}' {why}")
        new = opener(argv[0], out.text)
        name = wanted or targets.name_for(default_name(new))
        targets.add(name, new)
        targets.use(name)
        out.text(f"connected to {new.client.address} as {visible(name)} (now current)")
        return EXIT_OK

    def use(session: Session, argv: tuple[str, ...], out: Renderer) -> int:
        if len(argv) != 1:
            raise InputError("usage: use NAME")
        new = targets.use(argv[0])
        out.text(f"current target: {visible(argv[0])} ({new.client.address})")
        return EXIT_OK

    def disconnect(session: Session, argv: tuple[str, ...], out: Renderer) -> int:
        if len(argv) != 1:
            raise InputError("usage: disconnect NAME")
        targets.get(argv[0])  # an unknown name is an input error before anything else
        if len(targets) == 1:
            raise InputError("the last target stays connected: `exit` leaves the shell")
        targets.remove(argv[0])
        out.text(f"disconnected {visible(argv[0])}; current: {visible(targets.current_name or '')}")
        return EXIT_OK

    def list_targets(session: Session, argv: tuple[str, ...], out: Renderer) -> int:
        if argv:
            raise InputError("usage: targets")
        rows = [describe(name, s, targets) for name, s in targets]
        if out.fmt == "pretty":
            out.text(_table(rows))
        else:
            out.reply("targets", {"return": rows})
        return EXIT_OK

    return [
        ShellCommandSpec(
            "connect",
            "connect ADDRESS [as NAME]",
            "connect to another target and make it current",
            connect,
        ),
        ShellCommandSpec("use", "use NAME", "make NAME the current target", use),
        ShellCommandSpec(
            "targets",
            "targets",
            "list targets: name, address, QEMU, run state, unseen events",
            list_targets,
        ),
        ShellCommandSpec("disconnect", "disconnect NAME", "close target NAME", disconnect),
    ]


def default_name(session: Session) -> str:
    """The VM's own name (``-name``) when it is one word, else ``vm``."""
    try:
        name = session.client.execute("query-name", timeout=STATE_TIMEOUT).get("name")
    except (QmpshError, AttributeError):
        name = None
    return name if isinstance(name, str) and NAME.fullmatch(name) else "vm"


def describe(name: str, session: Session, targets: Targets) -> dict[str, Any]:
    """One ``targets`` row; a lost target says so instead of asking it."""
    client = session.client
    state = "disconnected"
    if client.failure is None:
        try:
            state = str(client.execute("query-status", timeout=STATE_TIMEOUT).get("status"))
        except (QmpshError, AttributeError):
            state = "?"
    major, minor, micro = client.version
    return {
        "name": name,
        "current": name == targets.current_name,
        "address": str(client.address),
        "qemu": f"{major}.{minor}.{micro}",
        "state": state,
        "unseen": targets.unseen(name),
    }


def _table(rows: list[dict[str, Any]]) -> str:
    """Plain columns; ``*`` marks the current target.  Every cell is made visible."""
    header = ["", "name", "address", "qemu", "state", "unseen"]
    cells = [header] + [
        ["*" if row["current"] else "", *(visible(str(row[key])) for key in header[1:])]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    return "\n".join(
        " ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )
