"""Values that only the running QEMU knows: node names, ids, QOM paths, device types.

Completion asks for these on many keystrokes, so each answer is cached: state that
changes while the shell runs (nodes, jobs, chardevs) for a couple of seconds, facts
fixed for the life of the QEMU (device types and their properties, HMP help) until
``refresh``.  A fetch that fails — old QEMU, the command is missing, the connection
is busy or gone — yields an empty list: completion must never raise or print.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from qmpsh import hmp

if TYPE_CHECKING:
    from qmpsh.monitor import Monitor

T = TypeVar("T")
Pair = tuple[str, str]
Execute = Callable[[str, dict[str, Any] | None], Any]

VOLATILE_SECONDS = 2.0  # long enough to cover a burst of keystrokes, short enough to notice
FETCH_TIMEOUT = 2.0

# Argument names whose values are block node or device names in the QMP schema.
NODE_KEYS = frozenset(
    {
        "device",
        "node-name",
        "node",
        "drive",
        "base-node",
        "top-node",
        "parent",
        "child",
        "target",
        "overlay",
        "file",
        "backing",
    }
)
_HMP_NAME = re.compile(r"[A-Za-z][\w-]*")  # skips "?" and wrapped "[,opt=…" lines
QOM_PATH_COMMANDS = frozenset({"qom-list", "qom-get", "qom-set"})


class LiveValues:
    """A lazy, cached view of the connected QEMU's current objects."""

    def __init__(self, execute: Execute, volatile_seconds: float = VOLATILE_SECONDS) -> None:
        self._execute = execute
        self._ttl = volatile_seconds
        self._cache: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_client(cls, client: Callable[[], Monitor]) -> LiveValues:
        """Ask whatever monitor ``client()`` returns now, so a reconnect needs no rebuild."""

        def execute(name: str, args: dict[str, Any] | None) -> Any:
            return client().execute(name, args, timeout=FETCH_TIMEOUT)

        return cls(execute)

    def refresh(self) -> None:
        """Forget everything, e.g. after the user added a node or asked explicitly."""
        with self._lock:
            self._cache.clear()

    # -- the cache -----------------------------------------------------------------

    def _cached(self, key: str, fetch: Callable[[], list[T]], volatile: bool) -> list[T]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and (not volatile or now - hit[0] < self._ttl):
            found: list[T] = hit[1]
            return found
        try:
            value = fetch()
        except Exception:  # any failure means "nothing to offer", never an error
            value = []
        with self._lock:
            self._cache[key] = (now, value)
        return value

    def _call(self, name: str, args: dict[str, Any] | None = None) -> Any:
        return self._execute(name, args)

    # -- what completion asks for -----------------------------------------------------

    def node_names(self) -> list[str]:
        """Block node names and device (BlockBackend) names, for ``device=`` and friends."""
        return self._cached("nodes", self._fetch_nodes, volatile=True)

    def _fetch_nodes(self) -> list[str]:
        names: list[str] = []
        for dev in _tolerant(lambda: self._call("query-block")):
            names += [str(dev[k]) for k in ("device", "qdev") if dev.get(k)]
        for node in _tolerant(lambda: self._call("query-named-block-nodes", {"flat": True})):
            if node.get("node-name"):
                names.append(str(node["node-name"]))
        return _unique(names)

    def _query(
        self, key: str, name: str, args: dict[str, Any] | None, pick: Callable[[Any], list[T]]
    ) -> list[T]:
        """A volatile cached query whose reply ``pick`` turns into a list."""
        return self._cached(key, lambda: pick(self._call(name, args)), volatile=True)

    def qom_children(self, parent: str) -> list[Pair]:
        """``(name, type)`` of the properties at a QOM path (children are ``child<…>``)."""
        return self._query(f"qom:{parent}", "qom-list", {"path": parent}, _pairs)

    def chardev_ids(self) -> list[str]:
        return self._query("chardevs", "query-chardev", None, _field("label"))

    def job_ids(self) -> list[str]:
        return self._query("jobs", "query-jobs", None, _field("id"))

    def object_ids(self) -> list[str]:
        return _child_names(self.qom_children("/objects"))

    def device_ids(self) -> list[str]:
        """Ids of user-created devices (``-device …,id=X``), for ``device_del id=``."""
        return _child_names(self.qom_children("/machine/peripheral"))

    def device_types(self) -> list[str]:
        """Concrete device types, for ``device_add driver=``; fixed for a QEMU's lifetime."""
        args = {"implements": "device", "abstract": False}
        fetch = self._fixed("qom-list-types", args, _field("name"))
        return self._cached("device-types", fetch, volatile=False)

    def device_properties(self, typename: str) -> list[Pair]:
        """``(name, type)`` of one device type's properties, for ``device_add`` keys."""
        fetch = self._fixed("device-list-properties", {"typename": typename}, _pairs)
        return self._cached(f"props:{typename}", fetch, volatile=False)

    def command_labels(self) -> dict[str, str]:
        """Command names for a server without a schema, each labelled "command" or "disabled".

        ``query-commands`` on QEMU; where that is missing, ``guest-info`` on qemu-ga,
        whose ``supported_commands`` also lists the RPCs blocked with ``-b`` as
        ``"enabled": false``: they are kept, labelled "disabled".
        """
        return dict(self._cached("commands", self._fetch_command_labels, volatile=False))

    def _fetch_command_labels(self) -> list[tuple[str, str]]:
        try:
            return [(name, "command") for name in _field("name")(self._call("query-commands"))]
        except Exception:
            info = self._call("guest-info")
        listed = info.get("supported_commands") if isinstance(info, dict) else None
        return [
            (entry["name"], "command" if entry.get("enabled") is not False else "disabled")
            for entry in (listed if isinstance(listed, list) else [])
            if isinstance(entry, dict) and isinstance(entry.get("name"), str)
        ]

    def _fixed(
        self, name: str, args: dict[str, Any] | None, pick: Callable[[Any], list[T]]
    ) -> Callable[[], list[T]]:
        return lambda: pick(self._call(name, args))

    def info_subcommands(self) -> list[str]:
        """HMP ``info`` subcommands from ``help info``; the built-in list when that fails."""
        found = self._cached("hmp-info", self._fetch_info, volatile=False)
        return found or sorted(hmp.INFO_QUERIES)

    def hmp_commands(self) -> list[str]:
        """HMP command names from ``help`` (first word of each line; aliases after ``|``)."""
        return self._cached("hmp-help", lambda: hmp_command_names(self._hmp("help")), False)

    def _fetch_info(self) -> list[str]:
        return hmp.info_subcommands(self._hmp("help info"))

    def _hmp(self, line: str) -> str:
        return str(self._call(hmp.HMP_COMMAND, {"command-line": line}))


def _tolerant(fetch: Callable[[], Any]) -> list[dict[str, Any]]:
    """One query's list of objects, or [] if it failed (the other query may still work)."""
    try:
        value = fetch()
    except Exception:
        return []
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _field(name: str) -> Callable[[Any], list[str]]:
    """Pick one field from each object of a list reply (sorted, for stable menus)."""
    return lambda reply: sorted(str(item[name]) for item in reply)


def _child_names(pairs: list[Pair]) -> list[str]:
    return [name for name, kind in pairs if kind.startswith("child<")]


def _pairs(props: Any) -> list[Pair]:
    """``(name, type)`` from a list of ObjectPropertyInfo-like dicts."""
    return [(str(p["name"]), str(p.get("type", ""))) for p in props]


def _unique(names: list[str]) -> list[str]:
    return sorted(dict.fromkeys(names))


def hmp_command_names(help_text: str) -> list[str]:
    """Command names from HMP ``help``: ``info|i`` style aliases give both names."""
    names: list[str] = []
    for line in help_text.splitlines():
        if not line or line[0].isspace():
            continue  # continuation lines of a long description
        first = line.split(maxsplit=1)[0]
        names += [n for n in first.split("|") if _HMP_NAME.fullmatch(n)]
    return _unique(names)
