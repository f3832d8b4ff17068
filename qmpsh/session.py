"""One target's session: the monitor, its schema and events, and the one way a request runs.

Every frontend — the interactive shell, the TERM=dumb loop, piped scripts, ``-c`` —
parses with ``Session.parse`` and runs with ``Session.run`` (or both at once with
``run_line``), so they differ only in how lines come in and where output goes.
``run`` is the one place where a request is typed against the schema, echoed under
``-v``, sent, waited for and rendered, and where the event wait-mark is set.  The
interactive shell passes ``on_submit`` to get hold of the request on the wire, so
Ctrl-C can abandon it.

The session talks to a ``monitor.Monitor``, never to a concrete client, so a socket,
a libvirt domain or the guest agent are all the same to it.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TextIO

from qmpsh import fds
from qmpsh.commands import Registry
from qmpsh.errors import EXIT_COMMAND_ERROR, EXIT_OK, CommandError, InputError, QmpshError
from qmpsh.events import EventLog, format_spice_sessions, spice_sessions
from qmpsh.render import Renderer
from qmpsh.request import Argument, Command, HmpLine, RawJson, Request, ShellCommand, Transaction
from qmpsh.settings import Format, Settings
from qmpsh.syntax import Syntax, syntax_for

if TYPE_CHECKING:  # schema, validate and hmp are imported when first needed (start-up time)
    from qmpsh.events import EventFilter
    from qmpsh.monitor import Monitor, Pending
    from qmpsh.schema import Schema

__all__ = ["Format", "Output", "Session", "Settings", "Streams"]

PARSE_CACHE_SIZE = 256  # distinct lines remembered; the cache is emptied when full

OnSubmit = Callable[["Pending"], None]
ClientListener = Callable[["Monitor"], None]


class Streams(Protocol):
    """Where one request's output goes (``Output``; a ``Renderer`` also has these)."""

    @property
    def out(self) -> TextIO: ...

    @property
    def err(self) -> TextIO: ...

    @property
    def width(self) -> int | None: ...


class Output(NamedTuple):
    """Replies to ``out``, errors and the ``-v`` echo to ``err``, wrapped at ``width``."""

    out: TextIO
    err: TextIO
    width: int | None = None


class Session:
    """The monitor, schema, events and settings of one target."""

    def __init__(
        self,
        client: Monitor,
        settings: Settings,
        output: Streams | None = None,
        event_log: EventLog | None = None,
        *,
        commands: Registry | None = None,
    ) -> None:
        """``output`` is where requests render unless ``run`` is told otherwise
        (standard output and error by default); only its streams are used, the
        format is ``settings.fmt``.  ``commands`` defaults to qmpsh's own."""
        if commands is None:
            from qmpsh.shell_commands import SHELL_COMMANDS

            commands = SHELL_COMMANDS
        self.client = client
        self.settings = settings
        self.output: Streams = output if output is not None else Output(sys.stdout, sys.stderr)
        self.events = event_log if event_log is not None else EventLog()
        self.commands = commands
        self.shell_words = commands.names()
        self._schema: Schema | None = None
        self._schema_failed = False
        self._parsed: dict[tuple[str, bool, frozenset[str]], Request] = {}
        self._renderer: Renderer | None = None  # made from settings.fmt, for _rendering_to
        # What makes that renderer: a fan-out tags every line with the target's name.
        self.make_renderer: Callable[..., Renderer] = Renderer
        self._rendering_to: Streams | None = None
        self._client_listeners: list[ClientListener] = []
        # Sequence number of the last event seen before the latest request was sent:
        # `wait` counts events from there, so an event that raced ahead of its
        # command's reply is not missed.
        self.wait_mark = 0
        self.event_filter: EventFilter | None = None
        self.show_events = True
        # Set by the shell's Ctrl-C: a shell command that waits a long time (reconnect)
        # clears it when it starts and stops as soon as it is set.
        self.cancel = threading.Event()
        client.add_event_listener(self._on_event)

    # -- the monitor -------------------------------------------------------------

    def add_client_listener(self, callback: ClientListener) -> None:
        """Call ``callback(new)`` whenever ``replace_client`` swaps in a new monitor.

        It runs on the thread that reconnected (a worker, in the shell).
        """
        self._client_listeners.append(callback)

    def replace_client(self, client: Monitor) -> None:
        """Swap in a new connection (``reconnect``) and tell the client listeners.

        ``client`` must already carry the old one's listeners: they have to be in place
        before it connects, or an event sent right after the greeting is missed, so
        ``reconnect`` wires them then and this does not do it a second time.  The
        schema is read again (lazily, from the cache when it has this server's key):
        the new server may be another build, even of the same version.
        """
        self.client = client
        self._schema = None
        self.shell_words = self.commands.names()
        self._schema_failed = False
        for listener in list(self._client_listeners):
            listener(client)

    def redact(self, message: dict[str, Any]) -> dict[str, Any]:
        """``message`` with its secrets masked, by schema type when the schema is loaded."""
        from qmpsh.redact import redact_message

        return redact_message(message, self._schema)

    def _on_event(self, event: dict[str, Any]) -> None:
        """Runs on the client's reader thread: file the event, nothing slower."""
        self.events.append(event)

    # -- schema --------------------------------------------------------------

    @property
    def schema(self) -> Schema | None:
        """The server's schema, loaded on first use (from the disk cache when possible)."""
        if self._schema is None and not self._schema_failed:
            if not self.client.capabilities.schema:
                self._schema_failed = True
                return None
            from qmpsh.schema import load_schema

            try:
                self._schema = load_schema(self._fetch_schema, self._version_key(), None)
            except CommandError:
                # No query-qmp-schema (qemu-ga, an old QEMU, another QMP server): go on
                # untyped, as qmp-shell would.
                self._schema_failed = True
                return None
            except QmpshError:
                # Lost connection: no schema for now (the shell's lexer and completer
                # must keep working); `reconnect` makes the next use fetch it again.
                if self.client.failure is not None:
                    return None
                raise
            except Exception:  # a schema we cannot read must not stop the shell
                self._schema_failed = True
                return None
            self.shell_words = self.commands.names(frozenset(self._schema.command_names()))
        return self._schema

    @property
    def loaded_schema(self) -> Schema | None:
        """The schema if it is loaded already, else None: never waits.  What a screen
        draw reads (the highlighter): loading it there held up the first prompt."""
        return self._schema

    def _fetch_schema(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.client.execute("query-qmp-schema")
        return entries

    def _version_key(self) -> str:
        from qmpsh.schema import cache_key

        try:
            commands = self.client.execute("query-commands")
        except CommandError:
            commands = []  # a server without it: version and package alone
        return cache_key(self.client.version, self.client.package, commands)

    # -- running requests ------------------------------------------------------

    @property
    def syntax(self) -> Syntax:
        """The input language in this session's mode: every frontend reads lines through it."""
        return syntax_for(bool(self.settings.hmp_mode), self.shell_words)

    def parse(self, text: str) -> Request | None:
        """Parse with this session's mode and shell words (errors keep their column).

        Scripts repeat lines (a poll loop sends the same query thousands of times), so
        requests are remembered by their text; only hashable ones, which hold no dict or
        list that later code could change in place.
        """
        key = (text, self.settings.hmp_mode, self.shell_words)
        request = self._parsed.get(key)
        if request is None:
            try:
                request = self.syntax.parse(text)
            except InputError as exc:
                raise self._unknown_command(text) or exc from None
            if request is not None and _hashable(request):
                if len(self._parsed) >= PARSE_CACHE_SIZE:
                    self._parsed.clear()
                self._parsed[key] = request
        return request

    def _unknown_command(self, text: str) -> InputError | None:
        """`qinfo pci`: the first word is what is wrong, not the second (once validated).

        Only asked after the syntax failed, and only of a schema already loaded:
        reporting a typo must not make a script fetch the schema.
        """
        words = text.split(maxsplit=1)
        name = words[0] if words else ""
        schema = self._schema
        if (
            schema is None
            or not self.settings.validate
            or self.settings.hmp_mode
            or not name.replace("-", "").replace("_", "").isalnum()
            or name in self.shell_words
            or schema.command(name) is not None
        ):
            return None
        from qmpsh.did_you_mean import suggest

        known = [*schema.command_names(), *self.shell_words]
        column = len(text) - len(text.lstrip()) + 1
        return InputError(f"unknown command '{name}'{suggest(name, known)}", column)

    def run_line(self, text: str, line: int | None = None, *, output: Streams | None = None) -> int:
        """Parse and run one logical line; ``line`` is where it starts in a script."""
        try:
            request = self.parse(text)
        except InputError as exc:
            return self._report(exc, line, self._renderer_for(output))
        if request is None:
            return EXIT_OK
        return self.run(request, output=output, line=line)

    def run(
        self,
        request: Request,
        *,
        output: Streams | None = None,
        on_submit: OnSubmit | None = None,
        line: int | None = None,
    ) -> int:
        """Run one request and render its outcome; return its status.

        0 ok, 1 the command failed, 2 bad input (reported on ``output`` with ``line``,
        when given).  Losing the connection, a timeout, ``wait`` giving up and ``exit``
        (``ExitShell``) propagate: each frontend decides whether to stop or go on.
        ``on_submit`` is called with each request put on the wire.
        """
        out = self._renderer_for(output)
        try:
            if isinstance(request, ShellCommand):
                return self._run_shell(request, out)
            if isinstance(request, HmpLine):
                return self._run_hmp(request, out, on_submit)
            return self._run_qmp(request, out, on_submit)
        except (InputError, CommandError) as exc:
            return self._report(exc, line, out)

    def error(self, message: str, output: Streams | None = None) -> None:
        """Report ``message`` as one error line on ``output``, in the session's format."""
        self._renderer_for(output).error(message)

    def _report(self, exc: QmpshError, line: int | None, out: Renderer) -> int:
        if isinstance(exc, InputError) and line is not None:
            exc = exc.at_line(line + (exc.line or 1) - 1)
        out.error(str(exc))
        return exc.exit_code

    def _renderer_for(self, output: Streams | None) -> Renderer:
        """A renderer for ``output`` in the current format; kept while nothing changes."""
        streams = output if output is not None else self.output
        settings, renderer = self.settings, self._renderer
        if (
            renderer is None
            or self._rendering_to is not streams
            or renderer.fmt != settings.fmt
            or renderer.color != settings.color
        ):
            renderer = self.make_renderer(
                settings.fmt, streams.out, streams.err, color=settings.color, width=streams.width
            )
            self._renderer, self._rendering_to = renderer, streams
        return renderer

    def _run_qmp(
        self, request: Command | Transaction | RawJson, out: Renderer, on_submit: OnSubmit | None
    ) -> int:
        message, reply = self.request_reply(request, out, on_submit)
        out.reply(str(message.get("execute") or message.get("exec-oob") or ""), reply)
        return EXIT_COMMAND_ERROR if "error" in reply else EXIT_OK

    def request_reply(
        self,
        request: Command | Transaction | RawJson,
        out: Renderer | None = None,
        on_submit: OnSubmit | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Type, send and wait for one QMP request: its message and whole reply.

        What ``run`` shows and what the library (``qmpsh.api``) returns both come from
        here, so ``file=`` descriptors, out-of-band and the schema-less fast path are
        the same for a script, the shell and ``VM.run``.
        """
        out = out if out is not None else self._renderer_for(None)
        passed: Argument | None = None
        if isinstance(request, Command):
            request, passed = fds.split_file(request)
        unchecked = False
        if isinstance(request, Command) and self._needs_no_schema(request):
            message: dict[str, Any] = {"execute": request.name}
            unchecked = True
        else:
            message = self.message_for(request)
        files = self._files_for(passed)
        try:
            reply = self._exchange(message, out, on_submit, files)
        finally:
            fds.close_passed(files)
        if "error" in reply and unchecked and self.settings.validate:
            self.message_for(request)  # raises the InputError validating first would have
        return message, reply

    def _needs_no_schema(self, command: Command) -> bool:
        """True for a command without arguments while the schema is not loaded yet.

        There is nothing to type, and validation can only object to the name or to a
        missing required argument, which QEMU refuses too, before running anything.
        Loading the schema costs a ``-c`` call or a script ~10 ms, so such a command is
        sent as it is; only an error reply loads the schema, to give the very message
        (column, "did you mean") that validating first would have given.  Under
        ``--verbose`` the schema is loaded first, so an invalid command is not echoed.
        """
        return (
            not command.arguments
            and not command.oob
            and self._schema is None
            and not self._schema_failed
            and not self.settings.verbose
        )

    def message_for(self, request: Command | Transaction | RawJson) -> dict[str, Any]:
        """The QMP message for a request, typed and validated against the schema."""
        from qmpsh import validate

        if isinstance(request, RawJson):
            return dict(request.message)
        schema = self.schema  # types values even under --no-validate
        if isinstance(request, Transaction):
            actions = validate.type_transaction(request, schema, validate=self.settings.validate)
            return {"execute": "transaction", "arguments": {"actions": actions}}
        arguments = validate.type_command(request, schema, validate=self.settings.validate)
        message: dict[str, Any] = {
            self._oob_key(request) if request.oob else "execute": request.name
        }
        if arguments:
            message["arguments"] = arguments
        return message

    def _oob_key(self, request: Command) -> str:
        """``exec-oob``, once sure QEMU can run ``request`` out of band; else an InputError.

        Checked here, before anything is sent: QEMU would refuse a command without
        ``allow-oob`` too, but a monitor that never negotiated ``oob`` (libvirt, the
        guest agent, ``-N``) might run it in band instead, or drop the connection.
        """
        if not self.client.capabilities.oob:
            raise InputError(
                f"oob: {self.client.address} did not negotiate out-of-band execution "
                "(a QMP socket offering the 'oob' capability is needed)",
                request.column,
            )
        schema = self.schema
        info = schema.command(request.name) if schema is not None else None
        if info is None or not info.allow_oob:
            known = ", ".join(schema.oob_command_names()) if schema is not None else ""
            hint = f" (these can: {known})" if known else ""
            raise InputError(f"{request.name} cannot run out of band{hint}", request.column)
        return "exec-oob"

    def _files_for(self, passed: Argument | None) -> tuple[fds.PassedFile, ...]:
        """The descriptor ``file=`` names, opened, once the monitor can take it."""
        if passed is None:
            return ()
        if not self.client.capabilities.fd_passing:
            raise InputError(
                f"file=: {self.client.address} cannot take a file descriptor "
                "(only a QMP unix socket can; nothing was sent)",
                passed.key_column,
            )
        return (fds.open_passed(passed),)

    def _exchange(
        self,
        message: dict[str, Any],
        out: Renderer,
        on_submit: OnSubmit | None,
        files: tuple[fds.PassedFile, ...] = (),
    ) -> dict[str, Any]:
        """Send one message and wait for its whole reply: every request goes through here.

        ``files`` go with the message (SCM_RIGHTS); the caller closes them afterwards.
        Without ``on_submit`` the monitor may read the reply on this very thread
        (``execute_message``), which is what keeps a lock-step script fast.
        """
        if self.settings.verbose:
            echo = json.dumps(self.redact(message), separators=(",", ":"))
            notes = "".join(f"  # fd from file={passed.path}" for passed in files)
            out.err.write(echo + notes + "\n")
            out.err.flush()
        self.wait_mark = self.events.last_seq
        timeout = self.settings.timeout
        if on_submit is None:
            return self.client.execute_message(message, timeout=timeout, fds=files)
        pending = self.client.submit(message, fds=files)
        on_submit(pending)
        try:
            return pending.result(timeout)
        except BaseException:  # timeout or Ctrl-C: let the late reply be dropped
            pending.abandon()
            raise

    def _run_hmp(self, request: HmpLine, out: Renderer, on_submit: OnSubmit | None) -> int:
        from qmpsh import hmp
        from qmpsh.guest_agent import NO_HMP, is_guest_agent

        if is_guest_agent(self.client):
            raise InputError(NO_HMP, request.column)
        words = request.text.split()
        if words[:1] == ["info"] and not request.passthrough:
            schema = self.schema
            commands = frozenset(schema.command_names()) if schema is not None else frozenset()
            query = hmp.query_for_info(words, commands)
            if query is not None:
                return self._run_info(query, words[1], out, on_submit)
        name, arguments = hmp.hmp_command(request.text)
        reply = self._exchange({"execute": name, "arguments": arguments}, out, on_submit)
        if "error" in reply:
            out.reply(name, reply)
            return EXIT_COMMAND_ERROR
        text = str(reply.get("return", "")).replace("\r\n", "\n")
        if out.fmt == "pretty":
            out.text(text.rstrip("\n"))
        else:
            out.reply(name, {"return": text})
        return EXIT_OK

    def _run_info(self, query: str, topic: str, out: Renderer, on_submit: OnSubmit | None) -> int:
        """``info X`` through its QMP query, shown as HMP would where qmpsh knows how."""
        from qmpsh import hmp

        reply = self._exchange({"execute": query}, out, on_submit)
        text = None
        if "return" in reply and out.fmt == "pretty":
            text = hmp.format_info(topic, reply["return"])
        if text is not None and topic == "spice":
            text = self._with_spice_sessions(text)
        if text is None:
            out.reply(query, reply)
        else:
            out.text(text)
        return EXIT_COMMAND_ERROR if "error" in reply else EXIT_OK

    def _with_spice_sessions(self, text: str) -> str:
        """``info spice`` plus what only events know: sessions seen, and which are gone."""
        sessions = spice_sessions(logged.event for logged in self.events.recent())
        if not sessions:
            return text
        lines = [text.rstrip("\n"), "SPICE sessions seen in events:"]
        return "\n".join(lines + ["  " + line for line in format_spice_sessions(sessions)])

    def _run_shell(self, request: ShellCommand, out: Renderer) -> int:
        spec = self.commands.get(request.name)
        if spec is None:  # the parser only produces registered names
            raise InputError(f"unknown shell command '{request.name}'", request.column)
        return spec.handler(self, request.argv, out)


def _hashable(request: Request) -> bool:
    try:
        hash(request)
    except TypeError:
        return False
    return True
