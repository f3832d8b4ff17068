"""Durations typed by a user (``--timeout``, ``--wait``, ``wait … timeout=``): one parser.

``float()`` happily accepts ``nan``, ``inf`` and ``-1``; each of those once reached a
socket, a deadline or a wait loop (a ``nan`` deadline is never reached, so a wait
spun a core for ever).  Everything that takes seconds from a user goes through here,
so the same text is refused the same way everywhere.
"""

from __future__ import annotations

import math

from qmpsh.errors import InputError

# poll() takes its timeout as a C int of milliseconds (about 24 days); a little under
# that keeps every wait representable, and nobody means "for ever" by 11 days.
MAX_SECONDS = 1_000_000.0


def parse_seconds(text: str | float, what: str, *, zero_ok: bool = True) -> float:
    """``text`` as a finite, non-negative number of seconds, else InputError naming ``what``.

    ``zero_ok=False`` where zero cannot mean anything (a reply cannot arrive in 0 s).
    """
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{what} must be a number of seconds, not {str(text)!r}") from None
    if not math.isfinite(value):
        raise InputError(f"{what} must be a finite number of seconds, not {str(text)!r}")
    if value < 0 or (value == 0 and not zero_ok):
        bound = "positive" if not zero_ok else "zero or more"
        raise InputError(f"{what} must be {bound}, not {str(text)!r}")
    if value > MAX_SECONDS:
        raise InputError(f"{what} must be at most {MAX_SECONDS:.0f} seconds, not {str(text)!r}")
    return value
