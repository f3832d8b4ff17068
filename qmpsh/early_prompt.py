"""The banner and the prompt on screen as soon as qmpsh is connected, keys kept meanwhile.

Why: prompt_toolkit's import and the Application's construction take about twice as
long as connecting does (``benchmarks/startup.py``), and for all that time a user
would look at a terminal with nothing to type at.  So once the greeting is in, the
banner and the prompt are painted with plain writes (this module needs only the
standard library), and the terminal stops echoing: whatever is typed before the
Application starts waits in the terminal's input queue, unshown and unchanged, and
the Application reads it as its first keys.  Then the cursor goes back to the start
of the painted prompt line, where the Application's first draw erases it and draws
its own prompt in the same place.

The input goes into the mode the Application reads it in (prompt_toolkit's raw mode:
no echo, no line editing, no signals from keys, no CR-to-LF), so a key typed early
means what it means at the prompt: Enter accepts, Ctrl-C clears the line rather than
ending qmpsh, Ctrl-D leaves.  The terminal's settings as they were are put back when
the shell ends, however it ends, since the Application restores only what it found.
"""

from __future__ import annotations

import contextlib
import os
import sys
import termios
from collections.abc import Iterator, Mapping
from typing import TextIO

__all__ = ["PROMPT_SGR", "EarlyPrompt", "early_prompt", "wants_colour"]

PROMPT_SGR = "\x1b[0;1;32m"  # the prompt's style in style.py ("bold ansigreen")
_RESET = "\x1b[0m"
# What prompt_toolkit's raw mode turns off (prompt_toolkit.input.vt100.raw_mode).
_RAW_IFLAG_OFF = termios.IXON | termios.IXOFF | termios.ICRNL | termios.INLCR | termios.IGNCR
_RAW_LFLAG_OFF = termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG


class EarlyPrompt:
    """A prompt painted on ``out`` before the Application that will take it over."""

    def __init__(self, out: TextIO, prompt: str) -> None:
        self.out = out
        self.prompt = prompt

    def hand_over(self) -> None:
        """Back to the start of the painted line: the Application's first draw goes there."""
        self.out.write("\r")
        self.out.flush()


def _hold_keys(fd: int) -> list[int | list[bytes | int]] | None:
    """Keys typed from now on wait unechoed in the input queue; the settings before, or
    None when ``fd`` is no terminal."""
    try:
        before = termios.tcgetattr(fd)
    except (termios.error, OSError):
        return None
    held = termios.tcgetattr(fd)
    iflag, lflag = held[0], held[3]
    assert isinstance(iflag, int) and isinstance(lflag, int)
    held[0] = iflag & ~_RAW_IFLAG_OFF
    held[3] = lflag & ~_RAW_LFLAG_OFF
    try:
        termios.tcsetattr(fd, termios.TCSANOW, held)
    except (termios.error, OSError):
        return None
    return before


@contextlib.contextmanager
def early_prompt(
    head: str, prompt: str, *, colour: bool, out: TextIO | None = None, fd: int | None = None
) -> Iterator[EarlyPrompt]:
    """Paint ``head`` (the banner lines) and ``prompt``; keep typed keys until the block's
    Application reads them; put the terminal's settings back when the block ends."""
    out = out if out is not None else sys.stdout
    fd = fd if fd is not None else sys.stdin.fileno()
    before = _hold_keys(fd)
    out.write(head + (f"{PROMPT_SGR}{prompt}{_RESET}" if colour else prompt))
    out.flush()
    try:
        yield EarlyPrompt(out, prompt)
    finally:
        if before is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(fd, termios.TCSANOW, before)


def wants_colour(choice: str, env: Mapping[str, str] = os.environ) -> bool:
    """The painted prompt is coloured unless colour is off (the Application's own rule)."""
    from qmpsh.config import color_depth_name

    return color_depth_name(choice, env) != "DEPTH_1_BIT"
