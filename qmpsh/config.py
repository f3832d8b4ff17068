"""The user's config file and the places qmpsh keeps state, per the XDG base directories.

A broken config must never stop the shell: each problem becomes one warning line and
the built-in default is used for that key.  Pure (standard library only), so the
piped path may call it without importing a terminal library; ``load_config`` finds
the default file with ``os.path``, so a ``-c`` call does not pay for pathlib either.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

FORMATS = ("pretty", "json", "raw")
COLORS = ("auto", "always", "never")
MAX_CONFIG_BYTES = 1 << 20  # a config is a few lines; more is a mistake or an attack

Warn = Callable[[str], None]


@dataclass
class Config:
    """Defaults for what the command line does not say."""

    format: str | None = None  # None: pretty at a terminal, json otherwise
    color: str = "auto"
    pager: bool = True
    confirm: bool = True
    history_size: int = 10_000
    reconnect: bool = False  # retry on our own after the connection is lost
    events_pane: bool = True
    events_capacity: int = 10_000
    events_filter: str | None = None


def _xdg(env: Mapping[str, str], name: str, fallback: str) -> str:
    value = env.get(name, "")
    # The spec says relative values are invalid and must be ignored.
    if value and os.path.isabs(value):
        return value
    return os.path.join(env.get("HOME") or os.path.expanduser("~"), fallback)


def config_file(env: Mapping[str, str] = os.environ) -> str:
    """``$QMPSH_CONFIG``, else ``$XDG_CONFIG_HOME/qmpsh/config.toml`` (a str: no pathlib)."""
    if env.get("QMPSH_CONFIG"):
        return env["QMPSH_CONFIG"]
    return os.path.join(_xdg(env, "XDG_CONFIG_HOME", ".config"), "qmpsh", "config.toml")


def state_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_STATE_HOME/qmpsh`` (history lives there, not in the config dir)."""
    from pathlib import Path

    return Path(_xdg(env, "XDG_STATE_HOME", ".local/state"), "qmpsh")


def history_path(env: Mapping[str, str] = os.environ) -> Path:
    """``$QMPSH_HISTFILE``, else the state dir's ``history``."""
    from pathlib import Path

    if env.get("QMPSH_HISTFILE"):
        return Path(env["QMPSH_HISTFILE"])
    return state_dir(env) / "history"


def load_config(
    path: Path | str | None = None, *, warn: Warn | None = None, env: Mapping[str, str] = os.environ
) -> Config:
    """Read the config file; a missing file is silent, a bad one warns and uses defaults."""
    path = path if path is not None else config_file(env)
    say = warn if warn is not None else (lambda message: None)
    try:
        text = _read_small_file(path)
        import tomllib  # only once there is a file: it costs ~3 ms of every start

        data = tomllib.loads(text)
    except FileNotFoundError:
        return Config()
    except (OSError, ValueError) as exc:  # ValueError: TOMLDecodeError, UnicodeDecodeError
        say(f"qmpsh: warning: ignoring config {path}: {_reason(exc)}")
        return Config()
    return config_from_dict(data, warn=lambda message: say(f"qmpsh: warning: {path}: {message}"))


def _read_small_file(path: Path | str) -> str:
    """The file's text; a FIFO, a device or a huge file is refused instead of read.

    ``QMPSH_CONFIG=/dev/zero`` would otherwise fill the memory, and a FIFO with no
    writer would hang every start (``O_NONBLOCK`` keeps the open itself from waiting).
    """
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        data = fh.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ValueError(f"larger than {MAX_CONFIG_BYTES // 1024} KiB")
    return data.decode("utf-8")


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return " ".join(str(exc).split())


def config_from_dict(data: Mapping[str, Any], *, warn: Warn) -> Config:
    """Validate key by key, so one bad value costs only that value."""
    config = Config()
    events = data.get("events", {})
    if not isinstance(events, Mapping):
        warn("[events] must be a table")
        events = {}
    _known(
        data,
        {"format", "color", "pager", "confirm", "history_size", "reconnect", "events"},
        "",
        warn,
    )
    _known(events, {"pane", "capacity", "filter"}, "events.", warn)
    config.format = _choice(data, "format", FORMATS, config.format, warn)
    config.color = _choice(data, "color", COLORS, config.color, warn) or config.color
    config.pager = _typed(data, "pager", bool, config.pager, warn)
    config.confirm = _typed(data, "confirm", bool, config.confirm, warn)
    config.history_size = _count(data, "history_size", config.history_size, warn)
    config.reconnect = _typed(data, "reconnect", bool, config.reconnect, warn)
    config.events_pane = _typed(events, "pane", bool, config.events_pane, warn, "events.")
    config.events_capacity = _count(events, "capacity", config.events_capacity, warn, "events.")
    config.events_filter = _typed(events, "filter", str, None, warn, "events.") or None
    return config


def _known(table: Mapping[str, Any], keys: set[str], prefix: str, warn: Warn) -> None:
    for key in table:
        if key not in keys:
            warn(f"unknown key '{prefix}{key}'")


def _typed(
    table: Mapping[str, Any], key: str, kind: type, default: Any, warn: Warn, prefix: str = ""
) -> Any:
    value = table.get(key, default)
    if value is not default and not isinstance(value, kind):
        warn(f"'{prefix}{key}' must be a {kind.__name__}, not {value!r}")
        return default
    return value


def _choice(
    table: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str | None, warn: Warn
) -> str | None:
    value = table.get(key, default)
    if value is not default and value not in choices:
        warn(f"'{key}' must be one of {', '.join(choices)}, not {value!r}")
        return default
    return value  # type: ignore[no-any-return]


def _count(table: Mapping[str, Any], key: str, default: int, warn: Warn, prefix: str = "") -> int:
    value = table.get(key, default)
    # bool is an int subclass; `history_size = true` is a mistake, not 1.
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        warn(f"'{prefix}{key}' must be a positive integer, not {value!r}")
        return default
    return value


def color_depth_name(choice: str, env: Mapping[str, str] = os.environ) -> str | None:
    """What prompt_toolkit should draw with: 'never' and NO_COLOR mean monochrome.

    Returns a ``ColorDepth`` member name, or None to let prompt_toolkit detect it.
    """
    if choice == "never" or (choice == "auto" and env.get("NO_COLOR")):
        return "DEPTH_1_BIT"
    if choice == "always" and env.get("TERM") == "dumb":
        return "DEPTH_8_BIT"
    return None
