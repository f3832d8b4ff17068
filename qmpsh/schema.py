"""An index over QEMU's ``query-qmp-schema``, the single source of truth for the shell.

QEMU masks every non-builtin type name as a number and documents nothing, so the
index answers only structural questions: which commands and events exist, what
members a type has *given what the user typed so far* (a union's tag selects more
members), what a dotted path resolves to, and how to name a type to a human.
Completion, highlighting, the signature hint, ``help`` and validation all ask here,
so they never disagree.  The raw reply is cached per QEMU build (see ``cache_key``)
because it is about 200 kB and changes only when QEMU does.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EMPTY: Mapping[str, Any] = {}
HELP_DEPTH = 3  # nested objects shown by ``help``; recursive types would never end


class _Featured:
    """What the schema's ``features`` say about an entry, for help and completion."""

    features: tuple[str, ...]

    @property
    def deprecated(self) -> bool:
        return "deprecated" in self.features

    @property
    def unstable(self) -> bool:
        return "unstable" in self.features


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

    def command(self, name: str) -> CommandInfo | None:
        return self._commands.get(name)

    def event(self, name: str) -> EventInfo | None:
        return self._events.get(name)

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

    def signature(self, command: str) -> str:
        """One line for the toolbar hint: ``eject  device?:str  id?:str  force?:bool``."""
        parts = [command]
        for m in self.arg_members(command):
            mark = "?" if m.optional else ""
            parts.append(f"{m.name}{mark}:{self.describe_type(m.type)}")
        return "  ".join(parts)

    def help_lines(self, name: str, given: Mapping[str, Any] = EMPTY) -> list[str]:
        """Plain-text help for a command or an event; ``[]`` if the name is unknown.

        ``given`` (e.g. ``{"driver": "qcow2"}``) expands a union's chosen variant,
        since listing every variant of blockdev-add would bury the answer.
        """
        if name in self._commands:
            return _command_help(self, self._commands[name], given)
        if name in self._events:
            return _event_help(self, self._events[name], given)
        return []


# --- help text ------------------------------------------------------------------


def _flags(optional: bool, features: Sequence[str]) -> str:
    words = ["optional" if optional else "required"]
    words += [f for f in features if f in ("deprecated", "unstable")]
    return ", ".join(words)


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
        lines.append(f"{pad}{m.name:<{width}}  {kind}  ({_flags(m.optional, m.features)})")
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


def _command_help(schema: Schema, info: CommandInfo, given: Mapping[str, Any]) -> list[str]:
    head = [schema.signature(info.name)]
    notes = [f for f in info.features if f in ("deprecated", "unstable")]
    if info.allow_oob:
        notes.append("allows out-of-band execution")
    if notes:
        head.append("  (" + ", ".join(notes) + ")")
    args = _type_lines(schema, info.arg_type, given, 2, HELP_DEPTH)
    head += ["arguments:", *args] if args else ["arguments: none"]
    if schema.members(info.ret_type) or schema.meta(info.ret_type) != "object":
        head.append(f"returns: {schema.describe_type(info.ret_type)}")
        head += _type_lines(schema, schema.innermost(info.ret_type), EMPTY, 2, 2)
    else:
        head.append("returns: nothing")
    return head


def _event_help(schema: Schema, info: EventInfo, given: Mapping[str, Any]) -> list[str]:
    head = [f"event {info.name}" + (" (deprecated)" if info.deprecated else "")]
    data = _type_lines(schema, info.arg_type, given, 2, HELP_DEPTH)
    return head + (["data:", *data] if data else ["data: none"])


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
