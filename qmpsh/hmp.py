"""HMP shortcuts: answer `info X` from the matching QMP query, printed the way HMP does.

Going through QMP gives structured data (tables, JSON output) while the text stays what
an HMP user expects.  Each formatter mirrors QEMU 7.2's own hmp_info_* function; when a
reply holds something a formatter does not reproduce exactly it returns None, and the
caller passes the line to `human-monitor-command` instead, so the user never sees a
lossy imitation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

from qmpsh.spice import CHANNEL_NAMES

HMP_COMMAND = "human-monitor-command"

# `info X` with no arguments → the QMP query whose reply HMP itself formats.  Only
# subcommands with a formatter below are listed: the rest go through HMP unchanged.
INFO_QUERIES: dict[str, str] = {
    "spice": "query-spice",
    "vnc": "query-vnc-servers",
    "status": "query-status",
    "block": "query-block",
    "version": "query-version",
    "name": "query-name",
    "chardev": "query-chardev",
    "mice": "query-mice",
    "cpus": "query-cpus-fast",
    "kvm": "query-kvm",
    "uuid": "query-uuid",
    "block-jobs": "query-block-jobs",
}

# HMP's own table: webdav (11) is compiled out of it, so it prints "unknown".
SPICE_CHANNEL_NAMES = {k: v for k, v in CHANNEL_NAMES.items() if v != "webdav"}


def query_for_info(words: list[str], commands: Collection[str]) -> str | None:
    """The query answering `info X` (words with or without the leading "info").

    Only a bare subcommand maps: `info block -v drive0` has options the query does not
    take, and a server without the command (older QEMU) gets the HMP passthrough.
    """
    if words and words[0] == "info":
        words = words[1:]
    if len(words) != 1:
        return None
    query = INFO_QUERIES.get(words[0])
    return query if query is not None and query in commands else None


def hmp_command(line: str) -> tuple[str, dict[str, Any]]:
    """The QMP call that runs one HMP line."""
    return HMP_COMMAND, {"command-line": line}


_HELP_LINE = re.compile(r"^info\s+(\S+)")


def info_subcommands(help_text: str) -> list[str]:
    """Subcommand names from the output of HMP `help info`, in order, without duplicates."""
    names: list[str] = []
    for line in help_text.splitlines():
        match = _HELP_LINE.match(line.strip())
        if match and match.group(1) not in names:
            names.append(match.group(1))
    return names


def format_info(sub: str, value: Any) -> str | None:
    """HMP's text for `info SUB` given its query's return value; None when not exact."""
    formatter = _FORMATTERS.get(sub)
    if formatter is None:
        return None
    try:
        return formatter(value)
    except (LookupError, TypeError, AttributeError, ValueError, ArithmeticError):
        # A reply shape this QEMU version did not have: let HMP speak for itself.
        return None


def _lines(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _bool(flag: Any) -> str:
    return "true" if flag else "false"


def _info_spice(info: dict[str, Any]) -> str:
    if not info["enabled"]:
        return "Server: disabled\n"
    out = ["Server:"]
    if "port" in info:
        out.append(f"     address: {info['host']}:{info['port']}")
    if "tls-port" in info:
        out.append(f"     address: {info['host']}:{info['tls-port']} [tls]")
    out += [
        f"    migrated: {_bool(info['migrated'])}",
        f"        auth: {info['auth']}",
        f"    compiled: {info['compiled-version']}",
        f"  mouse-mode: {info['mouse-mode']}",
    ]
    channels = info.get("channels") or []
    if not channels:
        out.append("Channels: none")
    for chan in channels:
        out += _spice_channel(chan)
    return _lines(out)


def _spice_channel(chan: dict[str, Any]) -> list[str]:
    tls = " [tls]" if chan["tls"] else ""
    kind = chan["channel-type"]
    return [
        "Channel:",
        f"     address: {chan['host']}:{chan['port']}{tls}",
        # HMP prints the u32 session id as QEMU's signed int64, sign and all.
        f"     session: {chan['connection-id']}",
        f"     channel: {kind}:{chan['channel-id']}",
        f"     channel name: {SPICE_CHANNEL_NAMES.get(kind, 'unknown')}",
    ]


def _vnc_basic(name: str, info: dict[str, Any]) -> str:
    ws = " (Websocket)" if info.get("websocket") else ""
    return f"  {name}: {info['host']}:{info['service']} ({info['family']}{ws})"


def _vnc_auth(info: dict[str, Any], indent: str) -> str:
    return f"{indent}Auth: {info['auth']} (Sub: {info.get('vencrypt', 'none')})"


def _info_vnc(servers: list[dict[str, Any]]) -> str:
    """From query-vnc-servers, which is what HMP itself reads."""
    if not servers:
        return "None\n"
    out: list[str] = []
    for display in servers:
        out.append(f"{display['id']}:")
        for server in display.get("server", []):
            out += [_vnc_basic("Server", server), _vnc_auth(server, "    ")]
        for client in display.get("clients", []):
            out.append(_vnc_basic("Client", client))
            out.append(f"    x509_dname: {client.get('x509_dname', 'none')}")
            out.append(f"    sasl_username: {client.get('sasl_username', 'none')}")
        if not display.get("server"):
            out.append(_vnc_auth(display, "  "))
        if "display" in display:
            out.append(f"  Display: {display['display']}")
    return _lines(out)


def _info_status(info: dict[str, Any]) -> str:
    text = "VM status: " + ("running" if info["running"] else "paused")
    if info.get("singlestep"):
        text += " (single step mode)"
    if not info["running"] and info["status"] != "paused":
        text += f" ({info['status']})"
    return text + "\n"


def _info_version(info: dict[str, Any]) -> str:
    q = info["qemu"]
    # No separator: QEMU's package string carries its own leading space if it wants one.
    return f"{q['major']}.{q['minor']}.{q['micro']}{info['package']}\n"


def _info_name(info: dict[str, Any]) -> str:
    return f"{info['name']}\n" if "name" in info else ""


def _info_kvm(info: dict[str, Any]) -> str:
    if not info["present"]:
        return "kvm support: not compiled\n"
    return "kvm support: " + ("enabled" if info["enabled"] else "disabled") + "\n"


def _info_uuid(info: dict[str, Any]) -> str:
    return f"{info['UUID']}\n"


def _info_mice(mice: list[dict[str, Any]]) -> str:
    if not mice:
        return "No mouse devices connected\n"
    return _lines(
        [
            f"{'*' if m['current'] else ' '} Mouse #{m['index']}: {m['name']}"
            + (" (absolute)" if m["absolute"] else "")
            for m in mice
        ]
    )


def _info_chardev(chardevs: list[dict[str, Any]]) -> str:
    return _lines([f"{c['label']}: filename={c['filename']}" for c in chardevs])


def _info_cpus(cpus: list[dict[str, Any]]) -> str:
    # HMP stars the monitor's current CPU; a fresh human-monitor-command uses the first.
    return _lines(
        [
            f"{'*' if i == 0 else ' '} CPU #{c['cpu-index']}: thread_id={c['thread-id']}"
            for i, c in enumerate(cpus)
        ]
    )


def _info_block_jobs(jobs: list[dict[str, Any]]) -> str:
    if not jobs:
        return "No active jobs\n"
    out = []
    for job in jobs:
        progress = (
            f"Completed {job['offset']} of {job['len']} bytes, speed limit {job['speed']} bytes/s"
        )
        if job["type"] == "stream":
            out.append(f"Streaming device {job['device']}: {progress}")
        else:
            out.append(f"Type {job['type']}, device {job['device']}: {progress}")
    return _lines(out)


_THROTTLE_KEYS = ("bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr")


def _info_block(devices: list[dict[str, Any]]) -> str | None:
    blocks = [_block_device(dev) for dev in devices]
    if any(block is None for block in blocks):
        return None
    return "\n".join(block for block in blocks if block is not None)


def _block_device(dev: dict[str, Any]) -> str | None:
    inserted = dev.get("inserted")
    out = [_block_title(dev, inserted)]
    if "qdev" in dev:
        out.append(f"    Attached to:      {dev['qdev']}")
    if dev.get("io-status", "ok") != "ok":
        out.append(f"    I/O status:       {dev['io-status']}")
    if dev["removable"]:
        locked = "" if dev["locked"] else "not "
        tray = "open" if dev.get("tray_open") else "closed"
        out.append(f"    Removable device: {locked}locked, tray {tray}")
    if inserted is None:
        return _lines(out)
    if any(inserted.get(key) for key in _THROTTLE_KEYS):
        return None  # HMP's long throttling block is not reproduced: pass through.
    return _lines(out + _block_media(inserted))


def _block_title(dev: dict[str, Any], inserted: dict[str, Any] | None) -> str:
    node = inserted.get("node-name") if inserted else None
    if dev["device"]:
        name = dev["device"] + (f" ({node})" if node else "")
    else:
        name = node or dev.get("qdev") or "<anonymous>"
    if inserted is None:
        return f"{name}: [not inserted]"
    flags = (", read-only" if inserted["ro"] else "") + (
        ", encrypted" if inserted["encrypted"] else ""
    )
    return f"{name}: {inserted['file']} ({inserted['drv']}{flags})"


def _block_media(inserted: dict[str, Any]) -> list[str]:
    cache = inserted["cache"]
    mode = "writeback" if cache["writeback"] else "writethrough"
    mode += (", direct" if cache["direct"] else "") + (
        ", ignore flushes" if cache["no-flush"] else ""
    )
    out = [f"    Cache mode:       {mode}"]
    if "backing_file" in inserted:
        out.append(
            f"    Backing file:     {inserted['backing_file']} "
            f"(chain depth: {inserted['backing_file_depth']})"
        )
    if inserted["detect_zeroes"] != "off":
        out.append(f"    Detect zeroes:    {inserted['detect_zeroes']}")
    return out


_FORMATTERS: dict[str, Callable[[Any], str | None]] = {
    "spice": _info_spice,
    "vnc": _info_vnc,
    "status": _info_status,
    "version": _info_version,
    "name": _info_name,
    "kvm": _info_kvm,
    "uuid": _info_uuid,
    "mice": _info_mice,
    "chardev": _info_chardev,
    "cpus": _info_cpus,
    "block-jobs": _info_block_jobs,
    "block": _info_block,
}
