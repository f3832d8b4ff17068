"""SPICE facts shared by the event summaries, the reply tables and ``info spice``.

QEMU reports SPICE channels by number and session ids as signed ints; three
renderers need the same translation, so it lives here once.
"""

from __future__ import annotations

from typing import Any

from qmpsh.jsontext import compact

# SPICE's channel numbering (spice-protocol's enum SpiceChannelType).
CHANNEL_NAMES: dict[int, str] = {
    1: "main",
    2: "display",
    3: "inputs",
    4: "cursor",
    5: "playback",
    6: "record",
    7: "tunnel",
    8: "smartcard",
    9: "usbredir",
    10: "port",
    11: "webdav",
}


def unsigned32(value: int) -> int:
    """A SPICE session id is a u32 that QEMU hands over as a signed int; undo that."""
    return value % 2**32


def session_id(value: Any) -> int | str:
    """The session id to show and group by: unsigned when it is a number, as QEMU sends.

    Anything else (a peer that is not QEMU, a string ``connection-id``) is kept as its
    JSON text, so channels still group by it and a person still sees it.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return unsigned32(value)
    return value if isinstance(value, str) else compact(value)


def channel_name(channel_type: Any, unknown: str = "unknown") -> str:
    """The name of a channel type; ``unknown`` for numbers SPICE has not named (or non-numbers)."""
    return CHANNEL_NAMES.get(channel_type, unknown) if isinstance(channel_type, int) else unknown
