"""The schema cache is keyed by what identifies a build's schema, not just its version.

Debian's ``qemu-system-x86_64`` and ``qemu-system-x86_64-microvm`` greet with the
same version and package (and ``query-target`` says x86_64 for both), yet the
microvm build has no SPICE or TPM commands.  Keyed by version alone, whichever ran
first decided what the other was believed to offer.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import qemu as qemu_module
from qemu import Qemu
from support import private_env

QMPSH = [sys.executable, "-m", "qmpsh"]
MICROVM = "qemu-system-x86_64-microvm"  # shipped with qemu-system-x86 (see .ci/run)


def test_the_key_follows_the_command_set_not_its_order() -> None:
    from qmpsh.schema import cache_key

    full = [{"name": "query-status"}, {"name": "query-spice"}]
    assert cache_key((7, 2, 0), "pkg", full) == cache_key((7, 2, 0), "pkg", full[::-1])
    assert cache_key((7, 2, 0), "pkg", full) != cache_key((7, 2, 0), "pkg", full[:1])
    assert cache_key((7, 2, 0), "pkg", full) != cache_key((7, 2, 1), "pkg", full)


def help_for(tmp_path: Path, socket: str, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*QMPSH, socket, "-c", f"help {name}"],
        capture_output=True,
        text=True,
        env=private_env(tmp_path),  # one cache dir for both runs
        timeout=60,
    )


def test_two_builds_of_one_version_keep_their_own_schemas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qemu_module, "QEMU", MICROVM)
    micro = Qemu()
    monkeypatch.undo()
    try:
        with Qemu() as full:
            first = help_for(tmp_path, micro.socket, "query-spice")
            second = help_for(tmp_path, full.socket, "query-spice")
    finally:
        micro.stop()
    assert first.returncode == 2 and "no command or event named 'query-spice'" in first.stderr
    assert second.returncode == 0, second.stderr
    assert "mouse-mode" in second.stdout
    assert len(list((tmp_path / "cache" / "qmpsh" / "schema").glob("*.json"))) == 2
