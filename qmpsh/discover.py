"""Find QMP sockets on this machine for ``qmpsh --list-sockets`` and shell completion.

Completion runs this on every Tab press, so it only looks, never connects: a few
directories are walked to a small depth, only real unix sockets (``S_ISSOCK``) are
kept, and anything unreadable is skipped without a word.  The places are where QMP
sockets usually live: the current directory (printed as bare names, as the user would
type them) and ``$XDG_RUNTIME_DIR`` (libvirt's session daemon, scripts following the
XDG spec).  libvirt's own monitor sockets are not listed: libvirtd holds each one (QEMU
serves one client per monitor), so ``--list-sockets`` names running domains as
``libvirt:NAME`` instead.  ``--list-sockets ssh://HOST`` looks on another host
(``ssh_sockets``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator

RUNTIME_DEPTH = 3
MAX_ENTRIES = 20_000


def list_sockets(cwd: str | None = None, runtime_dir: str | None = None) -> list[str]:
    """Every socket found, current directory first, each real file once."""
    here = os.getcwd() if cwd is None else cwd
    runtime = os.environ.get("XDG_RUNTIME_DIR", "") if runtime_dir is None else runtime_dir
    found = [os.path.relpath(p, here) for p in _walk(here, depth=0)]
    if runtime:
        found += _walk(runtime, depth=RUNTIME_DEPTH)
    return _unique(found, here)


def _walk(top: str, depth: int) -> list[str]:
    """Sockets under ``top``, descending ``depth`` levels of real (not symlinked) dirs."""
    budget = [MAX_ENTRIES]
    return list(_scan(top, depth, budget))


def _scan(directory: str, depth: int, budget: list[int]) -> Iterator[str]:
    subdirs: list[str] = []
    for entry in _entries(directory):
        budget[0] -= 1
        if budget[0] < 0:
            return
        if _is_dir(entry):
            subdirs.append(entry.path)
        elif _is_socket(entry.path):
            yield entry.path
    if depth > 0:
        for sub in subdirs:
            yield from _scan(sub, depth - 1, budget)


def _entries(directory: str) -> list[os.DirEntry[str]]:
    """The directory's entries sorted by name, or none when it cannot be read."""
    try:
        with os.scandir(directory) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:
        return []


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """Symlinked directories are not followed, so a link loop cannot trap the walk."""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def _unique(paths: Iterable[str], cwd: str) -> list[str]:
    """Drop later spellings of a socket already listed (cwd inside the runtime dir)."""
    seen: set[str] = set()
    result = []
    for path in paths:
        if "\n" in path:  # one path per line: such a name cannot be printed
            continue
        key = os.path.realpath(os.path.join(cwd, path))
        if key not in seen:
            seen.add(key)
            result.append(path)
    return result


def print_sockets(where: str | None = None, *, timeout: float = 30.0) -> int:
    """``--list-sockets [ssh://HOST]``: paths, then running libvirt domains; none is fine."""
    if where and where.strip().startswith("ssh://"):
        from qmpsh.ssh_sockets import print_remote_sockets

        return print_remote_sockets(where, timeout=timeout)
    for path in list_sockets():
        print(path)
    from qmpsh.libvirt_targets import local_libvirt_targets

    for target in local_libvirt_targets():
        print(target)
    return 0
