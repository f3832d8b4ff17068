"""Issue 11 item 3: Tab's first live offer for a name argument is one QEMU accepts.

One throwaway ``-machine pc`` has one of everything a QMP name can refer to: a
removable IDE CD-ROM (backend ``cd0``, qdev ``cdrom0``), a disk whose device has no
id (so its qdev name is a QOM path), free block nodes, a block job, an NBD export,
chardevs (one a ringbuf), an iothread, virtio devices.  For every command of the
7.2 schema that takes such a name, the test completes ``MEMBER=`` and runs the
command with the first offer; QEMU may refuse it for other reasons (the CD-ROM is
not hot-pluggable, null-co cannot resize), but never because it found nothing by
that name.  Some cases really run (device_del, blockdev-del, object-del…): the
QEMU is the test's own, and the order of the cases puts those last.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from qemu import Qemu, RawMonitor
from recipes import add_null_nodes
from support import wait_until

from qmpsh.completer import QmpCompleter
from qmpsh.live_values import LiveValues
from qmpsh.schema import Schema

MACHINE = ("-machine", "pc", "-display", "none", "-nodefaults")
EXTRA = (
    *("-drive", "if=none,id=cd0,media=cdrom", "-device", "ide-cd,drive=cd0,id=cdrom0"),
    *("-drive", "if=none,id=disk0,driver=null-co", "-device", "virtio-blk-pci,drive=disk0"),
    *("-blockdev", "driver=null-co,node-name=nullnode,size=1048576"),
    *("-blockdev", "driver=null-co,node-name=zexport,size=1048576"),
    *("-chardev", "null,id=chr0", "-chardev", "ringbuf,id=rb0"),
    *("-object", "iothread,id=io0", "-device", "virtio-rng-pci,id=rng0"),
)
# QEMU's ways of saying it found nothing by a name (7.2), whatever the error class.
NOT_FOUND = re.compile(
    r"not found|cannot find|can't find|no such|does not exist|is not a virtio", re.I
)
BAD_CALL = re.compile(r"^Parameter '.*' (is missing|expects)|^Invalid parameter")
ZERO_THROTTLE = {k: 0 for k in ("bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr")}
JOB = "job0"


class Lab:
    """The QEMU, one monitor for both the completer's queries and the commands run."""

    def __init__(self, qemu: Qemu, mon: RawMonitor, directory: Path) -> None:
        self.qemu = qemu
        self.mon = mon
        self.dir = directory
        self.schema = Schema.from_entries(mon.execute("query-qmp-schema"))
        self.medium = str(directory / "medium.raw")
        subprocess.run(["qemu-img", "create", "-q", "-f", "raw", self.medium, "1M"], check=True)

    def completer(self) -> QmpCompleter:
        """A fresh completer each time: no cached names from before the last command."""

        def execute(name: str, args: dict[str, Any] | None) -> Any:
            return self.mon.execute(name, **(args or {}))

        return QmpCompleter(lambda: self.schema, LiveValues(execute))

    def offers(self, command: str, member: str) -> list[str]:
        text = f"{command} {member}="
        found = self.completer().get_completions(Document(text), CompleteEvent())
        return [c.text for c in found]

    def start_job(self) -> None:
        """A mirror job that waits READY for a verb; a fresh one once the last is gone."""
        if any(j["id"] == JOB for j in self.mon.execute("query-jobs")):
            return
        args = {"job-id": JOB, "device": "src", "target": "tgt", "sync": "full"}
        self.mon.execute("blockdev-mirror", **args)
        assert wait_until(lambda: _status(self.mon) == "ready")


def _status(mon: RawMonitor) -> str | None:
    return next((j["status"] for j in mon.execute("query-jobs") if j["id"] == JOB), None)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    directory = tmp_path_factory.mktemp("names")
    with Qemu(EXTRA, machine=MACHINE) as q, RawMonitor(q.socket) as mon:
        add_null_nodes(mon, 1 << 20)
        mon.execute(
            "nbd-server-start", addr={"type": "unix", "data": {"path": str(directory / "nbd")}}
        )
        mon.execute("block-export-add", type="nbd", id="exp0", **{"node-name": "zexport"})
        yield Lab(q, mon, directory)


def _args(lab: Lab, command: str) -> dict[str, Any]:
    """The other arguments each command needs, chosen so they cannot be what fails."""
    return {
        "blockdev-change-medium": {"filename": lab.medium, "format": "raw"},
        "blockdev-insert-medium": {"id": "cdrom0", "node-name": "nullnode"},
        "block_set_io_throttle": ZERO_THROTTLE,
        "block_resize": {"size": 1 << 20},
        "blockdev-snapshot-sync": {"snapshot-file": str(lab.dir / "s.qcow2")},
        "blockdev-snapshot": {"node": "nullnode", "overlay": "tgt"},
        "change-backing-file": {"device": "disk0", "image-node-name": "nullnode"}
        | {"backing-file": "x"},
        "block-commit": {"device": "disk0"},
        "drive-backup": {"target": str(lab.dir / "b.raw"), "sync": "none", "format": "raw"}
        | {"device": "disk0", "job-id": "bk"},
        "blockdev-backup": {"device": "nullnode", "target": "tgt", "sync": "none"}
        | {"job-id": "bb"},
        "drive-mirror": {"target": str(lab.dir / "m.raw"), "sync": "none", "format": "raw"}
        | {"device": "nullnode", "job-id": "dm"},
        "blockdev-mirror": {"device": "nullnode", "target": "tgt", "sync": "none"}
        | {"job-id": "bm"},
        "block-stream": {"device": "disk0", "job-id": "st"},
        "block-dirty-bitmap-add": {"name": "b0"},
        "block-dirty-bitmap-remove": {"name": "b0"},
        "block-dirty-bitmap-clear": {"name": "b0"},
        "block-dirty-bitmap-enable": {"name": "b0"},
        "block-dirty-bitmap-disable": {"name": "b0"},
        "block-dirty-bitmap-merge": {"target": "b0", "bitmaps": ["b0"]},
        "x-debug-block-dirty-bitmap-sha256": {"name": "b0"},
        "block-job-set-speed": {"speed": 0},
        "x-blockdev-amend": {"job-id": "am", "options": {"driver": "qcow2"}},
        "block-set-write-threshold": {"write-threshold": 0},
        "x-blockdev-change": {"parent": "nullnode"},
        "x-blockdev-set-iothread": {"node-name": "nullnode", "iothread": None},
        "blockdev-snapshot-internal-sync": {"name": "snap"},
        "blockdev-snapshot-delete-internal-sync": {"name": "snap"},
        "nbd-server-add": {"name": "e1"},
        "block-export-add": {"type": "nbd", "id": "exp1", "node-name": "nullnode"}
        | {"iothread": "io0", "fixed-iothread": False},
        "ringbuf-write": {"data": "hi"},
        "ringbuf-read": {"size": 2},
        "chardev-change": {"backend": {"type": "null", "data": {}}},
        "x-query-virtio-queue-status": {"queue": 0},
        "x-query-virtio-vhost-queue-status": {"queue": 0},
        "x-query-virtio-queue-element": {"queue": 0},
    }.get(command, {})


# (command, member), in the order they run: the ones that take something away come last.
OFFERED = [
    ("eject", "device"),
    ("eject", "id"),
    ("blockdev-open-tray", "device"),
    ("blockdev-open-tray", "id"),
    ("blockdev-close-tray", "device"),
    ("blockdev-close-tray", "id"),
    ("blockdev-remove-medium", "id"),
    ("blockdev-insert-medium", "id"),
    ("blockdev-insert-medium", "node-name"),
    ("blockdev-change-medium", "device"),
    ("blockdev-change-medium", "id"),
    ("block_set_io_throttle", "device"),
    ("block_set_io_throttle", "id"),
    ("block-latency-histogram-set", "id"),
    ("block_resize", "device"),
    ("block_resize", "node-name"),
    ("blockdev-snapshot", "node"),
    ("blockdev-snapshot", "overlay"),
    ("change-backing-file", "device"),
    ("change-backing-file", "image-node-name"),
    ("block-commit", "device"),
    ("block-commit", "base-node"),
    ("block-commit", "top-node"),
    ("block-stream", "device"),
    ("block-stream", "base-node"),
    ("block-dirty-bitmap-add", "node"),
    ("block-dirty-bitmap-enable", "node"),
    ("block-dirty-bitmap-disable", "node"),
    ("block-dirty-bitmap-clear", "node"),
    ("block-dirty-bitmap-merge", "node"),
    ("x-debug-block-dirty-bitmap-sha256", "node"),
    ("block-dirty-bitmap-remove", "node"),
    ("block-set-write-threshold", "node-name"),
    ("x-blockdev-change", "parent"),
    ("x-blockdev-change", "node"),
    ("x-blockdev-set-iothread", "node-name"),
    ("x-blockdev-set-iothread", "iothread"),
    ("block-export-add", "iothread"),
    ("x-blockdev-amend", "node-name"),
    ("blockdev-snapshot-internal-sync", "device"),
    ("blockdev-snapshot-delete-internal-sync", "device"),
    ("nbd-server-add", "device"),
    ("block-export-add", "node-name"),
    ("drive-backup", "device"),
    ("blockdev-backup", "device"),
    ("blockdev-backup", "target"),
    ("drive-mirror", "device"),
    ("drive-mirror", "replaces"),
    ("blockdev-mirror", "device"),
    ("blockdev-mirror", "target"),
    ("blockdev-mirror", "replaces"),
    ("job-pause", "id"),
    ("job-resume", "id"),
    ("block-job-set-speed", "device"),
    ("block-job-pause", "device"),
    ("block-job-resume", "device"),
    ("block-job-dismiss", "id"),
    ("block-job-finalize", "id"),
    ("job-dismiss", "id"),
    ("job-finalize", "id"),
    ("block-job-complete", "device"),
    ("job-complete", "id"),
    ("block-job-cancel", "device"),
    ("job-cancel", "id"),
    ("ringbuf-write", "device"),
    ("ringbuf-read", "device"),
    ("chardev-send-break", "id"),
    ("chardev-change", "id"),
    ("x-query-virtio-status", "path"),
    ("x-query-virtio-queue-status", "path"),
    ("x-query-virtio-vhost-queue-status", "path"),
    ("x-query-virtio-queue-element", "path"),
    ("block-export-del", "id"),
    ("blockdev-del", "node-name"),
    ("chardev-remove", "id"),
    ("object-del", "id"),
    ("device_del", "id"),
    ("blockdev-snapshot-sync", "device"),
    ("blockdev-snapshot-sync", "node-name"),
]

# Names QEMU has no command to list in 7.2 (NICs, netdevs, consoles, input devices,
# snapshots, bitmaps, trace events), and names of new things: nothing may be offered.
OFFERS_NOTHING = [
    ("set_link", "name"),
    ("netdev_del", "id"),
    ("query-rx-filter", "name"),
    ("announce-self", "id"),
    ("screendump", "device"),
    ("input-send-event", "device"),
    ("nbd-server-remove", "name"),
    ("block-dirty-bitmap-merge", "target"),
    ("drive-backup", "target"),
    ("drive-mirror", "target"),
    ("x-blockdev-change", "child"),
    ("blockdev-add", "node-name"),
    ("block-stream", "job-id"),  # job-id names a new job in every command that takes it
    ("blockdev-create", "job-id"),
    ("drive-mirror", "node-name"),
    ("blockdev-snapshot-sync", "snapshot-node-name"),
    ("block-commit", "filter-node-name"),
    ("chardev-add", "id"),
    ("object-add", "id"),
    ("device_add", "id"),
    ("netdev_add", "id"),
    ("block-export-add", "id"),
    ("block-stream", "filter-node-name"),
    ("blockdev-backup", "filter-node-name"),
    ("blockdev-mirror", "filter-node-name"),
    ("drive-backup", "filter-node-name"),
    ("blockdev-snapshot-delete-internal-sync", "id"),
]

JOB_COMMANDS = ("job-", "block-job-")


@pytest.fixture(autouse=True)
def _no_stray_jobs(lab: Lab) -> Iterator[None]:
    """Jobs a case started (backup, mirror, stream…) are cancelled, so nodes are free."""
    yield
    stray = [j["id"] for j in lab.mon.execute("query-jobs") if j["id"] != JOB]
    for job in stray:
        _run(lab.mon, "job-cancel", {"id": job})
    assert wait_until(lambda: not set(stray) & {j["id"] for j in lab.mon.execute("query-jobs")})


@pytest.mark.parametrize(("command", "member"), OFFERED)
def test_first_offer_is_a_name_qemu_accepts(lab: Lab, command: str, member: str) -> None:
    if command.startswith(JOB_COMMANDS):
        lab.start_job()
    offers = lab.offers(command, member)
    assert offers, f"{command} {member}=<Tab> offers nothing"
    error = _run(lab.mon, command, _args(lab, command) | {member: offers[0]})
    assert error is None or not _not_found(error, offers[0]), (offers, error)
    assert error is None or not BAD_CALL.search(error["desc"]), error  # the test's own fault


def _not_found(error: dict[str, Any], name: str) -> bool:
    """Whether QEMU's error says it found nothing called ``name``.

    A not-found about something else (``Dirty bitmap 'b0' not found``) names that
    other thing in quotes; QEMU's ``Job not found`` names nothing.
    """
    desc = str(error.get("desc", ""))
    if error.get("class") == "DeviceNotFound":
        return True
    return bool(NOT_FOUND.search(desc)) and (name in desc or "'" not in desc)


def _run(mon: RawMonitor, command: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """QEMU's error for one command, or None (RawMonitor.execute cannot pass ``name=``)."""
    mon.sock.sendall(json.dumps({"execute": command, "arguments": args}).encode() + b"\n")
    while True:
        reply = mon._read()
        if "return" in reply:
            return None
        if "error" in reply:
            error: dict[str, Any] = reply["error"]
            return error


@pytest.mark.parametrize(("command", "member"), OFFERS_NOTHING)
def test_no_offer_where_qemu_lists_nothing_that_fits(lab: Lab, command: str, member: str) -> None:
    assert lab.offers(command, member) == []


def test_every_name_member_of_the_schema_is_covered(lab: Lab) -> None:
    """A 7.2 member that names a device, node, chardev, object or job is tested above."""
    covered = set(OFFERED) | set(OFFERS_NOTHING)
    for command in lab.schema.command_names():
        for member in lab.schema.arg_members(command):
            if lab.schema.describe_type(member.type) not in ("str", "str|null"):
                continue
            names_something = member.name in NAMES or member.name.endswith("node-name")
            if names_something and not command.startswith(("qom-", "trace-")):
                assert (command, member.name) in covered, (command, member.name)


NAMES = {"device", "id", "node", "node-name", "chardev", "iothread", "target"}
NAMES |= {"base-node", "top-node", "overlay", "replaces", "parent", "child", "path"}
