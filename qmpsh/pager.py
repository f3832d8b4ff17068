"""Long replies go through a pager, the way git does it.

``LESS=-SRXF`` (unless the user set LESS) keeps colours, does not clear the screen
on exit, and quits at once when the text fits, so short output never feels paged.
Pure: no terminal library; the UI decides when the terminal is free to hand over.
"""

from __future__ import annotations

import functools
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping

from qmpsh.errors import InputError

DEFAULT_LESS = "-SRXF"


def needs_paging(text: str, rows: int) -> bool:
    """Taller than the terminal (less one row, for the prompt that follows)."""
    return text.count("\n") + (0 if text.endswith("\n") else 1) > max(rows - 1, 1)


def pager_command(env: Mapping[str, str] = os.environ) -> list[str]:
    """``$PAGER`` split like a shell would, else ``less``; InputError if it cannot be split."""
    text = env.get("PAGER", "") or "less"
    try:
        words = shlex.split(text)
    except ValueError as exc:  # an unbalanced quote, a trailing backslash
        raise InputError(f"cannot use PAGER={text!r} ({str(exc).lower()}); not paging") from None
    return words or ["less"]


@functools.lru_cache(maxsize=8)
def _warn_once(message: str) -> None:
    """The same bad $PAGER would otherwise warn at every long reply."""
    print(f"qmpsh: warning: {message}", file=sys.stderr)


def pager_env(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    merged = dict(env)
    merged.setdefault("LESS", DEFAULT_LESS)
    return merged


def page(text: str, env: Mapping[str, str] = os.environ) -> bool:
    """Show ``text`` in the pager; False if no pager could run (the caller prints it)."""
    try:
        command = pager_command(env)
    except InputError as exc:
        _warn_once(str(exc))
        return False
    try:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, env=pager_env(env), text=True)
    except OSError:
        return False
    try:
        assert proc.stdin is not None
        proc.stdin.write(text)
        proc.stdin.close()
    except BrokenPipeError:
        pass  # the user quit the pager before reading everything
    proc.wait()
    return True
