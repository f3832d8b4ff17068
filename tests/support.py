"""Helpers every test module shares: how qmpsh is started, in which environment, and how
to wait for a state instead of for time (kept out of conftest so imports are explicit).

The environment is the one place where the user's settings could leak into a test: a
``format = "pretty"`` in one's own config, ``QMPSH_SOCKET``, ``NO_COLOR`` or a narrow
``COLUMNS`` would change what qmpsh prints, and a real ``~/.cache/qmpsh`` would be
written.  ``private_env`` builds every child's environment; conftest applies the same
to the pytest process itself, so in-process tests and children started without
``env=`` are isolated too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path

import pytest

WAIT = 30.0  # upper bound for a state to come about under load; never a timing assertion
QMPSH = [sys.executable, "-m", "qmpsh"]  # this interpreter, this checkout (PYTHONPATH)

# Variables through which a user's own setup changes what qmpsh does or where it writes.
USER_VARIABLES = frozenset(
    {
        "HOME",
        "QMP_SOCKET",
        "COLUMNS",
        "LINES",
        "NO_COLOR",
        "FORCE_COLOR",
        "CLICOLOR_FORCE",
        "TTY_COMPATIBLE",
        "TTY_INTERACTIVE",
        "PAGER",
        "LESS",
        "TERM",
        "EDITOR",
        "VISUAL",
        "SSH_AUTH_SOCK",
        "VIRSH_DEFAULT_CONNECT_URI",
    }
)
USER_PREFIXES = ("QMPSH_", "XDG_", "LIBVIRT_", "PROMPT_TOOLKIT_")
TERM = "xterm-256color"  # a capable terminal whatever the user's is (TERM=dumb changes modes)


def is_user_variable(name: str) -> bool:
    """True for a variable a test must never inherit (PATH and PYTHONPATH pass through)."""
    return name in USER_VARIABLES or name.startswith(USER_PREFIXES)


def private_dirs(home: Path) -> dict[str, str]:
    """HOME and the XDG dirs inside ``home``: where qmpsh's config, cache and history go."""
    runtime = home / "run"
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_RUNTIME_DIR": str(runtime),
        "TERM": TERM,
    }


def private_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without the user's settings, its files in ``home``.

    History is then ``home/state/qmpsh/history``, the schema cache ``home/cache/qmpsh``.
    """
    env = {k: v for k, v in os.environ.items() if not is_user_variable(k)}
    env.update(private_dirs(home))
    env.update(extra)
    return env


def child_env(**extra: str) -> dict[str, str]:
    """``private_env`` of the running test's own HOME (set by conftest for every test)."""
    return private_env(Path(os.environ["HOME"]), **extra)


def isolate(environ: MutableMapping[str, str], home: Path) -> dict[str, str | None]:
    """Make ``environ`` private to ``home``; returns the old values, for ``restore``."""
    old: dict[str, str | None] = {k: environ[k] for k in environ if is_user_variable(k)}
    for name in old:
        del environ[name]
    fresh = private_dirs(home)
    old.update({k: None for k in fresh if k not in old})
    environ.update(fresh)
    return old


def restore(environ: MutableMapping[str, str], old: Mapping[str, str | None]) -> None:
    """Undo ``isolate``."""
    for name, value in old.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value


def run_qmpsh(
    *args: str,
    stdin: str = "",
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``python -m qmpsh ARGS`` with a piped script, in the test's private environment.

    ``home`` defaults to the per-test HOME conftest set; ``env`` adds or overrides
    variables (an empty value is still a value: ``QMPSH_SOCKET=""``).
    """
    base = private_env(home) if home is not None else child_env()
    return subprocess.run(
        [*QMPSH, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=base | dict(env or {}),
        timeout=timeout,
    )


def wait_until(predicate: Callable[[], object], timeout: float = WAIT) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; True if it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def wait_for(predicate: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    """Like ``wait_until``, but a state that never comes fails the test, naming it."""
    if not wait_until(predicate, timeout):
        pytest.fail(f"gave up waiting for {what}")


def transcript_has(path: Path, direction: str, key: str, value: object = None) -> bool:
    """True once a ``--transcript`` file holds a message going ``direction`` with ``key``
    (equal to ``value`` if given): how a test sees qmpsh's progress on the wire."""
    if not path.exists():
        return False
    for line in path.read_text().split("\n")[:-1]:  # the last piece may be half-written
        entry = json.loads(line)
        msg = entry["msg"]
        if entry["dir"] == direction and key in msg and value in (None, msg[key]):
            return True
    return False


def negotiated(transcript: Path) -> bool:
    """qmpsh has its ``qmp_capabilities`` answer: from now on QEMU sends it every event."""
    return transcript_has(transcript, "in", "return")


def sleeping(pid: int) -> bool:
    """The process's main thread sits in ``time.sleep`` (for qmpsh: between two dials)."""
    try:
        return "nanosleep" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False


def exec_done(pid: int, program: str) -> bool:
    """``pid`` runs ``program`` already: after a fork, /proc/PID/cmdline is the parent's
    until exec, so a test must wait for this before reading the child's arguments."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return program.encode() in argv[0]


def qemu_pids_with(marker: str) -> list[int]:
    """Running QEMUs whose command line holds ``marker`` (say, ``-name MARKER``): how a
    test finds QEMUs that qmpsh launched, however many attempts it made."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "qemu-system" in cmdline and marker in cmdline:
                pids.append(int(entry.name))
    return pids
