"""What the command line and the config file decided, folded once (``cli``) into plain data.

``Settings`` is how every request runs, in every frontend; ``ShellOptions`` is what
only the interactive shells (the Application and the TERM=dumb loop) use.  Nothing
else reads the config file or the parsed arguments, so each choice is made in one
place and the frontends only follow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

Format = Literal["pretty", "json", "raw"]
FORMATS: tuple[Format, ...] = ("pretty", "json", "raw")


@dataclass
class Settings:
    """How requests run and show; ``fmt`` is the one place the reply format lives."""

    fmt: Format = "json"
    validate: bool = True
    verbose: bool = False  # echo each request as sent (secrets masked)
    hmp_mode: bool = False
    exit_on_error: bool = False
    confirm: bool = True  # interactive shells ask before stopping or resetting QEMU
    timeout: float = 30.0
    color: bool = False


class ShellOptions(NamedTuple):  # not a dataclass: ~0.4 ms less at every start
    """The interactive shell's choices: the command line's flags over the config file's."""

    pane: bool = True  # the event pane beside the input (F2 still hides it)
    pager: bool = True
    reconnect: bool = False  # reconnect on our own after a lost connection
    quiet: bool = False  # no banner
    color: str = "auto"  # auto, always or never: how deep prompt_toolkit draws
    history_size: int = 10_000


def format_named(text: str) -> Format | None:
    """The reply format called ``text``, or None if there is no such format."""
    return next((fmt for fmt in FORMATS if fmt == text), None)
