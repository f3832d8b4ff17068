"""Shared fixtures: a private environment for every test, real QEMU processes (started
and killed by PID), and the QMP schema fetched once per run."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from qemu import Qemu, RawMonitor
from support import isolate, restore

from qmpsh.schema import Schema

_session_home: Path | None = None
_saved_env: dict[str, str | None] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Before anything is collected or started, the run forgets the user's settings:
    module fixtures and children started without ``env=`` see a private HOME too."""
    global _session_home, _saved_env
    _children_take_sigint()
    _session_home = Path(tempfile.mkdtemp(prefix="qmpsh-tests-home-"))
    _saved_env = isolate(os.environ, _session_home)


def _children_take_sigint() -> None:
    """A run started in the background of a non-interactive shell (``pytest &``, a CI
    job runner) inherits SIGINT ignored, and exec keeps an ignored signal ignored: every
    qmpsh a test starts would then shrug off the SIGINT that tests send it (exit 0
    instead of 130).  Python's own handler is reset to the default across exec."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_unconfigure(config: pytest.Config) -> None:
    restore(os.environ, _saved_env)
    if _session_home is not None:
        shutil.rmtree(_session_home, ignore_errors=True)


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Each test gets fresh HOME and XDG dirs: no history or schema cache is shared
    between tests, and none is written to the user's.

    Not through ``monkeypatch``: set up first, it would be torn down last, after the
    test's own fixtures, while a test's ``monkeypatch.setattr(os, ...)`` still held.
    """
    home = tmp_path_factory.mktemp("home")
    old = isolate(os.environ, home)
    yield home
    restore(os.environ, old)


@pytest.fixture(scope="session")
def schema_entries() -> list[dict[str, Any]]:
    """``query-qmp-schema`` of the QEMU under test, from a QEMU started just for this."""
    with Qemu() as q, RawMonitor(q.socket) as monitor:
        entries: list[dict[str, Any]] = monitor.execute("query-qmp-schema")
    return entries


@pytest.fixture(scope="session")
def schema(schema_entries: list[dict[str, Any]]) -> Schema:
    """The indexed schema (immutable, so one serves every test)."""
    return Schema.from_entries(schema_entries)


@pytest.fixture(scope="module")
def qemu() -> Iterator[Qemu]:
    """A ``-machine none`` QEMU with VNC and SPICE on loopback, shared by a module."""
    with Qemu(vnc=True, spice=True) as q:
        yield q


@pytest.fixture
def qemu_factory() -> Iterator[Callable[..., Qemu]]:
    """Start extra QEMUs inside one test; all are stopped when it ends."""
    started: list[Qemu] = []

    def start(*extra: str, **kwargs: Any) -> Qemu:
        q = Qemu(extra, **kwargs)
        started.append(q)
        return q

    yield start
    for q in started:
        q.stop()
