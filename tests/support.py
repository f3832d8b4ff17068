"""Small helpers several test modules share (kept out of conftest so imports are explicit)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

WAIT = 10.0  # upper bound for anything to happen; never a timing assertion


def wait_until(predicate: Callable[[], object], timeout: float = WAIT) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; True if it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def private_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment with qmpsh's files (history, cache, config) in tmp_path."""
    env = {k: v for k, v in os.environ.items() if k not in ("QMPSH_SOCKET", "QMP_SOCKET")}
    env.update(
        HOME=str(tmp_path),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    env.update(extra)
    return env
