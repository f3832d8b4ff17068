"""``--transcript`` / ``-l``: every message both ways and every event, as JSON lines.

Unlike qmp-shell's ``-l``, this never touches the QMP socket: it only records
what the client saw.  Lines carry a local timestamp so a transcript can be read
beside QEMU's own logs; secrets are masked before they reach the disk.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime
from types import TracebackType
from typing import Any

from qmpsh.errors import InputError
from qmpsh.redact import redact_message


class Transcript:
    """An append-only JSON-lines file, created with mode 0600."""

    def __init__(self, path: str) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise InputError(f"cannot open transcript {path}: {exc.strerror}") from None
        self._file = os.fdopen(fd, "a", encoding="utf-8")
        self._lock = threading.Lock()  # the reader thread and the main thread both write

    def record(self, direction: str, message: dict[str, Any]) -> None:
        """Write one message; ``direction`` is ``out``, ``in`` or ``event``."""
        entry = {
            "time": datetime.now().astimezone().isoformat(timespec="milliseconds"),
            "dir": direction,
            "msg": redact_message(message) if direction == "out" else message,
        }
        line = json.dumps(entry, separators=(",", ":"), ensure_ascii=False)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> Transcript:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
