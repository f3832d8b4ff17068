"""File descriptors a request passes to QEMU: ``getfd … file=PATH``, ``add-fd … file=PATH``.

QEMU takes a descriptor only as SCM_RIGHTS ancillary data on the very ``sendmsg`` that
carries the command, so ``file=`` is qmpsh's member, not QEMU's: ``split_file`` takes it
out of the command (the one place a request gains a file) and ``open_passed`` opens it.
QEMU never sees the path, only the descriptor.

Opening follows symlinks: the user names the file, and following the link they typed
is what they expect; qmpsh never creates it (no ``O_CREAT``) and writes nothing to it.
The descriptor is ``O_CLOEXEC`` and closed again as soon as the message is sent.
"""

from __future__ import annotations

import errno
import os
from typing import NamedTuple

from qmpsh.errors import InputError
from qmpsh.request import Argument, Command

FD_COMMANDS = frozenset({"getfd", "add-fd"})
FILE_KEY = "file"
SHOWN_PATH = 120  # a longer path is shown by its end, where the file's name is
# Errors after which a read-only descriptor may still be had.
_READ_ONLY_WILL_DO = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR, errno.ETXTBSY}
)


class PassedFile(NamedTuple):
    """A descriptor going with a request, and the path it was opened from (for the transcript)."""

    path: str
    fd: int


def split_file(command: Command) -> tuple[Command, Argument | None]:
    """``command`` without its ``file=`` argument, and that argument.

    Only ``getfd`` and ``add-fd`` take one, and they need it: without a descriptor
    QEMU can only refuse them.
    """
    if command.name not in FD_COMMANDS or command.oob:
        return command, None
    files = [a for a in command.arguments if a.path == (FILE_KEY,)]
    if not files:
        raise InputError(
            f"{command.name} needs file=PATH: qmpsh opens it and passes the descriptor",
            command.column,
        )
    rest = tuple(a for a in command.arguments if a.path != (FILE_KEY,))
    return Command(command.name, rest, command.column), files[0]


def open_passed(argument: Argument) -> PassedFile:
    """Open ``file=``'s path read-write, else read-only; an InputError names the problem."""
    path = argument.text
    if not path:
        raise InputError("file= needs a path", argument.value_column)
    flags = os.O_CLOEXEC | os.O_NOCTTY
    try:
        try:
            fd = os.open(path, os.O_RDWR | flags)
        except OSError as e:
            if e.errno not in _READ_ONLY_WILL_DO:
                raise
            fd = os.open(path, os.O_RDONLY | flags)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise InputError(f"file={_shown_path(path)}: {reason}", argument.value_column) from None
    return PassedFile(path, fd)


def close_passed(files: tuple[PassedFile, ...]) -> None:
    """Close our copies: QEMU holds its own once the message is sent."""
    for passed in files:
        os.close(passed.fd)


def _shown_path(path: str) -> str:
    """``path`` quoted (control characters escaped) for a one-line message."""
    return repr(path) if len(path) <= SHOWN_PATH else repr("…" + path[-SHOWN_PATH:])
