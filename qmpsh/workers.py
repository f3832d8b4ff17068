"""Requests of the interactive shell, each run on a worker thread of its own.

The Application must keep drawing, taking keys and showing events while QEMU
thinks, so an accepted request runs here, through the same ``Session.run`` as a
script's.  Its output goes to a buffer that the UI thread prints (or pages) when
the job is done; the request on the wire is kept (``on_submit``) so that Ctrl-C
can abandon it, and a late reply is then matched by id and dropped.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qmpsh.errors import ExitShell, QmpshError
from qmpsh.request import Command, HmpLine, RawJson, Request, ShellCommand, Transaction
from qmpsh.session import Output

if TYPE_CHECKING:
    from qmpsh.monitor import Pending
    from qmpsh.session import Session


@dataclass
class Job:
    """One accepted request on a worker thread; replies, errors and echo wait in ``output``."""

    name: str
    waiting_for: str = ""  # what Ctrl-C stops waiting for: the reply, or `wait`'s event
    output: io.StringIO = field(default_factory=io.StringIO)
    pending: Pending | None = None  # the request on the wire, once sent
    abandoned: bool = False
    leave: bool = False  # it was `exit`

    def submitted(self, pending: Pending) -> None:
        self.pending = pending

    def abandon(self) -> None:
        """Ctrl-C: stop waiting; whatever the worker still produces is dropped."""
        self.abandoned = True
        if self.pending is not None:
            self.pending.abandon()


def start_job(
    session: Session, request: Request, width: int | None, done: Callable[[Job], None]
) -> Job:
    """Run ``request`` on a new worker thread; ``done(job)`` is called there at the end."""
    job = Job(request_name(request), waited_for(request))
    worker = threading.Thread(
        target=_work, args=(session, job, request, width, done), name="qmpsh-job", daemon=True
    )
    worker.start()
    return job


def _work(
    session: Session, job: Job, request: Request, width: int | None, done: Callable[[Job], None]
) -> None:
    # One stream for replies, errors and the -v echo, so they print in the order made.
    output = Output(job.output, job.output, width)
    try:
        session.run(request, output=output, on_submit=job.submitted)
    except ExitShell:
        job.leave = True
    except QmpshError as exc:
        session.error(str(exc), output)
    except Exception as exc:  # a bug must cost one line, not the session
        session.error(f"internal error: {exc!r}", output)
    finally:
        done(job)  # whatever happened, the prompt must not stay busy


def waited_for(request: Request) -> str:
    """`wait STOP` waits for the STOP event, not for something called wait."""
    if isinstance(request, ShellCommand) and request.name == "wait":
        terms = [word for word in request.argv if not word.startswith("timeout=")]
        return f"the {' '.join(terms)} event" if terms else "an event"
    return request_name(request)


def request_name(request: Request) -> str:
    """What the toolbar and the Ctrl-C message call a running request."""
    if isinstance(request, Command | ShellCommand):
        return request.name
    if isinstance(request, RawJson):
        return str(request.message.get("execute") or request.message.get("exec-oob") or "?")
    if isinstance(request, Transaction):
        return "transaction"
    assert isinstance(request, HmpLine)
    return "hmp"
