"""The history file: private to the user, bounded, and never holding a password.

A line like ``set_password protocol=vnc password=hunter2`` is still recalled with
Up during this session (it stays in memory) but is not written to disk, because
history files end up in backups and screen shares.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from prompt_toolkit.history import FileHistory

from qmpsh.redact import line_has_secret

DIR_MODE = 0o700
FILE_MODE = 0o600


class PrivateHistory(FileHistory):
    """A ``FileHistory`` that creates its file 0600 in a 0700 dir and skips secret lines."""

    def __init__(self, path: str | Path, max_entries: int = 10_000) -> None:
        self.path = Path(path)
        self.max_entries = max_entries
        _prepare(self.path)
        super().__init__(str(self.path))

    def load_history_strings(self) -> Iterable[str]:
        """Only the newest ``max_entries`` lines are offered; a huge file stays cheap."""
        for i, line in enumerate(super().load_history_strings()):
            if i >= self.max_entries:
                break
            yield line

    def store_string(self, string: str) -> None:
        if line_has_secret(string):
            return
        with contextlib.suppress(OSError):  # a full disk must not end the session
            super().store_string(string)


def _prepare(path: Path) -> None:
    """Create the state dir 0700 and the file 0600 before anything is written to them."""
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            path.parent.chmod(DIR_MODE)  # mkdir's mode is masked by the umask
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
        os.close(fd)
        path.chmod(FILE_MODE)
    except OSError:
        pass  # FileHistory copes with a missing file; storing then fails quietly
