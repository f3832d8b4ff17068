"""The session's one request path, against a real QEMU.

``Session.run`` is what every frontend calls, so these check its promises directly:
the reply rendered once in the current format, the request on the wire handed to
``on_submit``, the wait-mark set before sending, commands from the registry it was
given, and listeners told when the monitor is replaced.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from qemu import Qemu

from qmpsh.address import parse_address
from qmpsh.client import QmpClient
from qmpsh.commands import Registry, ShellCommandSpec
from qmpsh.monitor import Pending, open_monitor
from qmpsh.render import Renderer
from qmpsh.session import Output, Session, Settings
from qmpsh.shell_commands import SHELL_COMMANDS


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def session(qemu: Qemu, out: io.StringIO) -> Iterator[Session]:
    client = open_monitor(qemu.socket, timeout=10.0)
    s = Session(client, Settings(fmt="json"), Output(out, out))
    client.connect(wait=5.0)
    yield s
    s.client.close()


def test_open_monitor_gives_an_unconnected_monitor_for_the_address(qemu: Qemu) -> None:
    monitor = open_monitor(f"unix:{qemu.socket}", timeout=3.0)
    assert isinstance(monitor, QmpClient)  # the only kind so far
    assert str(monitor.address) == qemu.socket and monitor.timeout == 3.0
    assert not monitor.connected and monitor.failure is None
    assert monitor.capabilities.fd_passing and monitor.capabilities.schema


def test_on_submit_gets_the_request_on_the_wire_and_the_reply_renders_once(
    session: Session, out: io.StringIO
) -> None:
    seen: list[Pending] = []
    assert session.run_line("query-status") == 0  # warm: the next one is typed by the schema
    out.truncate(0)
    out.seek(0)
    request = session.parse("query-status")
    assert request is not None
    assert session.run(request, on_submit=seen.append) == 0
    assert len(seen) == 1 and seen[0].done
    assert out.getvalue().count('"status":"running"') == 1


def test_the_format_lives_in_the_settings_only(session: Session, out: io.StringIO) -> None:
    assert session.run_line("format pretty") == 0
    assert session.settings.fmt == "pretty"
    assert session.run_line("query-status") == 0
    assert "VM status: running" in out.getvalue()  # pretty: as a table, not JSON
    assert session.run_line("format raw") == 0
    assert session.run_line("query-status") == 0
    assert '{"return":{' in out.getvalue()  # the whole wire reply


def test_an_output_given_to_run_gets_that_request_only(session: Session, out: io.StringIO) -> None:
    elsewhere = io.StringIO()
    request = session.parse("query-name")
    assert request is not None
    assert session.run(request, output=Output(elsewhere, elsewhere)) == 0
    assert elsewhere.getvalue().startswith("{") and out.getvalue() == ""


def test_errors_name_the_script_line(session: Session, out: io.StringIO) -> None:
    assert session.run_line("eject force=maybe", line=7) == 2
    assert out.getvalue().startswith("error: line 7, col ")


def test_the_wait_mark_is_set_before_the_request_is_sent(session: Session) -> None:
    assert session.run_line("stop") == 0
    assert session.run_line("wait STOP timeout=10") == 0  # its event raced the reply: still seen
    mark = session.events.last_seq
    assert session.run_line("cont") == 0
    assert session.wait_mark == mark  # cont's RESUME comes after it
    assert session.run_line("wait RESUME timeout=10") == 0


def test_shell_commands_come_from_the_registry_the_session_was_given(
    qemu: Qemu, out: io.StringIO
) -> None:
    def hello(session: Session, argv: tuple[str, ...], renderer: Renderer) -> int:
        renderer.text("hello " + " ".join(argv))
        return 0

    spec = ShellCommandSpec("hello", "hello NAME", "say hello", hello)
    registry = Registry([*SHELL_COMMANDS.specs(), spec])
    client = QmpClient(parse_address(qemu.socket), timeout=10.0)
    session = Session(client, Settings(fmt="json"), Output(out, out), commands=registry)
    client.connect(wait=5.0)
    try:
        assert session.run_line("hello world") == 0
        assert "hello world" in out.getvalue()
        assert session.run_line("help hello") == 0
        assert "say hello" in out.getvalue()
        other = io.StringIO()
        plain = Session(client, Settings(fmt="json"), Output(other, other))
        assert plain.run_line("hello") == 2  # another session never sees it: not QMP either
        assert "hello" in other.getvalue() and other.getvalue().startswith("error:")
    finally:
        client.close()
