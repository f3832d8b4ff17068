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


class InjectingProxy:
    """Between a client and a REAL QEMU: every line is relayed as it is, both ways, and
    ``inject`` slips in a line no QEMU sends, between two of QEMU's messages.

    For the interactive shell, which needs a whole real QEMU (schema, status, events)
    around the one hostile message under test.
    """

    def __init__(self, path: str, qemu_socket: str) -> None:
        self.path = path
        self.qemu_socket = qemu_socket
        self.connected = threading.Event()
        self._to_client = threading.Lock()
        self._client: socket.socket | None = None
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(path)
        self.listener.listen(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        qemu = socket.socket(socket.AF_UNIX)
        qemu.connect(self.qemu_socket)
        self._client = client
        upstream = threading.Thread(target=self._relay, args=(client, qemu, None), daemon=True)
        upstream.start()
        self.connected.set()
        self._relay(qemu, client, self._to_client)
        upstream.join(timeout=5)

    def _relay(self, source: socket.socket, sink: socket.socket, lock: Any) -> None:
        """Copy whole lines until either side hangs up, then hang up both."""
        with suppress(OSError), source.makefile("rb") as lines:
            for line in lines:
                if lock is None:
                    sink.sendall(line)
                    continue
                with lock:
                    sink.sendall(line)
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def inject(self, data: bytes) -> None:
        assert self.connected.wait(10), "no client connected to the proxy"
        assert self._client is not None
        with self._to_client:
            self._client.sendall(data)

    def close(self) -> None:
        with suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        if self._client is not None:
            with suppress(OSError):
                self._client.shutdown(socket.SHUT_RDWR)
        self.thread.join(timeout=5)

    def __enter__(self) -> InjectingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
