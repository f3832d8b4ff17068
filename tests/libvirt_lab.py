"""A real libvirtd and transient TCG domains for the libvirt tests, stopped by PID.

``LibvirtLab`` starts ``virtlogd -d`` and ``libvirtd -d`` as root unless they already
run (then it uses them and leaves them running), waits until libvirtd answers on its
socket, and creates transient domains with ``virsh create`` from a minimal XML:
``type='qemu'`` (TCG, no KVM needed), 64 MiB, ``machine='pc'``, SPICE on 127.0.0.1,
no disk.  Names are unique per run, so a leftover from a crashed run never clashes.
At the end every domain it made is destroyed (its QEMU killed by PID if libvirt
cannot), then the daemons it started are stopped by the PIDs in their pidfiles.

Outside CI, a machine that cannot run this (not root, libvirt not installed) skips
the tests; with ``CI=true`` the same condition fails them, loudly.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import wait_until

SYSTEM_URI = "qemu:///system"
LIBVIRTD_SOCKET = "/run/libvirt/libvirt-sock"
LOG_DIR = Path("/var/log/libvirt/qemu")  # one log per domain, written through virtlogd
READY_WAIT = 30.0
STOP_WAIT = 15.0
CREATE_ATTEMPTS = 3
DOMAIN_XML = """\
<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>{emulator}</emulator>
    <graphics type='spice' autoport='yes' listen='127.0.0.1'/>
  </devices>
</domain>
"""


class LabUnavailable(RuntimeError):
    """This machine cannot run real libvirt (a failure in CI, a skip elsewhere)."""


def unavailable(reason: str) -> None:
    """Fail in CI, skip elsewhere: CI must run these tests, a laptop may not be able to."""
    if os.environ.get("CI") == "true":
        raise LabUnavailable(reason)
    pytest.skip(reason)


@dataclass
class Daemon:
    """virtlogd or libvirtd: its binary, pidfile and socket, and whether we started it."""

    binary: str
    pidfile: str
    socket: str
    pid: int | None = None
    ours: bool = False

    def running_pid(self) -> int | None:
        """The PID in the pidfile, if that process is alive and is this daemon."""
        try:
            pid = int(Path(self.pidfile).read_text().strip())
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except (OSError, ValueError):
            return None
        return pid if comm == Path(self.binary).name and alive(pid) else None

    def ensure(self) -> None:
        self.pid = self.running_pid()
        if self.pid is not None:
            return  # someone else's: used, never stopped
        done = subprocess.run([self.binary, "-d"], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LabUnavailable(f"{self.binary} -d failed: {done.stderr.strip()[-300:]}")
        if not wait_until(
            lambda: self.running_pid() is not None and answers(self.socket), READY_WAIT
        ):
            raise LabUnavailable(f"{self.binary} did not come up (no pidfile or socket)")
        self.pid, self.ours = self.running_pid(), True

    def stop(self) -> None:
        """SIGTERM to the PID we recorded, then wait for that process to be gone."""
        if not self.ours or self.pid is None:
            return
        pid, self.pid = self.pid, None
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if not wait_until(lambda: not alive(pid), STOP_WAIT):
            os.kill(pid, signal.SIGKILL)


@dataclass
class LibvirtLab:
    """The daemons (ours or already there) and the domains this lab created."""

    virtlogd: Daemon = field(
        default_factory=lambda: Daemon(
            "/usr/sbin/virtlogd", "/run/virtlogd.pid", "/run/libvirt/virtlogd-sock"
        )
    )
    libvirtd: Daemon = field(
        default_factory=lambda: Daemon("/usr/sbin/libvirtd", "/run/libvirtd.pid", LIBVIRTD_SOCKET)
    )
    domains: dict[str, int] = field(default_factory=dict)  # name -> QEMU pid
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="qmpsh-libvirt-")))
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def start(self) -> LibvirtLab:
        if os.geteuid() != 0:
            unavailable("the libvirt tests start libvirtd and need root")
        for tool in (self.virtlogd.binary, self.libvirtd.binary, "/usr/bin/virsh"):
            if not os.path.exists(tool):
                unavailable(f"{tool} is missing (apt-get install libvirt-daemon-system)")
        if shutil.which("qemu-system-x86_64") is None:
            unavailable("qemu-system-x86_64 is missing")
        self.virtlogd.ensure()
        self.libvirtd.ensure()
        if not wait_until(lambda: virsh("version").returncode == 0, READY_WAIT):
            raise LabUnavailable("libvirtd does not answer `virsh version`")
        return self

    def new_name(self, label: str = "vm") -> str:
        """A domain name no other run (and no other test of this one) uses."""
        return f"qmpsh-{label}-{os.getpid()}-{next(self._names)}"

    def create_domain(self, label: str = "vm", name: str | None = None) -> str:
        """A running transient domain, named ``name`` or uniquely from ``label``."""
        name = name or self.new_name(label)
        emulator = shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"
        xml = self.dir / f"{name}.xml"
        xml.write_text(DOMAIN_XML.format(name=name, emulator=emulator))
        for _ in range(CREATE_ATTEMPTS):
            done = virsh("create", str(xml))
            # libvirt's SPICE autoport checks a port is free, then QEMU binds it: another
            # process on this busy machine may take it in between.  Only that is retried.
            if done.returncode == 0 or "binding socket" not in done.stderr:
                break
        if done.returncode != 0:
            (LOG_DIR / f"{name}.log").unlink(missing_ok=True)
            raise LabUnavailable(f"virsh create failed: {done.stderr.strip()[-300:]}")
        self.domains[name] = qemu_pid(name)
        return name

    def destroy(self, name: str) -> None:
        """``virsh destroy``; the QEMU is killed by PID if libvirt did not stop it."""
        virsh("destroy", name)
        pid = self.domains.pop(name, 0)
        if pid and not wait_until(lambda: not alive(pid), STOP_WAIT):
            os.kill(pid, signal.SIGKILL)
        (LOG_DIR / f"{name}.log").unlink(missing_ok=True)  # its name is ours alone

    def stop(self) -> None:
        for name in list(self.domains):
            self.destroy(name)
        self.libvirtd.stop()
        self.virtlogd.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def virsh(*args: str) -> subprocess.CompletedProcess[str]:
    command = ["virsh", "-q", "-c", SYSTEM_URI, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def domain_state(name: str) -> str:
    """``running``, ``paused``, … or '' when libvirt does not know the domain."""
    done = virsh("domstate", name)
    return done.stdout.strip() if done.returncode == 0 else ""


def domain_log(name: str) -> str:
    """libvirt's log of the domain (where it records taints such as custom-monitor)."""
    try:
        return (LOG_DIR / f"{name}.log").read_text(errors="replace")
    except OSError:
        return ""


def qemu_pid(name: str) -> int:
    try:
        return int(Path(f"/run/libvirt/qemu/{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return 0


def alive(pid: int) -> bool:
    """False once ``pid`` has exited, even as a zombie nobody reaps (daemons fork away)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


def answers(path: str) -> bool:
    """True when a unix socket accepts a connection (the daemon is serving)."""
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True
