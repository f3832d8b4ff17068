"""Turn parsed ``key=value`` arguments into the JSON QEMU expects, checked against the schema.

The parser only guesses a value's type from its text (``123`` looks like an int).
The schema knows better: ``id=123`` is a string where ``id`` is a ``str``, ``on``
is a bool where the member is a ``bool``.  Typing here is what makes qmp-shell's
syntax forgiving, and validating here is what turns QEMU's terse ``Invalid
parameter`` into an error that points at the column the user got wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from qmpsh.did_you_mean import suggest
from qmpsh.errors import InputError
from qmpsh.literals import MAX_DEPTH
from qmpsh.request import Argument, Command, Transaction
from qmpsh.schema import ACTION_TAG, Mismatch, Schema, TypeRef, blind_value, dig, takes_any_key
from qmpsh.syntax import build_arguments

ENUM_SHOWN = 8  # values listed in an enum error before "… (N in all)"


# --- nesting dotted keys --------------------------------------------------------


def _nest(pairs: Iterable[tuple[Argument, Any]]) -> dict[str, Any]:
    """``syntax.build_arguments`` over (argument, typed value) pairs: one nesting rule.

    Values may be dicts (unhashable), so they are handed over in order rather than
    looked up: ``build_arguments`` asks for each argument's value once, in order.
    """
    pairs = list(pairs)
    typed = iter([value for _, value in pairs])
    return build_arguments([arg for arg, _ in pairs], lambda _arg: next(typed))


def _blind_tree(arguments: Sequence[Argument]) -> dict[str, Any]:
    return _nest((a, blind_value(a)) for a in arguments)


# --- JSON values checked against a type --------------------------------------------


def _json_fits(schema: Schema, type_name: str, value: Any, depth: int = 0) -> str | None:
    """Why a parsed JSON value does not fit a type (a short reason), or None if it does.

    ``depth`` counts the levels walked: the parser bounds a value's nesting, and past
    that bound (which a value here cannot reach) the check trusts QEMU rather than recurse.
    """
    if depth > MAX_DEPTH:
        return None
    meta = schema.meta(type_name)
    if meta == "builtin":
        return None if _builtin_fits(type_name, value) else f"expected {type_name}"
    if meta == "enum":
        values = schema.enum_values(type_name)
        return None if value in values else f"{_show(value)} is not one of {_list(values)}"
    if meta == "array":
        return _array_fits(schema, type_name, value, depth + 1)
    if meta == "alternate":
        return _alternate_fits(schema, type_name, value, depth + 1)
    return _object_fits(schema, type_name, value, depth + 1)


def _builtin_fits(type_name: str, value: Any) -> bool:
    if type_name == "any":
        return True
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    expected = {"str": str, "bool": bool, "null": type(None)}[type_name]
    return isinstance(value, expected)


def _array_fits(schema: Schema, type_name: str, value: Any, depth: int) -> str | None:
    if not isinstance(value, list):
        return f"expected {schema.describe_type(type_name)}"
    element = schema.element(type_name) or "any"
    for i, item in enumerate(value):
        if (why := _json_fits(schema, element, item, depth)) is not None:
            return f"[{i}]: {why}"
    return None


def _alternate_fits(schema: Schema, type_name: str, value: Any, depth: int) -> str | None:
    ref = schema.ref(type_name)
    choices = ref.choices if ref else ()
    reasons = [_json_fits(schema, c, value, depth) for c in choices]
    if any(r is None for r in reasons):
        return None
    if isinstance(value, dict):  # the object branch's reason is the useful one
        return next(
            (r for c, r in zip(choices, reasons, strict=True) if schema.meta(c) == "object"), None
        )
    return f"expected {schema.describe_type(type_name)}"


def _object_fits(schema: Schema, type_name: str, value: Any, depth: int) -> str | None:
    if not isinstance(value, dict):
        return "expected an object"
    members = {m.name: m for m in schema.members(type_name, value)}
    for key, item in value.items():
        member = members.get(key)
        if member is None:
            return f"unknown member '{key}'{suggest(key, members)}"
        if (why := _json_fits(schema, member.type, item, depth)) is not None:
            return f"{key}: {why}"
    missing = [m.name for m in members.values() if not m.optional and m.name not in value]
    return f"missing member '{missing[0]}'" if missing else None


def _show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _list(values: Sequence[str]) -> str:
    shown = ", ".join(values[:ENUM_SHOWN])
    return shown if len(values) <= ENUM_SHOWN else f"{shown}, … ({len(values)} in all)"


# --- one argument -------------------------------------------------------------------


def _convert(schema: Schema, ref: TypeRef, arg: Argument) -> Any:
    """The value of ``arg`` as the schema types it, its JSON checked member by member.

    Raises ``Mismatch`` where the value cannot be that type at all, ``InputError``
    where the reason is worth more than "not a T" (enum values, JSON members).
    """
    try:
        value = schema.value_of(ref, arg)
    except Mismatch:
        if ref.meta == "enum":
            raise InputError(_enum_message(arg, ref.values), arg.value_column) from None
        raise
    if ref.meta != "builtin" and isinstance(value, dict | list):
        why = _json_fits(schema, ref.name, value)
        if why is not None:
            raise InputError(f"bad value for '{arg.key}': {why}", arg.value_column)
    return value


def _enum_message(arg: Argument, values: Sequence[str]) -> str:
    hint = suggest(arg.text, values)
    if hint:
        return f"'{arg.text}' is not a valid value for '{arg.key}'{hint}"
    return f"'{arg.text}' is not a valid value for '{arg.key}': one of {_list(values)}"


# --- whole argument lists --------------------------------------------------------------


class _Typer:
    """Types the arguments of one command (or transaction action) against one object type."""

    def __init__(
        self,
        schema: Schema,
        type_name: str,
        label: str,
        column: int,
        *,
        validate: bool,
        open_: bool,
    ) -> None:
        self.schema = schema
        self.type_name = type_name
        self.label = label
        self.column = column
        self.validate = validate
        self.open = open_

    def run(self, arguments: Sequence[Argument]) -> dict[str, Any]:
        given = _nest((a, a.given) for a in arguments)
        pairs: list[tuple[Argument, Any]] = []
        unknown: list[Argument] = []
        for arg in arguments:
            ref = self.schema.type_in(self.type_name, arg.path, given)
            if ref is None:
                unknown.append(arg)
            pairs.append((arg, blind_value(arg) if ref is None else self._value(ref, arg)))
        if unknown and self.validate and not self.open:
            raise self._unknown(unknown[0], given)
        tree = _nest(pairs)
        if self.validate:
            self._check_required(self.type_name, tree, (), arguments)
        return tree

    def _value(self, ref: TypeRef, arg: Argument) -> Any:
        try:
            return _convert(self.schema, ref, arg)
        except (Mismatch, InputError) as exc:
            if not self.validate:
                return blind_value(arg)
            if isinstance(exc, InputError):
                raise
            kind = self.schema.describe_type(ref.name)
            quoted = " (quoted, so a string)" if arg.quoted else ""
            message = f"'{arg.text}'{quoted} is not {_article(kind)} for '{arg.key}'"
            raise InputError(message, arg.value_column) from None

    def _unknown(self, arg: Argument, given: Mapping[str, Any]) -> InputError:
        """Name the first path segment that leaves the schema, with a suggestion."""
        depth = 0
        while self.schema.type_in(self.type_name, arg.path[: depth + 1], given) is not None:
            depth += 1
        parent = self.schema.type_in(self.type_name, arg.path[:depth], given)
        obj = self.schema.object_branch(parent.name) if parent else None
        message = f"unknown argument '{arg.key}' for '{self.label}'"
        if obj is None:
            return InputError(message, arg.key_column)
        sub = dig(given, arg.path[:depth])
        prefix = "".join(f"{key}." for key in arg.path[:depth])
        names = [prefix + m.name for m in self.schema.members(obj, sub)]
        hint = suggest(prefix + arg.path[depth], names)
        tag = self.schema.tag(obj)
        if not hint and tag is not None and self.schema.variant(obj, sub) is None:
            hint = f" (it may depend on '{prefix}{tag}', which is not set)"
        return InputError(message + hint, arg.key_column)

    def _check_required(
        self,
        type_name: str,
        tree: Mapping[str, Any],
        prefix: tuple[str, ...],
        args: Sequence[Argument],
    ) -> None:
        """Every required member of every object the dotted keys built must be present."""
        obj = self.schema.object_branch(type_name)
        if obj is None:
            return
        members = self.schema.members(obj, tree)
        for m in members:
            if not m.optional and m.name not in tree:
                name = ".".join((*prefix, m.name))
                raise InputError(
                    f"'{self.label}' needs argument '{name}'", self._column(prefix, args)
                )
        for m in members:
            below = tree.get(m.name)
            if isinstance(below, dict):
                self._check_required(m.type, below, (*prefix, m.name), args)

    def _column(self, prefix: tuple[str, ...], args: Sequence[Argument]) -> int:
        """Where a missing member is reported: the first key under its parent, else the command."""
        for arg in args:
            if prefix and arg.path[: len(prefix)] == prefix:
                return arg.key_column
        return self.column


def _article(kind: str) -> str:
    if kind[:1] in ("[", ""):
        return f"a {kind}" if kind else "valid"
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


# --- public entry points ---------------------------------------------------------------


def type_command(
    command: Command, schema: Schema | None, *, validate: bool = True
) -> dict[str, Any]:
    """The nested ``arguments`` object for ``command``, typed by the schema when there is one.

    Without a schema (not fetched yet, or an old QEMU) the parser's guesses are
    sent as they are, which is what qmp-shell always did.
    """
    if schema is None:
        return _blind_tree(command.arguments)
    info = schema.command(command.name)
    if info is None:
        if validate:
            hint = suggest(command.name, schema.command_names())
            raise InputError(f"unknown command '{command.name}'{hint}", command.column)
        return _blind_tree(command.arguments)
    typer = _Typer(
        schema,
        info.arg_type,
        command.name,
        command.column,
        validate=validate,
        open_=takes_any_key(command.name),
    )
    return typer.run(command.arguments)


def type_transaction(
    tx: Transaction, schema: Schema | None, *, validate: bool = True
) -> list[dict[str, Any]]:
    """``[{"type": action, "data": {...}}]``: each action is typed like a command.

    The action names and their data types come from ``Schema.actions``, so they
    follow whatever this QEMU supports.
    """
    if schema is None or not schema.actions:
        return [{ACTION_TAG: a.name, "data": _blind_tree(a.arguments)} for a in tx.actions]
    return [_type_action(schema, action, validate) for action in tx.actions]


def _type_action(schema: Schema, action: Command, validate: bool) -> dict[str, Any]:
    data_type = schema.actions.get(action.name)
    if data_type is None:
        if validate:
            hint = suggest(action.name, schema.actions)
            raise InputError(f"unknown transaction action '{action.name}'{hint}", action.column)
        return {ACTION_TAG: action.name, "data": _blind_tree(action.arguments)}
    typer = _Typer(schema, data_type, action.name, action.column, validate=validate, open_=False)
    return {ACTION_TAG: action.name, "data": typer.run(action.arguments)}
