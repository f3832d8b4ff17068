"""Tab completion from the live schema, in pgcli's two stages.

Stage one is ``syntax.analyze``: a pure reading of the text before the cursor that
says *what* is being typed (a command name, a key of some command, the value of a
key, an HMP ``info`` subcommand).  Stage two, here, maps that kind to a matcher that
produces ``Completion`` objects.  Everything the matchers need from the schema that
does not depend on the line (sorted command names, their labels, transaction
actions) is computed once per schema, so a keystroke only filters short lists.

Candidates are ranked prefix matches first, then substring matches (``spice`` finds
``query-spice``); ``-`` and ``_`` are treated alike because QMP mixes both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prompt_toolkit.completion import CompleteEvent, Completer, Completion, ThreadedCompleter
from prompt_toolkit.document import Document

from qmpsh import hmp
from qmpsh.live_values import NODE_KEYS, QOM_PATH_COMMANDS, LiveValues
from qmpsh.schema import EMPTY, Member, Schema, TypeRef
from qmpsh.shell_commands import SHELL_COMMANDS as REGISTRY
from qmpsh.syntax import Context, analyze
from qmpsh.used_values import UsedValues

if TYPE_CHECKING:
    from qmpsh.session import Session

BOOL_VALUES = ("true", "false")
DEVICE_ADD = "device_add"


# --- matching ---------------------------------------------------------------------


def _norm(text: str) -> str:
    return text.lower().replace("_", "-")


def rank(word: str, names: Iterable[str]) -> list[str]:
    """Names matching ``word``: prefix matches first (in the given order), then substrings."""
    key = _norm(word)
    if not key:
        return list(names)
    prefix: list[str] = []
    inside: list[str] = []
    for name in names:
        norm = _norm(name)
        if norm.startswith(key):
            prefix.append(name)
        elif key in norm:
            inside.append(name)
    return prefix + inside


# --- what is fixed for one schema -------------------------------------------------------


@dataclass(frozen=True)
class SchemaIndex:
    """Line-independent lists, built once per schema so keystrokes stay cheap."""

    schema: Schema
    commands: tuple[str, ...]  # QMP and shell command names, sorted
    labels: Mapping[str, str]  # display_meta per command name
    actions: Mapping[str, str]  # transaction action name → its data type

    @classmethod
    def build(cls, schema: Schema) -> SchemaIndex:
        labels = {spec.name: "shell" for spec in REGISTRY.specs()}
        for name in schema.command_names():
            labels[name] = _command_label(schema, name)
        return cls(schema, tuple(sorted(labels)), labels, _transaction_actions(schema))

    def arg_type(self, command: str, in_transaction: bool) -> str | None:
        """The argument type of a command, or of a transaction action's ``data``."""
        if in_transaction:
            return self.actions.get(command)
        info = self.schema.command(command)
        return None if info is None else info.arg_type

    def type_in_command(
        self, command: str, in_transaction: bool, path: Sequence[str], given: Mapping[str, Any]
    ) -> TypeRef | None:
        """``Schema.type_at`` that also understands transaction actions."""
        arg_type = self.arg_type(command, in_transaction)
        return None if arg_type is None else self.schema.type_in(arg_type, path, given)


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


def _command_label(schema: Schema, name: str) -> str:
    info = schema.command(name)
    if info is None:
        return "command"
    flags = [f for f in info.features if f in ("deprecated", "unstable")]
    return ", ".join(flags) if flags else "command"


def _transaction_actions(schema: Schema) -> dict[str, str]:
    """Action name → data type, read from the ``actions`` member of ``transaction``."""
    ref = schema.type_at("transaction", ["actions"])
    if ref is None or ref.element is None:
        return {}
    action_type = ref.element
    tag = schema.tag(action_type)
    tag_ref = schema.type_in(action_type, [tag]) if tag else None
    actions: dict[str, str] = {}
    for name in tag_ref.values if tag_ref else ():
        data = schema.type_in(action_type, ["data"], {tag: name} if tag else EMPTY)
        if data is not None:
            actions[name] = data.name
    return actions


# --- the completer --------------------------------------------------------------------


class QmpCompleter(Completer):
    """Completes one line of qmpsh input against the schema and the live QEMU."""

    def __init__(
        self,
        schema: Callable[[], Schema | None],
        live: LiveValues | None = None,
        hmp_mode: Callable[[], bool] = lambda: False,
        shell_words: Callable[[], frozenset[str]] = lambda: REGISTRY.names(),
        used: UsedValues | None = None,
    ) -> None:
        self._used = used
        self._live = live
        self._hmp_mode = hmp_mode
        self._shell_words = shell_words
        self.index = IndexFollower(schema)

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        ctx = analyze(
            document.text_before_cursor,
            hmp_mode=self._hmp_mode(),
            shell_commands=self._shell_words(),
        )
        if ctx.kind == "shell-argument" and len(document.text_before_cursor.split()) > 2:
            return  # only a shell command's first argument has known words
        yield from self.complete(ctx)

    def complete(self, ctx: Context) -> Iterator[Completion]:
        """Stage two: the matcher for this kind of context."""
        matcher = _MATCHERS.get(ctx.kind)
        if matcher is not None:
            yield from matcher(self, ctx)

    # -- matchers ----------------------------------------------------------------------

    def _commands(self, ctx: Context) -> Iterator[Completion]:
        index = self.index()
        if ctx.in_transaction:
            names: Sequence[str] = sorted(index.actions) if index else ()
            yield from _offer(ctx.word, names, lambda _: "action")
            return
        if index is None:
            names = sorted(self._shell_words())
            yield from _offer(ctx.word, names, lambda _: "shell")
            return
        yield from _offer(ctx.word, index.commands, lambda n: index.labels.get(n, ""))

    def _keys(self, ctx: Context) -> Iterator[Completion]:
        """Free keys at the dotted level being typed; the whole dotted key is replaced."""
        index = self.index()
        if index is None or ctx.command is None:
            return
        parents = list(ctx.key_path)
        given = dig(ctx.given, parents)
        candidates = self._key_candidates(index, ctx, parents, given)
        head = "".join(p + "." for p in parents)
        start = -len(head) - len(ctx.word)
        for name, meta in _rank_pairs(ctx.word, candidates):
            yield Completion(f"{head}{name}=", start, display=name, display_meta=meta)

    def _key_candidates(
        self, index: SchemaIndex, ctx: Context, parents: list[str], given: Mapping[str, Any]
    ) -> list[tuple[str, str]]:
        """``(name, meta)`` of the keys still free at this level, best first."""
        assert ctx.command is not None
        members = _members_at(index, ctx, parents)
        free = [m for m in members if m.name not in given]
        pairs = [(m.name, _member_label(index.schema, m)) for m in _best_first(free)]
        if ctx.command == DEVICE_ADD and not ctx.in_transaction and not parents:
            pairs += self._device_properties(ctx.given, {m.name for m in members})
        return pairs

    def _device_properties(
        self, given: Mapping[str, Any], taken: set[str]
    ) -> list[tuple[str, str]]:
        driver = given.get("driver")
        if self._live is None or not isinstance(driver, str):
            return []
        props = self._live.device_properties(driver)
        return [(n, t) for n, t in props if n not in given and n not in taken]

    def _values(self, ctx: Context) -> Iterator[Completion]:
        index = self.index()
        if index is None or ctx.command is None:
            return
        path = list(ctx.key_path)
        ref = _type_at(index, ctx, path)
        names = _typed_values(index.schema, ref)
        live = self._live_values(ctx, path, ref) if self._live is not None else []
        if _is_qom_path(ctx, path):
            yield from _offer_qom(ctx.word, live)
            return
        candidates = [*names, *(n for n in live if n not in names)]
        if self._used is not None and path:
            candidates = self._used.prefer(path[-1], candidates)  # what you used before, first
        yield from _offer(ctx.word, candidates, _kind(ref))

    def _live_values(self, ctx: Context, path: list[str], ref: TypeRef | None) -> list[str]:
        assert self._live is not None and ctx.command is not None
        return live_values_for(self._live, ctx.command, path, ctx.given, ctx.word, ref)

    def _info(self, ctx: Context) -> Iterator[Completion]:
        names = self._live.info_subcommands() if self._live else sorted(hmp.INFO_QUERIES)
        yield from _offer(ctx.word, names, lambda _: "info")

    def _shell_arguments(self, ctx: Context) -> Iterator[Completion]:
        """The first argument of a shell command: its registered words, or names it takes."""
        spec = REGISTRY.get(ctx.command or "")
        if spec is None:
            return
        index = self.index()
        names: list[str] = list(spec.arguments)
        if index is not None and spec.name == "help":
            names += [*index.schema.command_names(), *index.schema.event_names()]
        elif index is not None and spec.name == "wait":
            names += index.schema.event_names()
        yield from _offer(ctx.word, names, lambda _: spec.name)

    def _hmp_commands(self, ctx: Context) -> Iterator[Completion]:
        names = self._live.hmp_commands() if self._live else []
        yield from _offer(ctx.word, names, lambda _: "hmp")


_MATCHERS: dict[str, Callable[[QmpCompleter, Context], Iterator[Completion]]] = {
    "command": QmpCompleter._commands,
    "key": QmpCompleter._keys,
    "value": QmpCompleter._values,
    "hmp-info": QmpCompleter._info,
    "hmp-command": QmpCompleter._hmp_commands,
    "shell-argument": QmpCompleter._shell_arguments,
}


# --- schema helpers ---------------------------------------------------------------------


def dig(given: Mapping[str, Any], path: Sequence[str]) -> Mapping[str, Any]:
    """The part of ``given`` below a dotted path ({} where nothing was typed yet)."""
    for key in path:
        below = given.get(key)
        given = below if isinstance(below, Mapping) else EMPTY
    return given


def _type_at(index: SchemaIndex, ctx: Context, path: Sequence[str]) -> TypeRef | None:
    return index.type_in_command(ctx.command or "", ctx.in_transaction, path, ctx.given)


def _members_at(index: SchemaIndex, ctx: Context, parents: Sequence[str]) -> list[Member]:
    """Members of the object at ``parents``, following union tags already typed."""
    ref = _type_at(index, ctx, parents)
    obj = None if ref is None else index.schema.object_branch(ref.name)
    if obj is None:
        return []
    return index.schema.members(obj, dig(ctx.given, parents))


def _best_first(members: list[Member]) -> list[Member]:
    """Required before optional, deprecated last; otherwise the schema's own order."""
    return sorted(members, key=lambda m: (m.optional, m.deprecated))


def _member_label(schema: Schema, member: Member) -> str:
    words = [schema.describe_type(member.type)]
    if not member.optional:
        words.append("required")
    words += [f for f in member.features if f in ("deprecated", "unstable")]
    return ", ".join(words)


def _typed_values(schema: Schema, ref: TypeRef | None) -> list[str]:
    """Enum values and booleans the type allows, looking into an alternate's branches."""
    if ref is None:
        return []
    if ref.meta == "enum":
        return list(ref.values)
    if ref.name == "bool":
        return list(BOOL_VALUES)
    found: list[str] = []
    for choice in ref.choices:
        found += _typed_values(schema, schema.ref(choice))
    return found


def _kind(ref: TypeRef | None) -> Callable[[str], str]:
    label = "" if ref is None else ref.meta if ref.meta != "builtin" else ref.name
    return lambda _: label


def _accepts_str(ref: TypeRef | None) -> bool:
    if ref is None:
        return False
    return ref.name == "str" or "str" in ref.choices


# --- live values --------------------------------------------------------------------------


def live_values_for(
    live: LiveValues,
    command: str,
    path: Sequence[str],
    given: Mapping[str, Any],
    word: str,
    ref: TypeRef | None,
) -> list[str]:
    """Names from the running QEMU that fit the value of ``path`` in ``command``."""
    key = path[-1] if path else ""
    if len(path) == 1:
        special = _command_values(live, command, key, given, word)
        if special is not None:
            return special
    if key in NODE_KEYS and _accepts_str(ref):
        jobs = live.job_ids() if command.startswith("block-job-") else []
        return [*jobs, *live.node_names()]
    return _values_by_key(live, key)


def _command_values(
    live: LiveValues, command: str, key: str, given: Mapping[str, Any], word: str
) -> list[str] | None:
    """Values that depend on the command, not only on the key's name."""
    if command in QOM_PATH_COMMANDS and key == "path":
        return qom_paths(live, word)
    if command in QOM_PATH_COMMANDS and key == "property":
        path = given.get("path")
        return [n for n, _ in live.qom_children(path)] if isinstance(path, str) else []
    if command == DEVICE_ADD and key == "driver":
        return live.device_types()
    if key == "id":
        return _ids_for(live, command)
    return None


def _ids_for(live: LiveValues, command: str) -> list[str]:
    if command == "device_del":
        return live.device_ids()
    if command == "object-del":
        return live.object_ids()
    if command.startswith("chardev-"):
        return live.chardev_ids()
    if command.startswith("job-"):
        return live.job_ids()
    return []


def _values_by_key(live: LiveValues, key: str) -> list[str]:
    if key in ("chardev", "chardev-id"):
        return live.chardev_ids()
    if key in ("iothread", "object"):
        return live.object_ids()
    return []  # e.g. job-id: a new job wants a fresh id, not an existing one


def qom_paths(live: LiveValues, word: str) -> list[str]:
    """Child paths one level below the last ``/`` of ``word`` (``/`` when empty)."""
    if not word.startswith("/"):
        return ["/"]
    parent = word.rsplit("/", 1)[0] or "/"
    base = parent.rstrip("/")
    children = live.qom_children(parent)
    return [f"{base}/{n}" for n, t in children if t.startswith(("child<", "link<"))]


def _is_qom_path(ctx: Context, path: Sequence[str]) -> bool:
    return ctx.command in QOM_PATH_COMMANDS and list(path) == ["path"]


# --- producing completions ------------------------------------------------------------------


def _offer(word: str, names: Sequence[str], meta: Callable[[str], str]) -> Iterator[Completion]:
    for name in rank(word, names):
        yield Completion(name, -len(word), display_meta=meta(name))


def _offer_qom(word: str, paths: Sequence[str]) -> Iterator[Completion]:
    """QOM paths match on their last segment, so ``/machine/per`` finds ``peripheral``."""
    leaf = word.rpartition("/")[2]
    by_leaf = {p.rsplit("/", 1)[-1]: p for p in paths}
    for name in rank(leaf, list(by_leaf)):
        yield Completion(by_leaf[name], -len(word), display=name, display_meta="qom")


def _rank_pairs(word: str, pairs: Sequence[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    meta = dict(pairs)
    for name in rank(word, [n for n, _ in pairs]):
        yield name, meta[name]


# --- wiring for the UI ----------------------------------------------------------------------


def completer_for(
    session: Session, history: Callable[[], Sequence[str]] | None = None
) -> QmpCompleter:
    """A completer reading the session's (lazily loaded) schema and live QEMU state;
    with ``history`` (the typed lines), values used before rank first."""
    live = LiveValues.for_client(lambda: session.client)
    session.add_client_listener(lambda client: live.refresh())  # maybe another QEMU now
    return QmpCompleter(
        schema=lambda: session.schema,
        live=live,
        hmp_mode=lambda: bool(session.settings.hmp_mode),
        shell_words=lambda: frozenset(session.shell_words),
        used=UsedValues(history) if history is not None else None,
    )


def make_completer(
    session: Session,
    inner: QmpCompleter | None = None,
    history: Callable[[], Sequence[str]] | None = None,
) -> Completer:
    """The UI's completer: runs off the UI thread, so a slow live fetch never stalls typing.

    Pass ``inner`` (from ``completer_for``) to keep a handle for ``refresh``.
    """
    chosen = inner if inner is not None else completer_for(session, history)
    return ThreadedCompleter(chosen)


# --- the signature hint ---------------------------------------------------------------------


def signature_hint(schema: Schema | None, text_before_cursor: str) -> str:
    """One toolbar line for the command being typed; the argument under the cursor in [ ]."""
    ctx = analyze(text_before_cursor)
    if ctx.command is None:
        return ""
    if schema is None or (schema.command(ctx.command) is None and not ctx.in_transaction):
        spec = REGISTRY.get(ctx.command)
        return f"{spec.usage}  — {spec.summary}" if spec else ""
    index = SchemaIndex.build(schema) if ctx.in_transaction else None
    arg_type = _hint_arg_type(schema, index, ctx)
    if arg_type is None:
        return ""
    return _signature_line(schema, ctx, arg_type)


def _hint_arg_type(schema: Schema, index: SchemaIndex | None, ctx: Context) -> str | None:
    if index is not None:
        return index.actions.get(ctx.command or "")
    info = schema.command(ctx.command or "")
    return None if info is None else info.arg_type


def _signature_line(schema: Schema, ctx: Context, arg_type: str) -> str:
    members = schema.members(arg_type, ctx.given)
    current = _current_member(ctx, [m.name for m in members])
    parts = [ctx.command or ""]
    for m in members:
        part = f"{m.name}{'?' if m.optional else ''}:{schema.describe_type(m.type)}"
        parts.append(f"[{part}]" if m.name == current else part)
    info = schema.command(ctx.command or "")
    if info is not None and info.deprecated:
        parts.append("(deprecated)")
    return "  ".join(parts)


def _current_member(ctx: Context, names: list[str]) -> str | None:
    """The top-level argument under the cursor; a half-typed key marks its first match."""
    if ctx.kind == "value" and ctx.key_path:
        return ctx.key_path[0]
    if ctx.kind != "key":
        return None
    if ctx.key_path:
        return ctx.key_path[0]
    if not ctx.word:
        return None
    return next((n for n in names if n.startswith(ctx.word)), None)
