"""``--transcript`` / ``-l``: every message both ways and every event, as JSON lines.

Unlike qmp-shell's ``-l``, this never touches the QMP socket: it only records
what the client saw.  Lines carry a local timestamp so a transcript can be read
beside QEMU's own logs; secrets are masked before they reach the disk.
"""

from __future__ import annotations

import json
from datetime import datetime
from types import TracebackType
from typing import Any

from qmpsh.outfiles import OutputFile, json_line
from qmpsh.redact import redact_message


class Transcript:
    """An append-only JSON-lines file, opened the one private way (``outfiles``).

    A full disk is reported at once and counted (``loss()``), never raised into the
    reader thread, so the session goes on and the run ends non-zero.
    """

    def __init__(self, path: str) -> None:
        self._file = OutputFile(path, "transcript")

    def record(self, direction: str, message: dict[str, Any], target: str | None = None) -> None:
        """Write one message; ``direction`` is ``out``, ``in``, ``event`` or ``fd``.

        An ``fd`` entry (``{"file": PATH}``) names a file whose descriptor went with
        the ``out`` message right after it; QEMU saw only the descriptor.  ``target``
        names the target when one transcript records several (a fan-out).
        """
        entry: dict[str, Any] = {} if target is None else {"target": target}
        entry |= {
            "time": datetime.now().astimezone().isoformat(timespec="milliseconds"),
            "dir": direction,
            "msg": redact_message(message) if direction == "out" else message,
        }
        line = json.dumps(entry, separators=(",", ":"), ensure_ascii=False)
        self._file.write(json_line(line, lambda: json.dumps(entry, separators=(",", ":"))))

    def loss(self) -> str | None:
        """What a full disk cost, for the end of the run (None: nothing lost)."""
        return self._file.loss()

    def close(self) -> None:
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
