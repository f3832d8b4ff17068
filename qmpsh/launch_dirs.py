"""``--launch``'s temp dirs and QEMU's lifetime: nothing of ours outlives qmpsh for long.

A ``kill -9`` (or the OOM killer) on qmpsh runs no cleanup, so it cannot be the
cleanup that stops QEMU.  Two kernel mechanisms do it instead:

- QEMU is started with ``PR_SET_PDEATHSIG``: the kernel sends it SIGTERM when the
  thread that forked it dies.  ``launch_qemu`` runs on the main thread, which lives
  exactly as long as qmpsh, so that is when QEMU is told to go.
- Each temp dir is ``flock``-ed by qmpsh and by QEMU (which inherits the descriptor);
  the lock lasts while either process lives.  The next ``--launch`` removes every
  ``qmpsh-launch-*`` dir of ours whose lock it can take: nobody holds it any more.

A dir is created as ``qmpsh-starting-*`` and renamed once locked, so a sweep running
at the same moment never sees an unlocked dir that is about to be used.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

PREFIX = "qmpsh-launch-"
STARTING_PREFIX = "qmpsh-starting-"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def make_locked() -> tuple[Path, int]:
    """A fresh private (0700) dir named ``qmpsh-launch-*``, and the fd holding its lock."""
    starting = tempfile.mkdtemp(prefix=STARTING_PREFIX)
    fd = os.open(starting, DIR_FLAGS)
    fcntl.flock(fd, fcntl.LOCK_EX)  # new and unknown to anyone: this cannot block
    final = os.path.join(
        os.path.dirname(starting), PREFIX + os.path.basename(starting)[len(STARTING_PREFIX) :]
    )
    if os.path.lexists(final):  # a clash of random names: keep the name we have
        return Path(starting), fd
    os.rename(starting, final)
    return Path(final), fd


def sweep_stale(base: str | None = None) -> list[str]:
    """Remove the ``qmpsh-launch-*`` dirs of ours that no live process holds; return them."""
    base = base or tempfile.gettempdir()
    try:
        with os.scandir(base) as entries:
            names = [e.name for e in entries if e.name.startswith(PREFIX)]
    except OSError:
        return []
    removed = []
    for name in names:
        path = os.path.join(base, name)
        with contextlib.suppress(OSError):
            if _stale(path):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def _stale(path: str) -> bool:
    """Ours, unlocked, and no QEMU answering on its socket (older qmpsh took no lock)."""
    fd = os.open(path, DIR_FLAGS)  # a symlink planted under our prefix fails here
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # qmpsh or its QEMU still lives
        return not _listening(os.path.join(path, "qmp.sock"))
    finally:
        os.close(fd)


def _listening(socket_path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(socket_path)
        except OSError:
            return False
        return True


def die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` that asks the kernel to SIGTERM the child when we die.

    libc is looked up here, in the parent: the child, between fork and exec, makes
    one system call and no allocation.  If qmpsh died before that call (the signal
    would then never come), the child gives up at once.
    """
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the temp-dir lock still works
        return lambda: None
    parent = os.getpid()
    term = int(signal.SIGTERM)

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, term, 0, 0, 0)
        if os.getppid() != parent:
            os.write(2, b"qmpsh exited before QEMU started\n")  # into qemu.stderr
            os._exit(1)

    return preexec
