"""qmpsh: an interactive shell for the QEMU Monitor Protocol, and a library for scripts.

``qmpsh.connect(address)`` gives a ``VM`` (see ``qmpsh.api``); the exceptions are the
ones the command line maps to exit codes.  Names are loaded on first use, so
``python -m qmpsh`` pays nothing for the library and ``import qmpsh`` stays cheap
(neither imports prompt_toolkit nor rich).
"""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False  # typing's own costs a script ~3 ms; type checkers read it as theirs

if TYPE_CHECKING:
    from qmpsh.api import VM, EventsLost, connect
    from qmpsh.errors import (
        CommandError,
        CommandTimeout,
        ConnectError,
        DisconnectedError,
        EventTimeout,
        InputError,
        ProtocolError,
        QmpshError,
    )

__all__ = [
    "VM",
    "CommandError",
    "CommandTimeout",
    "ConnectError",
    "DisconnectedError",
    "EventTimeout",
    "EventsLost",
    "InputError",
    "ProtocolError",
    "QmpshError",
    "connect",
]

_HOME = {"VM": "qmpsh.api", "EventsLost": "qmpsh.api", "connect": "qmpsh.api"}


def __getattr__(name: str) -> object:
    """Load a public name from its module on first use (PEP 562)."""
    if name not in __all__:
        raise AttributeError(f"module 'qmpsh' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_HOME.get(name, "qmpsh.errors")), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
