"""The interactive shell for TERM=dumb (Emacs shell buffers, serial consoles): a plain loop.

No cursor movement is possible there, so there is no pane and no menu: events are
printed as they come, and confirmations are asked with ``input()``.  It needs no
prompt_toolkit; requests take the same ``Session.run`` path as everywhere else.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from qmpsh.banner import banner, prompt_text
from qmpsh.confirm import confirmation, is_yes, question
from qmpsh.errors import EXIT_CONNECTION, EXIT_OK, ExitShell, InputError, QmpshError

if TYPE_CHECKING:
    from qmpsh.request import Request
    from qmpsh.session import Session
    from qmpsh.settings import ShellOptions


def run_plain(session: Session, options: ShellOptions) -> int:
    """Read lines until EOF or ``exit``; the shell stays up when the connection is lost."""
    session.events.add_listener(lambda logged: print(logged.numbered(), flush=True))
    if not options.quiet:
        sys.stdout.write(banner(session))
    prompt = prompt_text(session)
    while True:
        try:
            line = input(prompt)
        except EOFError:
            return EXIT_OK if session.client.connected else EXIT_CONNECTION
        except KeyboardInterrupt:
            print()
            continue
        try:
            _run_one(session, line)
        except ExitShell:
            return EXIT_OK


def _run_one(session: Session, line: str) -> None:
    try:
        request = session.parse(line)
    except InputError as exc:
        session.error(str(exc))
        return
    if request is None or not _confirmed(session, request):
        return
    try:
        session.run(request)
    except KeyboardInterrupt:
        print("^C")
    except QmpshError as exc:
        session.error(str(exc))
        if session.client.failure is not None:  # stay up, as the full shell does
            print("qmpsh: type `reconnect` to try again", file=sys.stderr)


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
