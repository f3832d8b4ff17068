"""One small exception hierarchy, so every frontend can map failures to exit codes.

Each class carries the exit code a script ends with when it is the cause, so the
mapping lives next to the failure rather than in a table somewhere else.
"""

from __future__ import annotations

import json
from typing import Any

EXIT_OK = 0
EXIT_COMMAND_ERROR = 1
EXIT_USAGE = 2
EXIT_CONNECTION = 3
EXIT_TIMEOUT = 4

# What a peer says in an error is shown on one line, cut to this many characters.
MAX_SHOWN = 1000
# C0 and C1 controls (line breaks among them), DEL, and lone surrogates (legal in JSON
# text, unprintable anywhere): none may reach a terminal as it is.


class ExitShell(Exception):  # not a QmpshError: how `exit` ends every frontend
    """Raised by the ``exit`` shell command; frontends stop reading lines."""


class QmpshError(Exception):
    """Base of every error qmpsh reports to a user as one line."""

    exit_code: int = EXIT_USAGE


class ConnectError(QmpshError):
    """The monitor could not be reached or refused the handshake."""

    exit_code = EXIT_CONNECTION


class ProtocolError(QmpshError):
    """The peer spoke something that is not QMP (garbage, a cut line, a bad greeting)."""

    exit_code = EXIT_CONNECTION


class DisconnectedError(QmpshError):
    """The connection went away after it was established."""

    exit_code = EXIT_CONNECTION


class CommandTimeout(QmpshError):
    """A reply did not come within the allowed time; the connection may still be fine."""

    exit_code = EXIT_CONNECTION


class EventTimeout(QmpshError):
    """``wait EVENT`` gave up: scripts use this to tell 'nothing happened' from a failure."""

    exit_code = EXIT_TIMEOUT


class LaunchError(QmpshError):
    """``--launch`` could not start QEMU (missing binary, bad arguments, early exit)."""

    exit_code = EXIT_CONNECTION


class CommandError(QmpshError):
    """QEMU answered a command with ``{"error": ...}``."""

    exit_code = EXIT_COMMAND_ERROR

    def __init__(self, error_class: str, desc: str, reply: dict[str, Any] | None = None) -> None:
        self.error_class = one_line(error_class)
        self.desc = one_line(desc)
        super().__init__(f"{self.error_class}: {self.desc}")
        self.reply = reply if reply is not None else {"error": {"class": error_class, "desc": desc}}

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> CommandError:
        """The error in any reply a peer sent, as well as it can be shown; never raises.

        QMP says ``error`` is ``{"class": str, "desc": str}``, but a peer may send any
        JSON value there, or in either member: what is not a string is shown as JSON.
        """
        error = reply.get("error")
        if not isinstance(error, dict):
            return cls("GenericError", f"malformed error reply: {_as_json(error)}", reply)
        error_class = _as_text(error.get("class", "GenericError"))
        return cls(error_class, _as_text(error.get("desc", "")), reply)


class InputError(QmpshError):
    """The user's line cannot be turned into a request; ``column`` points at the culprit.

    Columns are 1-based, as editors show them.  ``line`` is filled in by script
    frontends, which know which line of the file they are on.
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, column: int | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.line = line

    def at_line(self, line: int) -> InputError:
        """Return a copy that also names the script line, for multi-line frontends."""
        return InputError(self.message, self.column, line)

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"col {self.column}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


def one_line(text: str) -> str:
    """``text`` from a peer as one line that shows what it holds and cannot drive a terminal.

    Control characters, line breaks among them, are written as Python escapes
    (``\\n``, ``\\x1b``), as are lone surrogates; beyond ``MAX_SHOWN`` characters it is cut.
    """
    from qmpsh.visible import visible

    if len(text) > MAX_SHOWN:
        text = f"{text[:MAX_SHOWN]}… ({len(text) - MAX_SHOWN} more characters)"
    return visible(text)


def _as_text(value: Any) -> str:
    """A string as it is; any other JSON value (null, a number, a list...) as JSON."""
    return value if isinstance(value, str) else _as_json(value)


def _as_json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):  # not from the wire: a caller's object
        return repr(value)
