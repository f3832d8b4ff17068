"""A FAKE QMP server, only for faults a real QEMU cannot produce.

Garbage bytes, invalid UTF-8, a reply cut in half, junk before the greeting, a
greeting that never comes: QEMU never does these, but a client must survive them.
Everything else is tested against a real QEMU (see ``qemu.py``).

A test gives a *script*: a function that receives the accepted ``FakeConnection``
and plays the server's part step by step on a server thread.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any

GREETING: dict[str, Any] = {
    "QMP": {
        "version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "fake"},
        "capabilities": [],
    }
}


class FakeConnection:
    """The server side of one client connection, driven by a test script."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")
        self.received: list[dict[str, Any]] = []

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message: dict[str, Any]) -> None:
        self.send_raw(json.dumps(message).encode() + b"\n")

    def read(self) -> dict[str, Any]:
        """The next request from the client (EOFError when it hung up)."""
        line = self.file.readline()
        if not line:
            raise EOFError("client hung up")
        message: dict[str, Any] = json.loads(line)
        self.received.append(message)
        return message

    def handshake(self) -> None:
        """Greet and accept qmp_capabilities, as QEMU does."""
        self.send(GREETING)
        self.reply(self.read(), {})

    def reply(self, request: dict[str, Any], value: Any) -> None:
        """Answer as QEMU does: the request's id is echoed only when it had one."""
        reply: dict[str, Any] = {"return": value}
        if "id" in request:
            reply["id"] = request["id"]
        self.send(reply)

    def close(self) -> None:
        # shutdown first: it wakes a script blocked in read() on the server thread
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.file.close()


Script = Callable[[FakeConnection], None]


class FakeQmpServer:
    """Listen on a unix socket and run ``script`` for the first client that connects."""

    def __init__(self, path: str, script: Script) -> None:
        self.path = path
        self.script = script
        self.error: BaseException | None = None
        self.connection: FakeConnection | None = None
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(path)
        self.listener.listen(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return  # closed before anyone connected
        self.connection = FakeConnection(sock)
        try:
            self.script(self.connection)
        except (EOFError, OSError):
            pass  # the client hung up, which is what many fault tests cause
        except BaseException as e:
            self.error = e
        finally:
            self.connection.close()

    def close(self) -> None:
        self.listener.close()
        if self.connection is not None:
            self.connection.close()
        self.thread.join(timeout=5)
        if os.path.exists(self.path):
            os.unlink(self.path)

    def __enter__(self) -> FakeQmpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
