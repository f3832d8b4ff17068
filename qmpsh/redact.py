"""Keep secrets out of history, transcripts and ``--verbose`` echo.

QMP carries passwords in a handful of places: ``set_password`` and
``change-vnc-password``, members named like ``password``/``secret``/``key-secret``,
the ``data`` of ``object-add qom-type=secret``, and HMP lines such as
``set_password vnc …`` sent through ``human-monitor-command``.  Anything written to
disk or echoed goes through here first.

With the server's schema, a member is masked when its name says secret *and* the
schema types it as a string, wherever it sits (unions, arrays, transactions).
Without one, or below an ``any``, the name alone decides for any scalar value: a
password typed as ``password=123456`` may have become a number there, and it is
still a password.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qmpsh.schema import Schema

MASK = "<redacted>"
SECRET_WORDS = ("password", "secret", "passphrase")
SECRET_KEYS = frozenset({"password", "secret", "key-secret", "passphrase", "new-secret"})
SECRET_COMMANDS = frozenset({"set_password", "change-vnc-password", "expire_password"})
HMP_COMMAND = "human-monitor-command"

_QUOTE = r"[\"']?"
_SECRET_LINE = re.compile(
    r"(^|[\s\"'])(set_password|change-vnc-password)\b"  # QMP, or HMP's set_password
    rf"|(password|secret|passphrase)[.\w-]*{_QUOTE}\s*[=:]"  # key=…, "key": …, 'key': …
    rf"|qom-type{_QUOTE}\s*[=:]\s*{_QUOTE}secret"  # object-add qom-type=secret data=…
    r"|\bchange\s+vnc\s+password\b"  # HMP
    rf"|\bobject_add\s+{_QUOTE}(qom-type=)?secret",  # HMP object_add secret,id=…,data=…
    re.IGNORECASE,
)


def line_has_secret(line: str) -> bool:
    """True for a typed line that must not reach the history file."""
    return _SECRET_LINE.search(line) is not None


def is_secret_name(name: str) -> bool:
    """``password``, ``key-secret``, ``proxy-password-secret``, ``passphrase`` …"""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def redact_message(message: dict[str, Any], schema: Schema | None = None) -> dict[str, Any]:
    """A copy of a QMP message with secret values replaced by a mask."""
    arguments = message.get("arguments")
    if not isinstance(arguments, dict):
        return message
    command = str(message.get("execute") or message.get("exec-oob") or "")
    info = schema.command(command) if schema is not None else None
    arg_type = info.arg_type if info is not None else None
    redacted = dict(message)
    redacted["arguments"] = _redact_object(arguments, schema, arg_type)
    if command in SECRET_COMMANDS and "password" in arguments:
        redacted["arguments"]["password"] = MASK
    line = arguments.get("command-line")
    if command == HMP_COMMAND and isinstance(line, str) and line_has_secret(line):
        redacted["arguments"]["command-line"] = f"{line.split(maxsplit=1)[0]} {MASK}"
    return redacted


def _redact(value: Any, schema: Schema | None, type_name: str | None) -> Any:
    """``type_name`` is the value's schema type, or None where the schema says nothing."""
    if isinstance(value, dict):
        return _redact_object(value, schema, type_name)
    if isinstance(value, list):
        element = schema.element(type_name) if schema is not None and type_name else None
        return [_redact(item, schema, element) for item in value]
    return value


def _redact_object(
    value: dict[str, Any], schema: Schema | None, type_name: str | None, secret: bool = False
) -> dict[str, Any]:
    """``secret``: this is the ``props`` of a secret object, whose ``data`` is the secret."""
    obj = schema.object_branch(type_name) if schema is not None and type_name else None
    secret_data = secret or str(value.get("qom-type", "")).startswith("secret")
    out: dict[str, Any] = {}
    for key, item in value.items():
        member = schema.member(obj, key, value) if schema is not None and obj else None
        member_type = member.type if member is not None and member.type != "any" else None
        if (key == "data" and secret_data) or _masked(key, item, schema, member_type):
            out[key] = MASK
        elif key == "props" and secret_data and isinstance(item, dict):
            # The older nested form: object-add qom-type=secret id=s props={"data": …}
            out[key] = _redact_object(item, schema, None, secret=True)
        else:
            out[key] = _redact(item, schema, member_type)
    return out


def _masked(key: str, item: Any, schema: Schema | None, member_type: str | None) -> bool:
    if not is_secret_name(key):
        return False
    if schema is not None and member_type is not None:
        return _is_string(schema, member_type)
    return isinstance(item, str | int | float) and not isinstance(item, bool)


def _is_string(schema: Schema, type_name: str) -> bool:
    """``str``, or an alternate that accepts one (``StrOrNull``)."""
    if type_name == "str":
        return True
    ref = schema.ref(type_name)
    return ref is not None and ref.meta == "alternate" and "str" in ref.choices
