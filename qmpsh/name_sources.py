"""Which live names fit which argument: the one table the schema cannot give.

QMP names a block device three ways (the BlockBackend name, the qdev id or QOM path
of the device, a graph node name), and every argument takes its own subset:
``eject device=`` takes only a backend name, ``eject id=`` the qdev id or QOM path,
``block-stream device=`` a backend *or* a node name.  The introspected schema types
all of them as ``str`` and carries no documentation, so the choice is written down
here once per command and member, from QEMU's QAPI documentation (7.2) and checked
against a real QEMU by ``tests/test_name_sources.py``.

Members not listed fall back on their name alone (``node``, ``chardev``,
``iothread``…), for commands newer than this table.  A member that names something
new (``blockdev-add node-name=``, ``job-id=``, ``object-add id=``) is not listed,
so it is offered nothing rather than a name that is already taken.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from qmpsh.live_values import LiveValues

Source = Callable[[LiveValues], list[str]]


def _backend_or_node(live: LiveValues) -> list[str]:
    return [*live.block_backends(), *live.node_names()]


SOURCES: Mapping[str, Source] = {
    "backend": LiveValues.block_backends,
    "tray": LiveValues.tray_backends,
    "tray-qdev": LiveValues.tray_qdevs,
    "block-qdev": LiveValues.block_qdevs,
    "node": LiveValues.node_names,
    "backend|node": _backend_or_node,
    "block-job": LiveValues.block_job_ids,
    "job": LiveValues.job_ids,
    "chardev": LiveValues.chardev_ids,
    "ringbuf": LiveValues.ringbuf_ids,
    "object": LiveValues.object_ids,
    "iothread": LiveValues.iothread_ids,
    "device": LiveValues.device_ids,
    "export": LiveValues.export_ids,
    "virtio": LiveValues.virtio_paths,
}

_TRAY = "eject blockdev-open-tray blockdev-close-tray blockdev-change-medium"
_MEDIUM = f"{_TRAY} blockdev-remove-medium blockdev-insert-medium"
_BITMAP = "block-dirty-bitmap-add block-dirty-bitmap-remove block-dirty-bitmap-clear"
_BITMAP += " block-dirty-bitmap-enable block-dirty-bitmap-disable block-dirty-bitmap-merge"
_BITMAP += " x-debug-block-dirty-bitmap-sha256"
_JOB = "job-pause job-resume job-cancel job-complete job-dismiss job-finalize"
_BLOCK_JOB = "block-job-set-speed block-job-cancel block-job-pause block-job-resume"
_BLOCK_JOB += " block-job-complete"
_VIRTIO = "x-query-virtio-status x-query-virtio-queue-status"
_VIRTIO += " x-query-virtio-vhost-queue-status x-query-virtio-queue-element"

# source -> (members, commands): every member of every command listed takes that source.
_BY_SOURCE: dict[str, list[tuple[str, str]]] = {
    "tray": [("device", _TRAY)],
    "tray-qdev": [("id", _MEDIUM)],
    "backend": [("device", "block_set_io_throttle block_resize blockdev-snapshot-sync")],
    "block-qdev": [("id", "block_set_io_throttle block-latency-histogram-set")],
    "backend|node": [
        (
            "device",
            "change-backing-file block-commit drive-backup blockdev-backup drive-mirror"
            " blockdev-mirror block-stream blockdev-snapshot-internal-sync"
            " blockdev-snapshot-delete-internal-sync nbd-server-add",
        ),
        ("node", f"blockdev-snapshot {_BITMAP}"),
        ("target", "blockdev-backup blockdev-mirror"),
        ("drive", "device_add"),
    ],
    "node": [
        (
            "node-name",
            "blockdev-insert-medium block_resize blockdev-snapshot-sync blockdev-del"
            " x-blockdev-amend block-set-write-threshold x-blockdev-set-iothread"
            " block-export-add",
        ),
        ("overlay", "blockdev-snapshot"),
        ("image-node-name", "change-backing-file"),
        ("base-node top-node", "block-commit"),
        ("base-node", "block-stream"),
        ("replaces", "drive-mirror blockdev-mirror"),
        ("parent node", "x-blockdev-change"),
    ],
    "block-job": [("device", _BLOCK_JOB), ("id", "block-job-dismiss block-job-finalize")],
    "job": [("id", _JOB)],
    "ringbuf": [("device", "ringbuf-write ringbuf-read")],
    "chardev": [("id", "chardev-change chardev-remove chardev-send-break")],
    "object": [("id", "object-del")],
    "device": [("id", "device_del")],
    "export": [("id", "block-export-del")],
    "virtio": [("path", _VIRTIO)],
}

# A member's name alone, where the table has no entry for the command.
BY_MEMBER: Mapping[str, str] = {
    "node": "node",
    "base-node": "node",
    "top-node": "node",
    "overlay": "node",
    "replaces": "node",
    "file": "backend|node",  # blockdev-add's references to an existing node
    "backing": "backend|node",
    "data-file": "backend|node",
    "chardev": "chardev",
    "iothread": "iothread",
}


def _by_command() -> dict[tuple[str, str], str]:
    table: dict[tuple[str, str], str] = {}
    for source, rows in _BY_SOURCE.items():
        for members, commands in rows:
            for command in commands.split():
                for member in members.split():
                    table[command, member] = source
    return table


BY_COMMAND: Mapping[tuple[str, str], str] = _by_command()


def source_for(command: str, member: str, top_level: bool) -> str | None:
    """The name of the live source for ``member`` of ``command``, or None for none.

    Only a top-level member is looked up by command; a nested one (``file.file=``)
    by its name alone.
    """
    if top_level and (command, member) in BY_COMMAND:
        return BY_COMMAND[command, member]
    return BY_MEMBER.get(member)


def names_for(live: LiveValues, command: str, member: str, top_level: bool) -> list[str]:
    """The live names that ``member`` of ``command`` accepts (fetched, cached by ``live``)."""
    source = source_for(command, member, top_level)
    return SOURCES[source](live) if source is not None else []
