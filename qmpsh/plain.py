"""The interactive shell for TERM=dumb (Emacs shell buffers, serial consoles): a plain loop.

No cursor movement is possible there, so there is no pane and no menu: events are
printed as they come, and confirmations are asked with ``input()``.  It needs no
prompt_toolkit; requests take the same ``Session.run`` path as everywhere else.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO, cast

from qmpsh.banner import banner, prompt_text
from qmpsh.confirm import confirmation, is_yes, question
from qmpsh.errors import EXIT_CONNECTION, EXIT_OK, ExitShell, InputError, QmpshError
from qmpsh.render import acknowledgement
from qmpsh.session import Output

if TYPE_CHECKING:
    from qmpsh.request import Request
    from qmpsh.session import Session
    from qmpsh.settings import ShellOptions


def run_plain(session: Session, options: ShellOptions) -> int:
    """Read lines until EOF or ``exit``; the shell stays up when the connection is lost."""
    if not options.quiet:
        sys.stdout.write(banner(session))
    session.events.listen(lambda logged: print(logged.numbered(), flush=True))
    prompt = prompt_text(session)
    out, err = _Watched(sys.stdout), _Watched(sys.stderr)
    output = Output(cast(TextIO, out), cast(TextIO, err), session.output.width)
    while True:
        try:
            line = input(prompt)
        except EOFError:
            return EXIT_OK if session.client.connected else EXIT_CONNECTION
        except KeyboardInterrupt:
            print()
            continue
        try:
            out.written = err.written = False
            succeeded = _run_one(session, line, output)
            if succeeded and not (out.written or err.written):
                sys.stdout.write(acknowledgement(session.settings.color))
        except ExitShell:
            return EXIT_OK


def _run_one(session: Session, line: str, output: Output) -> bool:
    """Run one line; True when a request ran and succeeded (its reply goes to ``output``)."""
    try:
        request = session.parse(line)
    except InputError as exc:
        session.error(str(exc))
        return False
    if request is None or not _confirmed(session, request):
        return False
    try:
        return session.run(request, output=output) == EXIT_OK
    except KeyboardInterrupt:
        print("^C")
    except QmpshError as exc:
        session.error(str(exc))
        if session.client.failure is not None:  # stay up, as the full shell does
            print("qmpsh: type `reconnect` to try again", file=sys.stderr)
    return False


class _Watched:
    """A stream that notes whether anything was written: a request's reply streams to
    the terminal as it comes (nothing held back until it ends), and a silent success
    is still acknowledged afterwards, as in the full shell."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.written = False

    def write(self, text: str) -> int:
        self.written = self.written or bool(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _confirmed(session: Session, request: Request) -> bool:
    reason = confirmation(request) if session.settings.confirm else None
    if reason is None:
        return True
    try:
        yes = is_yes(input(question(reason)))
    except (EOFError, KeyboardInterrupt):
        yes = False
    if not yes:
        print("not sent", flush=True)
    return yes
