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

    # Block devices have three kinds of name, and each command takes its own: the
    # BlockBackend name (``-drive id=``, empty for ``-blockdev``), the qdev id or QOM
    # path of the device the backend is attached to, and the graph's node names.

    def _block(self) -> list[dict[str, Any]]:
        return self._cached("block", lambda: _tolerant(lambda: self._call("query-block")), True)

    def block_backends(self) -> list[str]:
        """BlockBackend names (``device=`` of eject, block_resize…), ones with a medium first."""
        return _block_names(self._block(), "device", removable_only=False)

    def tray_backends(self) -> list[str]:
        """BlockBackend names of removable devices (CD-ROMs, floppies): what trays take."""
        return _block_names(self._block(), "device", removable_only=True)

    def block_qdevs(self) -> list[str]:
        """qdev ids (or QOM paths, where the device has no id) of devices with a backend."""
        return _block_names(self._block(), "qdev", removable_only=False)

    def tray_qdevs(self) -> list[str]:
        """qdev ids or QOM paths of removable block devices, for ``eject id=`` and friends."""
        return _block_names(self._block(), "qdev", removable_only=True)

    def node_names(self) -> list[str]:
        """Block node names: named ones not attached to a device first, generated ones last.

        A node nothing uses yet is what ``blockdev-del``, ``blockdev-insert-medium`` and
        a new job's target want; a generated ``#block123`` name is rarely what is meant.
        """
        nodes = self._cached("nodes", self._fetch_nodes, volatile=True)
        attached = {str(d["inserted"].get("node-name")) for d in self._block() if _inserted(d)}
        return sorted(nodes, key=lambda n: (n.startswith("#"), n in attached, n))

    def _fetch_nodes(self) -> list[str]:
        found = _tolerant(lambda: self._call("query-named-block-nodes", {"flat": True}))
        return _unique([str(node["node-name"]) for node in found if node.get("node-name")])

    def block_job_ids(self) -> list[str]:
        """Block job ids (``device`` in query-block-jobs), for ``block-job-*``."""
        return self._query("block-jobs", "query-block-jobs", None, _field("device"))

    def export_ids(self) -> list[str]:
        return self._query("exports", "query-block-exports", None, _field("id"))

    def virtio_paths(self) -> list[str]:
        """QOM paths of virtio devices, for ``x-query-virtio-*``."""
        return self._query("virtio", "x-query-virtio", None, _field("path"))

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

    def ringbuf_ids(self) -> list[str]:
        """Chardevs ``ringbuf-read``/``-write`` accept (a ``memory`` chardev is a ringbuf)."""
        types = ("child<chardev-ringbuf>", "child<chardev-memory>")
        return sorted(n for n, t in self.qom_children("/chardevs") if t in types)

    def object_ids(self) -> list[str]:
        return _child_names(self.qom_children("/objects"))

    def iothread_ids(self) -> list[str]:
        return sorted(n for n, t in self.qom_children("/objects") if t == "child<iothread>")

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


def _inserted(device: dict[str, Any]) -> bool:
    return isinstance(device.get("inserted"), dict)


def _block_names(devices: list[dict[str, Any]], key: str, *, removable_only: bool) -> list[str]:
    """One name per block device, those with a medium first (most commands need one)."""
    chosen = [d for d in devices if d.get(key) and (d.get("removable") or not removable_only)]
    chosen.sort(key=lambda d: not _inserted(d))
    return list(dict.fromkeys(str(d[key]) for d in chosen))


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
