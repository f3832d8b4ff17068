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
from typing import TYPE_CHECKING, Any

from prompt_toolkit.completion import (
    CompleteEvent,
    Completer,
    Completion,
    PathCompleter,
    ThreadedCompleter,
)
from prompt_toolkit.document import Document

from qmpsh import hmp
from qmpsh.fds import FD_COMMANDS, FILE_KEY
from qmpsh.live_values import QOM_PATH_COMMANDS, LiveValues
from qmpsh.name_sources import names_for
from qmpsh.schema import IndexFollower, Member, Schema, SchemaIndex, TypeRef, dig, takes_any_key
from qmpsh.shell_commands import SHELL_COMMANDS as REGISTRY
from qmpsh.syntax import Context, Syntax, syntax_for
from qmpsh.used_values import UsedValues

if TYPE_CHECKING:
    from qmpsh.session import Session

DEVICE_ADD = "device_add"  # its driver= values and extra keys come from the live QEMU


def default_syntax() -> Syntax:
    """The plain language with every shell word (a completer without a session)."""
    return syntax_for(False, REGISTRY.names())


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


# --- the completer --------------------------------------------------------------------


class QmpCompleter(Completer):
    """Completes one line of qmpsh input against the schema and the live QEMU."""

    def __init__(
        self,
        schema: Callable[[], Schema | None],
        live: LiveValues | None = None,
        syntax: Callable[[], Syntax] = default_syntax,
        used: UsedValues | None = None,
    ) -> None:
        self._used = used
        self._live = live
        self._syntax = syntax
        self.index = IndexFollower(schema)

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        text = document.text_before_cursor
        ctx = self._syntax().analyze(text)
        if ctx.kind == "shell-argument":
            yield from self._shell_arguments(ctx, tuple(text[: ctx.word_start].split()[1:]))
            return
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
            names: Sequence[str] = sorted(index.schema.actions) if index else ()
            yield from _offer(ctx.word, names, lambda _: "action")
            return
        if ctx.oob:  # after `oob `: only what the schema lets run out of band
            oob_names = index.schema.oob_command_names() if index else []
            yield from _offer(ctx.word, oob_names, lambda _: "out-of-band")
            return
        labels = {word: _shell_label(word) for word in self._syntax().shell_words}
        labels["oob"] = "prefix: run a command out of band"
        if index is not None:
            labels.update(index.labels)
        elif self._live is not None:  # no schema (qemu-ga, an old QEMU): ask the server
            labels.update(self._live.command_labels())
        names = sorted(labels, key=lambda name: (labels[name] == "disabled", name))
        yield from _offer(ctx.word, names, labels.__getitem__)

    def _keys(self, ctx: Context) -> Iterator[Completion]:
        """Free keys at the dotted level being typed; the whole dotted key is replaced."""
        index = self.index()
        if index is None or ctx.command is None:
            return
        parents = list(ctx.key_path)
        candidates = self._key_candidates(index, ctx, parents, dig(ctx.given, parents))
        head = "".join(p + "." for p in parents)
        start = -len(head) - len(ctx.word)
        for name, meta in _rank_pairs(ctx.word, candidates):
            yield Completion(f"{head}{name}=", start, display=name, display_meta=meta)

    def _key_candidates(
        self, index: SchemaIndex, ctx: Context, parents: list[str], given: Mapping[str, Any]
    ) -> list[tuple[str, str]]:
        """``(name, meta)`` of the keys still free at this level, best first."""
        assert ctx.command is not None
        members = index.members_at(ctx.command, ctx.in_transaction, parents, ctx.given)
        free = [m for m in members if m.name not in given]
        pairs = [(m.name, _member_label(index.schema, m)) for m in _best_first(free)]
        if takes_any_key(ctx.command) and not ctx.in_transaction and not parents:
            pairs += self._device_properties(ctx.given, {m.name for m in members})
        if ctx.command in FD_COMMANDS and not parents and FILE_KEY not in given:
            pairs.append((FILE_KEY, "path (qmpsh passes its fd)"))
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
        if ctx.command in FD_COMMANDS and ctx.key_path == (FILE_KEY,):
            yield from _LOCAL_PATHS.get_completions(Document(ctx.word), CompleteEvent())
            return
        index = self.index()
        if index is None or ctx.command is None:
            return
        path = list(ctx.key_path)
        ref = index.type_in_command(ctx.command, ctx.in_transaction, path, ctx.given)
        names = index.schema.value_words(ref)
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

    def _shell_arguments(self, ctx: Context, before: tuple[str, ...]) -> Iterator[Completion]:
        """A shell command's argument: its registered words, or the names it takes.

        ``before`` are the arguments already typed: ``events filter`` and ``wait`` take
        event names (``!NAME`` too, in a filter), ``help`` one command or event name.
        """
        spec = REGISTRY.get(ctx.command or "")
        if spec is None:
            return
        index = self.index()
        events = index.schema.event_names() if index is not None else []
        if spec.name == "events" and before[:1] == ("filter",):
            yield from _offer_events(ctx.word, events)
        elif before:
            return  # no other shell command has known words past its first argument
        elif spec.name == "wait":
            yield from _offer_events(ctx.word, events)
        elif spec.name == "help":
            labels = {word: _shell_label(word) for word in self._syntax().shell_words}
            if index is not None:
                labels.update(index.labels)
                labels.update(dict.fromkeys(events, "event"))
            yield from _offer(ctx.word, sorted(labels), labels.__getitem__)
        else:
            yield from _offer(ctx.word, spec.arguments, lambda _: spec.name)

    def _hmp_commands(self, ctx: Context) -> Iterator[Completion]:
        names = self._live.hmp_commands() if self._live else []
        yield from _offer(ctx.word, names, lambda _: "hmp")


# ``file=`` of getfd/add-fd: files on this machine, as typed (no ``~``: it is not expanded).
_LOCAL_PATHS = PathCompleter()

_MATCHERS: dict[str, Callable[[QmpCompleter, Context], Iterator[Completion]]] = {
    "command": QmpCompleter._commands,
    "key": QmpCompleter._keys,
    "value": QmpCompleter._values,
    "hmp-info": QmpCompleter._info,
    "hmp-command": QmpCompleter._hmp_commands,
    "shell-argument": lambda self, ctx: self._shell_arguments(ctx, ()),
}


# --- schema helpers ---------------------------------------------------------------------


def _best_first(members: list[Member]) -> list[Member]:
    """Required before optional, deprecated last; otherwise the schema's own order."""
    return sorted(members, key=lambda m: (m.optional, m.deprecated))


def _member_label(schema: Schema, member: Member) -> str:
    words = [schema.describe_type(member.type)]
    if not member.optional:
        words.append("required")
    return ", ".join([*words, *member.labels])


def _shell_label(word: str) -> str:
    """A shell command's menu word: its one-line summary."""
    spec = REGISTRY.get(word)
    return f"shell: {spec.summary}" if spec is not None else "shell"


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
    """Names from the running QEMU that fit the value of ``path`` in ``command``.

    Which names fit which member is ``name_sources``' table; here only what depends
    on the line itself (QOM paths, a device type's properties).
    """
    key = path[-1] if path else ""
    if len(path) == 1:
        special = _command_values(live, command, key, given, word)
        if special is not None:
            return special
    if ref is not None and not _accepts_str(ref):
        return []  # an int or an enum member: no name can be its value
    return names_for(live, command, key, top_level=len(path) == 1)


def _command_values(
    live: LiveValues, command: str, key: str, given: Mapping[str, Any], word: str
) -> list[str] | None:
    """Values that depend on what else is on the line, not only on the member."""
    if command in QOM_PATH_COMMANDS and key == "path":
        return qom_paths(live, word)
    if command in QOM_PATH_COMMANDS and key == "property":
        path = given.get("path")
        return [n for n, _ in live.qom_children(path)] if isinstance(path, str) else []
    if command == DEVICE_ADD and key == "driver":
        return live.device_types()
    return None


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


def _offer_events(word: str, names: Sequence[str]) -> Iterator[Completion]:
    """Event names, upper-case as QEMU sends them; a leading ``!`` (exclude) is kept."""
    bang = "!" if word.startswith("!") else ""
    for name in rank(word[len(bang) :], names):
        yield Completion(bang + name, -len(word), display=bang + name, display_meta="event")


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
        syntax=lambda: session.syntax,
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


def signature_hint(
    schema: Schema | None, text_before_cursor: str, syntax: Syntax | None = None
) -> str:
    """One toolbar line for the command being typed; the argument under the cursor in [ ].

    ``syntax`` is the session's (its mode decides what the line is); the plain
    language when not given.
    """
    ctx = (syntax or default_syntax()).analyze(text_before_cursor)
    if ctx.command is None:
        return ""
    arg_type = schema.arg_type(ctx.command, ctx.in_transaction) if schema else None
    if schema is None or arg_type is None:
        spec = None if ctx.in_transaction else REGISTRY.get(ctx.command)
        return f"{spec.usage}  — {spec.summary}" if spec else ""
    current = _current_member(ctx, [m.name for m in schema.members(arg_type, ctx.given)])
    return schema.signature(ctx.command, ctx.given, current, ctx.in_transaction)


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
