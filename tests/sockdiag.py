"""How many bytes sit unread in a unix socket connection, asked of the kernel (sock_diag).

Fault tests freeze QEMU or qmpsh with SIGSTOP and need to know what has reached the
other end: "the command is in QEMU's receive queue", "part of the reply is waiting
for qmpsh".  A transcript line or a sleep cannot say that; the kernel can, through
the same netlink interface ``ss -x`` uses.  Linux only, standard library only.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
UDIAG_SHOW_NAME, UDIAG_SHOW_RQLEN = 0x01, 0x10
UNIX_DIAG_NAME, UNIX_DIAG_RQLEN = 0, 4
TCP_ESTABLISHED = 1
NO_COOKIE = (0xFFFFFFFF, 0xFFFFFFFF)
HEADER = struct.Struct("=IHHII")  # nlmsghdr
REQUEST = struct.Struct("=BBHIIIII")  # unix_diag_req
REPLY = struct.Struct("=BBBBIII")  # unix_diag_msg
ATTR = struct.Struct("=HH")  # rtattr


@dataclass(frozen=True)
class Queues:
    """One connected socket's unread bytes: ``inbound`` waits for its owner to read,
    ``outbound`` (memory charged, so a little more than the bytes) for its peer."""

    inbound: int
    outbound: int


def accepted_queues(path: str) -> list[Queues]:
    """Queues of the connections a server accepted on the unix socket at ``path``.

    An accepted socket carries its listener's name, so for a ``-qmp unix:PATH`` monitor
    (one client at a time) this is QEMU's end of the connection to that client.
    """
    return [queues for name, queues in _established() if name == path]


def _established() -> list[tuple[str, Queues]]:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        show = UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN
        body = REQUEST.pack(socket.AF_UNIX, 0, 0, 1 << TCP_ESTABLISHED, 0, show, *NO_COOKIE)
        flags = NLM_F_REQUEST | NLM_F_DUMP
        nl.send(HEADER.pack(HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, flags, 1, 0) + body)
        result: list[tuple[str, Queues]] = []
        while True:
            data = nl.recv(1 << 16)
            offset = 0
            while offset < len(data):
                length, kind, _, _, _ = HEADER.unpack_from(data, offset)
                if kind == NLMSG_DONE:
                    return result
                if kind == NLMSG_ERROR:
                    raise OSError("sock_diag refused the request")
                result.append(_parse(data[offset + HEADER.size : offset + length]))
                offset += _align(length)


def _parse(message: bytes) -> tuple[str, Queues]:
    name, queues = "", Queues(0, 0)
    offset = REPLY.size
    while offset + ATTR.size <= len(message):
        length, kind = ATTR.unpack_from(message, offset)
        payload = message[offset + ATTR.size : offset + length]
        if kind == UNIX_DIAG_NAME:
            name = payload.rstrip(b"\0").decode(errors="replace")
        elif kind == UNIX_DIAG_RQLEN:
            queues = Queues(*struct.unpack("=II", payload))
        offset += _align(length)
    return name, queues


def _align(length: int) -> int:
    return (length + 3) & ~3
