"""`reconnect` against a real QEMU restarted on the same socket path.

Each QEMU gets a second QMP monitor at a path this test chooses, so a fresh QEMU can
take over exactly that path after the first is killed.  Three levels: the session
(``run_line("reconnect")``), the interactive Application fed keys through a pipe, and
the schema swap, where a FAKE server plays a QEMU of another version.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fake_qmp_server import GREETING, FakeConnection, FakeQmpServer
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput
from qemu import Qemu
from support import WAIT, wait_until

from qmpsh.address import parse_address
from qmpsh.client import QmpClient
from qmpsh.errors import ConnectError
from qmpsh.reconnect import delays, reconnect
from qmpsh.session import Output, Session, Settings
from qmpsh.settings import ShellOptions
from qmpsh.ui import ShellUI


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "vm.sock")


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def qemu_at(path: str) -> Qemu:
    """A QEMU whose (second) QMP monitor listens at ``path``; QEMU replaces a stale socket."""
    return Qemu(["-qmp", f"unix:{path},server=on,wait=off"])


def new_session(path: str) -> tuple[Session, io.StringIO]:
    out = io.StringIO()
    client = QmpClient(parse_address(path), timeout=10.0)
    session = Session(client, Settings(fmt="json"), Output(out, out))
    client.connect(wait=5.0)
    return session, out


def kill(qemu: Qemu, session: Session) -> None:
    qemu.kill()
    qemu.proc.wait()
    assert wait_until(lambda: session.client.failure is not None)


# -- pure -------------------------------------------------------------------------------


def test_delays_double_up_to_the_cap() -> None:
    it = delays(0.1, 5.0)
    seen = [round(next(it), 2) for _ in range(9)]
    assert seen == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]


def test_reconnect_is_a_command_line_flag() -> None:
    from qmpsh.options import build_parser

    assert build_parser().parse_args(["--reconnect", "x.sock"]).reconnect is True
    assert build_parser().parse_args(["x.sock"]).reconnect is False


# -- the session ---------------------------------------------------------------------


def test_reconnect_brings_a_restarted_qemu_back(path: str) -> None:
    events: list[dict[str, Any]] = []
    transcript: list[tuple[str, dict[str, Any]]] = []
    with qemu_at(path) as first:
        session, out = new_session(path)
        session.client.add_event_listener(events.append)
        session.client.add_transcript_listener(lambda d, m: transcript.append((d, m)))
        announced: list[object] = []
        session.add_client_listener(announced.append)
        old = session.client
        kill(first, session)
    with qemu_at(path) as second:
        assert session.run_line("reconnect") == 0
        assert "reconnected to" in out.getvalue()
        assert session.client is not old and session.client.connected
        assert announced == [session.client]  # told, not polled
        assert session.run_line("stop") == 0
        # listeners moved over: the new QEMU's event reaches them, and the session's log
        assert wait_until(lambda: any(e["event"] == "STOP" for e in events))
        assert session.events.recent(1)[0].event["event"] == "STOP"
        assert ("out", {"execute": "stop"}) in [
            (d, {"execute": m.get("execute")}) for d, m in transcript
        ]
        assert session.run_line("reconnect") == 0  # connected: says so, changes nothing
        assert "already connected" in out.getvalue()
        session.client.close()
        second.stop()


def test_reconnect_gives_up_after_its_attempts(path: str) -> None:
    with qemu_at(path) as first:
        session, _ = new_session(path)
        kill(first, session)
        with pytest.raises(ConnectError, match="in 2 attempts"):
            session.run_line("reconnect 2")
        assert session.client.failure is not None  # the old client stays, still failed


def test_reconnect_waits_for_a_qemu_that_comes_back_later(path: str) -> None:
    with qemu_at(path) as first:
        session, _ = new_session(path)
        kill(first, session)
    result: list[QmpClient] = []
    worker = threading.Thread(target=lambda: result.append(reconnect(session, attempts=50)))
    worker.start()
    with qemu_at(path):  # starts while reconnect is already retrying
        worker.join(WAIT * 3)
        assert result and result[0] is session.client
        assert session.client.execute("query-status")["status"] == "running"
        session.client.close()


def test_stop_event_ends_the_retries(path: str) -> None:
    with qemu_at(path) as first:
        session, _ = new_session(path)
        kill(first, session)
    stop = threading.Event()
    stop.set()
    with pytest.raises(ConnectError, match="stopped"):
        reconnect(session, attempts=None, stop=stop)


def test_schema_is_read_again_after_a_reconnect(path: str, tmp_path: Path) -> None:
    """From the cache when the server is the same build; from the server when it is not."""
    with qemu_at(path) as qemu:
        session, _ = new_session(path)
        schema = session.schema
        assert schema is not None and "query-status" in schema.command_names()
        same = QmpClient(parse_address(qemu.socket), timeout=10.0)
        same.connect()
        sent: list[str] = []
        same.add_transcript_listener(
            lambda way, message: sent.append(message.get("execute", "")) if way == "out" else None
        )
        session.client.close()
        session.replace_client(same)
        again = session.schema
        assert again is not None and again.command_names() == schema.command_names()
        assert sent == ["query-commands"]  # the cache key; the schema came from the cache
        same.close()

    newer = {
        "QMP": {
            **GREETING["QMP"],
            "version": {"qemu": {"major": 9, "minor": 9, "micro": 9}, "package": ""},
        }
    }
    tiny = [
        {"name": "only-this", "meta-type": "command", "arg-type": "0", "ret-type": "0"},
        {"name": "0", "meta-type": "object", "members": []},
    ]

    def fake_qemu(conn: FakeConnection) -> None:
        conn.send(newer)
        conn.reply(conn.read(), {})
        answers = {"query-commands": [{"name": "only-this"}], "query-qmp-schema": tiny}
        while True:  # the cache key asks query-commands first; EOF ends the loop
            request = conn.read()
            conn.reply(request, answers[request["execute"]])

    with FakeQmpServer(str(tmp_path / "fake.sock"), fake_qemu) as server:
        client = QmpClient(parse_address(server.path), timeout=10.0)
        client.connect()
        session.replace_client(client)
        new_schema = session.schema
        assert new_schema is not None and new_schema.command_names() == ["only-this"]
        assert server.connection is not None
        assert server.connection.received[-1]["execute"] == "query-qmp-schema"
        client.close()


# -- the interactive shell ------------------------------------------------------------


class SizedOutput(DummyOutput):
    def get_size(self) -> Size:
        return Size(rows=40, columns=140)


@contextmanager
def running_ui(
    session: Session, reconnect: bool = False
) -> Iterator[tuple[ShellUI, PipeInput, io.StringIO]]:
    options = ShellOptions(pager=False, color="never", quiet=True, reconnect=reconnect)
    stdout = io.StringIO()
    with create_pipe_input() as pipe:
        ui = ShellUI(
            session,
            options,
            input=pipe,
            output=SizedOutput(),
            stdout=stdout,
        )
        result: list[int | None] = []
        thread = threading.Thread(target=lambda: result.append(ui.app.run(handle_sigint=False)))
        thread.start()
        assert wait_until(lambda: ui.app.is_running)
        try:
            yield ui, pipe, stdout
        finally:
            if ui.app.is_running and ui.app.loop is not None:
                ui.app.loop.call_soon_threadsafe(lambda: ui.app.exit(result=0))
            thread.join(WAIT)
            session.client.close()


def toolbar(ui: ShellUI) -> str:
    return "".join(text for _, text, *_ in ui.toolbar_fragments())


def test_shell_stays_up_and_reconnect_heals_it(path: str) -> None:
    with qemu_at(path) as first:
        session, _ = new_session(path)
        with running_ui(session) as (ui, pipe, stdout):
            kill(first, session)
            assert wait_until(lambda: "type `reconnect`" in stdout.getvalue()), stdout.getvalue()
            assert ui.app.is_running
            assert "disconnected" in toolbar(ui)
            with qemu_at(path):
                pipe.send_text("reconnect\r")
                assert wait_until(lambda: "reconnected to" in stdout.getvalue()), stdout.getvalue()
                assert "disconnected" not in toolbar(ui)
                pipe.send_text("query-status\r")
                assert wait_until(lambda: '"running"' in stdout.getvalue()), stdout.getvalue()
                assert ui.status == 0


def test_reconnect_flag_heals_on_its_own(path: str) -> None:
    with qemu_at(path) as first:
        session, _ = new_session(path)
        with running_ui(session, reconnect=True) as (_, pipe, stdout):
            old = session.client
            kill(first, session)
            assert wait_until(lambda: "reconnecting" in stdout.getvalue()), stdout.getvalue()
            with qemu_at(path):
                assert wait_until(lambda: session.client is not old and session.client.connected)
                assert wait_until(lambda: "reconnected to" in stdout.getvalue())
                pipe.send_text("query-status\r")
                assert wait_until(lambda: '"running"' in stdout.getvalue()), stdout.getvalue()
