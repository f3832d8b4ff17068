"""Make a real QEMU emit events: tiny guests, failing drives, block jobs.

No OS image is needed.  A "tiny guest" is a 64 KiB ``-bios`` image written at test
time: a few real-mode instructions at F000:0000 and a far jump to them at the reset
vector.  It runs under ``-M pc -S`` and starts on ``cont``, in milliseconds.  The
byte sequences are hand-assembled; each constant says what it does.

``EventPump`` feeds a ``RawMonitor``'s events, in arrival order, into a real
``qmpsh.events.EventLog``, so tests see exactly what the shell would.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qemu import Qemu, RawMonitor

from qmpsh.events import EventLog, LoggedEvent

BIOS_SIZE = 0x10000
RESET_VECTOR = 0xFFF0
JMP_F000_0000 = bytes.fromhex("EA 00 00 00 F0")  # jmp far F000:0000 (offset, then segment)
HLT_FOREVER = bytes.fromhex("FA F4 EB FD")  # cli; hlt; jmp back to hlt

# out 0x70,0; out 0x71,0x30: write the CMOS seconds register -> RTC_CHANGE.
GUEST_RTC = bytes.fromhex("B0 00 E6 70 B0 30 E6 71") + HLT_FOREVER

# If [0:0500] != 0x1234: set it, then write 0x0F to ib700 port 0x443 (timeout 0 s).
# The flag survives the watchdog's reset in RAM, so the watchdog fires only once.
GUEST_WATCHDOG = (
    bytes.fromhex("A1 00 05 3D 34 12 74 0C C7 06 00 05 34 12 BA 43 04 B0 0F EE") + HLT_FOREVER
)

# Select LBA 0 on the primary master, one sector: ports 0x1F6, 0x1F2, 0x1F3-0x1F5, then 0x1F7.
_IDE_SETUP = bytes.fromhex("BA F6 01 B0 E0 EE BA F2 01 B0 01 EE BA F3 01 30 C0 EE 42 EE 42 EE")
# READ SECTORS (0x20).
GUEST_IDE_READ = _IDE_SETUP + bytes.fromhex("BA F7 01 B0 20 EE") + HLT_FOREVER
# WRITE SECTORS (0x30), then rep outsw 256 words from 0:0 to the data port 0x1F0.
GUEST_IDE_WRITE = (
    _IDE_SETUP + bytes.fromhex("BA F7 01 B0 30 EE BA F0 01 31 F6 B9 00 01 F3 6F") + HLT_FOREVER
)

# An empty CD drive named ide1-cd0 (its tray moves on open/close/eject).
TRAY_DRIVE = ("-drive", "if=ide,index=2,media=cdrom")
TRAY_DEVICE = "ide1-cd0"


def tiny_bios(code: bytes) -> bytes:
    """64 KiB of hlt, ``code`` at offset 0, and the reset vector jumping to it."""
    if len(code) > RESET_VECTOR:
        raise ValueError("guest code overlaps the reset vector")
    image = bytearray(b"\xf4" * BIOS_SIZE)
    image[: len(code)] = code
    image[RESET_VECTOR : RESET_VECTOR + len(JMP_F000_0000)] = JMP_F000_0000
    return bytes(image)


def write_bios(directory: Path, code: bytes, name: str = "tiny.bin") -> Path:
    path = directory / name
    path.write_bytes(tiny_bios(code))
    return path


def tiny_guest_machine(bios: Path) -> tuple[str, ...]:
    """``machine=`` for ``Qemu``: a PC that waits for ``cont`` before running ``bios``."""
    return ("-M", "pc", "-S", "-display", "none", "-nodefaults", "-bios", str(bios))


def start_tiny_guest(directory: Path, code: bytes, extra: Sequence[str] = ()) -> Qemu:
    return Qemu(extra, machine=tiny_guest_machine(write_bios(directory, code)))


def block_io_error_drive(event: str, action: str) -> list[str]:
    """A 1 MiB IDE disk whose every ``event`` (read_aio | write_aio) fails with EIO."""
    drive = (
        "if=none,id=drive0,format=raw,file.driver=blkdebug,"
        "file.image.driver=null-co,file.image.size=1M,file.image.read-zeroes=on,"
        f"file.inject-error.0.event={event},file.inject-error.0.errno=5,"
        f"rerror={action},werror={action}"
    )
    return ["-drive", drive, "-device", "ide-hd,drive=drive0,bus=ide.0,unit=0"]


BLOCK_IO_ERROR_DRIVE = block_io_error_drive  # the name the recipe notes use


def add_null_nodes(mon: RawMonitor, size: int, names: Sequence[str] = ("src", "tgt")) -> None:
    """Block nodes that need no file: reads are zeroes, writes vanish."""
    for name in names:
        mon.execute(
            "blockdev-add",
            driver="null-co",
            **{"node-name": name, "size": size, "read-zeroes": True},
        )


def add_qcow2_nodes(
    mon: RawMonitor, directory: Path, names: Sequence[str] = ("src", "tgt"), size: str = "4M"
) -> None:
    """qcow2 images made by qemu-img, as nodes (a mirror between them gets READY)."""
    for name in names:
        path = directory / f"{name}.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
        file = {"driver": "file", "filename": str(path)}
        mon.execute("blockdev-add", driver="qcow2", **{"node-name": name, "file": file})


class EventPump:
    """Reads a ``RawMonitor``'s events in order and files each in an ``EventLog``."""

    def __init__(self, mon: RawMonitor, log: EventLog | None = None) -> None:
        self.mon = mon
        self.log = log if log is not None else EventLog()
        self.seen: list[LoggedEvent] = []

    def _next(self, timeout: float) -> dict[str, Any] | None:
        """The next event (those stashed by ``execute`` first); None on EOF."""
        if self.mon.events:
            return self.mon.events.pop(0)
        while True:
            self.mon.sock.settimeout(timeout)
            try:
                msg = self.mon._read()
            except (EOFError, ConnectionResetError):  # an exiting QEMU may reset, not close
                return None
            if "event" in msg:
                return msg

    def until(self, name: str, timeout: float = 5.0) -> LoggedEvent:
        """Pump until an event called ``name`` is filed; return it."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg = self._next(left)
            if msg is None:
                raise EOFError(f"QMP closed before {name}")
            logged = self.log.append(msg)
            self.seen.append(logged)
            if logged.name == name:
                return logged
        raise TimeoutError(name)

    def until_eof(self, timeout: float = 5.0) -> list[LoggedEvent]:
        """Pump everything until QEMU closes the socket (it exited)."""
        deadline = time.monotonic() + timeout
        filed: list[LoggedEvent] = []
        while (left := deadline - time.monotonic()) > 0:
            msg = self._next(left)
            if msg is None:
                return filed
            filed.append(self.log.append(msg))
            self.seen.append(filed[-1])
        raise TimeoutError("QEMU did not exit")

    def named(self, name: str) -> list[LoggedEvent]:
        return [e for e in self.seen if e.name == name]
