"""Turn parsed ``key=value`` arguments into the JSON QEMU expects, checked against the schema.

The parser only guesses a value's type from its text (``123`` looks like an int).
The schema knows better: ``id=123`` is a string where ``id`` is a ``str``, ``on``
is a bool where the member is a ``bool``.  Typing here is what makes qmp-shell's
syntax forgiving, and validating here is what turns QEMU's terse ``Invalid
parameter`` into an error that points at the column the user got wrong.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from qmpsh.errors import InputError
from qmpsh.request import Argument, Command, Transaction
from qmpsh.schema import Schema, TypeRef
from qmpsh.syntax import build_arguments

# Commands whose schema lists only some arguments: device_add takes any device
# property (QEMU declares it 'gen': false), so unknown keys are passed through.
OPEN_COMMANDS = frozenset({"device_add"})
BOOL_WORDS = {"true": True, "on": True, "yes": True, "false": False, "off": False, "no": False}
ENUM_SHOWN = 8  # values listed in an enum error before "… (N in all)"


class _Mismatch(Exception):
    """A value does not fit a type; the caller adds the key and the column."""


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --- nesting dotted keys --------------------------------------------------------


def _nest(pairs: Iterable[tuple[Argument, Any]]) -> dict[str, Any]:
    """``syntax.build_arguments`` over (argument, typed value) pairs: one nesting rule.

    Values may be dicts (unhashable), so they are handed over in order rather than
    looked up: ``build_arguments`` asks for each argument's value once, in order.
    """
    pairs = list(pairs)
    typed = iter([value for _, value in pairs])
    return build_arguments([arg for arg, _ in pairs], lambda _arg: next(typed))


def _blind(arg: Argument) -> Any:
    """The parser's schema-blind value; a quoted value is always a string."""
    return arg.text if arg.quoted else arg.value


def _given(arg: Argument) -> Any:
    """What a union tag lookup sees: the raw text for scalars, parsed JSON for structures."""
    return arg.value if not arg.quoted and isinstance(arg.value, (dict, list)) else arg.text


def _blind_tree(arguments: Sequence[Argument]) -> dict[str, Any]:
    return _nest((a, _blind(a)) for a in arguments)


# --- scalar conversions -----------------------------------------------------------


def _as_int(arg: Argument) -> int:
    if arg.quoted or isinstance(arg.value, bool):
        raise _Mismatch
    if isinstance(arg.value, int):
        return arg.value
    try:
        return int(arg.text, 0)
    except ValueError:
        raise _Mismatch from None


def _as_number(arg: Argument) -> int | float:
    if arg.quoted or isinstance(arg.value, bool):
        raise _Mismatch
    if isinstance(arg.value, (int, float)) and math.isfinite(arg.value):
        return arg.value
    try:
        number = float(arg.text)
    except ValueError:
        raise _Mismatch from None
    if not math.isfinite(number):
        raise _Mismatch  # JSON has no NaN or infinity
    return number


def _as_bool(arg: Argument) -> bool:
    if arg.quoted:
        raise _Mismatch
    if isinstance(arg.value, bool):
        return arg.value
    word = BOOL_WORDS.get(arg.text.lower())
    if word is None:
        raise _Mismatch
    return word


def _as_null(arg: Argument) -> None:
    if arg.quoted or arg.value is not None:
        raise _Mismatch


SCALARS: dict[str, Callable[[Argument], Any]] = {
    "str": lambda arg: arg.text,  # whatever was typed, even 123 or true
    "int": _as_int,
    "number": _as_number,
    "bool": _as_bool,
    "null": _as_null,
    "any": _blind,
}


# --- JSON values checked against a type --------------------------------------------


def _json_fits(schema: Schema, type_name: str, value: Any) -> str | None:
    """Why a parsed JSON value does not fit a type (a short reason), or None if it does."""
    meta = schema.meta(type_name)
    if meta == "builtin":
        return None if _builtin_fits(type_name, value) else f"expected {type_name}"
    if meta == "enum":
        values = schema.enum_values(type_name)
        return None if value in values else f"{_show(value)} is not one of {_list(values)}"
    if meta == "array":
        return _array_fits(schema, type_name, value)
    if meta == "alternate":
        return _alternate_fits(schema, type_name, value)
    return _object_fits(schema, type_name, value)


def _builtin_fits(type_name: str, value: Any) -> bool:
    if type_name == "any":
        return True
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    expected = {"str": str, "bool": bool, "null": type(None)}[type_name]
    return isinstance(value, expected)


def _array_fits(schema: Schema, type_name: str, value: Any) -> str | None:
    if not isinstance(value, list):
        return f"expected {schema.describe_type(type_name)}"
    element = schema.element(type_name) or "any"
    for i, item in enumerate(value):
        if (why := _json_fits(schema, element, item)) is not None:
            return f"[{i}]: {why}"
    return None


def _alternate_fits(schema: Schema, type_name: str, value: Any) -> str | None:
    ref = schema.ref(type_name)
    choices = ref.choices if ref else ()
    reasons = [_json_fits(schema, c, value) for c in choices]
    if any(r is None for r in reasons):
        return None
    if isinstance(value, dict):  # the object branch's reason is the useful one
        return next(
            (r for c, r in zip(choices, reasons, strict=True) if schema.meta(c) == "object"), None
        )
    return f"expected {schema.describe_type(type_name)}"


def _object_fits(schema: Schema, type_name: str, value: Any) -> str | None:
    if not isinstance(value, dict):
        return "expected an object"
    members = {m.name: m for m in schema.members(type_name, value)}
    for key, item in value.items():
        member = members.get(key)
        if member is None:
            return f"unknown member '{key}'{suggest(key, members)}"
        if (why := _json_fits(schema, member.type, item)) is not None:
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
    """The value of ``arg`` as the type at its path wants it; raises _Mismatch or InputError."""
    if ref.meta == "builtin":
        return SCALARS[ref.name](arg)
    if ref.meta == "enum":
        if arg.text not in ref.values:
            raise InputError(_enum_message(arg, ref.values), arg.value_column)
        return arg.text
    if ref.meta == "alternate":
        return _alternate(schema, ref, arg)
    return _structured(schema, ref.name, arg)


def _enum_message(arg: Argument, values: Sequence[str]) -> str:
    hint = suggest(arg.text, values)
    if hint:
        return f"'{arg.text}' is not a valid value for '{arg.key}'{hint}"
    return f"'{arg.text}' is not a valid value for '{arg.key}': one of {_list(values)}"


def _structured(schema: Schema, type_name: str, arg: Argument) -> Any:
    """Objects and arrays come only from JSON; the JSON is checked member by member."""
    expected = list if schema.meta(type_name) == "array" else dict
    if arg.quoted or not isinstance(arg.value, expected):
        raise _Mismatch
    why = _json_fits(schema, type_name, arg.value)
    if why is not None:
        raise InputError(f"bad value for '{arg.key}': {why}", arg.value_column)
    return arg.value


def _alternate(schema: Schema, ref: TypeRef, arg: Argument) -> Any:
    """Pick an alternate's branch the way a person would read the value.

    JSON structures go to the object/array branch, a bare ``null`` to null, a
    value that looks like a number or bool to that branch if there is one, a
    known enum word to the enum, and anything else to ``str``.
    """
    if not arg.quoted and isinstance(arg.value, (dict, list)):
        return _json_branch(schema, ref, arg)
    for choice in _scalar_order(schema, ref.choices, arg):
        try:
            return _convert(schema, schema.ref(choice) or TypeRef("any", "builtin"), arg)
        except (_Mismatch, InputError):
            continue
    raise _Mismatch


def _json_branch(schema: Schema, ref: TypeRef, arg: Argument) -> Any:
    why = _alternate_fits(schema, ref.name, arg.value)
    if why is not None:
        raise InputError(f"bad value for '{arg.key}': {why}", arg.value_column)
    return arg.value


def _scalar_order(schema: Schema, choices: Sequence[str], arg: Argument) -> list[str]:
    """Branches to try, most specific first; ``str`` accepts anything, so it goes last."""
    rank = {"null": 0, "bool": 1, "int": 2, "number": 3, "enum": 4, "str": 5}
    scalar = [c for c in choices if schema.meta(c) in ("builtin", "enum") and c != "any"]
    return sorted(scalar, key=lambda c: rank.get(c if schema.meta(c) == "builtin" else "enum", 6))


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
        given = _nest((a, _given(a)) for a in arguments)
        pairs: list[tuple[Argument, Any]] = []
        unknown: list[Argument] = []
        for arg in arguments:
            ref = self.schema.type_in(self.type_name, arg.path, given)
            if ref is None:
                unknown.append(arg)
            pairs.append((arg, _blind(arg) if ref is None else self._value(ref, arg)))
        if unknown and self.validate and not self.open:
            raise self._unknown(unknown[0], given)
        tree = _nest(pairs)
        if self.validate:
            self._check_required(self.type_name, tree, (), arguments)
        return tree

    def _value(self, ref: TypeRef, arg: Argument) -> Any:
        try:
            return _convert(self.schema, ref, arg)
        except (_Mismatch, InputError) as exc:
            if not self.validate:
                return _blind(arg)
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
        sub = _sub(given, arg.path[:depth])
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


def _sub(given: Mapping[str, Any], path: Sequence[str]) -> Mapping[str, Any]:
    for key in path:
        below = given.get(key)
        given = below if isinstance(below, Mapping) else {}
    return given


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
        open_=command.name in OPEN_COMMANDS,
    )
    return typer.run(command.arguments)


def type_transaction(
    tx: Transaction, schema: Schema | None, *, validate: bool = True
) -> list[dict[str, Any]]:
    """``[{"type": action, "data": {...}}]``: each action is typed like a command.

    The action names and their data types are read from the ``transaction``
    command's ``actions`` member, so they follow whatever this QEMU supports.
    """
    union = _action_union(schema) if schema is not None else None
    if schema is None or union is None:
        return [{"type": a.name, "data": _blind_tree(a.arguments)} for a in tx.actions]
    return [_type_action(schema, union, action, validate) for action in tx.actions]


def _action_union(schema: Schema) -> str | None:
    """The union type of one transaction action (tag ``type``), if this QEMU has one."""
    members = {m.name: m for m in schema.arg_members("transaction")}
    actions = members.get("actions")
    return schema.innermost(actions.type) if actions is not None else None


def _type_action(schema: Schema, union: str, action: Command, validate: bool) -> dict[str, Any]:
    tag = schema.tag(union) or "type"
    variant = schema.variant(union, {tag: action.name})
    data = schema.member(variant, "data") if variant is not None else None
    if data is None:
        if validate:
            names = _action_names(schema, union)
            hint = suggest(action.name, names)
            raise InputError(f"unknown transaction action '{action.name}'{hint}", action.column)
        return {tag: action.name, "data": _blind_tree(action.arguments)}
    typer = _Typer(schema, data.type, action.name, action.column, validate=validate, open_=False)
    return {tag: action.name, "data": typer.run(action.arguments)}


def _action_names(schema: Schema, union: str) -> list[str]:
    tag = schema.tag(union) or "type"
    member = schema.member(union, tag)
    return schema.enum_values(member.type) if member is not None else []
