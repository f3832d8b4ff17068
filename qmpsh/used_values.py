"""Values the user typed before, per argument name, most recent first.

iredis's lesson: a completer that remembers what you used ranks it first next
time.  ``driver=qc`` matches both ``qcow`` and ``qcow2``; nothing in the schema
says which one matters, but the history does.  Pure: it reads history lines,
wherever they come from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

_PAIR = re.compile(r"""(?:^|[\s(,])([A-Za-z_][\w.-]*)=("[^"]*"|'[^']*'|[^\s,()]+)""")
SCANNED = 2000  # the newest lines looked at: enough to remember, cheap to rescan


class UsedValues:
    """``key → values`` from history lines, rebuilt only when the history grows."""

    def __init__(self, lines: Callable[[], Sequence[str]]) -> None:
        self._lines = lines
        self._seen = -1
        self._by_key: dict[str, list[str]] = {}

    def for_key(self, key: str) -> list[str]:
        """Values used for ``key`` (its last dotted part), newest first."""
        lines = self._lines()
        if len(lines) != self._seen:
            self._by_key = _index(lines[-SCANNED:])
            self._seen = len(lines)
        return self._by_key.get(key.rpartition(".")[2], [])

    def prefer(self, key: str, names: Sequence[str]) -> list[str]:
        """``names`` with the ones used before moved to the front, newest first."""
        used = [value for value in self.for_key(key) if value in names]
        return used + [name for name in names if name not in used]


def _index(lines: Sequence[str]) -> dict[str, list[str]]:
    by_key: dict[str, list[str]] = {}
    for line in reversed(lines):  # newest first
        for key, value in _PAIR.findall(line):
            values = by_key.setdefault(key.rpartition(".")[2], [])
            value = value[1:-1] if value[:1] in "\"'" and len(value) > 1 else value
            if value not in values:
                values.append(value)
    return by_key
