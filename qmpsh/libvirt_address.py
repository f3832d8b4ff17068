"""``libvirt:DOMAIN`` and ``libvirt:DOMAIN@URI``: a libvirt-managed QEMU, by name or UUID.

This module only parses; it never imports libvirt, so every run can afford it.
The URI is kept as typed (``None`` when there was none) so messages show what the
user wrote; ``uri_for`` decides which libvirt to ask: the one given, else
``$LIBVIRT_DEFAULT_URI``, else ``qemu:///system`` (where libvirt keeps the VMs of a
host; the per-user ``qemu:///session`` must be named).

The ``@`` that starts the URI is the first one followed by a URI scheme
(``qemu:``, ``qemu+ssh:``), so a domain name holding ``@`` still parses, and so
does a URI with a user in it (``libvirt:web1@qemu+ssh://root@host/system``).
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from qmpsh.errors import InputError

PREFIX = "libvirt:"
SYSTEM_URI = "qemu:///system"
WILDCARD = "*"
_URI_START = re.compile(r"@(?=[A-Za-z][A-Za-z0-9+.-]*:)")


class LibvirtAddress(NamedTuple):
    """A domain (name or UUID, or ``*`` for every running one) at a libvirt URI."""

    domain: str
    uri: str | None = None

    def __str__(self) -> str:
        where = f"@{self.uri}" if self.uri else ""
        return f"{PREFIX}{self.domain}{where}"

    @property
    def is_wildcard(self) -> bool:
        return self.domain == WILDCARD


def is_libvirt_address(text: str) -> bool:
    return text.strip().startswith(PREFIX)


def parse_libvirt_address(text: str) -> LibvirtAddress:
    """Split ``libvirt:DOMAIN[@URI]``; InputError (with a column) when a part is empty."""
    body = text.strip()[len(PREFIX) :]
    match = _URI_START.search(body)
    domain, uri = (body[: match.start()], body[match.end() :]) if match else (body, None)
    if not domain:
        raise InputError("libvirt: needs a domain: libvirt:NAME or libvirt:NAME@URI", 9)
    if "/" in domain:  # libvirt refuses such names; it is likely a URI missing its '@'
        raise InputError(f"bad libvirt domain name {domain!r}: write libvirt:NAME@URI", 9)
    return LibvirtAddress(domain, uri or None)


def uri_for(address: LibvirtAddress) -> str:
    """The libvirt URI to open for ``address``."""
    return address.uri or os.environ.get("LIBVIRT_DEFAULT_URI") or SYSTEM_URI
