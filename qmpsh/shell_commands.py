"""qmpsh's own commands, registered in ``commands.REGISTRY``.

They run the same way in scripts and in the interactive shell; the ones that only
make sense at a terminal say so and are refused elsewhere with a clear message.
"""

from __future__ import annotations

import json

from qmpsh.commands import REGISTRY
from qmpsh.errors import EXIT_OK, EventTimeout, InputError
from qmpsh.events import EventFilter, LoggedEvent, format_spice_sessions, spice_sessions, summarize
from qmpsh.session import ExitShell, Session

FORMATS = ("pretty", "json", "raw")


@REGISTRY.command("exit", "exit", "leave qmpsh (QEMU keeps running; `quit` would stop it)")
def exit_shell(session: Session, argv: tuple[str, ...]) -> int:
    raise ExitShell


@REGISTRY.command("help", "help [COMMAND|EVENT]", "list commands, or describe one", arguments=())
def show_help(session: Session, argv: tuple[str, ...]) -> int:
    if not argv:
        session.renderer.text(_overview(session))
        return EXIT_OK
    name = argv[0]
    spec = REGISTRY.get(name)
    if spec is not None:
        session.renderer.text(f"{spec.usage}\n  {spec.summary}")
        return EXIT_OK
    schema = session.schema
    lines = schema.help_lines(name) if schema is not None else []
    if not lines:
        raise InputError(f"no command or event named '{name}'")
    session.renderer.text("\n".join(lines))
    return EXIT_OK


def _overview(session: Session) -> str:
    """Commands grouped by prefix, so 216 names read as a handful of families."""
    groups: dict[str, list[str]] = {}
    schema = session.schema
    for name in schema.command_names() if schema is not None else []:
        prefix = name.split("-")[0].split("_")[0]
        groups.setdefault(prefix if prefix in _FAMILIES else "other", []).append(name)
    lines = []
    for family in sorted(groups, key=lambda f: (f == "other", f)):
        lines.append(f"{family}:")
        lines.append("  " + "  ".join(sorted(groups[family])))
    lines.append("shell commands:")
    for spec in REGISTRY.specs():
        lines.append(f"  {spec.usage:<40} {spec.summary}")
    lines.append("`help NAME` or `NAME?` describes a command or an event.")
    return "\n".join(lines)


_FAMILIES = frozenset(
    {
        "query",
        "block",
        "blockdev",
        "drive",
        "job",
        "migrate",
        "object",
        "qom",
        "device",
        "chardev",
        "netdev",
        "x",
        "set",
        "system",
        "human",
        "dump",
        "trace",
        "display",
    }
)


@REGISTRY.command(
    "format", "format pretty|json|raw", "switch how replies are shown", arguments=FORMATS
)
def set_format(session: Session, argv: tuple[str, ...]) -> int:
    if len(argv) != 1 or argv[0] not in FORMATS:
        raise InputError("usage: format pretty|json|raw")
    session.settings.fmt = argv[0]  # type: ignore[assignment]
    session.renderer.fmt = argv[0]  # type: ignore[assignment]
    return EXIT_OK


@REGISTRY.command(
    "wait",
    "wait EVENT [field=value ...] [timeout=SECONDS]",
    "block until a matching event arrives (exit code 4 on timeout in scripts)",
)
def wait_event(session: Session, argv: tuple[str, ...]) -> int:
    if not argv:
        raise InputError("usage: wait EVENT [field=value ...] [timeout=SECONDS]")
    timeout = session.settings.timeout
    terms = []
    for word in argv:
        if word.startswith("timeout="):
            timeout = _seconds(word.partition("=")[2])
        else:
            terms.append(word)
    flt = EventFilter.parse(" ".join(terms))
    found = session.events.wait_for(flt, timeout, after_seq=session.wait_mark)
    if found is None:
        raise EventTimeout(f"no {flt} event within {timeout:g} s")
    session.wait_mark = found.seq
    session.renderer.reply("wait", {"return": found.event})
    return EXIT_OK


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"timeout must be a number of seconds, not '{text}'") from None
    if value < 0:
        raise InputError("timeout must not be negative")
    return value


@REGISTRY.command(
    "events",
    "events [show N|filter SPEC|stats|clear|on|off]",
    "list recent events, show one in full, filter, count",
    arguments=("show", "filter", "stats", "clear", "on", "off"),
)
def events_command(session: Session, argv: tuple[str, ...]) -> int:
    verb = argv[0] if argv else "list"
    if verb == "list":
        for logged in session.events.recent(50, session.event_filter):
            session.renderer.text(summarize(logged.event, caused_by=logged.caused_by))
    elif verb == "show":
        session.renderer.text(json.dumps(_pick(session, argv).event, indent=2))
    elif verb == "filter":
        spec = " ".join(argv[1:])
        session.event_filter = EventFilter.parse(spec) if spec else None
    elif verb == "stats":
        for name, count in sorted(session.events.stats().items()):
            session.renderer.text(f"{count:>8}  {name}")
    elif verb == "clear":
        session.events.clear()
    elif verb in ("on", "off"):
        session.show_events = verb == "on"
    else:
        raise InputError(f"unknown events subcommand '{verb}'")
    return EXIT_OK


def _pick(session: Session, argv: tuple[str, ...]) -> LoggedEvent:
    if len(argv) != 2 or not argv[1].isdigit():
        raise InputError("usage: events show N")
    logged = session.events.get(int(argv[1]))
    if logged is None:
        raise InputError(f"no event number {argv[1]} (it may have left the window)")
    return logged


@REGISTRY.command(
    "spice",
    "spice sessions",
    "SPICE sessions seen in events, and which are up",
    arguments=("sessions",),
)
def spice_command(session: Session, argv: tuple[str, ...]) -> int:
    if argv != ("sessions",):
        raise InputError("usage: spice sessions")
    groups = spice_sessions(logged.event for logged in session.events.recent())
    lines = format_spice_sessions(groups) or ["no SPICE sessions seen"]
    session.renderer.text("\n".join(lines))
    return EXIT_OK
