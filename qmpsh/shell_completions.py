"""``qmpsh --completions SHELL``: print the completion script shipped inside the package.

The scripts live in ``qmpsh/data/completions`` as package data, named as each shell
wants them installed (``qmpsh`` for bash-completion, ``_qmpsh`` for zsh,
``qmpsh.fish`` for fish), so they are there at run time however qmpsh was installed;
the wheel also puts them under ``share/`` for the system's shells to find.
"""

from __future__ import annotations

import sys
from importlib import resources

from qmpsh.errors import InputError

SCRIPTS = {"bash": "qmpsh", "zsh": "_qmpsh", "fish": "qmpsh.fish"}
SHELLS = tuple(SCRIPTS)


def completion_script(shell: str) -> str:
    """The script's text, for ``eval``, ``source`` or saving to a file."""
    name = SCRIPTS.get(shell)
    if name is None:
        raise InputError(f"no completions for {shell!r}: choose one of {', '.join(SHELLS)}")
    return resources.files("qmpsh").joinpath(f"data/completions/{name}").read_text("utf-8")


def print_completions(shell: str) -> int:
    sys.stdout.write(completion_script(shell))
    return 0
