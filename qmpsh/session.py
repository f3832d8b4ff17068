"""One object that ties a connection to everything a line needs to run.

Every frontend — the interactive shell, piped scripts, ``-c`` — hands lines to
``Session.run_line`` and gets back an exit status, so they differ only in how
lines come in.  The session owns the client, the schema, the event log and the
renderer; nothing else in qmpsh keeps state between lines.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from qmpsh.client import QmpClient
from qmpsh.commands import REGISTRY
from qmpsh.errors import EXIT_OK, CommandError, InputError, QmpshError
from qmpsh.events import EventFilter, EventLog, format_spice_sessions, spice_sessions
from qmpsh.render import Renderer
from qmpsh.request import Command, HmpLine, RawJson, Request, ShellCommand, Transaction
from qmpsh.syntax import parse

if TYPE_CHECKING:  # schema, validate and hmp are imported when first needed (start-up time)
    from qmpsh.schema import Schema

Format = Literal["pretty", "json", "raw"]
PARSE_CACHE_SIZE = 256  # distinct lines remembered; the cache is emptied when full


@dataclass
class Settings:
    """What the command line (and later the config file) decided for this session."""

    fmt: Format = "json"
    validate: bool = True
    verbose: bool = False
    hmp_mode: bool = False
    exit_on_error: bool = False
    interactive: bool = False
    assume_yes: bool = False
    timeout: float = 30.0
    color: bool = False


class ExitShell(Exception):
    """Raised by the ``exit`` shell command; frontends stop reading lines."""


class Session:
    """The client, schema, events and output of one qmpsh run."""

    def __init__(
        self,
        client: QmpClient,
        settings: Settings,
        renderer: Renderer,
        event_log: EventLog | None = None,
        echo: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        from qmpsh import shell_commands  # noqa: F401  (registers the shell's own commands)

        self.client = client
        self.settings = settings
        self.renderer = renderer
        self.events = event_log if event_log is not None else EventLog()
        self._echo = echo
        self._schema: Schema | None = None
        self._schema_failed = False
        self.shell_words = REGISTRY.names()
        self._parsed: dict[tuple[str, bool, frozenset[str]], Request] = {}
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

    def replace_client(self, client: QmpClient) -> None:
        """Swap in a new connection (``reconnect``).

        ``client`` must already carry the old one's listeners: they have to be in place
        before it connects, or an event sent right after the greeting is missed, so
        ``reconnect`` wires them then and this does not do it a second time.  The
        schema is kept when the server is the same QEMU version and read again
        (lazily) when it is not, since a restarted QEMU may be an upgraded one.
        """
        old, self.client = self.client, client
        if (client.version, client.package) != (old.version, old.package):
            self._schema = None
            self.shell_words = REGISTRY.names()
        self._schema_failed = False

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
            from qmpsh.schema import load_schema

            try:
                self._schema = load_schema(self._fetch_schema, self._version_key(), None)
            except QmpshError:
                # Lost connection: no schema for now (the shell's lexer and completer
                # must keep working); `reconnect` makes the next use fetch it again.
                if self.client.failure is not None:
                    return None
                raise
            except Exception:  # a schema we cannot read must not stop the shell
                self._schema_failed = True
                return None
            self.shell_words = REGISTRY.names(frozenset(self._schema.command_names()))
        return self._schema

    def _fetch_schema(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.client.execute("query-qmp-schema")
        return entries

    def _version_key(self) -> str:
        major, minor, micro = self.client.version
        return f"{major}.{minor}.{micro}-{self.client.package}"

    # -- running lines ---------------------------------------------------------

    def parse(self, text: str) -> Request | None:
        """Parse with this session's mode and shell words (errors keep their column).

        Scripts repeat lines (a poll loop sends the same query thousands of times), so
        requests are remembered by their text; only hashable ones, which hold no dict or
        list that later code could change in place.
        """
        key = (text, self.settings.hmp_mode, self.shell_words)
        request = self._parsed.get(key)
        if request is None:
            request = parse(text, hmp_mode=key[1], shell_commands=key[2])
            if request is not None and _hashable(request):
                if len(self._parsed) >= PARSE_CACHE_SIZE:
                    self._parsed.clear()
                self._parsed[key] = request
        return request

    def run_line(self, text: str, line: int | None = None) -> int:
        """Run one logical line; return its status (0 ok, 1 command error, 2 input error).

        ``line`` is the script line the text started on, for error messages.
        Connection failures propagate: frontends decide whether to stop or reconnect.
        """
        try:
            request = self.parse(text)
            if request is None:
                return EXIT_OK
            return self.run_request(request)
        except InputError as exc:
            if line is not None:
                exc = exc.at_line(line + (exc.line or 1) - 1)
            self.renderer.error(str(exc))
            return exc.exit_code
        except CommandError as exc:
            self.renderer.error(str(exc))
            return exc.exit_code

    def run_request(self, request: Request) -> int:
        if isinstance(request, ShellCommand):
            return self._run_shell(request)
        if isinstance(request, HmpLine):
            return self._run_hmp(request)
        if isinstance(request, Command) and self._needs_no_schema(request):
            message, reply = self._send_unchecked(request)
        else:
            message = self.message_for(request)
            reply = self.send(message)
        name = str(message.get("execute") or message.get("exec-oob") or "")
        self.renderer.reply(name, reply)
        return 1 if "error" in reply else EXIT_OK

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
            and self._schema is None
            and not self._schema_failed
            and not self.settings.verbose
        )

    def _send_unchecked(self, command: Command) -> tuple[dict[str, Any], dict[str, Any]]:
        message: dict[str, Any] = {"execute": command.name}
        reply = self.send(message)
        if "error" in reply and self.settings.validate:
            self.message_for(command)  # raises the InputError validating first would have
        return message, reply

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
        message: dict[str, Any] = {"execute": request.name}
        if arguments:
            message["arguments"] = arguments
        return message

    def send(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one message and wait for its whole reply (``return`` or ``error``)."""
        if self._echo is not None and self.settings.verbose:
            self._echo(self.redact(message))
        self.wait_mark = self.events.last_seq
        return self.client.execute_message(message, timeout=self.settings.timeout)

    def _run_hmp(self, request: HmpLine) -> int:
        from qmpsh import hmp

        words = request.text.split()
        schema = self.schema
        commands = frozenset(schema.command_names()) if schema is not None else frozenset()
        shortcut = words[:1] == ["info"] and not request.passthrough
        query = hmp.query_for_info(words, commands) if shortcut else None
        if query is not None:
            reply = self.send({"execute": query})
            text = None
            if "return" in reply and self.settings.fmt == "pretty":
                text = hmp.format_info(words[1], reply["return"])
            if text is not None and words[1] == "spice":
                text = self._with_spice_sessions(text)
            if text is None:
                self.renderer.reply(query, reply)
            else:
                self.renderer.text(text)
            return 1 if "error" in reply else EXIT_OK
        name, arguments = hmp.hmp_command(request.text)
        reply = self.send({"execute": name, "arguments": arguments})
        if "error" in reply:
            self.renderer.reply(name, reply)
            return 1
        output = str(reply.get("return", "")).replace("\r\n", "\n")
        if self.settings.fmt == "pretty":
            self.renderer.text(output.rstrip("\n"))
        else:
            self.renderer.reply(name, {"return": output})
        return EXIT_OK

    def _with_spice_sessions(self, text: str) -> str:
        """``info spice`` plus what only events know: sessions seen, and which are gone."""
        sessions = spice_sessions(logged.event for logged in self.events.recent())
        if not sessions:
            return text
        lines = [text.rstrip("\n"), "SPICE sessions seen in events:"]
        return "\n".join(lines + ["  " + line for line in format_spice_sessions(sessions)])

    def _run_shell(self, request: ShellCommand) -> int:
        spec = REGISTRY.get(request.name)
        if spec is None:  # the parser only produces registered names
            raise InputError(f"unknown shell command '{request.name}'", request.column)
        return spec.handler(self, request.argv)


def _hashable(request: Request) -> bool:
    try:
        hash(request)
    except TypeError:
        return False
    return True
