"""Shared fixtures: real QEMU processes, started per module and killed by PID."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from qemu import Qemu


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
