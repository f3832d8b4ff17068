"""Random JSON values into every renderer and every reader of events: nothing escapes.

Values are what a peer may put on the wire and ``json.loads`` hands over: nesting a
few hundred levels deep, long lists, big ints, non-finite floats (``1e400`` parses as
``inf``, ``NaN`` is accepted too), lone surrogates, control and bidi characters, and
wrong types in every field of every reply and event (keys are drawn mostly from the
ones formatters and summaries look up, so wrong types land where they hurt).  For
each: no exception, json and raw stay valid JSON, and pretty/text output holds no
raw control character (only line breaks and, with colour, qmpsh's own SGR codes)
and encodes as UTF-8.

Building values through hypothesis's own strategies costs ~10 ms a case, so the bulk
tests draw a seed from hypothesis and build the value with ``random.Random(seed)``
(~0.5 ms): a failure is reported with its seed and replays, it just does not shrink.
``CASES`` adds up to over 10,000 cases, in tens of seconds.
"""

from __future__ import annotations

import io
import json
import random
import re
import unicodedata
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmpsh import hmp
from qmpsh.event_summary import severity, summarize
from qmpsh.events import EventFilter, EventLog, format_spice_sessions, spice_sessions
from qmpsh.jsontext import compact, indented
from qmpsh.layout import _wrap
from qmpsh.render import Renderer
from qmpsh.ui import _paint
from qmpsh.visible import json_safe, visible

SGR = re.compile(r"\x1b\[[0-9;]*m")
CASES = {"render": 3000, "hmp": 1500, "events": 3500, "spice": 1000, "text": 1200, "huge": 12}
FUZZ: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
    "database": None,
}

NASTY = [
    "\x1b]2;PWNED\x07", "\x1b[2J", "\ud800", "\udfff", "\u202e", "\x9b31m", "\x7f", "\r", "\x00",
    "\u2028", "\ufeff", "\U000e0041", "a b", "", "[bold]x[/bold]", "ok", "caf\u00e9", "1",
]  # fmt: skip
EDGES: list[Any] = [None, True, False, 0, -1, 1, 2**31, -(2**31), 2**32, 2**63, 10**300]
EDGES += [-(10**300), 0.5, -0.0, 1e20, 1e308, float("inf"), float("-inf"), float("nan")]
# Code points to build strings from: printable, C0, C1, DEL, bidi and zero-width,
# separators, lone surrogates, astral and tag characters.
ALPHABET = [*'ab :=.,[]{}"\\', *map(chr, range(0x20)), "\x7f", "\x85", "\x9b", "\u00a0"]
ALPHABET += ["\u200b", "\u200f", "\u202a", "\u202e", "\u2066", "\u2028", "\ufeff", "\ud800"]
ALPHABET += ["\udc80", "\U0001f512", "\U000e0001", "\U000e007f", "\u0301", "\uffff"]
KEYS = [
    "device", "node-name", "file", "drv", "ro", "inserted", "image", "virtual-size",
    "backing_file", "backing_file_depth", "encrypted", "cache", "writeback", "direct",
    "no-flush", "detect_zeroes", "removable", "locked", "tray_open", "qdev", "io-status",
    "enabled", "host", "port", "tls-port", "auth", "mouse-mode", "compiled-version",
    "migrated", "channels", "channel-type", "channel-id", "connection-id", "tls", "family",
    "service", "clients", "server", "id", "websocket", "vencrypt", "x509_dname",
    "sasl_username", "display", "running", "status", "singlestep", "qemu", "major",
    "minor", "micro", "package", "name", "present", "UUID", "current", "index",
    "absolute", "label", "filename", "frontend-open", "cpu-index", "thread-id", "props",
    "qom-path", "target", "type", "len", "offset", "speed", "paused", "ready", "client",
    "action", "reason", "guest", "tray-open", "operation", "nospace", "error",
    "class", "desc", "seconds", "microseconds",
]  # fmt: skip

NAMES = [
    "STOP", "RESUME", "RESET", "SHUTDOWN", "POWERDOWN", "WATCHDOG", "RTC_CHANGE",
    "BLOCK_IO_ERROR", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_READY", "BLOCK_JOB_ERROR",
    "JOB_STATUS_CHANGE", "DEVICE_TRAY_MOVED", "SPICE_CONNECTED", "SPICE_INITIALIZED",
    "SPICE_DISCONNECTED", "VNC_CONNECTED", "VNC_INITIALIZED", "VNC_DISCONNECTED",
]  # fmt: skip
COMMANDS = [
    None, "query-x", "query-block", "query-named-block-nodes", "query-spice", "query-vnc",
    "query-status", "query-cpus-fast", "query-chardev", "query-block-jobs",
    "human-monitor-command",
]  # fmt: skip


# -- building values from a seeded Random -------------------------------------------------


def text(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(NASTY)
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(8)))


def scalar(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.35:
        return rng.choice(EDGES)
    if roll < 0.45:
        return rng.randrange(-(2**64), 2**64)
    if roll < 0.5:
        return rng.uniform(-1e9, 1e9)
    return text(rng)


def key(rng: random.Random) -> str:
    return rng.choice(KEYS) if rng.random() < 0.8 else text(rng)


def value(rng: random.Random, depth: int = 0, deep: float = 0.03) -> Any:
    """Any JSON value: mostly small, sometimes (``deep``) a few hundred levels deep."""
    roll = rng.random()
    if roll < deep:
        return nest(rng.randrange(100, 400), scalar(rng), rng.random() < 0.5)
    if depth < 4 and roll < 0.45:
        size = rng.randrange(5)
        if roll < 0.2:
            return [value(rng, depth + 1, deep) for _ in range(size)]
        return {key(rng): value(rng, depth + 1, deep) for _ in range(size)}
    return scalar(rng)


def nest(depth: int, leaf: Any, as_dict: bool) -> Any:
    for _ in range(depth):
        leaf = {"k": leaf} if as_dict else [leaf]
    return leaf


def shaped(rng: random.Random, deep: float = 0.03) -> Any:
    """What a query returns, or close to it: objects, or lists of objects, of known keys."""
    roll = rng.random()
    if roll < 0.3:
        return value(rng, 0, deep)
    obj = {key(rng): value(rng, 1, deep) for _ in range(rng.randrange(9))}
    if roll < 0.5:
        return obj
    more = ({key(rng): value(rng, 1, deep) for _ in range(5)} for _ in range(rng.randrange(3)))
    return [obj, *more]


def reply(rng: random.Random, deep: float) -> dict[str, Any]:
    """A reply; deep values are rarer here, since pretty output of one costs ~0.2 s."""
    roll = rng.random()
    if roll < 0.7:
        return {"return": shaped(rng, deep)}
    if roll < 0.85:
        return {"error": {"class": scalar(rng), "desc": scalar(rng)}}
    return {"error": value(rng), "id": value(rng)}


def event(rng: random.Random) -> dict[str, Any]:
    message: dict[str, Any] = {"event": rng.choice(NAMES) if rng.random() < 0.85 else value(rng)}
    roll = rng.random()
    if roll < 0.3:
        client = {key(rng): value(rng, 2) for _ in range(rng.randrange(8))}
        message["data"] = {"client": client, "server": shaped(rng), "action": value(rng)}
    elif roll < 0.9:
        message["data"] = shaped(rng)
    if rng.random() < 0.8:
        stamp = {"seconds": scalar(rng), "microseconds": scalar(rng)}
        message["timestamp"] = stamp if rng.random() < 0.8 else value(rng)
    return message


# A seed, not st.randoms(): each call on hypothesis's Random is a draw of its own (~0.3 ms).
seeds = st.integers(min_value=0, max_value=2**64)


# -- what must hold of every output ---------------------------------------------------------

# What a terminal may obey: controls (C0, C1, DEL), format characters (bidi overrides,
# zero-width), line and paragraph separators, and lone surrogates (not even UTF-8).
OBEYED = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def clean(text: str, *, newlines: bool = True) -> None:
    """No raw control or format character except line breaks: nothing a terminal obeys."""
    text.encode("utf-8")  # strict: a lone surrogate would raise here
    plain = SGR.sub("", text)
    bad = [c for c in plain if unicodedata.category(c) in OBEYED and not (newlines and c == "\n")]
    assert not bad, bad


def check_json_lines(text: str) -> None:
    text.encode("utf-8")
    for line in text.splitlines():
        json.loads(line)
    assert "\x1b" not in text and "\u202e" not in text and "\x7f" not in text


# -- the tests -----------------------------------------------------------------------------


@settings(max_examples=CASES["render"], **FUZZ)
@given(seeds, st.sampled_from(COMMANDS), st.booleans(), st.sampled_from([None, 0, 1, 20, 80]))
def test_every_format_renders_any_reply(
    seed: int, command: str | None, color: bool, width: int | None
) -> None:
    rng = random.Random(seed)
    message = reply(rng, deep=0.002)
    for fmt in ("raw", "json", "pretty"):
        out, err = io.StringIO(), io.StringIO()
        Renderer(fmt, out, err, color=color, width=width).reply(command, message)
        is_text = command == "human-monitor-command" and isinstance(message.get("return"), str)
        if fmt == "raw":
            check_json_lines(out.getvalue())
            assert json.loads(out.getvalue()).keys() == message.keys()
        elif fmt == "json" and not is_text and "error" not in message:
            check_json_lines(out.getvalue())
        else:
            clean(out.getvalue())
        clean(err.getvalue().removesuffix("\n"), newlines=False)  # an error is one line


@settings(max_examples=CASES["huge"], **FUZZ)
@given(
    st.sampled_from([501, 5_000, 60_000]),
    st.sampled_from(COMMANDS),
    st.sampled_from(NASTY),
    st.booleans(),
)
def test_long_replies_render_in_every_format(
    length: int, command: str | None, nasty: str, color: bool
) -> None:
    """Lists too long for a table, and pretty JSON past the size rich and pygments take."""
    value = [{"device": f"d{i}{nasty}", "ro": i % 2, "len": float(i)} for i in range(length)]
    for fmt in ("raw", "json", "pretty"):
        out = io.StringIO()
        Renderer(fmt, out, io.StringIO(), color=color, width=80).reply(command, {"return": value})
        if fmt == "pretty":
            clean(out.getvalue())
            json.loads(SGR.sub("", out.getvalue()))  # indented JSON, coloured or not
        else:
            check_json_lines(out.getvalue())


@settings(max_examples=CASES["hmp"], **FUZZ)
@given(st.sampled_from(sorted(hmp.INFO_QUERIES)), seeds)
def test_hmp_formatters_take_any_reply(sub: str, seed: int) -> None:
    rng = random.Random(seed)
    text = hmp.format_info(sub, shaped(rng))
    assert text is None or isinstance(text, str)
    out = io.StringIO()
    Renderer("pretty", out, io.StringIO(), color=True).text(text or "")
    clean(out.getvalue())


FILTERS = [
    EventFilter.parse(spec)
    for spec in ("*", "STOP", "!SPICE_*", "action=stop", "client.host=1*", "0=x", "len!=1")
]


@settings(max_examples=CASES["events"], **FUZZ)
@given(seeds, st.integers(1, 200))
def test_every_reader_of_events_takes_any_event(seed: int, width: int) -> None:
    rng = random.Random(seed)
    batch = [event(rng) for _ in range(rng.randrange(1, 4))]
    log = EventLog()
    for message in batch:
        log.append(message)
    assert len(log) == len(batch)  # every one filed, whatever its shape
    for logged in log.recent():
        line = summarize(logged.event, caused_by=logged.caused_by, width=width)
        clean(line, newlines=False)
        clean(logged.numbered(), newlines=False)
        for row in _wrap(logged.numbered(), max(width, 8)):
            clean(row, newlines=False)
        clean(_paint(logged, True).rstrip("\n"), newlines=False)
        assert severity(logged.event) in ("error", "warning", "notice", "info")
        for flt in FILTERS:
            assert flt.matches(logged.event) in (True, False)
    for flt in FILTERS:
        assert len(log.recent(flt=flt)) <= len(batch)
    assert sum(log.stats().values()) == len(batch)


@settings(max_examples=CASES["spice"], **FUZZ)
@given(seeds)
def test_spice_sessions_take_any_event(seed: int) -> None:
    rng = random.Random(seed)
    batch = []
    for _ in range(rng.randrange(6)):
        message = event(rng)
        message["event"] = rng.choice(["SPICE_INITIALIZED", "SPICE_DISCONNECTED"])
        batch.append(message)
    for line in format_spice_sessions(spice_sessions(batch)):
        clean(line, newlines=False)


@settings(max_examples=CASES["text"], **FUZZ)
@given(seeds)
def test_json_text_is_valid_and_safe_and_visible_is_printable(seed: int) -> None:
    rng = random.Random(seed)
    for encoded in (compact(value(rng)), indented(value(rng))):
        json.loads(encoded)
        assert encoded == json_safe(encoded)
        encoded.encode("utf-8")
    shown = text(rng)
    clean(visible(shown), newlines=False)
    clean(visible(shown, newlines=True))
    assert visible(visible(shown)) == visible(shown)  # what is shown is already inert
