"""SPICE facts shared by the event summaries, the reply tables and ``info spice``.

QEMU reports SPICE channels by number and session ids as signed ints; three
renderers need the same translation, so it lives here once.
"""

from __future__ import annotations

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


def channel_name(channel_type: int, unknown: str = "unknown") -> str:
    return CHANNEL_NAMES.get(channel_type, unknown)
