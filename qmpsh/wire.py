"""What a QMP message off the wire may be: the bounds every consumer can rely on.

QEMU, a guest and whatever else serves the socket are untrusted, and JSON lets a
peer nest values as deep as it likes.  The client refuses a message nested deeper
than ``MAX_DEPTH`` (a ProtocolError: the peer is not QMP), so renderers, summaries
and filters may walk a reply or an event recursively without a RecursionError.
Everything else in a message (any JSON value in any member, a lone surrogate, an
infinite number written as ``1e400``) is passed on as received.
"""

from __future__ import annotations

import json
from typing import Any

# Containers along the deepest path of one whole message: ``{}`` is 1, ``{"return": []}``
# is 2.  QEMU's deepest replies (a long backing chain in query-block) stay far below;
# Python's json refuses about 1,000 levels, and a renderer may use a few frames per level.
MAX_DEPTH = 256


class TooDeep(ValueError):
    """A message nested deeper than ``MAX_DEPTH``: not QMP, whatever else it holds."""


def loads(text: str | bytes | bytearray) -> Any:
    """``json.loads`` for a message off the wire: TooDeep beyond ``MAX_DEPTH``.

    Any other ValueError (not JSON, not UTF-8) comes through as ``json`` raised it.
    """
    try:
        value = json.loads(text)
    except RecursionError:  # far deeper than MAX_DEPTH
        raise TooDeep(f"nested more than {MAX_DEPTH} levels deep") from None
    if may_nest_too_deep(text) and nests_deeper_than(value):
        raise TooDeep(f"nested more than {MAX_DEPTH} levels deep")
    return value


def may_nest_too_deep(text: str | bytes | bytearray) -> bool:
    """False when ``line`` cannot hold more than ``MAX_DEPTH`` nested containers.

    Every container opens with ``[`` or ``{`` and closes with ``]`` or ``}``: a line too
    short to hold that many is cleared at once, a longer one by counting (in C, at memory
    speed), which clears nearly every message without looking at its parsed value.
    """
    if len(text) <= 2 * MAX_DEPTH:
        return False
    if isinstance(text, str):
        return text.count("[") + text.count("{") > MAX_DEPTH
    return text.count(b"[") + text.count(b"{") > MAX_DEPTH


def nests_deeper_than(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when ``value`` (as ``json.loads`` makes it) nests more than ``limit`` deep.

    Level by level rather than recursively, so a value too deep to recurse over is
    measured safely, stopping at the first level beyond ``limit``.  A container holding
    only scalars, the commonest kind, is passed over by a type scan in C.
    """
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for container in level:
            items = container.values() if type(container) is dict else container
            if not _CONTAINERS.isdisjoint(map(type, items)):
                below += [item for item in items if type(item) in _CONTAINERS]
        level = below
    return False


_CONTAINERS = frozenset((dict, list))
