"""qmpsh as a library: a synchronous, typed API for scripts (the seed's ``qmp.py``).

::

    import qmpsh

    with qmpsh.connect("/run/vm/qmp.sock") as vm:            # any address qmpsh takes
        vm.run("device_add driver=e1000 id=n1")                # the shell's input language
        status = vm.execute("query-status")                    # -> the "return" value
        vm.execute("device_del", id="n1")                      # keyword arguments
        event = vm.wait("DEVICE_DELETED", timeout=10, device="n1")
        for ev in vm.events(timeout=0):                        # every event, in order
            print(ev["event"])

It is the shell's machinery without a terminal: ``open_monitor`` turns the address
into a monitor (a unix or TCP socket, ``ssh://``, ``libvirt:NAME``, ``qga:``), the
session types arguments against the server's schema exactly as the shell does, and
failures are the exception classes the command line maps to exit codes
(``CommandError`` 1, ``InputError`` 2, ``ConnectError``/``DisconnectedError``/
``CommandTimeout`` 3, ``EventTimeout`` 4), all ``QmpshError``.

Coming from qemu.qmp's legacy ``QEMUMonitorProtocol`` (0.0.6; older copies of
QEMU's ``qmp.py`` called ``cmd`` what is ``cmd_raw`` now, and ``command`` what is
``cmd`` now) or from ``qemu.machine``'s ``QEMUMachine``:

==============================  ======================================================
theirs                          qmpsh
==============================  ======================================================
``QEMUMonitorProtocol(a)``      ``qmpsh.connect(a)`` (connects too; a context manager)
``.connect(negotiate)``         ``qmpsh.connect(a, negotiate=...)``
``.accept(timeout)``            not offered: qmpsh dials, it does not listen
``.cmd(name, **kw)``            ``vm.execute(name, **kw)`` (``CommandError`` on error)
``.cmd_raw(name, args)``        ``vm.execute_message({"execute": name, ...})``
``.cmd_obj(msg)``               ``vm.execute_message(msg)``: the whole reply, even an error
``.pull_event(wait)``           ``next(vm.events(timeout=t), None)`` (t=None: forever)
``.get_events(wait)``           ``list(vm.events(timeout=0))``
``.clear_events()``             ``vm.clear_events()``
``QEMUMachine.event_wait``      ``vm.wait(name, timeout=t, **data)`` (``EventTimeout``)
``QEMUMachine.events_wait``     ``vm.wait("BLOCK_JOB_*")`` takes a glob; else ``events()``
``.settimeout(t)``              ``vm.timeout = t`` (every request's reply timeout)
``.send_fd_scm(fd)``            ``vm.run("getfd fdname=N file=PATH")``: qmpsh opens PATH, passes it
``.get_sock_fd()``              not offered
==============================  ======================================================

Unlike their event queue, ``events()`` is bounded (``event_capacity``) and says
when it dropped any (``EventsLost``); and ``wait`` never consumes events from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Self

from qmpsh.errors import CommandError, EventTimeout, InputError, QmpshError

if TYPE_CHECKING:
    from qmpsh.events import EventFilter, EventLog, LoggedEvent
    from qmpsh.monitor import Monitor
    from qmpsh.request import Argument
    from qmpsh.schema import Schema
    from qmpsh.session import Session

__all__ = ["VM", "EventsLost", "connect"]

# The newest events kept for ``events()`` and ``wait()``, read or not, as in the shell's
# log: ~1 KB each in Python objects, so ~10 MB held, which a flood (~8k events/s)
# fills in about a second of not reading.  Raise it for a script that reads slowly.
EVENT_CAPACITY = 10_000
# How often a blocked ``events()``/``wait()`` looks whether the connection died (the
# event log is woken only by events).
_LIVENESS_SLICE = 0.25


class EventsLost(QmpshError):
    """``events()`` fell more than the VM's ``event_capacity`` events behind.

    ``lost`` says how many were dropped before they were read; the next call goes on
    with the oldest event still kept, so a script can note the gap and continue.
    """

    def __init__(self, lost: int) -> None:
        super().__init__(f"{lost} events were dropped before they were read")
        self.lost = lost


def connect(
    address: str,
    *,
    timeout: float = 30.0,
    wait: float = 0.0,
    negotiate: bool = True,
    validate: bool = True,
    guest_agent: bool = False,
    event_capacity: int = EVENT_CAPACITY,
    notify: Callable[[str], None] | None = None,
) -> VM:
    """Connect to the monitor at ``address`` and return the connected ``VM``.

    ``address`` is any form the command line takes: a unix socket path, ``HOST:PORT``
    (loopback), ``ssh://[USER@]HOST/PATH``, ``libvirt:NAME[@URI]``, ``qga:PATH``.
    ``timeout`` bounds connecting and then each request's reply (``VM.timeout``);
    ``wait`` keeps retrying a socket that is not there yet for that many seconds (a
    QEMU still starting).  ``negotiate=False`` leaves ``qmp_capabilities`` to the
    caller.  ``validate=False`` sends arguments that the schema would refuse.
    ``guest_agent`` speaks qemu-guest-agent's dialect on any socket address.
    ``notify`` hears what a user should be told once, when connecting: libvirt's
    warning that talking QMP to its domain taints it.  ``event_capacity`` bounds
    the unread events kept for ``events()``.
    Raises ``ConnectError``/``ProtocolError`` (exit code 3) or ``InputError`` for an
    address that cannot be read.
    """
    from qmpsh.events import EventLog
    from qmpsh.monitor import connect as dial
    from qmpsh.monitor import forward_of, open_monitor

    monitor = open_monitor(address, timeout=timeout, notify=notify, guest_agent=guest_agent)
    vm = VM(monitor, EventLog(event_capacity), timeout=timeout, validate=validate)
    try:
        dial(monitor, wait=wait, negotiate=negotiate)
    except BaseException:
        monitor.close()
        forward = forward_of(monitor)
        if forward is not None:
            forward.close()
        raise
    return vm


class VM:
    """One connected monitor; use ``connect`` to get one.  Thread-safe for requests.

    Replies are matched to requests, so several threads may call ``execute`` at
    once; ``events()`` keeps one cursor, so read events from one thread.
    """

    def __init__(self, monitor: Monitor, log: EventLog, *, timeout: float, validate: bool) -> None:
        import io

        from qmpsh.commands import Registry
        from qmpsh.session import Output, Session
        from qmpsh.settings import Settings

        settings = Settings(timeout=timeout, validate=validate)
        # No shell commands: ``wait`` and ``events`` are this class's methods, and a
        # Session must not write anywhere (it never renders: nothing here calls run).
        self._session: Session = Session(
            monitor, settings, Output(io.StringIO(), io.StringIO()), log, commands=Registry(())
        )
        self._log = log
        self._cursor = 0  # seq of the last event ``events()`` handed out
        self._mark = 0  # seq of the newest event when the latest request was sent
        self._schema_seen = False  # loaded: a command without arguments is checked first

    # -- what it is connected to ----------------------------------------------------

    @property
    def monitor(self) -> Monitor:
        """The underlying monitor, for what this class does not wrap (listeners)."""
        return self._session.client

    @property
    def version(self) -> tuple[int, int, int]:
        """QEMU's ``(major, minor, micro)`` from the greeting."""
        return self.monitor.version

    @property
    def package(self) -> str:
        """QEMU's package string from the greeting (a distribution's build tag)."""
        return self.monitor.package

    @property
    def greeting(self) -> dict[str, Any]:
        """The greeting as QEMU sent it (``{}`` for the guest agent)."""
        return self.monitor.greeting

    @property
    def schema(self) -> Schema | None:
        """The server's QMP schema, fetched on first use and cached on disk per version.

        None where there is none (the guest agent, a server without
        ``query-qmp-schema``): requests then go out with untyped arguments.
        """
        schema = self._session.schema
        self._schema_seen = schema is not None
        return schema

    @property
    def timeout(self) -> float:
        """Seconds each request waits for its reply before ``CommandTimeout``."""
        return self._session.settings.timeout

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        self._session.settings.timeout = seconds

    @property
    def connected(self) -> bool:
        return self.monitor.connected

    # -- requests -----------------------------------------------------------------

    def run(self, line: str) -> Any:
        """Run one line of the shell's input language and return the ``return`` value.

        ``device_add driver=e1000 id=n1``, dotted keys, ``transaction(...)``, a raw
        JSON message and ``hmp LINE`` (returns HMP's text) all work; values are typed
        by the schema, as in the shell.  The shell's own commands (``wait``,
        ``events``…) are this class's methods instead and raise ``InputError``, as
        does a line that does not parse or validate, before anything is sent.
        ``CommandError`` if QEMU answers with an error.
        """
        from qmpsh.request import HmpLine, ShellCommand

        request = self._session.parse(line)
        if request is None:
            raise InputError("nothing to run: the line is empty or a comment")
        if isinstance(request, ShellCommand):
            raise InputError(f"'{request.name}' is a shell command, not a QMP command")
        if isinstance(request, HmpLine):
            from qmpsh import hmp

            name, arguments = hmp.hmp_command(request.text)
            return self._returned({"execute": name, "arguments": arguments})
        self._mark = self._log.last_seq
        _, reply = self._session.request_reply(request)  # file= descriptors go with it
        if "error" in reply:
            raise CommandError.from_reply(reply)
        return reply.get("return")

    def execute(self, name: str, arguments: Mapping[str, Any] | None = None, /, **kw: Any) -> Any:
        """Run the QMP command ``name`` and return its ``return`` value.

        Arguments come as a mapping with QMP's own member names, as keywords, or both
        (keywords win).  They are typed by the schema like the shell's ``key=value``:
        ``id=123`` for a ``str`` member is sent as ``"123"``; a Python ``str`` is
        always a string (an enum value, too); dicts and lists go as JSON and their
        members are checked.  A keyword's ``_`` stands for ``-`` where the schema
        spells the member with ``-`` (``node_name=`` is ``node-name``), and a key
        with dots (``**{"file.driver": "file"}``) builds nested objects.  Unknown
        commands or members, a missing required member or a wrong type raise
        ``InputError`` before anything is sent; an error reply raises
        ``CommandError``.  Without a schema (the guest agent) values go as given.
        """
        given = {**(arguments or {}), **kw}
        message: dict[str, Any] = {"execute": name}
        if given or self._schema_seen:
            if typed := self._typed(name, given):
                message["arguments"] = typed
            return self._returned(message)
        # Nothing to type: loading the schema would cost a short script ~10 ms, so the
        # command goes as it is and only an error reply loads it, to raise the very
        # InputError (unknown command, missing argument) validating first would have.
        reply = self.execute_message(message)
        if "error" in reply:
            if self._session.settings.validate:
                self._typed(name, given)
            raise CommandError.from_reply(reply)
        return reply.get("return")

    def execute_message(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """Send a whole QMP message as it is and return the whole reply, error or not.

        Nothing is typed or validated; an ``id`` of the caller's is kept (and
        matched).  Losing the connection or the timeout still raise.
        """
        self._mark = self._log.last_seq
        return self.monitor.execute_message(dict(message), timeout=self.timeout)

    def _returned(self, message: dict[str, Any]) -> Any:
        reply = self.execute_message(message)
        if "error" in reply:
            raise CommandError.from_reply(reply)
        return reply.get("return")

    def _typed(self, name: str, given: Mapping[str, Any]) -> dict[str, Any]:
        from qmpsh import validate
        from qmpsh.request import Command

        schema = self.schema  # sets _schema_seen
        arg_type = None
        if schema is not None:
            info = schema.command(name)
            arg_type = info.arg_type if info is not None else None
        args = tuple(
            _argument(_member_path(schema, arg_type, key), value) for key, value in given.items()
        )
        return validate.type_command(
            Command(name, args), schema, validate=self._session.settings.validate
        )

    # -- events -------------------------------------------------------------------

    def events(self, timeout: float | None = 0.0) -> Iterator[dict[str, Any]]:
        """Every event since ``connect`` (or the last one read), oldest first, as sent.

        Each is QEMU's message (``event``, ``data``, ``timestamp``).  Iteration ends
        when no new event comes within ``timeout`` seconds (0: only those already
        here; None: until the connection ends).  Nothing is skipped: events are kept
        from the moment of connecting, up to ``event_capacity`` unread ones; beyond
        that the oldest are dropped and the next read raises ``EventsLost`` (with
        the count), after which reading goes on with the oldest kept.  When the
        connection is lost, the events still unread come first, then
        ``DisconnectedError``.
        """
        while True:
            logged = self._next_event(timeout)
            if logged is None:
                return
            yield logged

    def _next_event(self, timeout: float | None) -> dict[str, Any] | None:
        from qmpsh.events import EventFilter

        logged = self._log.get(self._cursor + 1)
        if logged is None:
            logged = self._await(EventFilter(), timeout, self._cursor)
            if logged is None:
                return None
        lost = logged.seq - self._cursor - 1
        self._cursor = logged.seq - 1 if lost else logged.seq
        if lost:
            raise EventsLost(lost)
        return logged.event

    def clear_events(self) -> None:
        """Forget the unread events: ``events()`` starts with the next one to arrive."""
        self._cursor = self._log.last_seq

    def wait(self, event: str, timeout: float | None = None, **data: Any) -> dict[str, Any]:
        """The first ``event`` (a name, or a glob like ``BLOCK_JOB_*``) whose data matches.

        Counts events from when the latest request was sent, so the DEVICE_DELETED
        that beat ``device_del``'s reply is found.  ``data`` keywords must equal the
        event's data members (``_`` for ``-`` as in ``execute``: ``node_name=``).
        Returns the whole event; ``EventTimeout`` after ``timeout`` seconds (None:
        wait as long as the connection lives).  Independent of ``events()``, which
        still yields the event.
        """
        from qmpsh.events import EventFilter

        if not self.monitor.capabilities.events:
            raise InputError("this monitor sends no events (the guest agent does not)")
        flt = EventFilter.parse(event)
        deadline = None if timeout is None else time.monotonic() + timeout
        cursor = self._mark
        while True:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            logged = self._await(flt, left, cursor)
            if logged is None:
                raise EventTimeout(f"no {event} within {timeout:g} s")
            if _data_matches(logged.event.get("data"), data):
                self._mark = logged.seq
                return logged.event
            cursor = logged.seq

    def _await(self, flt: EventFilter, timeout: float | None, after: int) -> LoggedEvent | None:
        """The first event after ``after`` that ``flt`` passes; None at the timeout.

        Raises the connection's failure once it is gone and nothing is left to read.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            failure = self.monitor.failure
            left = _LIVENESS_SLICE if deadline is None else deadline - time.monotonic()
            logged = self._log.wait_for(flt, max(min(left, _LIVENESS_SLICE), 0.0), after_seq=after)
            if logged is not None:
                return logged
            if failure is not None:  # read before waiting: every event it left is filed
                raise failure
            if deadline is not None and time.monotonic() >= deadline:
                return None

    # -- the end ------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection and stop the ssh forward it went through, if any."""
        from qmpsh.monitor import forward_of

        monitor = self.monitor
        monitor.close()
        forward = forward_of(monitor)
        if forward is not None:
            forward.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _member_path(schema: Schema | None, arg_type: str | None, key: str) -> tuple[str, ...]:
    """The member path a keyword names: dots nest, ``_`` is ``-`` where the schema says."""
    path = tuple(key.split("."))
    if schema is None or arg_type is None or "_" not in key:
        return path
    if schema.type_in(arg_type, path, {}) is not None:
        return path
    dashed = tuple(part.replace("_", "-") for part in path)
    return dashed if schema.type_in(arg_type, dashed, {}) is not None else path


def _argument(path: tuple[str, ...], value: Any) -> Argument:
    """A keyword's value as if typed, so the schema types it as the shell would."""
    import json

    from qmpsh.request import Argument

    if isinstance(value, str):
        return Argument(path, value, value, True, 1, 1)  # a Python str is a string
    if isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif isinstance(value, int | float):
        text = repr(value)
    else:
        text = json.dumps(value)  # TypeError for what JSON cannot carry: the caller's bug
    return Argument(path, text, value, False, 1, 1)


def _data_matches(data: Any, wanted: Mapping[str, Any]) -> bool:
    if not wanted:
        return True
    if not isinstance(data, dict):
        return False
    missing = object()
    for key, value in wanted.items():
        found = data.get(key, missing)
        if found is missing:
            found = data.get(key.replace("_", "-"), missing)
        if found is missing or found != value:
            return False
    return True
