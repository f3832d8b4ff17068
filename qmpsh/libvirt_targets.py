"""Which libvirt domains there are: ``libvirt:*`` expansion and ``--list-sockets``.

Also the one lazy import of libvirt-python (an optional extra) with its one-line
"how to install" error, and libvirt's messages made one printable line, both shared
with ``libvirt_monitor``.  Nothing here imports libvirt until it is called.
"""

from __future__ import annotations

import importlib
import os
import stat
import threading
from types import ModuleType

from qmpsh.errors import ConnectError
from qmpsh.libvirt_address import SYSTEM_URI, LibvirtAddress, parse_libvirt_address, uri_for

INSTALL_HINT = "pip install 'qmpsh[libvirt]'"
MAX_MESSAGE_SHOWN = 300
LIST_WAIT = 2.0  # --list-sockets gives a local libvirtd this long to list its domains
# The system libvirtd's read-only sockets: monolithic libvirtd, or the modular virtqemud.
# QMPSH_LIBVIRT_LIST=no leaves libvirt out of --list-sockets (and so out of the shells'
# Tab completion, which runs it): for hosts whose libvirtd is slow, or none of ours.
LIST_SWITCH = "QMPSH_LIBVIRT_LIST"
SYSTEM_SOCKETS = ("/run/libvirt/libvirt-sock-ro", "/run/libvirt/virtqemud-sock-ro")


def import_libvirt(address: object) -> tuple[ModuleType, ModuleType]:
    """libvirt and libvirt_qemu, or a one-line ConnectError saying how to install them."""
    try:
        libvirt = importlib.import_module("libvirt")
        libvirt_qemu = importlib.import_module("libvirt_qemu")
    except ImportError as e:
        missing = isinstance(e, ModuleNotFoundError) and e.name in ("libvirt", "libvirt_qemu")
        why = "is not installed" if missing else f"cannot be loaded ({e})"
        message = f"cannot reach {address}: libvirt-python {why}; {INSTALL_HINT}"
        raise ConnectError(message) from None
    # Without a handler libvirt prints every error on stderr too; ours are reported once.
    libvirt.registerErrorHandler(_ignore_libvirt_error, None)
    return libvirt, libvirt_qemu


def _ignore_libvirt_error(context: object, error: object) -> None:
    """libvirt's error callback: the same error is raised as libvirtError, and shown then."""


def one_line(e: object, limit: int = MAX_MESSAGE_SHOWN) -> str:
    """libvirt's message (from libvirtd, partly from QEMU) as one printable line."""
    text = " ".join(str(e).split())
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def list_running_domains(uri: str, timeout: float, *, read_only: bool = False) -> list[str]:
    """Names of the running domains at ``uri``, or ConnectError (also after ``timeout``).

    ``read_only`` uses libvirtd's read-only socket, open to every user on most hosts.
    """
    libvirt, _ = import_libvirt(f"libvirt at {uri}")
    names: list[str] = []
    failure: list[ConnectError] = []

    def ask() -> None:
        try:
            conn = libvirt.openReadOnly(uri) if read_only else libvirt.open(uri)
            try:
                flags = libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE
                names.extend(sorted(str(d.name()) for d in conn.listAllDomains(flags)))
            finally:
                conn.close()
        except libvirt.libvirtError as e:
            failure.append(ConnectError(f"cannot list libvirt domains at {uri}: {one_line(e)}"))

    asker = threading.Thread(target=ask, name="libvirt-list", daemon=True)
    asker.start()
    asker.join(timeout)
    if asker.is_alive():  # a hung libvirtd: the daemon thread is left behind
        raise ConnectError(f"libvirt at {uri} did not answer within {timeout:g} s")
    if failure:
        raise failure[0]
    return names


def expand_libvirt_targets(text: str, timeout: float = 30.0) -> list[LibvirtAddress]:
    """``libvirt:*[@URI]`` → one address per running domain there (sorted by name).

    Any other libvirt address comes back alone; no running domain is an empty list.
    """
    address = parse_libvirt_address(text)
    if not address.is_wildcard:
        return [address]
    names = list_running_domains(uri_for(address), timeout)
    return [LibvirtAddress(name, address.uri) for name in names]


def local_libvirt_targets(timeout: float = LIST_WAIT) -> list[str]:
    """Running domains of this host's system libvirtd as addresses, for ``--list-sockets``.

    Nothing (silently) without libvirt-python, without a local libvirtd socket, or
    when libvirtd does not answer within ``timeout``: a listing must never hang or
    start a daemon (``qemu:///session`` would start one, so only the system one is asked,
    read-only).  Names are ``libvirt:NAME`` when that already means the system URI.
    """
    if os.environ.get(LIST_SWITCH) == "no" or not any(map(_is_socket, SYSTEM_SOCKETS)):
        return []
    try:
        names = list_running_domains(SYSTEM_URI, timeout, read_only=True)
    except ConnectError:
        return []
    uri = None if uri_for(LibvirtAddress("")) == SYSTEM_URI else SYSTEM_URI
    return [str(LibvirtAddress(name, uri)) for name in names if name.isprintable()]


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False
