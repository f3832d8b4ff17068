"""The config file and XDG paths: pure, no terminal, no QEMU."""

from __future__ import annotations

from pathlib import Path

import pytest

from qmpsh.config import (
    Config,
    color_depth_name,
    config_file,
    config_from_dict,
    history_path,
    load_config,
    state_dir,
)

HOME = {"HOME": "/home/u"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_paths_follow_xdg_with_home_fallbacks() -> None:
    assert config_file(HOME) == "/home/u/.config/qmpsh/config.toml"
    assert state_dir(HOME) == Path("/home/u/.local/state/qmpsh")
    assert history_path(HOME) == Path("/home/u/.local/state/qmpsh/history")
    env = {**HOME, "XDG_CONFIG_HOME": "/x/cfg", "XDG_STATE_HOME": "/x/state"}
    assert config_file(env) == "/x/cfg/qmpsh/config.toml"
    assert history_path(env) == Path("/x/state/qmpsh/history")


def test_relative_xdg_values_are_ignored() -> None:
    assert state_dir({**HOME, "XDG_STATE_HOME": "rel/state"}) == Path("/home/u/.local/state/qmpsh")


def test_explicit_overrides_win() -> None:
    env = {**HOME, "QMPSH_CONFIG": "/etc/q.toml", "QMPSH_HISTFILE": "/tmp/h"}
    assert config_file(env) == "/etc/q.toml"
    assert history_path(env) == Path("/tmp/h")


def test_missing_file_is_silent_defaults(tmp_path: Path) -> None:
    warnings: list[str] = []
    assert load_config(tmp_path / "nope.toml", warn=warnings.append) == Config()
    assert warnings == []


def test_a_full_config_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'format = "json"\ncolor = "never"\npager = false\nconfirm = false\n'
        'history_size = 50\n[events]\npane = false\ncapacity = 100\nfilter = "SPICE_*"\n',
    )
    warnings: list[str] = []
    config = load_config(path, warn=warnings.append)
    assert warnings == []
    assert config == Config(
        format="json",
        color="never",
        pager=False,
        confirm=False,
        history_size=50,
        events_pane=False,
        events_capacity=100,
        events_filter="SPICE_*",
    )


def test_config_env_var_is_used(tmp_path: Path) -> None:
    path = write(tmp_path, "confirm = false\n")
    assert load_config(env={"QMPSH_CONFIG": str(path)}).confirm is False


def test_broken_toml_gives_one_warning_and_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "format = \n[[[")
    warnings: list[str] = []
    assert load_config(path, warn=warnings.append) == Config()
    assert len(warnings) == 1
    assert warnings[0].startswith("qmpsh: warning: ignoring config")
    assert "\n" not in warnings[0]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"format": "yaml"}, "format"),
        ({"color": 1}, "color"),
        ({"pager": "yes"}, "pager"),
        ({"history_size": True}, "history_size"),
        ({"history_size": 0}, "history_size"),
        ({"events": {"capacity": -1}}, "events.capacity"),
        ({"events": {"pane": "off"}}, "events.pane"),
        ({"events": 3}, "[events]"),
        ({"colour": "never"}, "colour"),
    ],
)
def test_each_bad_value_warns_and_keeps_its_default(data: dict[str, object], field: str) -> None:
    warnings: list[str] = []
    assert config_from_dict(data, warn=warnings.append) == Config()
    assert len(warnings) == 1 and field in warnings[0]


def test_one_bad_value_does_not_cost_the_good_ones() -> None:
    warnings: list[str] = []
    config = config_from_dict({"pager": 3, "confirm": False}, warn=warnings.append)
    assert config.confirm is False and config.pager is True
    assert len(warnings) == 1


@pytest.mark.parametrize(
    ("choice", "env", "depth"),
    [
        ("never", {}, "DEPTH_1_BIT"),
        ("auto", {"NO_COLOR": "1"}, "DEPTH_1_BIT"),
        ("always", {"NO_COLOR": "1"}, None),
        ("auto", {}, None),
        ("always", {"TERM": "dumb"}, "DEPTH_8_BIT"),
    ],
)
def test_color_depth(choice: str, env: dict[str, str], depth: str | None) -> None:
    assert color_depth_name(choice, env) == depth


def test_reconnect_key_is_read_and_type_checked() -> None:
    warnings: list[str] = []
    assert config_from_dict({"reconnect": True}, warn=warnings.append).reconnect is True
    assert config_from_dict({}, warn=warnings.append).reconnect is False
    assert warnings == []
    assert config_from_dict({"reconnect": "yes"}, warn=warnings.append).reconnect is False
    assert len(warnings) == 1 and "reconnect" in warnings[0]


@pytest.mark.parametrize("kind", ["fifo", "device", "huge"])
def test_a_config_that_is_not_a_small_file_warns_instead_of_hanging(
    tmp_path: Path, kind: str
) -> None:
    """``QMPSH_CONFIG`` at a FIFO once hung every start; at /dev/zero it filled memory."""
    import os
    import subprocess
    import sys

    from qemu import Qemu
    from support import private_env

    path = tmp_path / "config.toml"
    if kind == "fifo":
        os.mkfifo(path)  # nobody ever writes: a blocking open or read waits for ever
    elif kind == "device":
        path = Path("/dev/zero")
    else:
        path.write_text("# padding\n" * 200_000)
    with Qemu() as vm:
        result = subprocess.run(
            [sys.executable, "-m", "qmpsh", vm.socket, "-c", "query-status"],
            capture_output=True,
            text=True,
            env=private_env(tmp_path, QMPSH_CONFIG=str(path)),
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    [warning] = result.stderr.splitlines()
    assert warning.startswith(f"qmpsh: warning: ignoring config {path}: ")
    assert ("not a regular file" if kind != "huge" else "larger than 1024 KiB") in warning
    assert '"running"' in result.stdout
