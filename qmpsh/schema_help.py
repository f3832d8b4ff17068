"""``help NAME``: a command's or an event's members as indented text, from the schema.

Only the words are made here; every fact (members given the union tags typed,
feature labels, the signature line, readable type names) is asked of ``Schema``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qmpsh.fds import FD_COMMANDS
from qmpsh.schema import EMPTY, CommandInfo, EventInfo, Member, Schema

HELP_DEPTH = 3  # nested objects shown by ``help``; recursive types would never end


def _flags(member: Member) -> str:
    return ", ".join(["optional" if member.optional else "required", *member.labels])


def _wrap(prefix: str, words: Sequence[str], width: int = 96) -> list[str]:
    """Wrap a comma list under ``prefix`` so long enums (QKeyCode) stay readable."""
    lines, line = [], prefix
    for i, word in enumerate(words):
        piece = word + ("," if i < len(words) - 1 else "")
        if len(line) + len(piece) + 1 > width and line.strip() != prefix.strip():
            lines.append(line.rstrip())
            line = " " * len(prefix)
        line += piece + " "
    lines.append(line.rstrip())
    return lines


def _type_lines(
    schema: Schema,
    type_name: str,
    given: Mapping[str, Any],
    indent: int,
    depth: int,
    outer: tuple[str, ...] = (),
) -> list[str]:
    """The member tree of an object type, one line per member, nested objects indented.

    ``outer`` holds the objects already being shown, so recursive types
    (a qcow2 node's ``file`` is again a block node) are listed once, not forever.
    """
    obj = schema.object_branch(type_name)
    if obj is None or obj in outer:
        return []
    pad = " " * indent
    members = schema.members(obj, given)
    width = max((len(m.name) for m in members), default=0)
    lines: list[str] = []
    for m in members:
        kind = schema.describe_type(m.type)
        lines.append(f"{pad}{m.name:<{width}}  {kind}  ({_flags(m)})")
        lines += _detail_lines(schema, m, given, indent + 4, depth, (*outer, obj))
    tag = schema.tag(obj)
    if tag is not None and schema.variant(obj, given) is None:
        lines.append(f"{pad}(more members depend on '{tag}': add {tag}=VALUE to see them)")
    return lines


def _detail_lines(
    schema: Schema,
    m: Member,
    given: Mapping[str, Any],
    indent: int,
    depth: int,
    outer: tuple[str, ...],
) -> list[str]:
    """Enum values or the nested members below one member line."""
    target = schema.innermost(m.type)
    values = schema.enum_values(target)
    if values:
        return _wrap(" " * indent + "one of: ", values)
    if depth <= 1:
        return []
    below = given.get(m.name)
    below = below if isinstance(below, Mapping) else EMPTY
    return _type_lines(schema, target, below, indent, depth - 1, outer)


def command_help(schema: Schema, info: CommandInfo, given: Mapping[str, Any]) -> list[str]:
    head = [schema.signature(info.name)]  # with its feature labels
    if info.allow_oob:
        head.append(f"  (allows out-of-band execution: oob {info.name} …)")
    if info.name in FD_COMMANDS:
        head.append("  file=PATH (qmpsh's): the file whose descriptor qmpsh passes")
    args = _type_lines(schema, info.arg_type, given, 2, HELP_DEPTH)
    head += ["arguments:", *args] if args else ["arguments: none"]
    if schema.members(info.ret_type) or schema.meta(info.ret_type) != "object":
        head.append(f"returns: {schema.describe_type(info.ret_type)}")
        head += _type_lines(schema, schema.innermost(info.ret_type), EMPTY, 2, 2)
    else:
        head.append("returns: nothing")
    return head


def event_help(schema: Schema, info: EventInfo, given: Mapping[str, Any]) -> list[str]:
    labels = f" ({', '.join(info.labels)})" if info.labels else ""
    head = [f"event {info.name}{labels}"]
    data = _type_lines(schema, info.arg_type, given, 2, HELP_DEPTH)
    return head + (["data:", *data] if data else ["data: none"])
