"""Issue 11 items 3, 6 and 18 at a real terminal: what the completion menu offers.

qmpsh runs in a pty against a ``-machine pc`` QEMU with an IDE CD-ROM whose qdev
id is ``cdrom0`` and whose backend is ``cd0``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from qemu import Qemu
from test_e2e_pty import PROMPT, leave, spawn_qmpsh

MACHINE = ("-machine", "pc", "-display", "none", "-nodefaults")
CDROM = ("-drive", "if=none,id=cd0,media=cdrom", "-device", "ide-cd,drive=cd0,id=cdrom0")


@pytest.fixture(scope="module")
def pc() -> Iterator[Qemu]:
    with Qemu(CDROM, machine=MACHINE) as q:
        yield q


@pytest.fixture
def shell(pc: Qemu, tmp_path: Path) -> Iterator[pexpect.spawn]:
    child = spawn_qmpsh([pc.socket], tmp_path)
    child.expect(PROMPT)
    yield child
    leave(child)


def test_eject_id_tab_offers_the_qdev_id_and_qemu_takes_it(shell: pexpect.spawn) -> None:
    shell.send("eject id=")
    shell.expect("cdrom0")  # the menu, while typing
    shell.send("\t")  # selects the first offer
    shell.send("\r")  # closes the menu
    shell.send("\r")
    shell.expect("eject id=cdrom0")  # the line as sent
    shell.expect("DEVICE_TRAY_MOVED cd0 tray open")  # QEMU found the device: tray opened


def test_events_filter_tab_offers_event_names(shell: pexpect.spawn) -> None:
    shell.send("events filter SPICE_CO")
    shell.expect("SPICE_CONNECTED")  # the menu offers events, not `show filter stats`
    shell.send("\t")
    shell.send("\r")
    shell.send("\r")
    shell.expect(PROMPT)
    shell.send("events filter SPICE_CONECTED\r")
    shell.expect("no event named 'SPICE_CONECTED' \\(did you mean 'SPICE_CONNECTED'\\?\\)")


def test_menu_says_what_a_command_takes(shell: pexpect.spawn) -> None:
    shell.send("ejec")
    shell.expect("device\\? id\\? force\\?")  # the command's arguments beside its name
    shell.send("t ")
    shell.expect("str, deprecated")  # device=: its type and marks
    shell.sendcontrol("u")  # an empty line again, so Ctrl-D can leave
