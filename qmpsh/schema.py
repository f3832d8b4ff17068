"""An index over QEMU's ``query-qmp-schema``, the single source of truth for the shell.

QEMU masks every non-builtin type name as a number and documents nothing, so the
index answers only structural questions: which commands and events exist, what
members a type has *given what the user typed so far* (a union's tag selects more
members), what a dotted path resolves to, and how to name a type to a human.

Every schema fact is decided here, once: transaction actions, the signature line,
which commands take any key (``device_add``), which features are worth a label,
and what a typed word means for a member (``value_of``: ``123`` is a string for a
``str``, ``on`` a bool for a ``bool``).  Completion, highlighting, the signature
hint, ``help`` and validation all ask here, so they never disagree.  The raw reply
is cached per QEMU build (see ``cache_key``): it is about 200 kB and changes only
when QEMU does.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from qmpsh.request import Argument

EMPTY: Mapping[str, Any] = {}
LABELLED_FEATURES = ("deprecated", "unstable")  # the features shown beside a name
# Commands whose schema lists only some arguments: device_add takes any device
# property (QEMU declares it 'gen': false), so unknown keys are passed through.
OPEN_COMMANDS = frozenset({"device_add"})
# What a bare word means for a ``bool`` member; completion offers these words too.
BOOL_WORDS: Mapping[str, bool] = {
    "true": True,
    "false": False,
    "on": True,
    "off": False,
    "yes": True,
    "no": False,
}
ACTION_TAG = "type"  # a transaction action's tag member: {"type": NAME, "data": {...}}


class _Featured:
    """What the schema's ``features`` say about an entry, for help and completion."""

    features: tuple[str, ...]

    @property
    def deprecated(self) -> bool:
        return "deprecated" in self.features

    @property
    def unstable(self) -> bool:
        return "unstable" in self.features

    @property
    def labels(self) -> tuple[str, ...]:
        """The features a person should see beside the name (deprecated, unstable)."""
        return tuple(f for f in self.features if f in LABELLED_FEATURES)


@dataclass(frozen=True)
class Member(_Featured):
    """One member of an object type; ``type`` is the (masked) schema type name."""

    name: str
    type: str
    optional: bool
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class CommandInfo(_Featured):
    name: str
    arg_type: str
    ret_type: str
    features: tuple[str, ...] = ()
    allow_oob: bool = False


@dataclass(frozen=True)
class EventInfo(_Featured):
    name: str
    arg_type: str
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class TypeRef:
    """What a path resolves to: enough for a caller to type or complete a value.

    ``meta`` is the schema meta-type (builtin, enum, object, array, alternate);
    ``choices`` are an alternate's branch types, ``element`` an array's element type.
    """

    name: str
    meta: str
    choices: tuple[str, ...] = ()
    element: str | None = None
    values: tuple[str, ...] = ()


class Mismatch(Exception):
    """A typed value does not fit its member's type."""


def takes_any_key(command: str) -> bool:
    """True for a command whose schema lists only some of its arguments (``device_add``)."""
    return command in OPEN_COMMANDS


def dig(given: Mapping[str, Any], path: Sequence[str]) -> Mapping[str, Any]:
    """The part of ``given`` below a dotted path ({} where nothing was typed yet)."""
    for key in path:
        below = given.get(key)
        given = below if isinstance(below, Mapping) else EMPTY
    return given


def _features(entry: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(f) for f in entry.get("features", ()))


def _member(raw: Mapping[str, Any]) -> Member:
    # Optional members are exactly those that carry a "default" key (always null today).
    return Member(raw["name"], raw["type"], "default" in raw, _features(raw))


class Schema:
    """The indexed schema; immutable once built, so it can be shared across threads."""

    def __init__(self, entries: Mapping[str, Mapping[str, Any]]) -> None:
        self._entries = entries
        self._commands: dict[str, CommandInfo] = {}
        self._events: dict[str, EventInfo] = {}
        self._members: dict[str, list[Member]] = {}
        for entry in entries.values():
            self._index(entry)

    @classmethod
    def from_entries(cls, entries: Sequence[Mapping[str, Any]]) -> Schema:
        """Index the list ``query-qmp-schema`` returns."""
        return cls({e["name"]: e for e in entries})

    def _index(self, entry: Mapping[str, Any]) -> None:
        meta, name = entry["meta-type"], entry["name"]
        if meta == "command":
            self._commands[name] = CommandInfo(
                name,
                entry["arg-type"],
                entry["ret-type"],
                _features(entry),
                bool(entry.get("allow-oob", False)),
            )
        elif meta == "event":
            self._events[name] = EventInfo(name, entry["arg-type"], _features(entry))
        elif meta == "object":
            self._members[name] = [_member(m) for m in entry.get("members", ())]

    # --- commands and events -------------------------------------------------

    def command_names(self) -> list[str]:
        return sorted(self._commands)

    def event_names(self) -> list[str]:
        return sorted(self._events)

    def oob_command_names(self) -> list[str]:
        """Commands whose entry says ``allow-oob``: the only ones ``exec-oob`` runs."""
        return sorted(name for name, info in self._commands.items() if info.allow_oob)

    def command(self, name: str) -> CommandInfo | None:
        return self._commands.get(name)

    def event(self, name: str) -> EventInfo | None:
        return self._events.get(name)

    @cached_property
    def actions(self) -> Mapping[str, str]:
        """Transaction action name → its ``data`` type, read from ``transaction``'s schema.

        Computed on first use (a benign race between threads computes it twice).
        """
        ref = self.type_at("transaction", ["actions"])
        if ref is None or ref.element is None:
            return {}
        union = ref.element
        tag = self.tag(union) or ACTION_TAG
        tag_ref = self.type_in(union, [tag])
        actions: dict[str, str] = {}
        for name in tag_ref.values if tag_ref else ():
            data = self.type_in(union, ["data"], {tag: name})
            if data is not None:
                actions[name] = data.name
        return actions

    def arg_type(self, name: str, in_transaction: bool = False) -> str | None:
        """The argument type of a command, or of a transaction action's ``data``."""
        if in_transaction:
            return self.actions.get(name)
        info = self._commands.get(name)
        return None if info is None else info.arg_type

    # --- types ----------------------------------------------------------------

    def meta(self, type_name: str) -> str | None:
        """The meta-type of a type (``[T]`` arrays included), or None if unknown."""
        entry = self._entries.get(type_name)
        return None if entry is None else str(entry["meta-type"])

    def ref(self, type_name: str) -> TypeRef | None:
        entry = self._entries.get(type_name)
        if entry is None:
            return None
        meta = entry["meta-type"]
        choices = tuple(m["type"] for m in entry["members"]) if meta == "alternate" else ()
        values = tuple(entry.get("values", ())) if meta == "enum" else ()
        return TypeRef(type_name, meta, choices, entry.get("element-type"), values)

    def element(self, type_name: str) -> str | None:
        """An array's element type, or None for anything that is not an array."""
        entry = self._entries.get(type_name)
        return None if entry is None else entry.get("element-type")

    def innermost(self, type_name: str) -> str:
        """Strip array layers: ``[[T]]`` → ``T``."""
        while (inner := self.element(type_name)) is not None:
            type_name = inner
        return type_name

    def enum_values(self, type_name: str) -> list[str]:
        entry = self._entries.get(type_name)
        if entry is None or entry["meta-type"] != "enum":
            return []
        return list(entry["values"])

    def members(self, type_name: str, given: Mapping[str, Any] = EMPTY) -> list[Member]:
        """Members of an object type; a union adds the variant its tag selects in ``given``.

        Without a tag value only the common (base) members are known, which is
        what completion should offer before the user has chosen e.g. a driver.
        """
        found = list(self._members.get(type_name, ()))
        variant = self.variant(type_name, given)
        if variant is not None:
            seen = {m.name for m in found}
            found += [m for m in self.members(variant, given) if m.name not in seen]
        return found

    def variant(self, type_name: str, given: Mapping[str, Any]) -> str | None:
        """The variant type a union's tag value in ``given`` selects, if any."""
        entry = self._entries.get(type_name)
        if entry is None or "tag" not in entry:
            return None
        tag_value = given.get(entry["tag"])
        if not isinstance(tag_value, str):
            return None
        for v in entry["variants"]:
            if v["case"] == tag_value:
                return str(v["type"])
        return None

    def tag(self, type_name: str) -> str | None:
        """The tag member of a union (``driver`` for blockdev-add), else None."""
        entry = self._entries.get(type_name)
        return None if entry is None else entry.get("tag")

    def object_branch(self, type_name: str) -> str | None:
        """The object a dotted key goes into: the type itself or an alternate's object branch."""
        meta = self.meta(type_name)
        if meta == "object":
            return type_name
        if meta == "alternate":
            for choice in self._entries[type_name]["members"]:
                if self.meta(choice["type"]) == "object":
                    return str(choice["type"])
        return None

    def arg_members(self, command: str, given: Mapping[str, Any] = EMPTY) -> list[Member]:
        info = self._commands.get(command)
        return [] if info is None else self.members(info.arg_type, given)

    def member(self, type_name: str, name: str, given: Mapping[str, Any] = EMPTY) -> Member | None:
        for m in self.members(type_name, given):
            if m.name == name:
                return m
        return None

    def type_at(
        self, command: str, path: Sequence[str], given: Mapping[str, Any] = EMPTY
    ) -> TypeRef | None:
        """The type of a dotted argument path, or None where the path leaves the schema.

        ``given`` is the nested mapping of what is typed so far; it is followed
        along the path so a union at any depth can pick its variant.
        """
        info = self._commands.get(command)
        if info is None:
            return None
        return self.type_in(info.arg_type, path, given)

    def type_in(
        self, type_name: str, path: Sequence[str], given: Mapping[str, Any] = EMPTY
    ) -> TypeRef | None:
        """``type_at`` below an arbitrary type (used for transaction actions and events)."""
        current = type_name
        for key in path:
            step = self._step(current, key, given)
            if step is None:
                return None
            current, given = step
        return self.ref(current)

    def _step(
        self, type_name: str, key: str, given: Mapping[str, Any]
    ) -> tuple[str, Mapping[str, Any]] | None:
        """One path segment down, into an object's member (dotted keys never index arrays)."""
        if type_name == "any":
            return "any", EMPTY
        obj = self.object_branch(type_name)
        if obj is None:
            return None
        member = self.member(obj, key, given)
        if member is None:
            return None
        below = given.get(key)
        return member.type, below if isinstance(below, Mapping) else EMPTY

    # --- value kinds: what a typed word means for a member -----------------------

    def value_of(self, ref: TypeRef, arg: Argument) -> Any:
        """The JSON value ``arg`` is sent as where the schema says ``ref``; else ``Mismatch``.

        ``123`` is a string for a ``str`` and a number for an ``int``; ``on`` is true
        for a ``bool``; a quoted value is always a string.  Objects and arrays must
        come as JSON of that shape (``validate`` checks their members).  Validation
        sends this value and the highlighter colours by it, so they agree.
        """
        if ref.meta == "builtin":
            return _SCALARS.get(ref.name, blind_value)(arg)
        if ref.meta == "enum":
            if arg.text not in ref.values:
                raise Mismatch
            return arg.text
        if ref.meta == "alternate":
            return self._alternate_value(ref, arg)
        expected = list if ref.meta == "array" else dict
        if arg.quoted or not isinstance(arg.value, expected):
            raise Mismatch
        return arg.value

    def _alternate_value(self, ref: TypeRef, arg: Argument) -> Any:
        """Pick an alternate's branch the way a person would read the value.

        JSON structures go to the object/array branch, a bare ``null`` to null, a
        value that looks like a number or bool to that branch if there is one, a
        known enum word to the enum, and anything else to ``str``.
        """
        if not arg.quoted and isinstance(arg.value, dict | list):
            shape = "object" if isinstance(arg.value, dict) else "array"
            if any(self.meta(c) == shape for c in ref.choices):
                return arg.value
            raise Mismatch
        for choice in self._scalar_order(ref.choices):
            try:
                return self.value_of(self.ref(choice) or TypeRef("any", "builtin"), arg)
            except Mismatch:
                continue
        raise Mismatch

    def _scalar_order(self, choices: Sequence[str]) -> list[str]:
        """Branches to try, most specific first; ``str`` accepts anything, so it goes last."""
        rank = {"null": 0, "bool": 1, "int": 2, "number": 3, "enum": 4, "str": 5}
        scalar = [c for c in choices if self.meta(c) in ("builtin", "enum") and c != "any"]
        return sorted(scalar, key=lambda c: rank.get(c if self.meta(c) == "builtin" else "enum", 6))

    def value_words(self, ref: TypeRef | None) -> list[str]:
        """The words a member allows outright: enum values and bool words, alternates included."""
        if ref is None:
            return []
        if ref.meta == "enum":
            return list(ref.values)
        if ref.name == "bool":
            return list(BOOL_WORDS)
        found: list[str] = []
        for choice in ref.choices:
            found += self.value_words(self.ref(choice))
        return found

    # --- text for humans ------------------------------------------------------

    def describe_type(self, type_name: str) -> str:
        """A readable name for a masked type: ``str``, ``enum``, ``[int]``, ``str|object``."""
        entry = self._entries.get(type_name)
        if entry is None:
            return type_name
        meta = entry["meta-type"]
        if meta == "builtin":
            return type_name
        if meta == "array":
            return f"[{self.describe_type(entry['element-type'])}]"
        if meta == "alternate":
            return "|".join(self.describe_type(m["type"]) for m in entry["members"])
        return str(meta)

    def signature(
        self,
        name: str,
        given: Mapping[str, Any] = EMPTY,
        current: str | None = None,
        in_transaction: bool = False,
    ) -> str:
        """One line for ``help`` and the toolbar: ``eject  device?:str  id?:str  force?:bool``.

        ``given`` picks a union's variant; the member named ``current`` is shown in
        ``[ ]``; a command's labelled features follow in parentheses.
        """
        arg_type = self.arg_type(name, in_transaction)
        parts = [name]
        for m in self.members(arg_type, given) if arg_type is not None else ():
            part = f"{m.name}{'?' if m.optional else ''}:{self.describe_type(m.type)}"
            parts.append(f"[{part}]" if m.name == current else part)
        info = None if in_transaction else self._commands.get(name)
        if info is not None and info.labels:
            parts.append(f"({', '.join(info.labels)})")
        return "  ".join(parts)

    def help_lines(self, name: str, given: Mapping[str, Any] = EMPTY) -> list[str]:
        """Plain-text help for a command or an event; ``[]`` if the name is unknown.

        ``given`` (e.g. ``{"driver": "qcow2"}``) expands a union's chosen variant,
        since listing every variant of blockdev-add would bury the answer.
        """
        from qmpsh.schema_help import command_help, event_help  # only `help` needs it

        if name in self._commands:
            return command_help(self, self._commands[name], given)
        if name in self._events:
            return event_help(self, self._events[name], given)
        return []


# --- scalar values -----------------------------------------------------------------


def blind_value(arg: Argument) -> Any:
    """The parser's schema-blind guess (qmp-shell's), sent where the schema says nothing.

    That is without a schema, for an open command's extra key, and for ``any``; a
    quoted value is always a string.
    """
    return arg.text if arg.quoted else arg.value


def _as_int(arg: Argument) -> int:
    if arg.quoted or isinstance(arg.value, bool):
        raise Mismatch
    if isinstance(arg.value, int):
        return arg.value
    try:
        return int(arg.text, 0)
    except ValueError:
        raise Mismatch from None


def _as_number(arg: Argument) -> int | float:
    if arg.quoted or isinstance(arg.value, bool):
        raise Mismatch
    if isinstance(arg.value, int | float) and math.isfinite(arg.value):
        return arg.value
    try:
        number = float(arg.text)
    except ValueError:
        raise Mismatch from None
    if not math.isfinite(number):
        raise Mismatch  # JSON has no NaN or infinity
    return number


def _as_bool(arg: Argument) -> bool:
    if arg.quoted:
        raise Mismatch
    if isinstance(arg.value, bool):
        return arg.value
    word = BOOL_WORDS.get(arg.text.lower())
    if word is None:
        raise Mismatch
    return word


def _as_null(arg: Argument) -> None:
    if arg.quoted or arg.value is not None:
        raise Mismatch


_SCALARS: dict[str, Callable[[Argument], Any]] = {
    "str": lambda arg: arg.text,  # whatever was typed, even 123 or true
    "int": _as_int,
    "number": _as_number,
    "bool": _as_bool,
    "null": _as_null,
    "any": blind_value,
}


# --- the line-independent index for completion and highlighting -----------------------


@dataclass(frozen=True)
class SchemaIndex:
    """Lists that do not depend on the line, built once per schema so keystrokes stay cheap."""

    schema: Schema
    commands: tuple[str, ...]  # QMP command names, sorted
    labels: Mapping[str, str]  # display_meta per command name

    @classmethod
    def build(cls, schema: Schema) -> SchemaIndex:
        labels = {name: command_label(schema, name) for name in schema.command_names()}
        return cls(schema, tuple(sorted(labels)), labels)

    def has_command(self, name: str, in_transaction: bool) -> bool:
        return self.schema.arg_type(name, in_transaction) is not None

    def type_in_command(
        self, command: str, in_transaction: bool, path: Sequence[str], given: Mapping[str, Any]
    ) -> TypeRef | None:
        """``Schema.type_at`` that also understands transaction actions."""
        arg_type = self.schema.arg_type(command, in_transaction)
        return None if arg_type is None else self.schema.type_in(arg_type, path, given)

    def members_at(
        self, command: str, in_transaction: bool, parents: Sequence[str], given: Mapping[str, Any]
    ) -> list[Member]:
        """Members of the object at a dotted path, following union tags already typed."""
        ref = self.type_in_command(command, in_transaction, parents, given)
        obj = None if ref is None else self.schema.object_branch(ref.name)
        return [] if obj is None else self.schema.members(obj, dig(given, parents))


LABEL_WIDTH = 40  # a completion menu's second column is a glance, not the whole signature


def command_label(schema: Schema, name: str) -> str:
    """The menu's word on a command: its arguments at a glance, feature labels first.

    ``eject`` reads ``device? id? force?``; required arguments have no ``?``.  The
    schema carries no documentation, so the arguments are the best summary there is.
    """
    info = schema.command(name)
    members = schema.members(info.arg_type) if info is not None else []
    words = " ".join(f"{m.name}{'?' if m.optional else ''}" for m in _required_first(members))
    text = ", ".join([*(info.labels if info else ()), words or "no arguments"])
    return text if len(text) <= LABEL_WIDTH else text[: LABEL_WIDTH - 1].rstrip() + "…"


def _required_first(members: list[Member]) -> list[Member]:
    return sorted(members, key=lambda m: m.optional)


class IndexFollower:
    """The SchemaIndex of whatever schema the session has now.

    The session's schema can appear late (loaded lazily) or change (a reconnect to
    another QEMU version); the index is rebuilt only when the schema object changes.
    """

    def __init__(self, schema: Callable[[], Schema | None]) -> None:
        self._schema = schema
        self._index: SchemaIndex | None = None

    def __call__(self) -> SchemaIndex | None:
        schema = self._schema()
        if schema is None:
            return None
        if self._index is None or self._index.schema is not schema:
            self._index = SchemaIndex.build(schema)
        return self._index


# --- loading and caching ------------------------------------------------------


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qmpsh" / "schema"


def cache_file(cache_dir: Path, version_key: str) -> Path:
    """A file name that is safe on any filesystem yet still readable by a person."""
    safe = re.sub(r"[^A-Za-z0-9._+-]+", "_", version_key).strip("._") or "unknown"
    return cache_dir / f"{safe[:150]}.json"


def _read_cache(path: Path) -> list[dict[str, Any]] | None:
    """The cached entries, or None when missing or unusable (then we simply refetch)."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        return None
    return data


def _write_cache(path: Path, entries: list[dict[str, Any]]) -> None:
    """Through ``outfiles``: a fresh private file renamed into place, never half written."""
    from qmpsh.outfiles import replace_private

    try:
        replace_private(path, json.dumps(entries, separators=(",", ":")).encode())
    except (OSError, UnicodeEncodeError):
        return  # a read-only cache directory (or a lone surrogate) only costs speed


def cache_key(version: tuple[int, int, int], package: str, commands: Sequence[Any]) -> str:
    """What tells one QEMU build's schema from another's, without fetching the schema.

    The greeting's version and package are the same for ``qemu-system-x86_64`` and
    Debian's ``qemu-system-x86_64-microvm`` (and ``query-target`` says x86_64 for
    both), yet their schemas differ.  The command list (``query-commands``, ~6 kB,
    ~0.5 ms) differs with them, so a digest of it joins the key; the full schema
    (~200 kB, ~20 ms) is what the cache is there to avoid.  CRC-32 and the count,
    not SHA-256: hashlib costs ~3 ms to import, and this only tells apart builds that
    already share a version and package.
    """
    import binascii  # already loaded by the json path; hashlib would cost ~3 ms

    names = sorted(str(c.get("name")) if isinstance(c, dict) else repr(c) for c in commands)
    crc = binascii.crc32("\n".join(names).encode("utf-8", "backslashreplace"))
    major, minor, micro = version
    return f"{major}.{minor}.{micro}-{package}-{len(names)}-{crc:08x}"


def load_schema(
    fetch: Callable[[], list[dict[str, Any]]],
    version_key: str,
    cache_dir: Path | None = None,
) -> Schema:
    """The schema for this QEMU version, from the disk cache when possible.

    A cache that cannot be parsed or indexed is treated as absent and rewritten.
    """
    path = cache_file(cache_dir or default_cache_dir(), version_key)
    cached = _read_cache(path)
    if cached is not None:
        try:
            return Schema.from_entries(cached)
        except (KeyError, TypeError):
            pass
    entries = fetch()
    schema = Schema.from_entries(entries)
    _write_cache(path, entries)
    return schema
