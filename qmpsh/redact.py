"""Keep secrets out of history, transcripts and ``--verbose`` echo.

QMP carries passwords in a handful of places (``set_password``,
``change-vnc-password``, members named like ``password``/``secret``, and the
``data`` of ``object-add qom-type=secret``).  Anything written to disk or echoed
goes through here first.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "<redacted>"
SECRET_KEYS = frozenset({"password", "secret", "key-secret", "passphrase", "new-secret"})
SECRET_COMMANDS = frozenset({"set_password", "change-vnc-password", "expire_password"})

_SECRET_LINE = re.compile(
    r"(^|\s)(set_password|change-vnc-password)\b"
    r"|\b(password|secret|key-secret|passphrase|new-secret)[.\w-]*="
    r"|qom-type=[\"']?secret\b",
    re.IGNORECASE,
)


def line_has_secret(line: str) -> bool:
    """True for a typed line that must not reach the history file."""
    return _SECRET_LINE.search(line) is not None or '"password"' in line


def redact_message(message: dict[str, Any]) -> dict[str, Any]:
    """A copy of a QMP message with secret values replaced by a mask."""
    arguments = message.get("arguments")
    if not isinstance(arguments, dict):
        return message
    command = str(message.get("execute") or message.get("exec-oob") or "")
    redacted = dict(message)
    redacted["arguments"] = _redact_object(arguments, secret_data=_is_secret_object(arguments))
    if command in SECRET_COMMANDS and "password" in arguments:
        redacted["arguments"]["password"] = MASK
    return redacted


def _is_secret_object(arguments: dict[str, Any]) -> bool:
    return str(arguments.get("qom-type", "")).startswith("secret")


def _redact_object(value: Any, *, secret_data: bool = False) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if (key in SECRET_KEYS and isinstance(item, str)) or (key == "data" and secret_data):
                out[key] = MASK
            else:
                out[key] = _redact_object(
                    item, secret_data=_is_secret_object(item) if isinstance(item, dict) else False
                )
        return out
    if isinstance(value, list):
        return [_redact_object(item) for item in value]
    return value
