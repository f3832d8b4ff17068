"""Every file qmpsh writes (history, ``--events=FILE``, transcripts, the schema cache).

One way to open them, because each is a place an attacker (or a slip of the finger)
can point at something precious: ``QMPSH_HISTFILE=/dev/null`` run as root once had
``/dev/null`` made 0600 for everyone.  So:

- the last path component is never followed when it is a symlink (``O_NOFOLLOW``);
- the opened descriptor, not the name, is checked (``fstat``): only a regular file
  owned by us is written, so a FIFO, a device or someone else's file is refused;
- an existing file we own is tightened to 0600 through the descriptor (``fchmod``);
- a write that fails (a full disk) is reported at once, once per file, and counted,
  so the session goes on and the run still ends non-zero.

Pure standard library: the piped path opens these files too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import threading
from collections.abc import Callable
from typing import Any

from qmpsh.errors import InputError

FILE_MODE = 0o600
DIR_MODE = 0o700

Report = Callable[[str], None]

_REASONS = {
    errno.ELOOP: "it is a symbolic link (qmpsh does not follow links for files it writes)",
    errno.EISDIR: "it is a directory",
    errno.ENOENT: "its directory does not exist",
    errno.ENOTDIR: "a part of its directory path is not a directory",
    errno.ENXIO: "it is not a regular file",
}


def report_to_stderr(message: str) -> None:
    """Say it now: stderr is unbuffered, and a lost line must not wait for the end."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # stderr gone: the
        print(f"qmpsh: error: {message}", file=sys.stderr, flush=True)  # exit code tells


def open_private(path: str | os.PathLike[str], what: str, *, readable: bool = False) -> int:
    """A descriptor appending to ``path``, created 0600; InputError (one line) if refused.

    ``O_NONBLOCK`` keeps a FIFO without a reader from hanging the open; it is refused
    right after, like every file that is not a regular one.
    """
    access = os.O_RDWR if readable else os.O_WRONLY
    flags = access | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, FILE_MODE)
    except OSError as exc:
        raise InputError(f"cannot write {what} {os.fspath(path)}: {_reason(exc)}") from None
    try:
        _make_private(fd, path, what)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _reason(exc: OSError) -> str:
    return _REASONS.get(exc.errno or 0) or exc.strerror or str(exc)


def _make_private(fd: int, path: str | os.PathLike[str], what: str) -> None:
    info = os.fstat(fd)
    where = f"{what} {os.fspath(path)}"
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"cannot write {where}: it is not a regular file")
    if info.st_uid != os.geteuid():
        raise InputError(f"cannot write {where}: it belongs to another user (uid {info.st_uid})")
    if stat.S_IMODE(info.st_mode) & ~FILE_MODE:
        os.fchmod(fd, FILE_MODE)


def make_private_dir(path: str | os.PathLike[str]) -> None:
    """Create a state or cache dir 0700 (mkdir's mode is masked by the umask, so chmod)."""
    if not os.path.isdir(path):
        os.makedirs(path, mode=DIR_MODE, exist_ok=True)
        os.chmod(path, DIR_MODE)


def replace_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a fresh 0600 temp file beside ``path``, then rename it over.

    ``mkstemp`` creates the file exclusively (never an existing name or a link), and
    the rename replaces a link itself rather than writing through it; a crash never
    leaves half a file behind.
    """
    import tempfile  # only a cold schema cache gets here; it costs start-up time

    folder = os.path.dirname(os.fspath(path)) or "."
    make_private_dir(folder)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class OutputFile:
    """An append-only private file whose write failures are said at once, never raised.

    Lines are written whole with ``os.write`` on an ``O_APPEND`` descriptor: nothing
    is buffered, so nothing is left to fail (with a traceback) at exit.  Writes come
    from the reader thread and the main thread, hence the lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        what: str,
        *,
        report: Report = report_to_stderr,
        readable: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        self.what = what
        self.fd = open_private(path, what, readable=readable)
        self.lost = 0  # lines that did not reach the file
        self.error: str | None = None
        self._report = report
        self._lock = threading.Lock()

    def write(self, data: bytes) -> bool:
        """Append ``data``; False (after saying so, the first time) if it did not fit."""
        with self._lock:
            if self.fd < 0:
                return False
            try:
                _write_all(self.fd, data)
            except OSError as exc:
                self.lost += 1
                if self.error is None:
                    self.error = exc.strerror or str(exc)
                    self._report(
                        f"cannot write {self.what} {self.path}: {self.error}; "
                        "the session goes on, but lines are being lost"
                    )
                return False
            return True

    def loss(self) -> str | None:
        """The one-line summary for the end of the run, or None when nothing was lost."""
        if not self.lost:
            return None
        lines = "line was" if self.lost == 1 else "lines were"
        return f"{self.lost} {lines} not written to {self.what} {self.path} ({self.error})"

    def close(self) -> None:
        with self._lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def json_line(text: str, fallback: Callable[[], str]) -> bytes:
    """``text`` + newline as UTF-8; with a lone surrogate, the ASCII-escaped ``fallback``.

    JSON text may carry ``"\\ud800"``, which Python decodes to a lone surrogate that
    UTF-8 cannot encode.  Escaped (``\\ud800`` again) it is still valid JSON and the
    line is kept, where it used to vanish from the file.
    """
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (fallback() + "\n").encode("ascii")
