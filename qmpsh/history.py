"""The history file: private to the user, bounded, and never holding a password.

A line like ``set_password protocol=vnc password=hunter2`` is still recalled with
Up during this session (it stays in memory) but is not written to disk, because
history files end up in backups and screen shares.

The file is opened once, through ``outfiles`` (no symlinks, only a regular file of
ours, tightened to 0600), and read and appended through that one descriptor: a
``QMPSH_HISTFILE`` pointing at ``/dev/null`` or a link costs a one-line warning
and a session without saved history, never a chmod on somebody else's file.
The on-disk format is prompt_toolkit's ``FileHistory`` format, so old files load.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from prompt_toolkit.history import History

from qmpsh.errors import InputError
from qmpsh.outfiles import OutputFile, make_private_dir
from qmpsh.redact import line_has_secret

READ_CHUNK = 1 << 16


def _warn(message: str) -> None:
    print(f"qmpsh: warning: {message}", file=sys.stderr)


class PrivateHistory(History):
    """History kept in a private file; without one (refused, unwritable) only in memory."""

    def __init__(
        self,
        path: str | Path,
        max_entries: int = 10_000,
        *,
        warn: Callable[[str], None] = _warn,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.max_entries = max_entries
        self._file = _open(self.path, warn)

    def load_history_strings(self) -> Iterable[str]:
        """Only the newest ``max_entries`` lines are offered; a huge file stays cheap."""
        if self._file is None:
            return []
        strings = _parse(_read_all(self._file.fd))
        return strings[: -self.max_entries - 1 : -1]

    def store_string(self, string: str) -> None:
        if self._file is None or line_has_secret(string):
            return
        lines = "".join(f"+{line}\n" for line in string.split("\n"))
        record = f"\n# {datetime.now()}\n{lines}"
        # A full disk is reported once by OutputFile and must not end the session.
        self._file.write(record.encode("utf-8", "backslashreplace"))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _open(path: Path, warn: Callable[[str], None]) -> OutputFile | None:
    try:
        make_private_dir(path.parent)
        return OutputFile(path, "history file", readable=True, report=warn)
    except InputError as exc:
        warn(f"{exc}; history is not saved this session")
    except OSError as exc:
        warn(f"cannot use history file {path}: {exc.strerror}; history is not saved")
    return None


def _read_all(fd: int) -> bytes:
    """The whole file through our own descriptor (``pread``: the append offset stays)."""
    chunks = []
    offset = 0
    while chunk := os.pread(fd, READ_CHUNK, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _parse(data: bytes) -> list[str]:
    """prompt_toolkit's format: ``+``-prefixed lines of one entry, other lines separate."""
    strings: list[str] = []
    lines: list[str] = []
    for raw in data.decode("utf-8", errors="replace").split("\n"):
        if raw.startswith("+"):
            lines.append(raw[1:] + "\n")
        elif lines:
            strings.append("".join(lines)[:-1])
            lines = []
    if lines:
        strings.append("".join(lines)[:-1])
    return strings
