"""The installed ``qmpsh`` command in scripted use, against a real QEMU.

These run qmpsh as a subprocess, the way users and other programs do, and check
what they can rely on: stdout holds one JSON document per reply, errors go to
stderr as one line, and the exit code says what went wrong.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from qemu import Qemu, RawMonitor
from support import QMPSH, negotiated, private_env, qemu_pids_with, sleeping, wait_for
from support import run_qmpsh as run


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_one_shot_prints_return_value_as_json(qemu: Qemu) -> None:
    result = run(qemu.socket, "-c", "query-status")
    assert result.returncode == 0, result.stderr
    [status] = json_lines(result.stdout)
    assert status["status"] == "running"
    assert result.stderr == ""


def test_unix_prefix_and_environment_variables(qemu: Qemu) -> None:
    assert run(f"unix:{qemu.socket}", "-c", "query-name").returncode == 0
    for var in ("QMPSH_SOCKET", "QMP_SOCKET"):
        result = run("-c", "query-version", env={var: qemu.socket})
        assert result.returncode == 0, result.stderr
        assert json_lines(result.stdout)[0]["qemu"]["major"] >= 7


def test_piped_script_skips_blanks_and_comments(qemu: Qemu) -> None:
    script = "# a comment\n\nquery-status\n   \nquery-name\n  # indented comment\n"
    result = run(qemu.socket, stdin=script)
    assert result.returncode == 0, result.stderr
    replies = json_lines(result.stdout)
    assert len(replies) == 2
    assert replies[0]["status"] == "running"
    assert replies[1] == {}


def test_command_error_exits_1_and_script_goes_on(qemu: Qemu) -> None:
    script = "query-status\nblock_resize device=nope size=1024\nquery-name\n"
    result = run(qemu.socket, stdin=script)
    assert result.returncode == 1
    assert len(json_lines(result.stdout)) == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and "nope" in line


def test_exit_on_error_stops_the_script(qemu: Qemu) -> None:
    script = "block_resize device=nope size=1024\nquery-name\n"
    result = run(qemu.socket, "--exit-on-error", stdin=script)
    assert result.returncode == 1
    assert json_lines(result.stdout) == []


def test_syntax_error_exits_2_with_line_and_column(qemu: Qemu) -> None:
    script = "query-status\n\neject devce=ide1-cd0\nquery-name\n"
    result = run(qemu.socket, stdin=script)
    assert result.returncode == 2
    assert len(json_lines(result.stdout)) == 2  # the script went on
    assert "line 3, col 7" in result.stderr
    assert "did you mean 'device'" in result.stderr
    assert "Traceback" not in result.stderr


def test_worst_status_wins(qemu: Qemu) -> None:
    script = "eject devce=x\nblock_resize device=nope size=1\n"
    assert run(qemu.socket, stdin=script).returncode == 2


def test_raw_format_prints_whole_wire_messages(qemu: Qemu) -> None:
    script = (
        'query-name\nblock_resize device=nope size=1\n{"execute": "query-name", "id": "mine"}\n'
    )
    result = run(qemu.socket, "--format", "raw", stdin=script)
    assert result.returncode == 1
    replies = json_lines(result.stdout)
    assert replies[0] == {"return": {}} or "return" in replies[0]
    assert replies[1]["error"]["class"] == "GenericError"
    assert replies[2]["id"] == "mine"


def test_schema_typing_keeps_strings_strings(qemu: Qemu) -> None:
    script = "object-add qom-type=secret id=sec123 data=123\nqom-list path=/objects\n"
    script += "object-del id=sec123\n"
    result = run(qemu.socket, stdin=script)
    assert result.returncode == 0, result.stderr
    names = {p["name"] for p in json_lines(result.stdout)[1]}
    assert "sec123" in names


def test_file_option_and_multiline_transaction(qemu: Qemu, tmp_path: Path) -> None:
    script = tmp_path / "cmds.txt"
    script.write_text(
        "blockdev-add driver=null-co node-name=n0 size=1048576\n"
        "transaction(\n"
        "  block-dirty-bitmap-add node=n0 name=b0\n"
        "  block-dirty-bitmap-add node=n0 name=b1\n"
        ")\n"
        "query-named-block-nodes\n"
        "blockdev-del node-name=n0\n"
    )
    result = run(qemu.socket, "-f", str(script))
    assert result.returncode == 0, result.stderr
    nodes = json_lines(result.stdout)[2]
    [node] = [n for n in nodes if n["node-name"] == "n0"]
    assert {b["name"] for b in node["dirty-bitmaps"]} == {"b0", "b1"}


def test_missing_socket_exits_3(tmp_path: Path) -> None:
    result = run(str(tmp_path / "nope.sock"), "-c", "query-status")
    assert result.returncode == 3
    assert "nope.sock" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_address_is_a_usage_error() -> None:
    result = run("-c", "query-status", env={"QMPSH_SOCKET": "", "QMP_SOCKET": ""})
    assert result.returncode == 2
    assert "QMPSH_SOCKET" in result.stderr


def test_bad_option_is_a_usage_error() -> None:
    assert run("--format", "yaml").returncode == 2


def test_events_file_gets_every_event(qemu_factory: Any, tmp_path: Path) -> None:
    q = qemu_factory()
    events = tmp_path / "events.jsonl"
    script = "stop\ncont\nstop\ncont\n"
    result = run(q.socket, f"--events={events}", stdin=script)
    assert result.returncode == 0, result.stderr
    names = [e["event"] for e in json_lines(events.read_text())]
    assert names == ["STOP", "RESUME", "STOP", "RESUME"]


def test_events_to_stderr(qemu_factory: Any) -> None:
    q = qemu_factory()
    result = run(q.socket, "--events", "-c", "stop", "-c", "cont")
    assert result.returncode == 0
    names = [e["event"] for e in json_lines(result.stderr)]
    assert names == ["STOP", "RESUME"]


def test_wait_in_script_sees_event_that_raced_the_reply(qemu_factory: Any) -> None:
    q = qemu_factory()
    result = run(q.socket, "-c", "stop", "-c", "wait STOP timeout=5")
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[-1]["event"] == "STOP"


def test_wait_timeout_exits_4(qemu: Qemu) -> None:
    result = run(qemu.socket, "-c", "wait RESET timeout=0.2")
    assert result.returncode == 4
    assert "RESET" in result.stderr


def test_wait_event_option(qemu_factory: Any, tmp_path: Path) -> None:
    second = str(tmp_path / "second.sock")  # a -qmp monitor serves one client at a time
    q = qemu_factory("-qmp", f"unix:{second},server=on,wait=off")
    log = tmp_path / "transcript.jsonl"
    proc = subprocess.Popen(
        [*QMPSH, q.socket, "-l", str(log), "--wait-event", "RESUME", "--timeout", "60"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=private_env(tmp_path),
    )
    wait_for(lambda: negotiated(log), "qmpsh to negotiate")  # QEMU sends it events from now on
    with RawMonitor(second) as mon:
        mon.execute("stop")
        mon.execute("cont")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert json_lines(out)[-1]["event"] == "RESUME"


def test_transcript_records_both_ways_with_mode_0600(qemu: Qemu, tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    result = run(qemu.socket, "-l", str(log), "-c", "set_password protocol=vnc password=hunter2")
    assert result.returncode in (0, 1)
    assert (log.stat().st_mode & 0o777) == 0o600
    text = log.read_text()
    assert "hunter2" not in text
    dirs = {e["dir"] for e in json_lines(text)}
    assert {"out", "in"} <= dirs


def test_verbose_echo_masks_secrets(qemu: Qemu) -> None:
    result = run(qemu.socket, "-v", "-c", "set_password protocol=vnc password=hunter2")
    assert '"execute":"set_password"' in result.stderr
    assert "hunter2" not in result.stderr


def test_info_shortcut_in_json_gives_query_json_and_hmp_gives_text(qemu: Qemu) -> None:
    """An ``info`` shortcut is a QMP query (machine-readable in json); what HMP itself
    answers is text in every format but raw, as qmp-shell prints it."""
    result = run(qemu.socket, "-c", "info status", "-c", "hmp info version")
    assert result.returncode == 0, result.stderr
    status, version_text = result.stdout.splitlines()
    assert json.loads(status)["status"] == "running"
    assert version_text[0].isdigit() and not version_text.startswith('"')
    raw = run(qemu.socket, "--format", "raw", "-c", "hmp info version")
    assert json.loads(raw.stdout)["return"].strip()[0].isdigit()


def test_qemu_killed_mid_script_exits_3(qemu_factory: Any) -> None:
    q = qemu_factory()
    proc = subprocess.Popen(
        [*QMPSH, q.socket],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("query-status\n")
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline())["status"] == "running"
    q.kill(signal.SIGKILL)
    q.proc.wait()
    proc.stdin.write("query-status\n")
    proc.stdin.flush()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert "connection to" in err and "lost" in err
    assert "Traceback" not in err


def test_launch_runs_and_cleans_up(tmp_path: Path) -> None:
    marker = f"qmpsh-launch-{os.getpid()}"
    result = run("--launch", "-c", "query-spice", "-c", "query-vnc", "--", "-name", marker)
    assert result.returncode == 0, result.stderr
    spice, vnc = json_lines(result.stdout)
    assert spice["enabled"] is True and spice["host"] == "127.0.0.1"
    assert vnc["enabled"] is True
    assert qemu_pids_with(marker) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_launch_cleans_up_on_signal(sig: int) -> None:
    marker = f"qmpsh-sig-{os.getpid()}-{sig}"
    proc = subprocess.Popen(
        [*QMPSH, "--launch", "--", "-name", marker],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("query-status\n")
    proc.stdin.flush()
    assert "running" in proc.stdout.readline()  # connected, and waiting for the next line
    assert qemu_pids_with(marker), "QEMU did not start"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err
    assert qemu_pids_with(marker) == []


def test_launch_without_qemu_is_a_clear_error(tmp_path: Path) -> None:
    result = run("--launch", "-c", "query-status", env={"PATH": str(tmp_path)})
    assert result.returncode == 3
    assert "qemu-system-x86_64" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_argumentless_command_gets_the_same_hint(qemu: Qemu) -> None:
    # Argument-less commands are sent before the schema is loaded; QEMU's refusal then
    # brings the schema in, so the message is the one validation gives.
    result = run(qemu.socket, "-c", "query-spcie")
    assert result.returncode == 2
    assert "unknown command 'query-spcie'" in result.stderr
    assert "did you mean 'query-spice'" in result.stderr


def test_no_validate_sends_unknown_commands_and_reports_qemus_error(qemu: Qemu) -> None:
    result = run(qemu.socket, "--no-validate", "-c", "query-statsu")
    assert result.returncode == 1
    assert "CommandNotFound" in result.stderr


def test_missing_required_argument_is_caught_before_sending(qemu: Qemu) -> None:
    result = run(qemu.socket, "-c", "block-dirty-bitmap-add name=b0")
    assert result.returncode == 2
    assert "'block-dirty-bitmap-add' needs argument 'node'" in result.stderr


def test_skip_negotiation_leaves_qmp_capabilities_to_the_user(qemu_factory: Any) -> None:
    q = qemu_factory()
    refused = run(q.socket, "-N", "-c", "query-status")
    assert refused.returncode == 1
    assert "CommandNotFound" in refused.stderr and "qmp_capabilities" in refused.stderr
    by_hand = run(q.socket, "-N", "-c", "qmp_capabilities", "-c", "query-status")
    assert by_hand.returncode == 0, by_hand.stderr
    assert json_lines(by_hand.stdout)[1]["status"] == "running"


def test_hmp_flag_sends_every_line_to_the_human_monitor(qemu: Qemu) -> None:
    result = run(qemu.socket, "-H", "-c", "info status", "-c", "info mtree")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "VM status: running"  # HMP's own text, not query-status
    assert lines[1].startswith("address-space")  # multi-line text, not a quoted string
    assert len(lines) > 2 and not result.stdout.startswith('"')


def test_pretty_flag_prints_for_people_even_into_a_pipe(qemu: Qemu) -> None:
    result = run(qemu.socket, "-p", "-c", "query-status")
    assert result.returncode == 0, result.stderr
    assert "running" in result.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout)


def test_wait_retries_until_qemu_creates_the_socket(qemu_factory: Any, tmp_path: Path) -> None:
    socket_path = tmp_path / "late.sock"
    proc = subprocess.Popen(
        [*QMPSH, "--wait", "60", str(socket_path), "-c", "query-status"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=private_env(tmp_path),
    )
    # A dial has failed and qmpsh sleeps before the next: only a retry can succeed now.
    wait_for(lambda: sleeping(proc.pid) or proc.poll() is not None, "qmpsh to retry")
    assert proc.poll() is None, proc.communicate()
    assert not socket_path.exists()
    qemu_factory(
        machine=(
            "-machine",
            "none",
            "-display",
            "none",
            "-nodefaults",
            "-qmp",
            f"unix:{socket_path},server=on,wait=off",
        )
    )
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert json_lines(out)[0]["status"] == "running"


def test_tcp_address_with_localhost(qemu_factory: Any) -> None:
    from qemu import free_port

    port = free_port()
    qemu_factory("-qmp", f"tcp:127.0.0.1:{port},server=on,wait=off")
    result = run(f"localhost:{port}", "-c", "query-status", "--wait", "5")
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[0]["status"] == "running"
    assert "not loopback" not in result.stderr
