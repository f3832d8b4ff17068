"""The tests' own environment: nothing of the user's gets in, nothing of ours gets out.

conftest clears the user's variables for the run and gives each test a HOME of its own;
``support.private_env`` builds every child's environment.  If either broke, a user's
``format = "pretty"`` or ``QMPSH_SOCKET`` would change what the other tests see.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
from qemu import Qemu
from support import is_user_variable, private_dirs, private_env, run_qmpsh


def test_each_test_has_a_home_of_its_own(private_home: Path) -> None:
    real_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    assert not private_home.resolve().is_relative_to(real_home.resolve())
    assert os.environ["HOME"] == str(private_home)
    present = {k for k in os.environ if is_user_variable(k)}
    assert present == set(private_dirs(private_home))  # and none of the user's


def test_private_env_drops_what_the_user_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("QMPSH_SOCKET", "QMPSH_CONFIG", "QMP_SOCKET", "NO_COLOR", "COLUMNS", "PAGER"):
        monkeypatch.setenv(name, "from the user")
    monkeypatch.setenv("PYTHONPATH", "/kept")
    env = private_env(tmp_path, EXTRA="yes")
    assert not {k for k, v in env.items() if v == "from the user"}
    assert (env["PYTHONPATH"], env["EXTRA"], env["HOME"]) == ("/kept", "yes", str(tmp_path))
    assert env["PATH"] == os.environ["PATH"]


def test_qmpsh_writes_its_cache_into_the_tests_home(qemu: Qemu, private_home: Path) -> None:
    """An argument makes qmpsh fetch the schema, and cache it under XDG_CACHE_HOME."""
    result = run_qmpsh(qemu.socket, "-c", "qom-list path=/machine")
    assert result.returncode == 0, result.stderr
    [cached] = (private_home / "cache" / "qmpsh").rglob("*.json")
    assert cached.stat().st_size > 0


def test_a_config_in_the_tests_home_is_read_so_the_users_would_be(
    qemu: Qemu, private_home: Path
) -> None:
    """Proof that HOME decides which config qmpsh reads, hence why tests move it."""
    config = private_home / "config" / "qmpsh" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('format = "raw"\n')
    assert run_qmpsh(qemu.socket, "-c", "query-name").stdout == '{"return":{}}\n'
    config.unlink()
    assert run_qmpsh(qemu.socket, "-c", "query-name").stdout == "{}\n"
