"""The history file: private modes, secrets never written, bounded on load."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from qmpsh.history import PrivateHistory


def modes(path: Path) -> tuple[int, int]:
    return stat.S_IMODE(path.parent.stat().st_mode), stat.S_IMODE(path.stat().st_mode)


def test_creates_dir_0700_and_file_0600_whatever_the_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        path = tmp_path / "state" / "qmpsh" / "history"
        PrivateHistory(path)
    finally:
        os.umask(old)
    assert modes(path) == (0o700, 0o600)


def test_an_existing_world_readable_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "history"
    path.write_text("")
    path.chmod(0o644)
    PrivateHistory(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "line",
    [
        "set_password protocol=vnc password=hunter2",
        "change-vnc-password password=x",
        "object-add qom-type=secret id=s0 data=letmein",
        '{"execute": "set_password", "arguments": {"password": "x"}}',
        "blockdev-add driver=luks key-secret=sec0 node-name=n",
    ],
)
def test_secret_lines_are_not_written(tmp_path: Path, line: str) -> None:
    path = tmp_path / "history"
    history = PrivateHistory(path)
    history.store_string("query-status")
    history.store_string(line)
    text = path.read_text()
    assert "query-status" in text
    assert line not in text


def test_lines_come_back_newest_first_and_bounded(tmp_path: Path) -> None:
    path = tmp_path / "history"
    writer = PrivateHistory(path)
    for i in range(5):
        writer.store_string(f"query-{i}")
    assert list(PrivateHistory(path).load_history_strings()) == [
        f"query-{i}" for i in range(4, -1, -1)
    ]
    assert list(PrivateHistory(path, max_entries=2).load_history_strings()) == [
        "query-4",
        "query-3",
    ]


def test_unwritable_location_keeps_the_session_going(tmp_path: Path) -> None:
    """Nothing can be written (the parent is a file), yet Up still recalls the line."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    history = PrivateHistory(blocker / "sub" / "history")  # parent is a file: cannot exist
    history.append_string("query-status")  # what the prompt calls on Enter; must not raise
    assert history.get_strings() == ["query-status"]
    assert blocker.read_text() == ""
    assert list(PrivateHistory(blocker / "sub" / "history").load_history_strings()) == []
