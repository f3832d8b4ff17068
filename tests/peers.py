"""Raw-socket SPICE and VNC peers, so tests can make a real QEMU see remote clients.

No spice or VNC client binary is needed: the SPICE link handshake and the RFB 3.8
start-up are small enough to speak by hand.  Closing a peer's socket is what makes
QEMU emit SPICE_DISCONNECTED / VNC_DISCONNECTED, so each peer is a context manager.

Stable API (other test modules import it):
    spice_link(host, port, channel_type, channel_id=0, connection_id=0, tls=False)
        -> SpiceChannel
    spice_session(host, port, channel_types=(1, 3), tls=False) -> list[SpiceChannel]
    make_spice_x509_dir(directory) -> Path
    vnc_connect(host, port) -> socket.socket
"""

from __future__ import annotations

import datetime
import socket
import ssl
import struct
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

SPICE_MAGIC = b"REDQ"
SPICE_VERSION = (2, 2)
CHANNEL_MAIN = 1
CHANNEL_INPUTS = 3
# Common caps: AUTH_SELECTION | AUTH_SPICE; no MINI_HEADER, so data keeps the 18-byte header.
COMMON_CAPS = (1 << 0) | (1 << 1)
AUTH_SPICE = 1
MSG_MAIN_INIT = 103
DATA_HEADER = struct.Struct("<QHII")  # serial, type, size, sub_list
LINK_HEADER = struct.Struct("<4sIII")  # magic, major, minor, size
LINK_MESS = struct.Struct("<IBBIII")  # connection_id, type, id, ncommon, nchannel, caps_offset
TIMEOUT = 10.0


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    """recv until exactly ``n`` bytes; a short read means the peer hung up."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"peer closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


class SpiceChannel:
    """One linked SPICE channel; ``session_id`` is set for the main channel."""

    def __init__(self, sock: socket.socket, channel_type: int, channel_id: int) -> None:
        self.sock = sock
        self.channel_type = channel_type
        self.channel_id = channel_id
        self.session_id: int | None = None

    @property
    def local_port(self) -> int:
        """Our end's port: what query-spice reports as the channel's ``port``."""
        return int(self.sock.getsockname()[1])

    def read_message(self) -> tuple[int, bytes]:
        """One data message (type, payload) with the full header."""
        _serial, msg_type, size, _sub = DATA_HEADER.unpack(_recv_exact(self.sock, DATA_HEADER.size))
        return msg_type, _recv_exact(self.sock, size)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SpiceChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _link_message(connection_id: int, channel_type: int, channel_id: int) -> bytes:
    body = LINK_MESS.pack(connection_id, channel_type, channel_id, 1, 0, LINK_MESS.size)
    body += struct.pack("<I", COMMON_CAPS)
    return LINK_HEADER.pack(SPICE_MAGIC, *SPICE_VERSION, len(body)) + body


def _read_link_reply(sock: socket.socket) -> bytes:
    """The server's RSA public key (DER SubjectPublicKeyInfo) from SpiceLinkReply."""
    magic, major, _minor, size = LINK_HEADER.unpack(_recv_exact(sock, LINK_HEADER.size))
    if magic != SPICE_MAGIC or major != SPICE_VERSION[0]:
        raise ConnectionError(f"not a SPICE server: {magic!r} v{major}")
    reply = _recv_exact(sock, size)
    (error,) = struct.unpack_from("<I", reply)
    if error:
        raise ConnectionError(f"SPICE link error {error}")
    return reply[4 : 4 + 162]


def _encrypted_ticket(pub_der: bytes) -> bytes:
    """An empty ticket; it must still decrypt, even with disable-ticketing=on."""
    key = serialization.load_der_public_key(pub_der)
    assert isinstance(key, rsa.RSAPublicKey)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    return key.encrypt(b"\0", oaep)


def _open(host: str, port: int, tls: bool) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    if not tls:
        return sock
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(sock)


def spice_link(
    host: str,
    port: int,
    channel_type: int,
    channel_id: int = 0,
    connection_id: int = 0,
    tls: bool = False,
) -> SpiceChannel:
    """Link one channel; the main channel also reads SPICE_MSG_MAIN_INIT for the session id."""
    sock = _open(host, port, tls)
    try:
        sock.sendall(_link_message(connection_id, channel_type, channel_id))
        pub_der = _read_link_reply(sock)
        sock.sendall(struct.pack("<I", AUTH_SPICE) + _encrypted_ticket(pub_der))
        (result,) = struct.unpack("<I", _recv_exact(sock, 4))
        if result != 0:
            raise ConnectionError(f"SPICE link result {result}")
        channel = SpiceChannel(sock, channel_type, channel_id)
        if channel_type == CHANNEL_MAIN:
            channel.session_id = _read_main_init(channel)
        return channel
    except BaseException:
        sock.close()
        raise


def _read_main_init(channel: SpiceChannel) -> int:
    msg_type, payload = channel.read_message()
    if msg_type != MSG_MAIN_INIT:
        raise ConnectionError(f"expected SPICE_MSG_MAIN_INIT, got message type {msg_type}")
    return int(struct.unpack_from("<I", payload)[0])


def spice_session(
    host: str,
    port: int,
    channel_types: Iterable[int] = (CHANNEL_MAIN, CHANNEL_INPUTS),
    *,
    tls: bool = False,
) -> list[SpiceChannel]:
    """Link main first, then the other channels into its session (connection_id)."""
    main = spice_link(host, port, CHANNEL_MAIN, tls=tls)
    channels = [main]
    assert main.session_id is not None
    try:
        for kind in channel_types:
            if kind != CHANNEL_MAIN:
                channels.append(spice_link(host, port, kind, 0, main.session_id, tls))
    except BaseException:
        for ch in channels:
            ch.close()
        raise
    return channels


def make_spice_x509_dir(directory: str | Path) -> Path:
    """A self-signed cert as QEMU's x509-dir wants it (the CA is the server cert itself)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (path / "ca-cert.pem").write_bytes(pem)
    (path / "server-cert.pem").write_bytes(pem)
    (path / "server-key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return path


def vnc_connect(host: str, port: int) -> socket.socket:
    """RFB 3.8 with security None up to ServerInit; QEMU then reports VNC_INITIALIZED."""
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    try:
        version = _recv_exact(sock, 12)
        if not version.startswith(b"RFB "):
            raise ConnectionError(f"not a VNC server: {version!r}")
        sock.sendall(b"RFB 003.008\n")
        count = _recv_exact(sock, 1)[0]
        if 1 not in _recv_exact(sock, count):
            raise ConnectionError("VNC server does not offer security type None")
        sock.sendall(b"\x01")
        if struct.unpack(">I", _recv_exact(sock, 4))[0] != 0:
            raise ConnectionError("VNC SecurityResult failed")
        sock.sendall(b"\x01")  # ClientInit: shared
        _width, _height, _fmt, name_len = struct.unpack(">HH16sI", _recv_exact(sock, 24))
        _recv_exact(sock, name_len)
        return sock
    except BaseException:
        sock.close()
        raise
