"""libvirt-managed domains: a real libvirtd, real TCG domains, the real ``python -m qmpsh``.

libvirt holds each domain's QMP socket, so qmpsh reaches it through libvirt-python
(``libvirt:NAME``).  The lab (tests/libvirt_lab.py) starts virtlogd and libvirtd
unless they run, creates transient domains with ``virsh create``, and destroys them
and stops what it started by PID.  State changes come from ``virsh`` (suspend,
resume, destroy), i.e. from libvirt itself, never from qmpsh.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from libvirt_lab import LibvirtLab, domain_log, domain_state, unavailable, virsh
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from support import private_env, wait_until
from test_e2e_pty import leave, spawn_qmpsh

from qmpsh.completer import completer_for
from qmpsh.errors import InputError, ProtocolError
from qmpsh.libvirt_address import LibvirtAddress, parse_libvirt_address
from qmpsh.libvirt_monitor import event_from_libvirt, open_libvirt_monitor, reply_from_libvirt
from qmpsh.libvirt_targets import INSTALL_HINT, expand_libvirt_targets
from qmpsh.render import Renderer
from qmpsh.session import Session, Settings

TAINT = "tainted: custom-monitor"
TIMEOUT = 60


@pytest.fixture(scope="module")
def lab() -> Iterator[LibvirtLab]:
    lab = LibvirtLab()
    try:
        yield lab.start()
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def domain(lab: LibvirtLab) -> str:
    """One running domain shared by the tests that leave it running."""
    return lab.create_domain("shared")


def qmpsh(
    tmp_path: Path, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qmpsh", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=private_env(tmp_path, **env),
        timeout=TIMEOUT,
        check=False,
    )


def start_qmpsh(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "qmpsh", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=private_env(tmp_path),
    )


# -- addresses (pure) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "domain", "uri"),
    [
        ("libvirt:web1", "web1", None),
        ("libvirt:web1@qemu:///system", "web1", "qemu:///system"),
        ("libvirt:web1@qemu+ssh://root@host/system", "web1", "qemu+ssh://root@host/system"),
        ("libvirt:a@b@qemu:///session", "a@b", "qemu:///session"),
        ("libvirt:*", "*", None),
        ("libvirt:*@test:///default", "*", "test:///default"),
        (
            "libvirt:32163019-a28f-419e-b19a-6ed9af79f215",
            "32163019-a28f-419e-b19a-6ed9af79f215",
            None,
        ),
    ],
)
def test_libvirt_addresses_parse(text: str, domain: str, uri: str | None) -> None:
    address = parse_libvirt_address(text)
    assert address == LibvirtAddress(domain, uri)
    assert str(address) == text


@pytest.mark.parametrize("text", ["libvirt:", "libvirt:@qemu:///system", "libvirt:qemu:///x"])
def test_bad_libvirt_addresses_are_one_line_input_errors(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_libvirt_address(text)
    assert "\n" not in str(caught.value) and "libvirt:" in str(caught.value)


# -- what libvirt hands over is untrusted (pure) ----------------------------------------


@pytest.mark.parametrize(
    ("answer", "reply"),
    [
        (
            '{"return": {"status": "running"}, "id": "libvirt-12"}',
            {"return": {"status": "running"}},
        ),
        (
            '{"id": "libvirt-3", "error": {"class": "X", "desc": "y"}}',
            {"error": {"class": "X", "desc": "y"}},
        ),
        (
            '{"return": [1, "two", null, 3.5, {"deep": [[[]]]}]}',
            {"return": [1, "two", None, 3.5, {"deep": [[[]]]}]},
        ),
        ('{"return": "just a string"}', {"return": "just a string"}),
        ('{"error": 42}', {"error": 42}),  # the session copes with a malformed error
    ],
)
def test_replies_keep_any_json_value_and_lose_libvirts_id(
    answer: str, reply: dict[str, object]
) -> None:
    assert reply_from_libvirt(answer, "libvirt:vm") == reply


@pytest.mark.parametrize(
    "answer",
    ["not json", "[1, 2]", '"text"', "{}", '{"id": "libvirt-1"}', "[" * 100_000, None, b"{}"],
)
def test_replies_that_are_not_qmp_are_one_line_protocol_errors(answer: object) -> None:
    with pytest.raises(ProtocolError) as caught:
        reply_from_libvirt(answer, "libvirt:vm")
    assert "\n" not in str(caught.value) and "libvirt:vm" in str(caught.value)
    assert len(str(caught.value)) < 200


def test_events_take_qemus_wire_form_with_any_data() -> None:
    stop = event_from_libvirt("STOP", 1796284261, 178658, None, "libvirt:vm")
    assert stop == {"timestamp": {"seconds": 1796284261, "microseconds": 178658}, "event": "STOP"}
    assert list(stop) == ["timestamp", "event"]  # QEMU's order, as in --events files
    odd = event_from_libvirt("X", 1, 2, '[1, {"a": null}]', "libvirt:vm")
    assert odd["data"] == [1, {"a": None}]
    with pytest.raises(ProtocolError):
        event_from_libvirt("X", 1, 2, "{" * 100_000, "libvirt:vm")


# -- scripts and -c through the real CLI --------------------------------------------


def test_query_status_and_one_taint_notice(lab: LibvirtLab, tmp_path: Path) -> None:
    """The notice tells the truth: libvirt logs the taint once qmpsh has spoken."""
    domain = lab.create_domain("taint")
    assert TAINT not in domain_log(domain)
    done = qmpsh(tmp_path, f"libvirt:{domain}", "-c", "query-status", "-c", "query-name")
    assert done.returncode == 0, done.stderr
    status, name = (json.loads(line) for line in done.stdout.splitlines())
    assert status["status"] == "running" and name == {"name": domain}
    assert done.stderr.count(TAINT) == 1 and len(done.stderr.splitlines()) == 1
    assert wait_until(lambda: TAINT in domain_log(domain))
    quiet = qmpsh(tmp_path, f"libvirt:{domain}", "-q", "-c", "query-status")
    assert quiet.returncode == 0 and quiet.stderr == ""
    lab.destroy(domain)


def test_replies_look_like_qemus_ids_included(domain: str, tmp_path: Path) -> None:
    """libvirt's own "libvirt-N" ids vanish; a user's id (any JSON value) comes back."""
    lines = [
        '{"execute": "query-status", "id": {"mine": [1, "two"]}}',
        '{"execute": "no-such-command", "id": 7}',
        "query-status",
        '{"execute": "qmp_capabilities", "id": "neg"}',
    ]
    done = qmpsh(tmp_path, f"libvirt:{domain}", "-q", "--format", "raw", stdin="\n".join(lines))
    assert done.returncode == 1, done.stderr  # the unknown command
    first, second, third, fourth = (json.loads(line) for line in done.stdout.splitlines())
    assert first["id"] == {"mine": [1, "two"]} and first["return"]["status"] == "running"
    assert second["id"] == 7 and second["error"]["class"] == "CommandNotFound"
    assert "id" not in third and "libvirt-" not in done.stdout
    assert fourth == {"return": {}, "id": "neg"}  # answered by qmpsh: libvirt negotiated


def test_info_spice_shows_the_domains_spice_server(domain: str, tmp_path: Path) -> None:
    """Also: the domain named by its UUID."""
    display = virsh("domdisplay", domain).stdout.strip()  # spice://127.0.0.1:5900
    port = display.rsplit(":", 1)[1]
    uuid = virsh("domuuid", domain).stdout.strip()
    done = qmpsh(tmp_path, f"libvirt:{uuid}", "-q", "--format", "pretty", "-c", "info spice")
    assert done.returncode == 0, done.stderr
    assert "127.0.0.1" in done.stdout and port in done.stdout


def test_wait_event_and_events_file_see_virsh_suspend(lab: LibvirtLab, tmp_path: Path) -> None:
    name = lab.create_domain("events")
    events = tmp_path / "events.jsonl"
    args = ["-q", "-c", "query-status", f"--events={events}", "--timeout", str(TIMEOUT)]
    proc = start_qmpsh(tmp_path, f"libvirt:{name}", *args, "--wait-event", "RESUME")
    assert proc.stdout is not None
    assert '"running"' in proc.stdout.readline()  # connected, events registered
    assert virsh("suspend", name).returncode == 0
    assert wait_until(lambda: events.exists() and "STOP" in events.read_text())
    assert virsh("resume", name).returncode == 0
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["event"] == "RESUME"
    logged = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["event"] for e in logged] == ["STOP", "RESUME"]
    for event in logged:  # QEMU's own timestamps, QEMU's wire form
        assert set(event) == {"timestamp", "event"}
        assert isinstance(event["timestamp"]["seconds"], int) and event["timestamp"]["seconds"] > 0
    assert logged[0]["timestamp"]["seconds"] <= logged[1]["timestamp"]["seconds"]
    stop = start_qmpsh(tmp_path, f"libvirt:{name}", "-q", "-c", "query-status",
                       "--wait-event", "STOP", "--timeout", str(TIMEOUT))  # fmt: skip
    assert stop.stdout is not None and '"running"' in stop.stdout.readline()
    assert virsh("suspend", name).returncode == 0
    out, err = stop.communicate(timeout=TIMEOUT)
    assert stop.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["event"] == "STOP"
    lab.destroy(name)


def test_domain_destroyed_mid_script_exits_3_with_one_line(lab: LibvirtLab, tmp_path: Path) -> None:
    name = lab.create_domain("doomed")
    proc = start_qmpsh(tmp_path, f"libvirt:{name}", "-q")
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("query-status\n")
    proc.stdin.flush()
    assert '"running"' in proc.stdout.readline()
    lab.destroy(name)
    assert wait_until(lambda: domain_state(name) == "")
    out, err = proc.communicate("query-status\nquery-status\n", timeout=TIMEOUT)
    assert proc.returncode == 3
    assert out == "" and len(err.splitlines()) == 1, err
    assert err.startswith("qmpsh: error: ") and f"libvirt:{name}" in err and "lost" in err


def test_no_such_domain_is_one_line_exit_3(lab: LibvirtLab, tmp_path: Path) -> None:
    done = qmpsh(tmp_path, "libvirt:qmpsh-never-defined", "-c", "query-status")
    assert done.returncode == 3
    assert done.stderr.strip() == (
        "qmpsh: error: no libvirt domain 'qmpsh-never-defined' at qemu:///system"
    )
    assert TAINT not in done.stderr  # nothing was sent, nothing tainted


def test_default_uri_comes_from_the_environment(domain: str, tmp_path: Path) -> None:
    nowhere = "qemu+unix:///system?socket=/nonexistent/libvirt-sock"
    done = qmpsh(tmp_path, f"libvirt:{domain}", "-c", "query-name", LIBVIRT_DEFAULT_URI=nowhere)
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        f"qmpsh: error: cannot connect to libvirt at {nowhere}: Failed to connect socket to "
        "'/nonexistent/libvirt-sock': No such file or directory (is libvirtd running?)"
    ]
    given = qmpsh(tmp_path, f"libvirt:{domain}@qemu:///system", "-q", "-c", "query-name",
                  LIBVIRT_DEFAULT_URI=nowhere)  # fmt: skip
    assert given.returncode == 0 and json.loads(given.stdout) == {"name": domain}


def test_wait_retries_until_the_domain_runs(lab: LibvirtLab, tmp_path: Path) -> None:
    name = lab.new_name("late")
    proc = start_qmpsh(tmp_path, f"libvirt:{name}", "-q", "--wait", str(TIMEOUT),
                       "-c", "query-name")  # fmt: skip
    assert proc.poll() is None  # still waiting: the domain does not exist yet
    lab.create_domain(name=name)
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert json.loads(out) == {"name": name}
    lab.destroy(name)


def test_missing_extra_says_how_to_install(tmp_path: Path) -> None:
    """The real CLI, with libvirt-python hidden as if it were not installed."""
    shim = tmp_path / "shim"
    shim.mkdir()
    for module in ("libvirt", "libvirt_qemu"):
        (shim / f"{module}.py").write_text(
            f"raise ModuleNotFoundError('No module named {module}', name='{module}')\n"
        )
    path = f"{shim}:{Path(__file__).resolve().parents[1]}"
    done = qmpsh(tmp_path, "libvirt:web1", "-c", "query-status", PYTHONPATH=path)
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        f"qmpsh: error: cannot reach libvirt:web1: libvirt-python is not installed; {INSTALL_HINT}"
    ]


# -- discovery and expansion ------------------------------------------------------


def test_libvirt_star_expands_to_running_domains(lab: LibvirtLab) -> None:
    one, two = lab.create_domain("star"), lab.create_domain("star")
    found = expand_libvirt_targets("libvirt:*")
    assert {LibvirtAddress(one), LibvirtAddress(two)} <= set(found)
    assert found == sorted(found, key=lambda a: a.domain)
    with_uri = expand_libvirt_targets("libvirt:*@qemu:///system")
    assert LibvirtAddress(one, "qemu:///system") in with_uri
    lab.destroy(two)
    names = [a.domain for a in expand_libvirt_targets("libvirt:*")]
    assert one in names and two not in names
    assert expand_libvirt_targets(f"libvirt:{one}") == [LibvirtAddress(one)]
    lab.destroy(one)


def test_list_sockets_shows_running_domains(domain: str, tmp_path: Path) -> None:
    done = qmpsh(tmp_path, "--list-sockets")
    assert done.returncode == 0, done.stderr
    assert f"libvirt:{domain}" in done.stdout.splitlines()


# -- the session and the interactive shell ---------------------------------------------


def test_schema_completion_against_a_libvirt_domain(domain: str, tmp_path: Path) -> None:
    with open_libvirt_monitor(LibvirtAddress(domain), timeout=TIMEOUT) as monitor:
        monitor.connect()
        session = Session(
            monitor, Settings(), Renderer("json", sys.stdout, sys.stderr, color=False)
        )  # type: ignore[arg-type]
        completer = completer_for(session)

        def complete(text: str) -> list[str]:
            found = completer.get_completions(Document(text, len(text)), CompleteEvent())
            return [c.text for c in found]

        assert "query-status" in complete("query-sta")
        assert "qcow2" in complete("blockdev-add driver=qc")
        assert session.schema is not None and "query-spice" in session.schema.command_names()
        assert monitor.version >= (2, 0, 0) and monitor.greeting["QMP"]["capabilities"] == []


def test_interactive_shell_shows_events_and_survives_the_domain(
    lab: LibvirtLab, tmp_path: Path
) -> None:
    """Events in the pane; a destroyed domain is reported, the shell stays, `reconnect` heals."""
    name = lab.create_domain("shell")
    env = private_env(tmp_path)
    keep = {k: env[k] for k in ("HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")}
    child = spawn_qmpsh([f"libvirt:{name}"], tmp_path, **keep)
    try:
        child.expect_exact(TAINT)
        child.expect_exact(f"({name}) ")
        assert virsh("suspend", name).returncode == 0
        child.expect_exact("STOP")
        assert virsh("resume", name).returncode == 0
        child.expect_exact("RESUME")
        lab.destroy(name)
        child.expect(r"lost \(the domain was destroyed\); type `reconnect`")
        child.sendline("query-status")
        child.expect(r"error: connection to libvirt:\S+ lost")
        assert child.isalive()
        lab.create_domain(name=name)  # the same name again: a new QEMU behind it
        child.sendline("reconnect")
        child.expect_exact(f"reconnected to libvirt:{name}")
        child.sendline("query-status")
        child.expect(r"status\W+running")
        assert TAINT not in child.before  # said once, at the first connection only
        child.expect_exact(f"({name}) ")  # the prompt is back: Ctrl-D now reaches qmpsh
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    finally:
        leave(child)
    assert child.exitstatus == 0


def test_lost_libvirtd_ends_a_script_with_exit_3(lab: LibvirtLab, tmp_path: Path) -> None:
    """libvirtd itself goes away (stopped by PID); it is started again for the tests after."""
    if not lab.libvirtd.ours:
        unavailable("this libvirtd was not started by the tests, so they may not stop it")
    name = lab.create_domain("orphan")
    proc = start_qmpsh(tmp_path, f"libvirt:{name}", "-q")
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("query-status\n")
    proc.stdin.flush()
    assert '"running"' in proc.stdout.readline()
    try:
        lab.libvirtd.stop()
        out, err = proc.communicate("query-status\n", timeout=TIMEOUT)
    finally:
        lab.libvirtd.ensure()  # the domain's QEMU ran on; libvirtd takes it back
    assert proc.returncode == 3 and out == ""
    assert err.splitlines() == [
        f"qmpsh: error: connection to libvirt:{name} lost (libvirt closed the connection: EOF)"
    ]
    assert wait_until(lambda: domain_state(name) == "running")
    lab.destroy(name)
