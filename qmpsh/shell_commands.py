"""qmpsh's own commands, gathered in ``SHELL_COMMANDS`` at the end of this module.

They run the same way in scripts and in the interactive shell, and write to the
renderer of the request's output (``out``), never to a terminal of their own.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from typing import TYPE_CHECKING, Any

from qmpsh import help_groups
from qmpsh.commands import Registry, ShellCommandSpec
from qmpsh.durations import parse_seconds
from qmpsh.errors import EXIT_OK, EventTimeout, ExitShell, InputError
from qmpsh.event_summary import SpiceSession
from qmpsh.events import EventFilter, LoggedEvent, format_spice_sessions, spice_sessions
from qmpsh.known_names import no_such_name, parse_event_filter
from qmpsh.settings import FORMATS, format_named

if TYPE_CHECKING:
    from qmpsh.render import Renderer
    from qmpsh.session import Session

WAIT_SLICE = 0.25  # how soon `wait` notices a lost connection


def exit_shell(session: Session, argv: tuple[str, ...], out: Renderer) -> int:
    raise ExitShell


def reconnect_command(session: Session, argv: tuple[str, ...], out: Renderer) -> int:
    from qmpsh.reconnect import DEFAULT_ATTEMPTS, reconnect

    if len(argv) > 1 or (argv and not (argv[0].isdigit() and int(argv[0]) > 0)):
        raise InputError("usage: reconnect [ATTEMPTS] (a positive number)")
    if session.client.connected:
        out.text(f"already connected to {session.client.address}")
        return EXIT_OK
    session.cancel.clear()
    attempts = int(argv[0]) if argv else DEFAULT_ATTEMPTS
    client = reconnect(session, attempts=attempts, stop=session.cancel)
    from qmpsh.guest_agent import is_guest_agent

    major, minor, micro = client.version
    peer = "qemu-ga" if is_guest_agent(client) else "QEMU"
    out.text(f"reconnected to {client.address} ({peer} {major}.{minor}.{micro})")
    return EXIT_OK


def show_help(session: Session, argv: tuple[str, ...], out: Renderer) -> int:
    if not argv:
        out.text(_overview(session))
        return EXIT_OK
    name = argv[0]
    spec = session.commands.get(name)
    schema = session.schema
    topic = help_groups.topic(name, schema.command_names() if schema is not None else ())
    if spec is not None or topic:
        usage = [spec.usage, f"  {spec.summary}"] if spec is not None else []
        out.text("\n".join([*usage, *topic]))
        return EXIT_OK
    lines = schema.help_lines(name, _given(argv[1:])) if schema is not None else []
    if not lines and name == "oob":
        oob = ", ".join(schema.oob_command_names()) if schema is not None else "none known"
        lines = ["oob COMMAND [key=value …]", f"  send COMMAND as exec-oob; these allow it: {oob}"]
    if not lines:
        raise InputError(no_such_name(name, schema, sorted(session.commands.names())))
    out.text("\n".join(lines))
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
    """The shell's own commands, then QMP's grouped by what they are for (``help_groups``)."""
    schema = session.schema
    names = schema.command_names() if schema is not None else []
    shell = [(spec.usage, spec.summary) for spec in session.commands.specs()]
    return help_groups.overview(names, shell, _help_width())


def _help_width() -> int:
    """The terminal's width for wrapping (100 when output is not a terminal)."""
    return max(40, shutil.get_terminal_size((100, 24)).columns - 1)


def set_format(session: Session, argv: tuple[str, ...], out: Renderer) -> int:
    if not argv:  # a question, not a mistake: which format is this?
        _show(out, f"format: {session.settings.fmt}", {"format": session.settings.fmt})
        return EXIT_OK
    fmt = format_named(argv[0]) if len(argv) == 1 else None
    if fmt is None:
        raise InputError("usage: format pretty|json|raw")
    session.settings.fmt = fmt  # the next request shows in it
    return EXIT_OK


def wait_event(session: Session, argv: tuple[str, ...], out: Renderer) -> int:
    if not argv:
        raise InputError("usage: wait EVENT [field=value ...] [timeout=SECONDS]")
    _refuse_without_events(session)
    timeout = session.settings.timeout
    terms = []
    for word in argv:
        if word.startswith("timeout="):
            timeout = parse_seconds(word.partition("=")[2], "timeout")
        else:
            terms.append(_filter_term(word))
    flt = parse_event_filter(" ".join(terms), session.schema)
    found = _wait_while_connected(session, flt, timeout)
    if found is None:
        raise EventTimeout(f"no {flt} event within {timeout:g} s")
    session.wait_mark = found.seq
    out.reply("wait", {"return": found.event})
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


def _refuse_without_events(session: Session) -> None:
    """`wait` and `events` on a monitor that sends none (the guest agent) say so at once."""
    if not session.client.capabilities.events:
        from qmpsh.guest_agent import NO_EVENTS

        raise InputError(NO_EVENTS)


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


def events_command(session: Session, argv: tuple[str, ...], out: Renderer) -> int:
    _refuse_without_events(session)
    verb = argv[0] if argv else "list"
    if verb == "list":
        for logged in session.events.recent(50, session.event_filter):
            _show(out, logged.numbered(), _listed(logged))
    elif verb == "show":
        event = _pick(session, argv).event
        _show(out, json.dumps(event, indent=2), event)
    elif verb == "filter":
        _set_event_filter(session, argv[1:], out)
    elif verb == "stats":
        counts = dict(sorted(session.events.stats().items()))
        _show(out, "\n".join(f"{n:>8}  {name}" for name, n in counts.items()), counts)
    elif verb == "clear":
        session.events.clear()
    elif verb in ("on", "off"):
        session.show_events = verb == "on"
    else:
        raise InputError(f"unknown events subcommand '{verb}'")
    return EXIT_OK


FILTER_OFF = ("clear", "none")  # `events filter none` shows every event again


def _set_event_filter(session: Session, words: tuple[str, ...], out: Renderer) -> None:
    """With no words it tells the filter; clearing it takes a word, never an empty line."""
    if not words:
        flt = session.event_filter
        shown = str(flt) if flt is not None else "none (every event is shown)"
        _show(out, f"events filter: {shown}", {"filter": str(flt) if flt else None})
    elif len(words) == 1 and words[0] in FILTER_OFF:
        session.event_filter = None
    else:
        session.event_filter = parse_event_filter(" ".join(words), session.schema)


def _show(out: Renderer, text: str, value: Any) -> None:
    """Text for people (pretty), one JSON document for programs (json, raw).

    Piped scripts promise one JSON document per line; the shell's own commands keep
    that promise too, except ``help``, which is for reading.
    """
    if out.fmt == "pretty":
        if text:
            out.text(text)
    else:
        out.reply("events", {"return": value})


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


def spice_command(session: Session, argv: tuple[str, ...], out: Renderer) -> int:
    if argv != ("sessions",):
        raise InputError("usage: spice sessions")
    groups = spice_sessions(logged.event for logged in session.events.recent())
    lines = format_spice_sessions(groups) or ["no SPICE sessions seen"]
    _show(out, "\n".join(lines), [_session_json(group) for group in groups])
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


def vminfo_command(session: Session, argv: tuple[str, ...], out: Renderer) -> int:
    from qmpsh.vminfo import show_vminfo

    if argv:
        raise InputError("usage: vminfo (no arguments)")
    return show_vminfo(session, out)


SHELL_COMMANDS = Registry(
    [
        ShellCommandSpec(
            "exit", "exit", "leave qmpsh (QEMU keeps running; `quit` would stop it)", exit_shell
        ),
        ShellCommandSpec(
            "reconnect",
            "reconnect [ATTEMPTS]",
            "connect again after the connection was lost (back-off 0.1 s to 5 s; Ctrl-C stops)",
            reconnect_command,
        ),
        ShellCommandSpec(
            "help", "help [COMMAND|EVENT]", "list commands, or describe one", show_help
        ),
        ShellCommandSpec(
            "format", "format pretty|json|raw", "switch how replies are shown", set_format, FORMATS
        ),
        ShellCommandSpec(
            "wait",
            "wait EVENT [field=value ...] [timeout=SECONDS]",
            "block until a matching event arrives (exit code 4 on timeout in scripts)",
            wait_event,
        ),
        ShellCommandSpec(
            "events",
            "events [show N|filter [SPEC|none]|stats|clear|on|off]",
            "list recent events, show one in full, filter, count",
            events_command,
            ("show", "filter", "stats", "clear", "on", "off"),
        ),
        ShellCommandSpec(
            "spice",
            "spice sessions",
            "SPICE sessions seen in events, and which are up",
            spice_command,
            ("sessions",),
        ),
        ShellCommandSpec(
            "vminfo",
            "vminfo",
            "the VM on one screen: machine, CPUs, memory, disks, NICs, SPICE/VNC clients, chardevs",
            vminfo_command,
        ),
    ]
)
"""qmpsh's own commands: what ``help`` lists, completion offers and the parser knows."""
