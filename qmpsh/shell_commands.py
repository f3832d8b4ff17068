"""qmpsh's own commands, registered in ``commands.REGISTRY``.

They run the same way in scripts and in the interactive shell; the ones that only
make sense at a terminal say so and are refused elsewhere with a clear message.
"""

from __future__ import annotations

import copy
import json
import shutil
import textwrap
import time
from typing import Any

from qmpsh.commands import REGISTRY
from qmpsh.durations import parse_seconds
from qmpsh.errors import EXIT_OK, EventTimeout, InputError
from qmpsh.event_summary import SpiceSession
from qmpsh.events import EventFilter, LoggedEvent, format_spice_sessions, spice_sessions
from qmpsh.session import ExitShell, Session

FORMATS = ("pretty", "json", "raw")
WAIT_SLICE = 0.25  # how soon `wait` notices a lost connection


@REGISTRY.command("exit", "exit", "leave qmpsh (QEMU keeps running; `quit` would stop it)")
def exit_shell(session: Session, argv: tuple[str, ...]) -> int:
    raise ExitShell


@REGISTRY.command(
    "reconnect",
    "reconnect [ATTEMPTS]",
    "connect again after the connection was lost (back-off 0.1 s to 5 s; Ctrl-C stops)",
)
def reconnect_command(session: Session, argv: tuple[str, ...]) -> int:
    from qmpsh.reconnect import DEFAULT_ATTEMPTS, reconnect

    if len(argv) > 1 or (argv and not (argv[0].isdigit() and int(argv[0]) > 0)):
        raise InputError("usage: reconnect [ATTEMPTS] (a positive number)")
    if session.client.connected:
        session.renderer.text(f"already connected to {session.client.address}")
        return EXIT_OK
    session.cancel.clear()
    attempts = int(argv[0]) if argv else DEFAULT_ATTEMPTS
    client = reconnect(session, attempts=attempts, stop=session.cancel)
    major, minor, micro = client.version
    session.renderer.text(f"reconnected to {client.address} (QEMU {major}.{minor}.{micro})")
    return EXIT_OK


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
    lines = schema.help_lines(name, _given(argv[1:])) if schema is not None else []
    if not lines:
        raise InputError(f"no command or event named '{name}'")
    session.renderer.text("\n".join(lines))
    return EXIT_OK


def _given(words: tuple[str, ...]) -> dict[str, str]:
    """``help blockdev-add driver=qcow2``: the tag values that pick a union's variant."""
    given = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise InputError(f"expected field=value after the name, not '{word}'")
        given[key] = value
    return given


def _overview(session: Session) -> str:
    """Commands grouped by prefix, so 216 names read as a handful of families."""
    groups: dict[str, list[str]] = {}
    schema = session.schema
    for name in schema.command_names() if schema is not None else []:
        prefix = name.split("-")[0].split("_")[0]
        groups.setdefault(prefix if prefix in _FAMILIES else "other", []).append(name)
    width = _help_width()
    lines = []
    for family in sorted(groups, key=lambda f: (f == "other", f)):
        lines.append(f"{family}:")
        lines += textwrap.wrap(
            "  ".join(sorted(groups[family])),
            width,
            initial_indent="  ",
            subsequent_indent="  ",
            break_on_hyphens=False,
        )
    lines.append("shell commands:")
    for spec in REGISTRY.specs():
        if len(spec.usage) <= USAGE_COLUMN:
            lines.append(f"  {spec.usage:<{USAGE_COLUMN}} {spec.summary}")
        else:  # a long usage gets its own line rather than pushing the summary off
            lines += [f"  {spec.usage}", f"  {'':<{USAGE_COLUMN}} {spec.summary}"]
    lines.append("`help NAME` or `NAME?` describes a command or an event.")
    return "\n".join(lines)


USAGE_COLUMN = 32


def _help_width() -> int:
    """The terminal's width for wrapping (100 when output is not a terminal)."""
    return max(40, shutil.get_terminal_size((100, 24)).columns - 1)


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
            timeout = parse_seconds(word.partition("=")[2], "timeout")
        else:
            terms.append(_filter_term(word))
    flt = EventFilter.parse(" ".join(terms))
    found = _wait_while_connected(session, flt, timeout)
    if found is None:
        raise EventTimeout(f"no {flt} event within {timeout:g} s")
    session.wait_mark = found.seq
    session.renderer.reply("wait", {"return": found.event})
    return EXIT_OK


def _filter_term(word: str) -> str:
    """One shell word as one filter term: the shell already took its quotes off.

    ``wait X p="a b"`` reaches here as ``p=a b``; quoting the value again keeps the
    blank (or comma) inside it, as ``--events-filter 'p="a b"'`` does.
    """
    key, sep, value = word.partition("=")
    if not sep or not any(c.isspace() or c in ",\"'" for c in value):
        return word
    if '"' not in value:
        return f'{key}="{value}"'
    if "'" not in value:
        return f"{key}='{value}'"
    raise InputError(f"a value cannot hold both kinds of quote: {word!r}")


def _wait_while_connected(session: Session, flt: EventFilter, timeout: float) -> LoggedEvent | None:
    """Wait in short slices: once the connection is lost no event can come, so say so now.

    Each slice looks again at everything after the same mark, so nothing is missed.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        step = min(left, WAIT_SLICE) if left > 0 else 0
        found = session.events.wait_for(flt, step, after_seq=session.wait_mark)
        failure = session.client.failure
        if found is not None or left <= 0:
            return found
        if failure is not None:
            raise copy.copy(failure).with_traceback(None)


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
            _show(session, logged.numbered(), _listed(logged))
    elif verb == "show":
        event = _pick(session, argv).event
        _show(session, json.dumps(event, indent=2), event)
    elif verb == "filter":
        spec = " ".join(argv[1:])
        session.event_filter = EventFilter.parse(spec) if spec else None
    elif verb == "stats":
        counts = dict(sorted(session.events.stats().items()))
        _show(session, "\n".join(f"{n:>8}  {name}" for name, n in counts.items()), counts)
    elif verb == "clear":
        session.events.clear()
    elif verb in ("on", "off"):
        session.show_events = verb == "on"
    else:
        raise InputError(f"unknown events subcommand '{verb}'")
    return EXIT_OK


def _show(session: Session, text: str, value: Any) -> None:
    """Text for people (pretty), one JSON document for programs (json, raw).

    Piped scripts promise one JSON document per line; the shell's own commands keep
    that promise too, except ``help``, which is for reading.
    """
    if session.renderer.fmt == "pretty":
        if text:
            session.renderer.text(text)
    else:
        session.renderer.reply("events", {"return": value})


def _listed(logged: LoggedEvent) -> dict[str, Any]:
    """An ``events`` line for programs: the number ``events show`` takes, the event,
    and what caused it when qmpsh knows."""
    entry: dict[str, Any] = {"n": logged.seq, "event": logged.event}
    if logged.caused_by:
        entry["caused_by"] = logged.caused_by
    return entry


def _pick(session: Session, argv: tuple[str, ...]) -> LoggedEvent:
    """``events show N`` or ``#N``: the number the pane and ``events`` print."""
    number = argv[1].removeprefix("#") if len(argv) == 2 else ""
    if not number.isdigit():
        raise InputError("usage: events show N (the #N shown beside each event)")
    logged = session.events.get(int(number))
    if logged is None:
        raise InputError(f"no event number {number} (it may have left the window)")
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
    _show(session, "\n".join(lines), [_session_json(group) for group in groups])
    return EXIT_OK


def _session_json(group: SpiceSession) -> dict[str, Any]:
    channels = [
        {
            "name": ch.name,
            "channel-type": ch.channel_type,
            "channel-id": ch.channel_id,
            "client": ch.client,
            "tls": ch.tls,
            "up": ch.up,
        }
        for ch in group.channels
    ]
    return {"session": group.session_id, "up": group.up, "channels": channels}


@REGISTRY.command(
    "vminfo",
    "vminfo",
    "the VM on one screen: machine, CPUs, memory, disks, NICs, SPICE/VNC clients, chardevs",
)
def vminfo_command(session: Session, argv: tuple[str, ...]) -> int:
    from qmpsh.vminfo import show_vminfo

    if argv:
        raise InputError("usage: vminfo (no arguments)")
    return show_vminfo(session)
