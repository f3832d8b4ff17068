"""``qmpsh --list-sockets ssh://HOST``: the remote's QMP sockets, found by one ssh command.

The remote looks in the same places as ``discover`` does here: the login directory
(where a remote shell starts, as the current directory is here), ``$XDG_RUNTIME_DIR``
three levels deep, and libvirt's system monitors.  The snippet is fed to ``sh -s`` on
standard input, so it runs in a POSIX shell whatever the user's login shell is, and
uses only POSIX ``find`` (``-path … -prune`` for the depth, no ``-maxdepth``) and
``printf``.  Symlinks are not followed.

What comes back is untrusted: records are NUL-separated (a name may hold a newline),
at most ``MAX_LISTING`` bytes are read, and only absolute, printable paths that ssh
could forward are printed, each once, as ``ssh://`` addresses.
"""

from __future__ import annotations

import os
import posixpath
import time
from typing import TYPE_CHECKING

from qmpsh.errors import ConnectError
from qmpsh.ssh_tunnel import SshAddress, spawn_ssh, ssh_argv, ssh_failure

if TYPE_CHECKING:
    import subprocess

# D<dir> starts the walk of <dir>; then ./relative records belong to it; /absolute stand alone.
REMOTE_SNIPPET = r"""
walk() (
  cd "$1" 2>/dev/null || exit 0
  printf 'D%s\000' "$1"
  find . -path "$2" -prune -o -type s -exec printf '%s\000' {} + 2>/dev/null
)
walk "$HOME" './*/*'
if [ -n "${XDG_RUNTIME_DIR:-}" ]; then walk "$XDG_RUNTIME_DIR" './*/*/*/*/*'; fi
for f in /var/lib/libvirt/qemu/domain-*/monitor.sock; do
  if [ -S "$f" ]; then printf '%s\000' "$f"; fi
done
exit 0
"""
MAX_LISTING = 1 << 20  # bytes read from the remote: it cannot make us hold more
MAX_LISTED = 20_000
SSH_ERROR_STATUS = 255  # what ssh exits with when ssh itself failed


def remote_sockets(remote: SshAddress, *, timeout: float) -> list[str]:
    """The remote's socket paths, after one ssh round trip; ConnectError if ssh fails."""
    import subprocess
    import tempfile

    with tempfile.TemporaryFile() as err:
        proc = spawn_ssh(
            ssh_argv(remote, command="sh -s"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
        )
        try:
            output, status = _exchange(proc, REMOTE_SNIPPET.encode(), timeout, remote)
        finally:
            _stop(proc)
        if status == SSH_ERROR_STATUS or (status != 0 and not output):
            err.seek(0)
            raise ssh_failure(remote, status, err.read(4096).decode("utf-8", "replace"))
    return parse_listing(output)


def _exchange(
    proc: subprocess.Popen[bytes], snippet: bytes, timeout: float, remote: SshAddress
) -> tuple[bytes, int]:
    """Send the snippet, read at most MAX_LISTING bytes back, within ``timeout``."""
    import select
    import subprocess

    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(snippet)
        proc.stdin.close()
    except BrokenPipeError:  # ssh already gone: its status and stderr say why
        pass
    deadline = time.monotonic() + timeout
    received = bytearray()
    fd = proc.stdout.fileno()
    while len(received) <= MAX_LISTING:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise ConnectError(f"no answer from {remote.origin} within {timeout:g} s")
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        received += chunk
    try:
        status = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:  # output ended but ssh lingers: the listing is whole
        status = 0
    return bytes(received[:MAX_LISTING]), status


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()  # by PID; it is ours and has nothing to finish
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


def parse_listing(output: bytes) -> list[str]:
    """Absolute socket paths from the snippet's NUL-separated records, each once."""
    records = output.split(b"\0")
    if output and not output.endswith(b"\0"):
        records = records[:-1]  # cut short at MAX_LISTING: the last one is incomplete
    found: list[str] = []
    seen: set[str] = set()
    current: str | None = None
    for record in records:
        text = _text(record)
        if text is None:
            continue
        if text.startswith("D"):
            current = text[1:] if text[1:].startswith("/") else None
            continue
        path = _resolve(text, current)
        if path is not None and path not in seen and len(found) < MAX_LISTED:
            seen.add(path)
            found.append(path)
    return found


def _text(record: bytes) -> str | None:
    try:
        text = record.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text and text.isprintable() else None


def _resolve(record: str, current: str | None) -> str | None:
    """``./rel`` under the current walk, or an absolute path; None when unusable."""
    if record.startswith("./") and current is not None:
        path = posixpath.normpath(posixpath.join(current, record[2:]))
    elif record.startswith("/"):
        path = posixpath.normpath(record)
    else:
        return None
    return None if ":" in path else path  # ssh -L could not forward it


def print_remote_sockets(text: str, *, timeout: float = 30.0) -> int:
    """One ``ssh://`` address per socket found; nothing found is not an error."""
    from qmpsh.ssh_tunnel import parse_ssh_address

    remote = parse_ssh_address(text, with_path=False)
    for path in remote_sockets(remote, timeout=timeout):
        print(remote.origin + path)
    return 0
