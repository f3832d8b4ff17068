"""qmpsh's own commands and its config file, through the real CLI against a real QEMU.

``help``, ``format``, ``events …`` and ``spice sessions`` run in scripts exactly as
they do at the prompt, so they are tested here as a script user meets them.  The
config tests check that ``--config`` / ``$QMPSH_CONFIG`` fill in what flags leave
open, and that flags still win.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from peers import CHANNEL_INPUTS, CHANNEL_MAIN, spice_session
from qemu import Qemu
from test_events_cli import attached, finish, names, run

MIB = 1 << 20
NUMBERED = re.compile(r"^#(\d+) \d\d:\d\d:\d\d\.\d{3} (\S+)")


def numbered(text: str) -> list[tuple[int, str]]:
    """``(N, EVENT)`` for each ``events`` entry in JSON output: ``{"n": N, "event": {…}}``."""
    entries = [json.loads(line) for line in text.splitlines() if line.startswith('{"n":')]
    return [(entry["n"], entry["event"]["event"]) for entry in entries]


def stats(text: str) -> dict[str, int]:
    """The last ``events stats`` object in JSON output."""
    objects = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    counts: dict[str, int] = [o for o in objects if o and all(k.isupper() for k in o)][-1]
    return counts


def stop_cont(pairs: int) -> str:
    return "stop\ncont\n" * pairs + "wait RESUME timeout=10\n" if pairs else ""


@pytest.fixture
def fresh(qemu_factory: Callable[..., Qemu]) -> Qemu:
    """A QEMU no test has sent events from: event numbers start at 1."""
    return qemu_factory()


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


# ---------------------------------------------------------------------- help


def test_help_lists_families_and_shell_commands(qemu: Qemu) -> None:
    result = run(qemu.socket, "-c", "help")
    assert result.returncode == 0, result.stderr
    assert "QMP, block devices and media:" in result.stdout and "query-status" in result.stdout
    assert result.stdout.startswith("qmpsh's own commands:")
    assert re.search(r"^  wait EVENT", result.stdout, re.M)


def test_help_command_and_question_mark_give_the_schema_tree(qemu: Qemu) -> None:
    result = run(qemu.socket, stdin="help eject\neject?\n")
    assert result.returncode == 0, result.stderr
    first, marker, second = result.stdout.partition("returns: nothing\n")
    assert first.startswith("eject  device?:str")
    assert re.search(r"^  force +bool +\(optional\)$", first, re.M)
    assert second == first + marker  # `eject?` is `help eject`


def test_help_follows_a_union_tag_given_after_the_name(qemu: Qemu) -> None:
    result = run(qemu.socket, stdin="help blockdev-add\nblockdev-add? driver=null-co\n")
    assert result.returncode == 0, result.stderr
    general, _, chosen = result.stdout.partition("returns: nothing\n")
    assert "more members depend on 'driver'" in general and "read-zeroes" not in general
    assert re.search(r"^  read-zeroes +bool +\(optional\)$", chosen, re.M)


def test_help_event_and_shell_command(qemu: Qemu) -> None:
    result = run(qemu.socket, stdin="help BLOCK_IO_ERROR\nhelp wait\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("event BLOCK_IO_ERROR\ndata:\n")
    assert "one of: ignore, report, stop" in result.stdout
    assert "wait EVENT [field=value ...] [timeout=SECONDS]" in result.stdout


def test_help_unknown_name_is_an_input_error(qemu: Qemu) -> None:
    result = run(qemu.socket, stdin="query-name\nhelp no-such-thing\n")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: line 2: no command or event named 'no-such-thing'"


# -------------------------------------------------------------------- format


def test_format_switches_at_run_time(qemu: Qemu) -> None:
    script = (
        "query-name\nformat raw\nquery-name\nformat pretty\nquery-status\nformat json\nquery-name\n"
    )
    result = run(qemu.socket, stdin=script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "{}"
    assert json.loads(lines[1]) == {"return": {}}
    assert lines[-1] == "{}"
    pretty = "\n".join(lines[2:-1])
    assert "running" in pretty and not pretty.startswith("{")


def test_format_needs_a_known_name(qemu: Qemu) -> None:
    result = run(qemu.socket, "-c", "format yaml")
    assert result.returncode == 2
    assert "usage: format pretty|json|raw" in result.stderr


# -------------------------------------------------------------------- events


def test_events_subcommands_in_a_script(fresh: Qemu) -> None:
    script = stop_cont(2) + "events\nevents show 2\nevents show #3\nevents stats\n"
    result = run(fresh.socket, stdin=script)
    assert result.returncode == 0, result.stderr
    listed = numbered(result.stdout)
    assert listed == [(1, "STOP"), (2, "RESUME"), (3, "STOP"), (4, "RESUME")]
    lines = result.stdout.splitlines()
    after_list = lines[lines.index(next(line for line in lines if line.startswith('{"n":4'))) + 1 :]
    shown = [json.loads(line)["event"] for line in after_list[:2]]
    assert shown == ["RESUME", "STOP"]  # the numbers the list printed
    assert stats(result.stdout) == {"RESUME": 2, "STOP": 2}


def test_events_subcommands_read_as_text_at_a_terminal_format(fresh: Qemu) -> None:
    script = stop_cont(1) + "events\nevents show 1\nevents stats\n"
    result = run(fresh.socket, "--format", "pretty", "--color", "never", stdin=script)
    assert result.returncode == 0, result.stderr
    listed = [(int(m[1]), m[2]) for m in map(NUMBERED.match, result.stdout.splitlines()) if m]
    assert listed == [(1, "STOP"), (2, "RESUME")]
    assert re.search(r'^  "event": "STOP"', result.stdout, re.M)
    assert re.search(r"^ +1  RESUME$", result.stdout, re.M)
    assert re.search(r"^ +1  STOP$", result.stdout, re.M)


def test_events_filter_and_clear(fresh: Qemu) -> None:
    script = stop_cont(2) + "events filter RESUME\nevents\nevents clear\nevents\nevents stats\n"
    result = run(fresh.socket, stdin=script)
    assert result.returncode == 0, result.stderr
    assert numbered(result.stdout) == [(2, "RESUME"), (4, "RESUME")]  # cleared: nothing after
    assert stats(result.stdout)["STOP"] == 2  # counts outlive clear


def test_events_show_of_a_cleared_or_bad_number(fresh: Qemu) -> None:
    result = run(fresh.socket, stdin=stop_cont(1) + "events clear\nevents show 1\nevents show x\n")
    assert result.returncode == 2
    assert "no event number 1" in result.stderr
    assert "usage: events show N" in result.stderr


# ---------------------------------------------------------------- spice sessions


def test_spice_sessions_and_info_spice_while_channels_are_up(qemu: Qemu) -> None:
    assert qemu.spice_port is not None
    with attached(qemu.socket, "--format", "pretty", "--color", "never") as proc:
        channels = spice_session("127.0.0.1", qemu.spice_port, (CHANNEL_MAIN, CHANNEL_INPUTS))
        try:
            script = f"wait SPICE_INITIALIZED channel-type={CHANNEL_INPUTS}\nspice sessions\n"
            out, _ = finish(proc, script + "info spice\n")
        finally:
            for channel in channels:
                channel.close()
    session_id = channels[0].session_id
    assert f"session {session_id}: 2/2 channels up" in out
    assert re.search(r"^  main:0 +up +127\.0\.0\.1:\d+$", out, re.M)
    assert re.search(r"^  inputs:0 +up +127\.0\.0\.1:\d+$", out, re.M)
    info = out[out.index("Server:") :]
    assert "channel name: inputs" in info  # the HMP-like part, from query-spice
    views = info.split("SPICE sessions seen in events:\n")[1]
    assert views.startswith(f"  session {session_id}: 2/2 channels up")


def test_spice_sessions_after_the_client_left(qemu: Qemu) -> None:
    assert qemu.spice_port is not None
    with attached(qemu.socket) as proc:
        channels = spice_session("127.0.0.1", qemu.spice_port)
        for channel in channels:
            channel.close()
        script = "wait SPICE_DISCONNECTED\nwait SPICE_DISCONNECTED\nspice sessions\ninfo spice\n"
        out, _ = finish(proc, script)
    sessions, info = (json.loads(line) for line in out.splitlines()[-2:])
    assert [(s["session"], s["up"]) for s in sessions] == [(channels[0].session_id, 0)]
    assert {ch["name"] for ch in sessions[0]["channels"]} == {"main", "inputs"}
    assert not any(ch["up"] for ch in sessions[0]["channels"])
    assert "SPICE sessions seen" not in out  # json mode: info spice stays machine-readable
    assert info["enabled"] is True


def test_spice_sessions_with_none_seen(fresh: Qemu) -> None:
    result = run(fresh.socket, "-c", "spice sessions")
    assert (result.returncode, result.stdout) == (0, "[]\n")
    text = run(fresh.socket, "--format", "pretty", "--color", "never", "-c", "spice sessions")
    assert (text.returncode, text.stdout) == (0, "no SPICE sessions seen\n")


# -------------------------------------------------------------------- config


def test_config_capacity_bounds_the_event_window(fresh: Qemu, tmp_path: Path) -> None:
    config = write_config(tmp_path, "[events]\ncapacity = 3\n")
    script = stop_cont(3) + "events\nevents stats\n"
    result = run(fresh.socket, "--config", str(config), stdin=script)
    assert result.returncode == 0, result.stderr
    assert numbered(result.stdout) == [(4, "RESUME"), (5, "STOP"), (6, "RESUME")]
    assert stats(result.stdout)["STOP"] == 3  # the tally stays complete
    gone = run(fresh.socket, "--config", str(config), stdin=stop_cont(2) + "events show 1\n")
    assert gone.returncode == 2 and "no event number 1" in gone.stderr


def test_config_event_filter_is_the_default_and_the_flag_wins(fresh: Qemu, tmp_path: Path) -> None:
    config = write_config(tmp_path, '[events]\nfilter = "!STOP"\n')
    by_config, by_flag = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    script = stop_cont(1) + "events\n"
    result = run(fresh.socket, "--config", str(config), f"--events={by_config}", stdin=script)
    assert result.returncode == 0, result.stderr
    assert names(by_config) == ["RESUME"]
    assert [name for _, name in numbered(result.stdout)] == ["RESUME"]
    flag = ("--events-filter", "STOP", f"--events={by_flag}")
    assert run(fresh.socket, "--config", str(config), *flag, stdin=script).returncode == 0
    assert names(by_flag) == ["STOP"]


def test_config_from_environment_sets_format_and_flags_win(qemu: Qemu, tmp_path: Path) -> None:
    config = write_config(tmp_path, 'format = "raw"\n')
    env = {"QMPSH_CONFIG": str(config)}
    raw = run(qemu.socket, "-c", "query-name", env=env)
    assert (raw.returncode, raw.stdout) == (0, '{"return":{}}\n')
    flagged = run(qemu.socket, "--format", "json", "-c", "query-name", env=env)
    assert flagged.stdout == "{}\n"


def test_config_color_always_colours_pretty_output(qemu: Qemu, tmp_path: Path) -> None:
    config = write_config(tmp_path, 'format = "pretty"\ncolor = "always"\n')
    result = run(qemu.socket, "--config", str(config), "-c", "query-version")
    assert result.returncode == 0, result.stderr
    assert "\x1b[" in result.stdout
    plain = run(qemu.socket, "--config", str(config), "--color", "never", "-c", "query-version")
    assert "\x1b[" not in plain.stdout and "qemu" in plain.stdout


def test_bad_config_warns_once_and_runs(qemu: Qemu, tmp_path: Path) -> None:
    config = write_config(tmp_path, 'format = "yaml"\n[events]\nfilter = "a=\\"b"\n')
    result = run(qemu.socket, "--config", str(config), "-c", "query-name")
    assert (result.returncode, result.stdout) == (0, "{}\n")
    warnings = result.stderr.splitlines()
    assert len(warnings) == 2 and all(w.startswith("qmpsh: warning: ") for w in warnings)
    assert "format" in warnings[0] and "events.filter" in warnings[1]
    quiet = run(qemu.socket, "-q", "--config", str(config), "-c", "query-name")
    assert quiet.stderr == ""


def test_missing_config_named_on_the_command_line_is_an_error(qemu: Qemu, tmp_path: Path) -> None:
    result = run(qemu.socket, "--config", str(tmp_path / "nope.toml"), "-c", "query-name")
    assert result.returncode == 2
    assert "config file not found" in result.stderr


def test_interactive_shell_uses_the_same_config(qemu: Qemu, tmp_path: Path) -> None:
    """At a terminal: confirm=false sends `stop` without asking; capacity bounds the window."""
    import os

    import pexpect

    config = write_config(tmp_path, "confirm = false\n[events]\ncapacity = 2\n")
    env = dict(os.environ, TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1")
    env["QMPSH_HISTFILE"] = str(tmp_path / "history")
    args = ["-m", "qmpsh", qemu.socket, "--config", str(config), "--color", "never"]
    child = pexpect.spawn(
        sys.executable, args, dimensions=(40, 140), env=env, encoding="utf-8", timeout=20
    )
    try:
        child.expect(r"\(qemu \d+\.\d+\.\d+\) ")
        for number, line in enumerate(["stop", "cont", "stop", "cont"], start=1):
            child.send(line + "\r")  # no "really? [y/N]" stands in the way of `stop`
            child.expect(rf"#{number} \S+ {'STOP' if line == 'stop' else 'RESUME'}")
        child.send("events show 1\r")
        child.expect("no event number 1")
        child.send("events show 4\r")
        child.expect('"event": "RESUME"')
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
