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
from qmpsh.live_values import NODE_KEYS, QOM_PATH_COMMANDS, LiveValues
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
        ctx = self._syntax().analyze(document.text_before_cursor)
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
            names: Sequence[str] = sorted(index.schema.actions) if index else ()
            yield from _offer(ctx.word, names, lambda _: "action")
            return
        if ctx.oob:  # after `oob `: only what the schema lets run out of band
            oob_names = index.schema.oob_command_names() if index else []
            yield from _offer(ctx.word, oob_names, lambda _: "out-of-band")
            return
        labels = dict.fromkeys(self._syntax().shell_words, "shell")
        labels["oob"] = "prefix"
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


# ``file=`` of getfd/add-fd: files on this machine, as typed (no ``~``: it is not expanded).
_LOCAL_PATHS = PathCompleter()

_MATCHERS: dict[str, Callable[[QmpCompleter, Context], Iterator[Completion]]] = {
    "command": QmpCompleter._commands,
    "key": QmpCompleter._keys,
    "value": QmpCompleter._values,
    "hmp-info": QmpCompleter._info,
    "hmp-command": QmpCompleter._hmp_commands,
    "shell-argument": QmpCompleter._shell_arguments,
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
