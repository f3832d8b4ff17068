"""The interactive shell against a real QEMU with one hostile message slipped in.

The FAKE part is only ``InjectingProxy``'s injected line (no QEMU sends it); the shell
around it talks to a real QEMU through the proxy (schema, status, events), in a real
pty, as a person would see it.
"""

from __future__ import annotations

import io
from pathlib import Path

from fake_qmp_server import InjectingProxy
from qemu import Qemu
from test_e2e_pty import PROMPT, leave, spawn_qmpsh

from qmpsh.wire import MAX_DEPTH

DEEP_EVENT = b'{"event": "HOSTILE", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"


def test_a_deep_event_at_the_prompt_is_reported_not_a_dead_reader(tmp_path: Path) -> None:
    """Before, the reader thread died with a traceback on the screen and the shell went on
    as if connected: every command then waited out its timeout.  Now the loss is said at
    once, and a command says the connection is gone."""
    with Qemu() as qemu, InjectingProxy(str(tmp_path / "proxy.sock"), qemu.socket) as proxy:
        child = spawn_qmpsh([proxy.path], tmp_path)
        seen = io.StringIO()
        child.logfile_read = seen
        try:
            child.expect(PROMPT)
            proxy.inject(DEEP_EVENT)
            child.expect(f"nested more than {MAX_DEPTH} levels deep")
            child.expect("reconnect")  # the hint that comes with a lost connection
            child.send("query-status\r")
            child.expect(f"nested more than {MAX_DEPTH} levels deep")  # at once, not a timeout
            child.expect(PROMPT)
        finally:
            leave(child)
    assert "Traceback" not in seen.getvalue()
    assert child.exitstatus == 3, seen.getvalue()[-2000:]
