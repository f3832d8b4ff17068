"""Command and event names a user typed, checked against what this QEMU knows.

``events filter bogus`` would otherwise hide every event without a word, and
``wait STOPP`` would wait out its whole timeout for an event that cannot come.
Globs (``SPICE_*``) pass when they match at least one event; ``!NAME`` is checked
like ``NAME``.  Without a schema (qemu-ga, an old QEMU) nothing is known, so
nothing is refused.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING

from qmpsh.did_you_mean import suggest
from qmpsh.errors import InputError
from qmpsh.events import EventFilter

if TYPE_CHECKING:
    from qmpsh.schema import Schema

_GLOB_CHARS = frozenset("*?[")


def unknown_event_name(glob: str, events: list[str]) -> str | None:
    """Why ``glob`` names no event of ``events`` (with a did-you-mean), or None if it does."""
    upper = glob.upper()
    if _GLOB_CHARS.isdisjoint(upper):
        if upper in events:
            return None
        return f"no event named '{glob}'{suggest(upper, events)}"
    if any(fnmatch.fnmatchcase(name, upper) for name in events):
        return None
    return f"'{glob}' matches no event"


def check_event_filter(flt: EventFilter | None, schema: Schema | None) -> None:
    """Raise ``InputError`` for the first event name or glob in ``flt`` that names nothing."""
    if flt is None or schema is None:
        return
    events = schema.event_names()
    if not events:
        return
    for glob in (*flt.include, *flt.exclude):
        why = unknown_event_name(glob, events)
        if why is not None:
            raise InputError(why)


def parse_event_filter(spec: str, schema: Schema | None) -> EventFilter:
    """``EventFilter.parse`` whose event names and globs must name events of ``schema``."""
    flt = EventFilter.parse(spec)
    check_event_filter(flt, schema)
    return flt


def no_such_name(name: str, schema: Schema | None, shell_words: list[str]) -> str:
    """The error for ``help NAME`` when NAME is no command, event or shell command."""
    known = list(shell_words)
    if schema is not None:
        known += [*schema.command_names(), *schema.event_names()]
    return f"no command or event named '{name}'{suggest(name, known)}"
