"""One readable line per QMP event, and how loudly the UI should show it.

QEMU's event data is built for machines (signed SPICE session ids, offsets in bytes,
RTC offsets in seconds); a person watching a pane needs the few facts that matter,
so the events people actually watch for get a tailored line and everything else a
generic, flattened ``key=value`` one.  Pure: no terminal libraries.

Every field is the peer's choice and may hold any JSON value (a string session id,
``1e400`` as an offset, a list as ``data``): a summary shows what it can and never
raises, and the finished line goes through ``visible``, so what reaches the pane or
the scrollback holds no control character.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any, Literal

from qmpsh.jsontext import compact
from qmpsh.spice import CHANNEL_NAMES, channel_name, session_id
from qmpsh.visible import visible

Severity = Literal["error", "warning", "notice", "info"]
Summarizer = Callable[[dict[str, Any]], str]

DEFAULT_WIDTH = 160
LOCK = "🔒 tls"
NO_TIME = "--:--:--.---"  # a stamp that is not a time (QEMU's -1, or a peer's nonsense)
# A summarizer failing on an odd shape falls back to the generic line; these are what
# odd shapes raise (1e400 as an int: OverflowError; a list where a dict was: TypeError).
SHAPE_ERRORS = (LookupError, TypeError, ValueError, AttributeError, ArithmeticError)

SPICE_CHANNEL_NAMES = CHANNEL_NAMES

# What a person should expect to see next after a watchdog fires (QEMU 7.2, as observed).
WATCHDOG_FOLLOW_UPS = {
    "reset": "RESET follows",
    "shutdown": "POWERDOWN/SHUTDOWN follows",
    "pause": "STOP follows",
    "poweroff": "QEMU exits (no SHUTDOWN)",
    "debug": "nothing visible (stderr line only)",
    "none": "nothing visible",
    "inject-nmi": "NMI to the guest, nothing visible",
}


def summarize(
    event: dict[str, Any], *, caused_by: str | None = None, width: int = DEFAULT_WIDTH
) -> str:
    """``HH:MM:SS.mmm NAME summary [← cause]``, one line whatever the event carries."""
    name = event_name(event)
    data = event.get("data")
    detail = _tailored(name, data)
    if detail is None:  # an unexpected shape must never cost the line: the generic one
        detail = _generic(data, width)
    line = " ".join(part for part in (event_time(event), name, detail) if part)
    line = _truncate(visible(line.replace("\n", " ")), width)
    return f"{line} ← {visible(caused_by)}" if caused_by else line


def _tailored(name: str, data: Any) -> str | None:
    """The line written for this kind of event, or None when its data has another shape."""
    summarizer = _SUMMARIZERS.get(name)
    if summarizer is None or not isinstance(data, dict):
        return None
    try:
        return summarizer(data)
    except SHAPE_ERRORS:
        return None


def event_name(event: dict[str, Any]) -> str:
    """The event's name as text ("?" when missing); a non-string name shows as JSON."""
    name = event.get("event", "?")
    return name if isinstance(name, str) else compact(name)


def event_data(event: dict[str, Any]) -> dict[str, Any]:
    """The event's ``data`` when it is an object, else empty: what rules keyed on fields read."""
    data = event.get("data")
    return data if isinstance(data, dict) else {}


def severity(event: dict[str, Any]) -> Severity:
    """Errors lose data or kill the guest; warnings change its run state; notices are normal."""
    name = event.get("event")
    data = event_data(event)
    if name == "BLOCK_IO_ERROR":
        return "warning" if data.get("action") == "ignore" else "error"
    if name == "BLOCK_JOB_ERROR":
        return "error"
    if name == "WATCHDOG":
        quiet = data.get("action") in ("none", "debug", "inject-nmi")
        return "warning" if quiet else "error"
    if name in ("STOP", "SHUTDOWN", "RESET"):
        return "warning" if data.get("guest") or name == "STOP" else "notice"
    if name in ("POWERDOWN", "SPICE_DISCONNECTED", "VNC_DISCONNECTED", "BLOCK_JOB_CANCELLED"):
        return "notice"
    return "info"


def event_time(event: dict[str, Any]) -> str:
    """Local wall time of QEMU's stamp with milliseconds; now, if the event has none.

    A stamp that is not a time (QEMU's -1 when it could not read the clock, or a
    peer's ``1e20`` seconds, which no calendar holds) shows as ``--:--:--.---``.
    """
    stamp = event.get("timestamp")
    if stamp is None:
        now = time.time()
        return _clock(int(now), int((now % 1) * 1_000_000))
    try:
        seconds, micros = int(stamp["seconds"]), int(stamp["microseconds"])
        return _clock(seconds, micros) if seconds >= 0 else NO_TIME
    except (*SHAPE_ERRORS, OSError):
        return NO_TIME


def _clock(seconds: int, micros: int) -> str:
    millis = min(max(micros, 0), 999_999) // 1000
    return time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{millis:03d}"


def spice_channel_name(channel_type: Any) -> str:
    return channel_name(channel_type, f"type{as_text(channel_type)}")


def human_size(n: int) -> str:
    """Binary units with one decimal, as ``qemu-img`` prints them."""
    if abs(n) < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if abs(size) < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def human_offset(seconds: int) -> str:
    """Signed seconds as ``+1h 02m 03s`` (days too), since RTC offsets can be huge."""
    sign = "-" if seconds < 0 else "+"
    rest = abs(int(seconds))
    days, rest = divmod(rest, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts: list[str] = []
    if days:
        parts.append(f"{days}d")
    if days or hours:
        parts.append(f"{hours:02d}h" if parts else f"{hours}h")
    if parts or minutes:
        parts.append(f"{minutes:02d}m" if parts else f"{minutes}m")
    parts.append(f"{secs:02d}s" if parts else f"{secs}s")
    return sign + " ".join(parts)


def progress(offset: int, length: int) -> str:
    """``1.0 MiB/1.0 MiB (100%)``; rounded down so an unfinished job never shows 100%."""
    text = f"{human_size(offset)}/{human_size(length)}"
    if length <= 0:
        return text
    pct = offset * 100 / length
    shown = f"{pct:.1f}" if 0 < pct < 1 else str(int(pct))
    return f"{text} ({shown}%)"


def endpoint(part: dict[str, Any], port_key: str = "port") -> str:
    """``host:port``, bracketing IPv6 literals so the port stays readable."""
    host = as_text(part.get("host", "?"))
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{as_text(part.get(port_key, '?'))}"


def iter_flat(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Leaves as dotted paths: dicts give ``client.host``, lists their index (``a.0``).

    Iterative, one leaf at a time: a peer may nest a thousand levels, or send a
    million fields of which a summary line needs the first few.
    """
    stack: list[tuple[str, Iterator[tuple[Any, Any]]]] = []
    if isinstance(data, dict | list) and data:
        stack.append((prefix, _items(data)))
    else:
        yield prefix, data
    while stack:
        path, items = stack[-1]
        item = next(items, None)
        if item is None:
            stack.pop()
            continue
        key, value = item
        where = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict | list) and value:
            stack.append((where, _items(value)))
        else:
            yield where, value


def _items(data: dict[str, Any] | list[Any]) -> Iterator[tuple[Any, Any]]:
    return iter(data.items()) if isinstance(data, dict) else enumerate(data)


def as_text(value: Any) -> str:
    """The text form filters compare and lines show: JSON for non-strings, so 1 is "1"."""
    return value if isinstance(value, str) else compact(value)


def _shown(value: Any) -> str:
    text = as_text(value)
    quote = isinstance(value, str) and (" " in text or not text)
    return str(encode_basestring(text)) if quote else text


def _generic(data: Any, width: int = DEFAULT_WIDTH) -> str:
    """``key=value`` for every leaf, stopping once the line is wider than ``width``.

    Data that is not an object (a peer's string or list) is shown as ``data=…``.
    """
    if data is None:
        return ""
    parts: list[str] = []
    length = 0
    leaves = iter_flat(data) if isinstance(data, dict) else iter_flat(data, "data")
    for key, value in leaves:
        parts.append(f"{key}={_shown(value)}")
        length += len(parts[-1]) + 1
        if length > width:
            break
    return " ".join(parts)


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _spice(data: dict[str, Any]) -> str:
    client, server = data["client"], data["server"]
    route = f"{endpoint(client)} → {endpoint(server)} {client.get('family', '')}".rstrip()
    if "channel-type" not in client:
        return route
    kind = client["channel-type"]
    parts = [f"{spice_channel_name(kind)}:{as_text(client.get('channel-id', 0))}", route]
    if "connection-id" in client:
        parts.append(f"session={session_id(client['connection-id'])}")
    if "auth" in server:
        parts.append(f"auth={as_text(server['auth'])}")
    if client.get("tls"):
        parts.append(LOCK)
    return " ".join(parts)


def _vnc(data: dict[str, Any]) -> str:
    client, server = data["client"], data["server"]
    parts = [f"{endpoint(client, 'service')} → {endpoint(server, 'service')}"]
    if "auth" in server:
        parts.append(f"auth={server['auth']}")
    for key in ("x509_dname", "sasl_username"):
        if key in client:
            parts.append(f"{key}={_shown(client[key])}")
    if client.get("websocket"):
        parts.append("websocket")
    return " ".join(parts)


def _block_io_error(data: dict[str, Any]) -> str:
    where = data.get("device") or data.get("node-name") or "?"
    line = f"{where} {data.get('operation', '?')} error, action={data.get('action', '?')}"
    if data.get("reason"):
        line += f": {data['reason']}"
    return line + (" (no space left)" if data.get("nospace") else "")


def _watchdog(data: dict[str, Any]) -> str:
    action = str(data.get("action", "?"))
    follow = WATCHDOG_FOLLOW_UPS.get(action)
    return f"action={action} → {follow}" if follow else f"action={action}"


def _guest_or_host(data: dict[str, Any]) -> str:
    if not data:
        return ""
    who = "guest" if data.get("guest") else "host"
    return f"{who}: {data['reason']}" if "reason" in data else who


def _rtc_change(data: dict[str, Any]) -> str:
    line = f"offset {human_offset(int(data['offset']))}"
    return f"{line} ({data['qom-path']})" if data.get("qom-path") else line


def _tray(data: dict[str, Any]) -> str:
    where = data.get("device") or data.get("id") or "?"
    return f"{where} tray {'open' if data['tray-open'] else 'closed'}"


def _block_job(data: dict[str, Any]) -> str:
    parts = [str(data.get("type", "job")), str(data.get("device", "?"))]
    if "len" in data:
        parts.append(progress(int(data.get("offset", 0)), int(data["len"])))
    if data.get("speed"):
        parts.append(f"speed={human_size(int(data['speed']))}/s")
    for key in ("operation", "action"):
        if key in data:
            parts.append(f"{key}={data[key]}")
    if data.get("error"):
        parts.append(f"error: {data['error']}")
    return " ".join(parts)


def _job_status(data: dict[str, Any]) -> str:
    return f"{data['id']} → {data['status']}"


@dataclass
class SpiceChannelState:
    """One channel as events told it; the numbers are None when the peer sent no number."""

    channel_type: int | None
    channel_id: int | None
    client: str
    tls: bool
    up: bool

    @property
    def name(self) -> str:
        return "?" if self.channel_type is None else spice_channel_name(self.channel_type)


@dataclass
class SpiceSession:
    """The channels one SPICE client opened, keyed by the unsigned session id.

    QEMU's id is a number; a peer's string id is kept as it came (see ``spice.session_id``).
    """

    session_id: int | str
    channels: list[SpiceChannelState] = field(default_factory=list)

    @property
    def up(self) -> int:
        return sum(ch.up for ch in self.channels)


def spice_sessions(events: Iterable[dict[str, Any]]) -> list[SpiceSession]:
    """Rebuild sessions from SPICE events; DISCONNECTED carries no session, so match by port."""
    sessions: dict[int | str, SpiceSession] = {}
    by_client: dict[str, SpiceChannelState] = {}
    for event in events:
        name = event.get("event")
        client = event_data(event).get("client")
        if not isinstance(client, dict):
            continue
        where = endpoint(client)
        if name == "SPICE_INITIALIZED" and "connection-id" in client:
            key = session_id(client["connection-id"])
            session = sessions.setdefault(key, SpiceSession(key))
            channel = SpiceChannelState(
                _number(client.get("channel-type", 0)),
                _number(client.get("channel-id", 0)),
                where,
                client.get("tls") is True,
                True,
            )
            session.channels.append(channel)
            by_client[where] = channel
        elif name == "SPICE_DISCONNECTED" and where in by_client:
            by_client.pop(where).up = False
    return list(sessions.values())


def _number(value: Any) -> int | None:
    """An int field as an int; None for whatever else a peer put there."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def format_spice_sessions(sessions: Iterable[SpiceSession]) -> list[str]:
    """Lines for ``spice sessions``: a header per session, one indented line per channel."""
    lines: list[str] = []
    for session in sessions:
        total = len(session.channels)
        lines.append(f"session {session.session_id}: {session.up}/{total} channels up")
        for ch in session.channels:
            label = f"{ch.name}:{'?' if ch.channel_id is None else ch.channel_id}"
            state = "up" if ch.up else "down"
            lock = " 🔒 tls" if ch.tls else ""
            lines.append(f"  {label:<12} {state:<5} {ch.client}{lock}")
    return [visible(line) for line in lines] or ["no SPICE sessions seen"]


_SUMMARIZERS: dict[str, Summarizer] = {
    "SPICE_CONNECTED": _spice,
    "SPICE_INITIALIZED": _spice,
    "SPICE_DISCONNECTED": _spice,
    "VNC_CONNECTED": _vnc,
    "VNC_INITIALIZED": _vnc,
    "VNC_DISCONNECTED": _vnc,
    "BLOCK_IO_ERROR": _block_io_error,
    "WATCHDOG": _watchdog,
    "RESET": _guest_or_host,
    "SHUTDOWN": _guest_or_host,
    "RTC_CHANGE": _rtc_change,
    "DEVICE_TRAY_MOVED": _tray,
    "BLOCK_JOB_COMPLETED": _block_job,
    "BLOCK_JOB_CANCELLED": _block_job,
    "BLOCK_JOB_READY": _block_job,
    "BLOCK_JOB_ERROR": _block_job,
    "BLOCK_JOB_PENDING": _block_job,
    "JOB_STATUS_CHANGE": _job_status,
}
