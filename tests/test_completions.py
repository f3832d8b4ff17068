"""Shell completions and socket discovery, exercised through the real shells.

bash is driven the way bash itself calls a completion function (COMP_WORDS,
COMP_CWORD, then COMPREPLY); zsh through an interactive zsh on a pty, pressing Tab;
fish through ``complete -C``.  Socket completion runs the real ``qmpsh
--list-sockets`` against real unix sockets made in a temporary XDG_RUNTIME_DIR.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from support import QMPSH, private_env

from qmpsh import discover
from qmpsh.options import build_parser
from qmpsh.shell_completions import SCRIPTS, SHELLS, completion_script

ROOT = Path(__file__).resolve().parent.parent
SOURCE_FILES = {"bash": "qmpsh.bash", "zsh": "_qmpsh", "fish": "qmpsh.fish"}
PACKAGE_DIR = ROOT / "qmpsh" / "data" / "completions"


# --- helpers -------------------------------------------------------------------------


def make_socket(path: Path) -> Path:
    """Bind a unix socket at ``path`` (by relative name: sun_path is short) and leave it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = os.getcwd()
    os.chdir(path.parent)
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(path.name)
    finally:
        os.chdir(old)
    return path


@pytest.fixture
def place() -> Iterator[Path]:
    """A short temp dir with an empty ``cwd/`` and a ``run/`` (XDG_RUNTIME_DIR)."""
    with tempfile.TemporaryDirectory(prefix="qc") as tmp:
        base = Path(tmp)
        (base / "cwd").mkdir()
        (base / "run").mkdir()
        yield base


@pytest.fixture(scope="module")
def bin_dir() -> Iterator[Path]:
    """A ``qmpsh`` on PATH that runs this checkout with this interpreter."""
    with tempfile.TemporaryDirectory(prefix="qcbin") as tmp:
        script = Path(tmp) / "qmpsh"
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m qmpsh "$@"\n')
        script.chmod(0o755)
        yield Path(tmp)


def shell_env(bin_dir: Path, place: Path) -> dict[str, str]:
    """The shells' HOME is ``place`` (no rc file of the user's), ``run/`` their runtime dir.

    The host's libvirt domains are not this test's: ``QMPSH_LIBVIRT_LIST=no``.
    """
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    return private_env(place, PATH=path, PYTHONPATH=str(ROOT), QMPSH_LIBVIRT_LIST="no")


def sockets(cwd: str, runtime_dir: str) -> list[str]:
    """``list_sockets`` of a test's own directories."""
    return discover.list_sockets(cwd=cwd, runtime_dir=runtime_dir)


def option_strings() -> list[str]:
    return [s for a in build_parser()._actions for s in a.option_strings]


def parser_choices(dest: str) -> tuple[str, ...]:
    [action] = [a for a in build_parser()._actions if a.dest == dest]
    assert isinstance(action, argparse.Action) and action.choices is not None
    return tuple(str(c) for c in action.choices)


# --- the files ------------------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_completions_dir_matches_package_data(shell: str) -> None:
    shipped = (PACKAGE_DIR / SCRIPTS[shell]).read_text()
    checked_in = (ROOT / "completions" / SOURCE_FILES[shell]).read_text()
    assert checked_in == shipped, (
        f"completions/{SOURCE_FILES[shell]} differs from qmpsh/data/completions/"
        f"{SCRIPTS[shell]} (the canonical copy): copy it over"
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_every_option_of_the_parser_is_completed(shell: str) -> None:
    text = completion_script(shell)
    for option in option_strings():
        if shell == "fish":
            flag = f"-s {option[1:]}" if len(option) == 2 else f"-l {option[2:]}"
            assert re.search(rf"{flag}\b", text), option
        else:
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), option


@pytest.mark.parametrize("shell", SHELLS)
def test_option_values_match_the_parser(shell: str) -> None:
    text = completion_script(shell)
    assert tuple(SHELLS) == parser_choices("completions")
    for dest in ("format", "color", "completions"):
        values = parser_choices(dest)
        assert " ".join(values) in text or "' ".join(values) in text, (dest, values)


def test_cli_prints_each_script_without_an_address(tmp_path: Path) -> None:
    for shell in SHELLS:
        result = subprocess.run(
            [*QMPSH, "--completions", shell],
            capture_output=True,
            text=True,
            env=private_env(tmp_path),
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == (PACKAGE_DIR / SCRIPTS[shell]).read_text()


def test_cli_rejects_an_unknown_shell() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qmpsh", "--completions", "tcsh"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "invalid choice: 'tcsh'" in result.stderr
    assert "Traceback" not in result.stderr


# --- discovery --------------------------------------------------------------------


def test_finds_sockets_to_bounded_depth_only(place: Path) -> None:
    run = place / "run"
    near = make_socket(run / "a" / "b" / "c" / "qmp.sock")  # three levels down
    make_socket(run / "a" / "b" / "c" / "d" / "deep.sock")  # four: too deep
    top = make_socket(run / "top.sock")
    (run / "file.sock").write_text("not a socket")
    os.mkfifo(run / "fifo")
    found = sockets(str(place / "cwd"), str(run))
    assert found == [str(top), str(near)]  # shallower first


def test_current_directory_is_listed_by_name_and_not_recursed(place: Path) -> None:
    make_socket(place / "cwd" / "here.sock")
    make_socket(place / "cwd" / "sub" / "below.sock")
    assert sockets(str(place / "cwd"), "") == ["here.sock"]


def test_a_socket_seen_twice_is_listed_once(place: Path) -> None:
    make_socket(place / "run" / "qmp.sock")
    (place / "run" / "link.sock").symlink_to(place / "run" / "qmp.sock")
    found = sockets(str(place / "run"), str(place / "run"))
    assert found == ["link.sock"]


def test_symlink_loops_and_unreadable_dirs_are_skipped(
    place: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = place / "run"
    (run / "loop").symlink_to(run)
    make_socket(run / "locked" / "hidden.sock")
    visible = make_socket(run / "open" / "qmp.sock")
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if os.path.basename(path) == "locked":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(discover.os, "scandir", scandir)
    assert sockets(str(place / "cwd"), str(run)) == [str(visible)]


def test_list_sockets_option_needs_no_address(place: Path, bin_dir: Path) -> None:
    sock = make_socket(place / "run" / "vm" / "qmp.sock")
    make_socket(place / "cwd" / "local.sock")
    result = subprocess.run(
        ["qmpsh", "--list-sockets"],
        capture_output=True,
        text=True,
        env=shell_env(bin_dir, place),
        cwd=place / "cwd",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["local.sock", str(sock)]


# --- bash -------------------------------------------------------------------------


def bash_complete(words: list[str], place: Path, bin_dir: Path) -> list[str]:
    """COMPREPLY for the command line ``words`` (the last one is being completed)."""
    bash = shutil.which("bash")
    assert bash is not None, "bash is required to test the bash completion"
    script = (
        f"source {ROOT / 'completions' / 'qmpsh.bash'}\n"
        'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _qmpsh\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(
        [bash, "--norc", "-c", script, "bash", *words],
        capture_output=True,
        text=True,
        env=shell_env(bin_dir, place),
        cwd=place / "cwd",
    )
    assert result.returncode == 0 and not result.stderr, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_bash_completes_options(place: Path, bin_dir: Path) -> None:
    assert bash_complete(["qmpsh", "--for"], place, bin_dir) == ["--format"]
    assert set(bash_complete(["qmpsh", "--no-"], place, bin_dir)) == {
        "--no-validate",
        "--no-pane",
        "--no-pager",
    }


def test_bash_completes_option_values(place: Path, bin_dir: Path) -> None:
    assert bash_complete(["qmpsh", "--format", "j"], place, bin_dir) == ["json"]
    assert bash_complete(["qmpsh", "--format="], place, bin_dir) == [
        "--format=pretty",
        "--format=json",
        "--format=raw",
    ]
    assert bash_complete(["qmpsh", "--color", "=", "n"], place, bin_dir) == ["never"]
    assert bash_complete(["qmpsh", "--completions", ""], place, bin_dir) == ["bash", "zsh", "fish"]
    assert bash_complete(["qmpsh", "-c", ""], place, bin_dir) == []


def test_bash_completes_discovered_sockets_for_the_address(place: Path, bin_dir: Path) -> None:
    sock = make_socket(place / "run" / "vms" / "web" / "qmp.sock")
    (place / "run" / "vms" / "notes.txt").write_text("")
    assert bash_complete(["qmpsh", ""], place, bin_dir) == [str(sock)]
    vms = place / "run" / "vms"
    assert bash_complete(["qmpsh", "-q", f"{vms}/w"], place, bin_dir) == [str(sock), f"{vms}/web"]
    assert bash_complete(["qmpsh", f"{vms}/n"], place, bin_dir) == [f"{vms}/notes.txt"]
    assert bash_complete(["qmpsh", str(sock)[:-3]], place, bin_dir) == [str(sock)]


def test_bash_completes_files_for_file_options(place: Path, bin_dir: Path) -> None:
    make_socket(place / "run" / "qmp.sock")
    (place / "cwd" / "script.qmp").write_text("query-status\n")
    for option in ("-f", "--file", "-l", "--transcript", "--events", "--config"):
        assert bash_complete(["qmpsh", option, "scr"], place, bin_dir) == ["script.qmp"]
        assert bash_complete(["qmpsh", option, ""], place, bin_dir) == ["script.qmp"]
    assert bash_complete(["qmpsh", "--events=s"], place, bin_dir) == ["--events=script.qmp"]
    assert bash_complete(["qmpsh", "--launch", "--", "s"], place, bin_dir) == ["script.qmp"]


# --- zsh --------------------------------------------------------------------------

needs_zsh = pytest.mark.skipif(
    shutil.which("zsh") is None, reason="zsh is not installed (apt-get install zsh)"
)


@needs_zsh
def test_zsh_script_loads_and_registers() -> None:
    script = (
        f"autoload -U compinit; compinit -u -D; source {ROOT / 'completions' / '_qmpsh'}\n"
        "print -r -- ${_comps[qmpsh]}"
    )
    result = subprocess.run(["zsh", "-f", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr, result.stderr
    assert result.stdout.strip() == "_qmpsh"


@contextlib.contextmanager
def interactive_zsh(place: Path, bin_dir: Path) -> Iterator[pexpect.spawn]:
    env = shell_env(bin_dir, place)
    env["TERM"] = "dumb"
    zsh = pexpect.spawn(
        "zsh", ["-f", "-i"], env=env, cwd=str(place / "cwd"), encoding="utf-8", timeout=20
    )
    try:
        zsh.sendline(
            "PS1='READY> '; autoload -U compinit; compinit -u -D; "
            f"source {ROOT / 'completions' / '_qmpsh'}"
        )
        zsh.expect("READY> ")
        zsh.expect("READY> ")
        yield zsh
    finally:
        zsh.close(force=True)


def zsh_tab(zsh: pexpect.spawn, typed: str) -> str:
    """The command line after typing ``typed`` and Tab (Ctrl-A/E wrap it in an echo)."""
    zsh.send(typed + "\t")
    zsh.send("\x01echo LINE:\x05\r")
    zsh.expect(r"\nLINE:([^\r\n]*)\r\n")
    line = str(zsh.match.group(1))
    zsh.expect("READY> ")
    return line


@needs_zsh
def test_zsh_completes_options_values_and_sockets(place: Path, bin_dir: Path) -> None:
    sock = make_socket(place / "run" / "vm" / "qmp.sock")
    with interactive_zsh(place, bin_dir) as zsh:
        assert zsh_tab(zsh, "qmpsh --for").rstrip() in ("qmpsh --format", "qmpsh --format=")
        assert zsh_tab(zsh, "qmpsh --format=j") == "qmpsh --format=json"
        assert zsh_tab(zsh, "qmpsh --color=al") == "qmpsh --color=always"
        assert zsh_tab(zsh, "qmpsh --completions=fi") == "qmpsh --completions=fish"
        assert zsh_tab(zsh, "qmpsh ") == f"qmpsh {sock}"


# --- fish -------------------------------------------------------------------------

needs_fish = pytest.mark.skipif(
    shutil.which("fish") is None, reason="fish is not installed (apt-get install fish)"
)


def fish_complete(line: str, place: Path, bin_dir: Path) -> list[str]:
    script = f"source {ROOT / 'completions' / 'qmpsh.fish'}; complete -C {line!r}"
    result = subprocess.run(
        ["fish", "--no-config", "-c", script],
        capture_output=True,
        text=True,
        env=shell_env(bin_dir, place),
        cwd=place / "cwd",
    )
    assert result.returncode == 0 and not result.stderr, result.stderr
    return [row.split("\t")[0] for row in result.stdout.splitlines()]


@needs_fish
def test_fish_completes_options_and_values(place: Path, bin_dir: Path) -> None:
    assert fish_complete("qmpsh --for", place, bin_dir) == ["--format"]
    assert fish_complete("qmpsh --format ", place, bin_dir) == ["json", "pretty", "raw"]
    assert fish_complete("qmpsh --color=ne", place, bin_dir) == ["--color=never"]


@needs_fish
def test_fish_completes_sockets_and_files(place: Path, bin_dir: Path) -> None:
    sock = make_socket(place / "run" / "vm" / "qmp.sock")
    (place / "cwd" / "script.qmp").write_text("")
    assert fish_complete("qmpsh ", place, bin_dir) == [str(sock), "script.qmp"]
    assert fish_complete("qmpsh -f s", place, bin_dir) == ["script.qmp"]
    assert fish_complete("qmpsh --launch ", place, bin_dir) == ["script.qmp"]
