"""Config folded once: each flag wins, the config file fills what flags leave open.

``cli`` is the only reader of the config file and of the parsed options; everything
downstream follows ``Settings`` and ``ShellOptions``, so these tables are the whole
story of which choice wins.  Pure: no QEMU, no terminal.
"""

from __future__ import annotations

import io
import sys

import pytest

from qmpsh import cli
from qmpsh.config import Config
from qmpsh.options import build_parser
from qmpsh.settings import Settings, ShellOptions, format_named


def fold(argv: list[str], config: Config) -> tuple[Settings, ShellOptions]:
    args = build_parser().parse_args([*argv, "vm.sock"])
    return cli._settings(args, config), cli._shell_options(args, config)


@pytest.mark.parametrize(
    ("argv", "config_format", "expected"),
    [
        ([], "raw", "raw"),  # the config fills in
        (["--format", "json"], "raw", "json"),  # a flag wins
        (["-p"], "raw", "pretty"),
        ([], None, "json"),  # neither: json, since stdout is not a terminal here
    ],
)
def test_the_format_is_the_flag_else_the_config(
    argv: list[str], config_format: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # not a terminal, even under -s
    settings, _ = fold(argv, Config(format=config_format))
    assert settings.fmt == expected


def test_confirmation_needs_both_the_config_and_no_yes() -> None:
    assert fold([], Config())[0].confirm
    assert not fold(["--yes"], Config())[0].confirm
    assert not fold([], Config(confirm=False))[0].confirm


def test_shell_options_fold_flags_over_the_config() -> None:
    config = Config(pager=True, events_pane=True, reconnect=True, color="never", history_size=7)
    _, options = fold(["--no-pager", "--color", "always"], config)
    assert options == ShellOptions(
        pane=True, pager=False, reconnect=True, quiet=False, color="always", history_size=7
    )
    _, options = fold(["--no-pane", "-q"], Config(pager=False))
    assert (options.pane, options.pager, options.quiet, options.color) == (
        False,
        False,
        True,
        "auto",
    )


def test_colour_choice_from_the_config_reaches_the_settings() -> None:
    assert fold([], Config(color="always"))[0].color
    assert not fold(["--color", "never"], Config(color="always"))[0].color


def test_a_bad_config_filter_warns_and_the_flag_wins_over_the_config(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = build_parser().parse_args(["vm.sock"])
    assert cli._event_filter(args, Config(events_filter="=x")) is None
    assert capsys.readouterr().err.count("config events.filter") == 1
    flagged = build_parser().parse_args(["--events-filter", "STOP", "vm.sock"])
    found = cli._event_filter(flagged, Config(events_filter="RESUME"))
    assert found is not None and found.matches({"event": "STOP"})
    assert not found.matches({"event": "RESUME"})


def test_format_named_knows_only_the_three_formats() -> None:
    assert [format_named(n) for n in ("pretty", "json", "raw", "yaml")] == [
        "pretty",
        "json",
        "raw",
        None,
    ]
