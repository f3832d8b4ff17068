"""The interactive Application against a real QEMU: keys from a pipe, state asserted.

The Application runs on its own thread (as it would on the main one), keys go in
through ``create_pipe_input()`` and the output is a ``DummyOutput`` that claims a
chosen size, so tests can assert on state: buffer text, pane lines, flags.
"""

from __future__ import annotations

import gc
import io
import stat
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from peers import vnc_connect
from prompt_toolkit.completion import CompleteEvent, Completer, Completion, ThreadedCompleter
from prompt_toolkit.data_structures import Size
from prompt_toolkit.document import Document
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.key_binding.defaults import load_key_bindings
from prompt_toolkit.output import DummyOutput
from qemu import Qemu
from support import WAIT, wait_for, wait_until

from qmpsh import layout, pager
from qmpsh.address import parse_address
from qmpsh.client import QmpClient
from qmpsh.history import PrivateHistory
from qmpsh.layout import signature
from qmpsh.lexer import make_lexer
from qmpsh.session import Output, Session, Settings
from qmpsh.settings import ShellOptions
from qmpsh.startup import pause_collection
from qmpsh.ui import ShellUI


class SizedOutput(DummyOutput):
    """A DummyOutput with a chosen size: 80x40 would make the pane too narrow to show."""

    def __init__(self, columns: int = 140, rows: int = 40) -> None:
        self.size = Size(rows=rows, columns=columns)

    def get_size(self) -> Size:
        return self.size


def make_options(**overrides: Any) -> ShellOptions:
    """What the command line would fold for the shell: no pager, no colour, no banner."""
    values: dict[str, Any] = {"pager": False, "color": "never", "quiet": True}
    values.update(overrides)
    return ShellOptions(**values)


def make_session(socket_path: str, **settings: Any) -> Session:
    """The same wiring as cli._connect_and_run, minus the terminal checks."""
    settings.setdefault("fmt", "json")
    client = QmpClient(parse_address(socket_path), timeout=10.0)
    session = Session(client, Settings(**settings), Output(io.StringIO(), io.StringIO()))
    client.connect(wait=5.0)
    return session


class Running:
    """A ShellUI whose Application is running on a thread; ``send`` types keys."""

    def __init__(self, ui: ShellUI, pipe: PipeInput, stdout: io.StringIO) -> None:
        self.ui = ui
        self.pipe = pipe
        self.stdout = stdout
        self.result: list[int | None] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.result.append(self.ui.app.run(handle_sigint=False))

    def send(self, text: str) -> None:
        self.pipe.send_text(text)

    def pane_lines(self) -> list[str]:
        from qmpsh.layout import EventPaneControl

        for window in self.ui.app.layout.find_all_windows():
            if isinstance(window.content, EventPaneControl):
                return list(window.content.lines)
        return []

    def stop(self) -> None:
        if self.ui.app.is_running:
            self.ui.app.loop.call_soon_threadsafe(lambda: self.ui.app.exit(result=0))  # type: ignore[union-attr]
        self.thread.join(WAIT)


@contextmanager
def running_ui(
    session: Session,
    *,
    options: ShellOptions | None = None,
    history_path: Path | None = None,
    columns: int = 140,
) -> Iterator[Running]:
    history = PrivateHistory(history_path) if history_path is not None else None
    stdout = io.StringIO()
    with create_pipe_input() as pipe:
        ui = ShellUI(
            session,
            options or make_options(),
            history=history,
            input=pipe,
            output=SizedOutput(columns),
            stdout=stdout,
        )
        run = Running(ui, pipe, stdout)
        run.thread.start()
        wait_until(lambda: ui.app.is_running)
        try:
            yield run
        finally:
            run.stop()
            session.client.close()


# ---------------------------------------------------------------------------- tests

F2 = "\x1bOQ"
CTRL_C = "\x03"
CTRL_D = "\x04"


@pytest.fixture
def session(qemu: Qemu) -> Iterator[Session]:
    s = make_session(qemu.socket)
    yield s
    s.client.close()


def toolbar_text(ui: ShellUI) -> str:
    return "".join(text for _, text, *_ in ui.toolbar_fragments())


def test_tab_completes_a_unique_command(session: Session) -> None:
    with running_ui(session) as run:
        run.send("query-sp")
        assert wait_until(lambda: run.ui.buffer.text == "query-sp")
        run.send("\t")
        assert wait_until(lambda: run.ui.buffer.text == "query-spice")


class HeldWhileTyping(Completer):
    """Completions asked for by typing wait at a gate; those Tab asks for come at once.

    A machine under load is slow to complete while typing: Tab then comes while the
    menu's completions are still arriving (prompt_toolkit shows the menu empty first).
    """

    def __init__(self, inner: Completer) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.holding = threading.Event()

    def get_completions(self, document: Document, event: CompleteEvent) -> Iterator[Completion]:
        if not event.completion_requested:
            self.holding.set()
            self.gate.wait(WAIT)
        yield from self.inner.get_completions(document, event)


def test_tab_while_typing_completions_still_load_completes(session: Session) -> None:
    with running_ui(session) as run:
        held = HeldWhileTyping(run.ui.buffer.completer)
        run.ui.buffer.completer = ThreadedCompleter(held)
        try:
            run.send("query-sp")
            wait_for(lambda: held.holding.is_set() and run.ui.buffer.text == "query-sp", "typing")
            wait_for(lambda: run.ui.buffer.complete_state is not None, "the menu to open empty")
            run.send("\t")
            wait_for(lambda: run.ui.buffer.text == "query-spice", "Tab to complete")
        finally:
            held.gate.set()


def test_the_first_draw_resumes_collection_then_loads_the_schema(session: Session) -> None:
    """The command line pauses garbage collection for start-up; the shell's first draw
    ends the pause and only then loads the schema, which no draw ever waits for."""
    pause_collection()
    try:
        lexer = make_lexer(session)
        lexer.lex_document(Document("query-status"))(0)
        assert session.loaded_schema is None  # drawing never fetched it
        with running_ui(session) as run:
            wait_for(lambda: run.ui.schema is not None, "the schema, after the first draw")
            assert gc.isenabled()
            assert session.loaded_schema is run.ui.schema
    finally:
        gc.enable()


def test_the_line_is_highlighted_once_it_holds_text(session: Session) -> None:
    """The lexer is made at the first character typed (not for the first draw)."""
    with running_ui(session) as run:
        lexer = run.ui.lexer()
        run.send("query-status")
        wait_for(lambda: run.ui.buffer.text == "query-status", "typing")
        fragments = lexer.lex_document(run.ui.buffer.document)(0)
        assert [style for style, text, *_ in fragments if text == "query-status"] == [
            "class:command"
        ]


def test_default_bindings_are_emacs_modes_alone(session: Session) -> None:
    """Vi mode's bindings are never built (qmpsh edits in emacs mode); emacs keys work."""
    with running_ui(session) as run:
        modules = {b.handler.__module__ for b in run.ui.app._default_bindings.bindings}
        assert "prompt_toolkit.key_binding.bindings.emacs" in modules
        assert "prompt_toolkit.key_binding.bindings.vi" not in modules
        run.send("status\x01query-")  # Ctrl-A: emacs's start of line
        wait_for(lambda: run.ui.buffer.text == "query-status", "Ctrl-A to work")
    assert "prompt_toolkit.key_binding.bindings.vi" in {
        b.handler.__module__ for b in load_key_bindings().bindings
    }


def test_toolbar_shows_the_signature_of_the_command_being_typed(session: Session) -> None:
    with running_ui(session) as run:
        run.ui.warm_schema()
        assert wait_until(lambda: run.ui.schema is not None)
        run.send("set_password ")
        assert wait_until(lambda: "protocol" in toolbar_text(run.ui)), toolbar_text(run.ui)


def test_reply_is_printed_into_the_terminal(session: Session) -> None:
    with running_ui(session) as run:
        run.send("query-status\r")
        assert wait_until(lambda: '"running"' in run.stdout.getvalue()), run.stdout.getvalue()
        assert "query-status" in run.stdout.getvalue()  # the accepted line, echoed
        assert not run.ui.busy


def test_event_reaches_the_pane_without_a_keypress(session: Session, qemu: Qemu) -> None:
    with running_ui(session) as run:
        assert wait_until(lambda: run.pane_lines())  # the first frame is drawn
        assert qemu.vnc_port is not None
        with closing(vnc_connect("127.0.0.1", qemu.vnc_port)):
            assert wait_until(lambda: any("VNC_CONNECTED" in line for line in run.pane_lines()))
        assert wait_until(lambda: any("VNC_DISCONNECTED" in line for line in run.pane_lines()))
        assert "VNC_CONNECTED" not in run.stdout.getvalue()  # in the pane, not the scrollback


def test_narrow_terminal_prints_events_above_the_prompt(session: Session, qemu: Qemu) -> None:
    with running_ui(session, columns=80) as run:
        assert qemu.vnc_port is not None
        with closing(vnc_connect("127.0.0.1", qemu.vnc_port)):
            assert wait_until(lambda: "VNC_CONNECTED" in run.stdout.getvalue())
        assert run.pane_lines() == []  # the pane was never drawn


def test_f2_toggles_the_pane_and_hidden_events_are_counted(session: Session, qemu: Qemu) -> None:
    with running_ui(session) as run:
        run.send(F2)
        assert wait_until(lambda: not session.show_events)
        assert qemu.vnc_port is not None
        with closing(vnc_connect("127.0.0.1", qemu.vnc_port)):
            assert wait_until(lambda: run.ui.unseen > 0)
        assert "unseen" in toolbar_text(run.ui)
        run.send(F2)
        assert wait_until(lambda: session.show_events)
        assert run.ui.unseen == 0


def test_events_off_hides_the_pane(session: Session) -> None:
    with running_ui(session) as run:
        run.send("events off\r")
        assert wait_until(lambda: not session.show_events and not run.ui.busy)
        assert not run.ui.pane_shown()


def test_quit_asks_and_n_keeps_qemu_running(session: Session, qemu: Qemu) -> None:
    with running_ui(session) as run:
        run.send("quit\r")
        assert wait_until(lambda: run.ui.confirming is not None)
        run.send("n\r")
        assert wait_until(lambda: run.ui.confirming is None)
        assert "not sent" in run.stdout.getvalue() or wait_until(
            lambda: "not sent" in run.stdout.getvalue()
        )
        run.send("query-status\r")
        assert wait_until(lambda: '"running"' in run.stdout.getvalue())
    assert qemu.proc.poll() is None


def test_unbalanced_line_continues(session: Session) -> None:
    with running_ui(session) as run:
        run.send('{"execute": "query-status"\r')
        assert wait_until(lambda: run.ui.buffer.text.endswith("\n"))
        assert not run.ui.busy
        run.send("}\r")
        assert wait_until(lambda: '"running"' in run.stdout.getvalue())


def test_ctrl_c_clears_the_line(session: Session) -> None:
    with running_ui(session) as run:
        run.send("query-stat")
        assert wait_until(lambda: run.ui.buffer.text == "query-stat")
        run.send(CTRL_C)
        assert wait_until(lambda: run.ui.buffer.text == "")
        assert run.ui.app.is_running


def test_ctrl_c_stops_waiting_and_the_shell_goes_on(session: Session) -> None:
    with running_ui(session) as run:
        run.send("wait SUSPEND timeout=30\r")  # a real event no guest here sends
        assert wait_until(lambda: run.ui.busy)
        run.send(CTRL_C)
        assert wait_until(lambda: not run.ui.busy)
        assert wait_until(lambda: "stopped waiting" in run.stdout.getvalue())  # printed after
        run.send("query-status\r")
        assert wait_until(lambda: '"running"' in run.stdout.getvalue())


def test_ctrl_d_and_exit_leave_with_status_0(session: Session) -> None:
    with running_ui(session) as run:
        run.send(CTRL_D)
        run.thread.join(WAIT)
        assert run.result == [0]


def test_exit_command_leaves(session: Session) -> None:
    with running_ui(session) as run:
        run.send("exit\r")
        run.thread.join(WAIT)
        assert run.result == [0]


def test_history_file_is_private_and_has_no_secrets(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "state" / "qmpsh" / "history"
    with running_ui(session, history_path=path) as run:
        run.send("query-status\r")
        assert wait_until(lambda: '"running"' in run.stdout.getvalue())
        run.send("set_password protocol=vnc password=hunter2\r")
        assert wait_until(lambda: run.stdout.getvalue().count("(qemu") >= 2 and not run.ui.busy)
        # Up recalls it in this session even though the file does not have it.
        run.send("\x1b[A")
        assert wait_until(lambda: "hunter2" in run.ui.buffer.text)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert "query-status" in text
    assert "hunter2" not in text and "set_password" not in text


# ------------------------------------------------------------------- pager (pure)


def test_paging_only_when_taller_than_the_terminal() -> None:
    assert not pager.needs_paging("a\nb\n", rows=3)
    assert pager.needs_paging("a\nb\nc\n", rows=3)


def test_pager_defaults_and_user_choices() -> None:
    assert pager.pager_command({}) == ["less"]
    assert pager.pager_command({"PAGER": "most -s"}) == ["most", "-s"]
    assert pager.pager_env({})["LESS"] == "-SRXF"
    assert pager.pager_env({"LESS": "-R"})["LESS"] == "-R"


def test_page_runs_the_pager_with_the_text(tmp_path: Path) -> None:
    out = tmp_path / "paged"
    assert pager.page("line 1\nline 2\n", {"PAGER": f"tee {out}", "PATH": "/usr/bin:/bin"})
    assert out.read_text() == "line 1\nline 2\n"


def test_missing_pager_reports_false() -> None:
    assert not pager.page("x\n", {"PAGER": "/nonexistent/pager"})


def test_a_pasted_block_runs_each_request_in_turn(session: Session) -> None:
    paste = "query-name\n# a comment\nquery-status\ntransaction(\n)\nquery-version\n"
    with running_ui(session) as run:
        run.send(f"\x1b[200~{paste}\x1b[201~\r")  # bracketed paste, then Enter
        assert wait_until(lambda: '"qemu"' in run.stdout.getvalue()), run.stdout.getvalue()
        out = run.stdout.getvalue()
        echoed = [line for line in out.splitlines() if line.startswith(run.ui.prompt_text)]
        assert [line[len(run.ui.prompt_text) :] for line in echoed] == [
            "query-name",
            "query-status",
            "transaction(",  # its ")" follows on the next line, as typed
            "query-version",
        ]
        assert out.index('"running"') < out.index('"qemu"')  # in order, each its own reply
        assert "error" not in out
        assert wait_until(lambda: not run.ui.busy)


def test_pane_rows_wrap_at_spaces_with_an_indent() -> None:
    from qmpsh.layout import _wrap

    assert _wrap("short", 10) == ["short"]
    line = "#2 13:09:49.319 SPICE_INITIALIZED main:0 127.0.0.1:54108 → 127.0.0.1:50375"
    rows = _wrap(line, 40)
    assert all(len(row) <= 40 for row in rows)
    assert rows[1].startswith("  ") and "127.0.0.1:50375" in rows[-1]  # no address cut
    assert " ".join(row.strip() for row in rows) == line
    assert _wrap("x" * 25, 10)[0] == "x" * 10  # one long word is still cut to fit


def test_verbose_echoes_each_request_before_its_reply(qemu: Qemu) -> None:
    """-v in the shell: the request as sent (secrets masked), then its reply."""
    session = make_session(qemu.socket, verbose=True)
    with running_ui(session) as run:
        run.send("query-status\r")
        assert wait_until(lambda: '"running"' in run.stdout.getvalue()), run.stdout.getvalue()
        out = run.stdout.getvalue()
        assert out.index('{"execute":"query-status"}') < out.index('"running"')
        run.send("set_password protocol=vnc password=hunter2\r")
        assert wait_until(lambda: '{"execute":"set_password"' in run.stdout.getvalue())
        echo = next(
            line
            for line in run.stdout.getvalue().splitlines()
            if line.startswith('{"execute":"set_password"')
        )
        assert "<redacted>" in echo and "hunter2" not in echo


def test_tab_runs_the_completer_off_the_ui_thread(session: Session) -> None:
    """A live value may take QEMU seconds: Tab must not freeze the prompt meanwhile."""
    from prompt_toolkit.filters import to_filter

    threads: list[threading.Thread] = []

    class Spy(Completer):
        def __init__(self, inner: Completer) -> None:
            self.inner = inner

        def get_completions(self, document: Document, event: CompleteEvent) -> Iterator[Completion]:
            threads.append(threading.current_thread())
            yield from self.inner.get_completions(document, event)

    with running_ui(session) as run:
        made_at_first_use = run.ui.buffer.completer.inner  # type: ignore[union-attr]
        threaded = made_at_first_use.get_completer()
        threaded.completer = Spy(threaded.completer)
        run.ui.buffer.complete_while_typing = to_filter(False)  # only Tab asks
        run.send("query-sp")
        assert wait_until(lambda: run.ui.buffer.text == "query-sp")
        run.send("\t")
        assert wait_until(lambda: run.ui.buffer.text == "query-spice")
        assert threads and run.thread not in threads


def test_quit_under_hmp_mode_asks_too(qemu: Qemu) -> None:
    """-H sends every line to HMP: its `quit` stops QEMU just the same."""
    session = make_session(qemu.socket, hmp_mode=True)
    with running_ui(session) as run:
        run.send("quit\r")
        assert wait_until(lambda: run.ui.confirming is not None)
        assert "stops QEMU" in run.ui.confirm_text
        run.send("n\r")
        assert wait_until(lambda: "not sent" in run.stdout.getvalue())
        run.send("info status\r")  # not a question: it runs
        assert wait_until(lambda: "running" in run.stdout.getvalue().split("not sent")[-1])
        assert run.ui.confirming is None
    assert qemu.proc.poll() is None


def screen_rows(run: Running) -> list[str]:
    """The rows the Application last drew (its renderer's screen), as text."""
    screen = run.ui.app.renderer._last_screen
    if screen is None:
        return []
    rows = []
    for y in range(screen.height):
        line = screen.data_buffer[y]
        width = max(line.keys(), default=-1) + 1
        rows.append("".join(line[x].char for x in range(width)).rstrip())
    return rows


def redrawn(run: Running) -> None:
    """Wait for two whole redraws from now: a height one draw settles is used by the next."""
    app = run.ui.app
    for _ in range(2):
        drawn = app.render_counter
        app.invalidate()
        wait_for(lambda: app.render_counter > drawn, "a redraw")  # noqa: B023 (used at once)


def seen(session: Session, name: str) -> bool:
    return any(logged.event.get("event") == name for logged in session.events.recent())


def screen_shows(run: Running, text: str) -> bool:
    return any(text in row for row in screen_rows(run))


def test_toolbar_goes_idle_when_a_slow_silent_reply_lands(qemu: Qemu) -> None:
    """Issue 11.1: no keypress after the reply, yet "running …" leaves the screen."""
    session = make_session(qemu.socket, fmt="pretty")  # pretty prints nothing for `cont`
    with running_ui(session) as run:
        assert wait_until(lambda: screen_shows(run, str(session.client.address)))
        with qemu.frozen():
            run.send("cont\r")  # a reply with nothing to print
            assert wait_until(lambda: screen_shows(run, "running cont"))
        assert wait_until(lambda: not run.ui.busy)
        assert wait_until(lambda: not screen_shows(run, "running cont")), screen_rows(run)


def test_a_line_entered_while_a_command_runs_runs_after_it(session: Session, qemu: Qemu) -> None:
    """Enter while busy used to ring the bell and leave the line unrun: typed ahead, it
    waits its turn (counted in the toolbar) and runs when the reply lands."""
    with running_ui(session) as run:
        assert wait_until(lambda: screen_shows(run, str(session.client.address)))
        with qemu.frozen():
            run.send("query-name\r")
            assert wait_until(lambda: run.ui.busy)
            run.send("query-status\r")
            assert wait_until(lambda: "1 queued" in toolbar_text(run.ui)), toolbar_text(run.ui)
            assert run.ui.buffer.text == ""
        assert wait_until(lambda: run.ui.prompt_text + "query-status" in run.stdout.getvalue())
        assert wait_until(lambda: '"running"' in run.stdout.getvalue()), run.stdout.getvalue()
        assert wait_until(lambda: not run.ui.busy and run.ui.queued == 0)


def test_ctrl_c_drops_what_was_typed_ahead(session: Session, qemu: Qemu) -> None:
    with running_ui(session) as run:
        assert wait_until(lambda: screen_shows(run, str(session.client.address)))
        with qemu.frozen():
            run.send("query-name\r")
            assert wait_until(lambda: run.ui.busy)
            run.send("stop\r")
            assert wait_until(lambda: run.ui.queued == 1)
            run.send(CTRL_C)
            assert wait_until(lambda: "1 queued not run" in run.stdout.getvalue())
        assert wait_until(lambda: not run.ui.busy)
        assert run.ui.confirming is None  # the dropped `stop` was never asked about
        run.send("query-status\r")
        assert wait_until(lambda: '"running"' in run.stdout.getvalue()), run.stdout.getvalue()


def test_typed_ahead_command_neither_confirms_nor_is_cut(session: Session, qemu: Qemu) -> None:
    """Issue 11.2: `query-status` typed ahead holds a y, but the answer is the whole line."""
    with running_ui(session) as run:
        run.send("system_reset\rquery-status\r")
        assert wait_until(lambda: "not sent" in run.stdout.getvalue()), run.stdout.getvalue()
        assert run.ui.confirming is None and run.ui.buffer.text == ""
        assert run.ui.prompt_text + "uery-status" not in run.stdout.getvalue()  # nothing cut ran
        assert "then Enter: query-status\n" in run.stdout.getvalue()  # the whole line answered
        run.send("query-status\r")  # the shell goes on; no RESET reached QEMU
        assert wait_until(lambda: '"running"' in run.stdout.getvalue())
    assert not seen(session, "RESET")


def test_confirmation_has_a_prompt_of_its_own(session: Session) -> None:
    with running_ui(session) as run:
        run.send("system_reset\r")
        assert wait_until(lambda: screen_shows(run, "confirm: system_reset resets the guest"))
        prompt = run.ui.prompt_text.strip()
        assert not any(row.startswith(prompt) for row in screen_rows(run)[-3:])
        run.send("\x1b")  # Esc is a no
        assert wait_until(lambda: "not sent" in run.stdout.getvalue())


def test_yes_then_enter_sends(session: Session, qemu: Qemu) -> None:
    with running_ui(session) as run:
        run.send("stop\r")
        assert wait_until(lambda: run.ui.confirming is not None)
        run.send("yes\r")
        assert wait_until(lambda: seen(session, "STOP"))
        run.send("cont\r")
        assert wait_until(lambda: seen(session, "RESUME"))


def test_a_silent_success_says_ok(qemu: Qemu) -> None:
    """Issue 11.10: `cont` prints nothing in pretty; the shell acknowledges it."""
    session = make_session(qemu.socket, fmt="pretty")
    with running_ui(session) as run:
        run.send("cont\r")
        assert wait_until(lambda: "ok\n" in run.stdout.getvalue()), run.stdout.getvalue()


def test_narrow_f2_shows_the_events_it_hid(session: Session, qemu: Qemu) -> None:
    """Issue 11.4: below 100 columns the unseen events print when F2 shows events again."""
    with running_ui(session, columns=80) as run:
        run.send(F2)
        assert wait_until(lambda: not session.show_events)
        assert qemu.vnc_port is not None
        with closing(vnc_connect("127.0.0.1", qemu.vnc_port)):
            assert wait_until(lambda: run.ui.unseen > 0)
        assert wait_until(lambda: seen(session, "VNC_DISCONNECTED"))
        assert "VNC_CONNECTED" not in run.stdout.getvalue()
        run.send(F2)
        assert wait_until(lambda: "VNC_CONNECTED" in run.stdout.getvalue())
        assert run.ui.unseen == 0


def test_completion_menu_leaves_the_signature_hint_visible(session: Session) -> None:
    """Issue 11.5: at 160x45 the menu after `blockdev-add ` used to cover the hint."""
    with running_ui(session, columns=160) as run:
        run.ui.warm_schema()
        assert wait_until(lambda: run.ui.schema is not None)
        run.send("blockdev-add ")
        assert wait_until(lambda: "driver" in toolbar_text(run.ui))
        run.send("\t")
        assert wait_until(lambda: run.ui.buffer.complete_state is not None)
        assert "node-name" in signature(run.ui)

        def hint_shown() -> bool:  # whole, though perhaps wrapped over several rows
            # read again each time: Tab may have just put `driver=` in, which marks it
            hint = "".join(signature(run.ui).split())
            return hint in "".join("".join(screen_rows(run)).split())

        assert wait_until(hint_shown), "\n".join([signature(run.ui), *screen_rows(run)])


def test_toolbar_shows_the_run_state_as_events_change_it(session: Session, qemu: Qemu) -> None:
    """Issue 11.17: running at start (query-status), paused after STOP, running after RESUME."""
    with running_ui(session) as run:
        assert wait_until(lambda: screen_shows(run, "running")), screen_rows(run)
        run.send("stop\r")
        assert wait_until(lambda: run.ui.confirming is not None)
        run.send("y\r")
        assert wait_until(lambda: screen_shows(run, "paused")), screen_rows(run)
        run.send("cont\r")
        assert wait_until(lambda: not screen_shows(run, "paused")), screen_rows(run)
        assert "running" in toolbar_text(run.ui)


def test_prelaunch_shows_in_the_toolbar(qemu_factory: Any) -> None:
    qemu = qemu_factory("-S")
    session = make_session(qemu.socket)
    with running_ui(session) as run:
        assert wait_until(lambda: screen_shows(run, "prelaunch")), screen_rows(run)


def test_small_shell_answers(qemu: Qemu) -> None:
    """Issue 11.18: questions answered, the culprit named, the awaited event named."""
    session = make_session(qemu.socket, fmt="pretty")
    with running_ui(session) as run:
        run.ui.warm_schema()
        assert wait_until(lambda: run.ui.schema is not None)
        run.send("format\r")
        assert wait_until(lambda: "format: pretty" in run.stdout.getvalue()), run.stdout.getvalue()
        run.send("events filter STOP\r")
        assert wait_until(lambda: session.event_filter is not None and not run.ui.busy)
        run.send("events filter\r")  # tells, and keeps the filter
        assert wait_until(lambda: "events filter: STOP" in run.stdout.getvalue())
        assert session.event_filter is not None
        run.send("events filter none\r")
        assert wait_until(lambda: session.event_filter is None)
        run.send("qinfo pci\r")
        assert wait_until(lambda: "unknown command 'qinfo'" in run.stdout.getvalue())
        assert "expected key=value" not in run.stdout.getvalue()
        run.send("wait SUSPEND timeout=30\r")
        assert wait_until(lambda: run.ui.busy)
        run.send(CTRL_C)
        assert wait_until(lambda: "stopped waiting for the SUSPEND event" in run.stdout.getvalue())


def test_confirmed_quit_says_qemu_exited_and_how_to_leave(qemu_factory: Any) -> None:
    """Issue 11.16: not "connection lost; type `reconnect`" after a quit one asked for."""
    qemu = qemu_factory()
    session = make_session(qemu.socket, fmt="pretty")
    with running_ui(session) as run:
        run.send("quit\r")
        assert wait_until(lambda: run.ui.confirming is not None)
        run.send("y\r")
        assert wait_until(lambda: "QEMU exited" in run.stdout.getvalue()), run.stdout.getvalue()
        assert "reconnect" not in run.stdout.getvalue()
        assert wait_until(lambda: screen_shows(run, "QEMU exited: Ctrl-D leaves")), screen_rows(run)
        run.send(CTRL_D)
        run.thread.join(WAIT)
        assert run.result == [0]


def test_reconnect_while_qemu_is_down_shows_each_try(qemu_factory: Any) -> None:
    """Issue 11.16: the toolbar tells the tries and the next one, not just `reconnecting`."""
    qemu = qemu_factory()
    session = make_session(qemu.socket)
    with running_ui(session) as run:
        qemu.stop()
        assert wait_until(lambda: session.client.failure is not None)
        run.send("reconnect 1000\r")
        assert wait_until(lambda: screen_shows(run, "reconnecting: try 2 failed")), screen_rows(run)
        assert "next in" in toolbar_text(run.ui)
        run.send(CTRL_C)
        assert wait_until(lambda: not run.ui.busy)
        assert wait_until(lambda: screen_shows(run, "disconnected: type reconnect"))


def toolbar_row(run: Running) -> int:
    address = str(run.ui.session.client.address)
    return next((i for i, row in enumerate(screen_rows(run)) if address in row), -1)


def test_f2_does_not_move_the_toolbar(session: Session, qemu: Qemu) -> None:
    """Issue 11.15: the pane grew taller than the input; hiding it kept the toolbar put."""
    with running_ui(session) as run:
        assert qemu.vnc_port is not None
        for _ in range(5):  # three events each: a pane taller than the input's rows
            with closing(vnc_connect("127.0.0.1", qemu.vnc_port)):
                pass
        names = lambda: [e.event.get("event") for e in session.events.recent()]  # noqa: E731
        assert wait_until(lambda: names().count("VNC_DISCONNECTED") == 5)  # every event is in
        assert wait_until(lambda: len(run.pane_lines()) >= 15), run.pane_lines()
        redrawn(run)  # the pane's last growth reaches the input's height too
        assert toolbar_row(run) > layout.MENU_ROWS + 1
        shown = toolbar_row(run)
        run.send(F2)
        assert wait_until(lambda: not any("│" in row for row in screen_rows(run)))
        assert toolbar_row(run) == shown, "\n".join(screen_rows(run))


def test_continuation_lines_are_marked(session: Session) -> None:
    with running_ui(session) as run:
        run.send('{"execute": "query-status"\r')
        assert wait_until(lambda: run.ui.buffer.text.endswith("\n"))
        assert wait_until(lambda: any(row.lstrip().startswith("...") for row in screen_rows(run)))


def test_ctrl_r_onto_a_multi_line_entry_shows_it(session: Session) -> None:
    """Issue 11.15: the found entry's lines are on screen, not an empty line."""
    with running_ui(session) as run:
        run.send('{"execute":\r"query-status"}\r')
        assert wait_until(lambda: '"running"' in run.stdout.getvalue())
        run.send("\x12query-st")  # Ctrl-R
        assert wait_until(lambda: screen_shows(run, "query-st"))
        assert wait_until(lambda: screen_shows(run, '"query-status"}')), "\n".join(screen_rows(run))
        assert screen_shows(run, '{"execute":')
