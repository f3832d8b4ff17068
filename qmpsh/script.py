"""Piped scripts, ``-f FILE`` and ``-c LINE``: the same session, lines from a stream.

A logical line may span several physical ones (an open ``{`` or ``transaction(``),
so lines are gathered until the parser says the text is complete.  Errors name
the physical line the request started on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from qmpsh.errors import EXIT_OK, ExitShell
from qmpsh.syntax import is_complete

if TYPE_CHECKING:
    from qmpsh.session import Session


def logical_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """Yield ``(first line number, text)``, joining continuation lines."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not pending:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = number
        pending.append(line)
        text = "\n".join(pending)
        if is_complete(text):
            pending = []
            yield start, text
    if pending:  # an unfinished request at EOF: let the parser report what is open
        yield start, "\n".join(pending)


def run_lines(session: Session, lines: Iterable[str], *, numbered: bool) -> int:
    """Run every request; the exit status is the worst seen (never 0 after an error)."""
    status = EXIT_OK
    for number, text in logical_lines(lines):
        try:
            line_status = session.run_line(text, line=number if numbered else None)
        except ExitShell:
            break
        status = max(status, line_status)
        if line_status and session.settings.exit_on_error:
            break
    return status
