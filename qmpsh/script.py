"""Piped scripts, ``-f FILE`` and ``-c LINE``: the same session, lines from a stream.

A logical line may span several physical ones (an open ``{`` or ``transaction(``),
so lines are gathered until the session's syntax says the text is complete.  A
bracket left open by mistake ends at the next line that starts a request (in a
transaction, at its closing ``)``), so one typo costs one request, not the rest of
the script.  Errors name the physical line
the request started on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from qmpsh.errors import EXIT_OK, ExitShell
from qmpsh.syntax import Syntax

if TYPE_CHECKING:
    from qmpsh.session import Session


def logical_lines(lines: Iterable[str], syntax: Callable[[], Syntax]) -> Iterator[tuple[int, str]]:
    """Yield ``(first line number, text)``, joining continuation lines.

    ``syntax`` gives the session's current language (its shell words change once
    the schema is known), asked afresh for every line.
    """
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if pending and syntax().breaks_off(pending[0], line):
            yield start, "\n".join(pending)  # the parser reports what was left open
            pending = []
        if not pending:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = number
        pending.append(line)
        text = "\n".join(pending)
        if syntax().is_complete(text) or syntax().closes(pending[0], line):
            pending = []
            yield start, text
    if pending:  # an unfinished request at EOF: let the parser report what is open
        yield start, "\n".join(pending)


def run_lines(session: Session, lines: Iterable[str], *, numbered: bool) -> int:
    """Run every request; the exit status is the worst seen (never 0 after an error)."""
    status = EXIT_OK
    for number, text in logical_lines(lines, lambda: session.syntax):
        try:
            line_status = session.run_line(text, line=number if numbered else None)
        except ExitShell:
            break
        status = max(status, line_status)
        if line_status and session.settings.exit_on_error:
            break
    return status
