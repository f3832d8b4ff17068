"""What ``pip install`` gives a user: the commands, and the completion files where shells look.

The wheel is built from a copy of the tree in a temp dir (so concurrent runs and the
working tree never share ``build/``), without build isolation (nothing is
downloaded), and installed without dependencies into a fresh venv that borrows this
environment's prompt_toolkit, pygments and rich.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from qmpsh import __version__

ROOT = Path(__file__).resolve().parent.parent
TREE = ("pyproject.toml", "README.md", "qmpsh", "completions")
DATA_FILES = {
    "share/bash-completion/completions/qmpsh": "qmpsh.bash",
    "share/zsh/site-functions/_qmpsh": "_qmpsh",
    "share/fish/vendor_completions.d/qmpsh.fish": "qmpsh.fish",
}


def check(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd, env=env)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def copy_tree(dest: Path) -> None:
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "*.pyc")
    dest.mkdir()
    for name in TREE:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=junk)
        else:
            shutil.copy2(src, dest / name)


@pytest.fixture(scope="module")
def venv() -> Iterator[Path]:
    """A venv with the freshly built wheel installed; its prefix."""
    with tempfile.TemporaryDirectory(prefix="qmpsh-pkg") as tmp:
        base = Path(tmp)
        copy_tree(base / "src")
        pip_quiet = ["--quiet", "--disable-pip-version-check", "--no-input"]
        check(
            [sys.executable, "-m", "pip", "wheel", *pip_quiet, "--no-deps",
             "--no-build-isolation", "-w", str(base / "dist"), "."],
            cwd=base / "src",
        )  # fmt: skip
        [wheel] = (base / "dist").glob("qmpsh-*.whl")
        check([sys.executable, "-m", "venv", "--system-site-packages", str(base / "venv")])
        python = base / "venv" / "bin" / "python"
        check([str(python), "-m", "pip", "install", *pip_quiet, "--no-deps", str(wheel)])
        yield base / "venv"


def run_in(venv: Path, *cmd: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "QMPSH_SOCKET")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return check(list(cmd), env=env, cwd=venv)


def test_the_wheel_not_the_checkout_is_imported(venv: Path) -> None:
    where = run_in(venv, str(venv / "bin" / "python"), "-c", "import qmpsh; print(qmpsh.__file__)")
    assert Path(where.strip()).is_relative_to(venv)


def test_console_script_and_module_report_the_version(venv: Path) -> None:
    assert run_in(venv, str(venv / "bin" / "qmpsh"), "--version").strip() == f"qmpsh {__version__}"
    module = run_in(venv, str(venv / "bin" / "python"), "-m", "qmpsh", "--version")
    assert module.strip() == f"qmpsh {__version__}"


def test_installed_command_prints_completions(venv: Path) -> None:
    for shell, name in (("bash", "qmpsh.bash"), ("zsh", "_qmpsh"), ("fish", "qmpsh.fish")):
        printed = run_in(venv, str(venv / "bin" / "qmpsh"), "--completions", shell)
        assert printed == (ROOT / "completions" / name).read_text()


def test_completion_files_are_installed_where_shells_look(venv: Path) -> None:
    for installed, name in DATA_FILES.items():
        path = venv / installed
        assert path.is_file(), f"{installed} missing from the install prefix"
        assert path.read_text() == (ROOT / "completions" / name).read_text()


def test_a_users_type_checker_sees_the_library_types(venv: Path) -> None:
    """``py.typed`` ships, so mypy types ``qmpsh.connect`` instead of calling it untyped."""
    assert (next(venv.glob("lib/python*/site-packages/qmpsh")) / "py.typed").is_file()
    script = venv / "user_script.py"
    script.write_text("import qmpsh\n\nqmpsh.connect(1)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    python = str(venv / "bin" / "python")  # whose site-packages mypy searches for qmpsh
    # mypy itself from the test's interpreter: the venv borrows only the base's packages,
    # and in CI the tests run from a venv of their own
    cmd = [sys.executable, "-m", "mypy", "--no-incremental", "--strict"]
    cmd += ["--python-executable", python, str(script)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=venv, env=env)
    assert 'Argument 1 to "connect" has incompatible type "int"' in result.stdout, result.stdout
