"""The interactive shell: one long-running, non-full-screen prompt_toolkit Application.

Why one Application for the whole session rather than one ``prompt()`` per line: a
command runs on a worker thread while the Application keeps running, so typing, the
event pane and Ctrl-C stay alive during a slow command.  Everything that belongs in
the terminal's scrollback (the accepted line, replies, events on narrow terminals) is
printed *above* the Application with ``run_in_terminal``, which first erases the
prompt and the pane; so the pane never ends up in the scrollback.

Replies are rendered into a buffer on the worker thread and written out on the UI
thread, which is also where the pager runs (the terminal must be free for it).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from prompt_toolkit.application import Application, run_in_terminal
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.completion import CompleteEvent, Completer, Completion, ThreadedCompleter
from prompt_toolkit.document import Document
from prompt_toolkit.enums import EditingMode
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import merge_key_bindings
from prompt_toolkit.key_binding.bindings.auto_suggest import load_auto_suggest_bindings
from prompt_toolkit.key_binding.defaults import load_key_bindings
from prompt_toolkit.layout import Layout
from prompt_toolkit.lexers import Lexer
from prompt_toolkit.output import ColorDepth, Output

from qmpsh import config as configmod
from qmpsh import layout, pager
from qmpsh.errors import EXIT_CONNECTION, EXIT_OK, InputError, QmpshError
from qmpsh.event_summary import severity
from qmpsh.events import EventFilter, LoggedEvent
from qmpsh.history import PrivateHistory
from qmpsh.key_bindings import shell_bindings
from qmpsh.render import Renderer
from qmpsh.request import Command, RawJson, Request, ShellCommand, Transaction
from qmpsh.script import logical_lines
from qmpsh.session import ExitShell, Session
from qmpsh.style import make_style
from qmpsh.visible import visible

WIDE_ENOUGH = 100  # columns below which events print above the prompt instead of a pane
REDRAW_INTERVAL = 0.05  # event-driven redraws: bursts of thousands/s become 20 redraws/s
AUTO_RECONNECT_ATTEMPTS = 10**9  # --reconnect tries until Ctrl-C
CONFIRM = {
    "quit": "quit stops QEMU (the VM is gone)",
    "system_reset": "system_reset resets the guest",
    "system_powerdown": "system_powerdown asks the guest to power off",
    "stop": "stop pauses the guest",
}
_ANSI = {"error": "\x1b[1;31m", "warning": "\x1b[33m", "notice": "\x1b[36m"}


@dataclass
class Job:
    """One accepted line running on a worker thread; its output waits in buffers."""

    name: str
    out: io.StringIO = field(default_factory=io.StringIO)
    err: io.StringIO = field(default_factory=io.StringIO)
    pending: Any = None  # the client's PendingReply, once the request is on the wire
    abandoned: bool = False
    leave: bool = False


class ShellUI:
    """The state the layout, key bindings and filters read: one object, no globals."""

    def __init__(
        self,
        session: Session,
        args: argparse.Namespace,
        config: configmod.Config | None = None,
        *,
        history: History | None = None,
        input: Input | None = None,
        output: Output | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self.session = session
        self.config = config if config is not None else configmod.Config()
        self.stdout = stdout if stdout is not None else sys.stdout
        self.use_pager = not getattr(args, "no_pager", False) and self.config.pager
        self.pane_allowed = (
            not getattr(args, "no_pane", False)
            and self.config.events_pane
            and os.environ.get("TERM") != "dumb"
        )
        self.confirm_enabled = self.config.confirm and not session.settings.assume_yes
        # --reconnect (or the config's `reconnect = true`): retry on our own after a loss
        self.auto_reconnect = bool(getattr(args, "reconnect", False) or self.config.reconnect)
        self._reconnect_due = False
        self._client = session.client  # to notice that `reconnect` swapped in a new one
        self.job: Job | None = None
        self.confirming: Request | None = None
        self.confirm_text = ""
        self.unseen = 0
        self.schema: Any = None  # set by warm_schema(); the toolbar never waits for it
        self.status = EXIT_OK
        self.prompt_text = _prompt_text(session)
        self._event_lines: list[str] = []  # events waiting to print above the prompt
        self._queued_lines: deque[str] = deque()  # the rest of a pasted block
        self._queue_lock = threading.Lock()
        self._redraw_lock = threading.Lock()
        self._redraw_pending = False  # an event redraw is scheduled (see _redraw_for_events)
        self._last_event_redraw = 0.0
        self.completer = _completer(session, self._history_lines)
        self.buffer = self._make_buffer(history)
        self.app = self._make_app(args, input, output)
        session.events.add_listener(self._on_event)
        session.client.add_disconnect_listener(self._on_disconnect)

    # -- construction -------------------------------------------------------------

    def _history_lines(self) -> list[str]:
        """Lines typed so far (oldest first), for ranking values used before."""
        return self.buffer.history.get_strings()

    def _make_buffer(self, history: History | None) -> Buffer:
        return Buffer(
            name="default",
            multiline=True,
            completer=self.completer,
            complete_while_typing=True,
            auto_suggest=AutoSuggestFromHistory(),
            history=history if history is not None else InMemoryHistory(),
            enable_history_search=False,
        )

    def _make_app(
        self, args: argparse.Namespace, input: Input | None, output: Output | None
    ) -> Application[int]:
        depth = configmod.color_depth_name(getattr(args, "color", "auto") or "auto")
        return Application(
            layout=Layout(layout.root_container(self), focused_element=self.buffer),
            key_bindings=merge_key_bindings(
                [load_key_bindings(), load_auto_suggest_bindings(), shell_bindings(self)]
            ),
            style=make_style(),
            full_screen=False,
            editing_mode=EditingMode.EMACS,
            color_depth=ColorDepth[depth] if depth else None,
            input=input,
            output=output,
        )

    # -- what the layout reads -----------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.job is not None

    def pane_fits(self) -> bool:
        """The pane would be drawn: allowed here and the terminal is wide enough."""
        return self.pane_allowed and self.app.output.get_size().columns >= WIDE_ENOUGH

    def pane_shown(self) -> bool:
        return self.session.show_events and self.pane_fits()

    def lexer(self) -> Lexer | None:
        """The highlighting lexer (schema-aware, from the same tokenizer as completion)."""
        from qmpsh.lexer import make_lexer

        return make_lexer(self.session)

    def pane_events(self, count: int) -> list[LoggedEvent]:
        return self.session.events.recent(count, self.session.event_filter)

    def prompt_fragments(self) -> StyleAndTextTuples:
        return [("class:prompt", self.prompt_text)]

    def toolbar_fragments(self) -> StyleAndTextTuples:
        return layout.toolbar_fragments(self)

    # -- accepting a line ------------------------------------------------------------

    def accept(self) -> None:
        """Enter on a complete line: echo it into the scrollback, then run it.

        A pasted block holds several requests; they run one after another, each
        echoed as if typed, as a shell would (a transaction or JSON spanning lines
        stays one request).
        """
        text = self.buffer.text
        if text.strip():
            self.buffer.append_to_history()
        self.buffer.reset()
        requests = [request for _, request in logical_lines(text.splitlines())]
        if len(requests) > 1:
            self._queued_lines.extend(requests)
            self.run_queued()
            return
        self._run_text(text)

    def run_queued(self) -> None:
        """Start the next pasted request once nothing runs or waits for a y/N."""
        while self._queued_lines and self.job is None and self.confirming is None:
            self._run_text(self._queued_lines.popleft())

    def _run_text(self, text: str) -> None:
        self.print_above(self.prompt_text + visible(text, newlines=True) + "\n")
        try:
            request = self.session.parse(text)
        except InputError as exc:
            self.print_above(visible(_input_error(exc, text, len(self.prompt_text)), newlines=True))
            return
        if request is None:
            return
        if self.confirm_enabled and _dangerous(request) is not None:
            self.confirming = request
            self.confirm_text = CONFIRM[str(_dangerous(request))]
            return
        self.start(request)

    def answer(self, yes: bool) -> None:
        """The y/N answer to a confirmation; anything but y keeps QEMU as it is."""
        request, self.confirming = self.confirming, None
        if yes and request is not None:
            self.start(request)
        else:
            self.print_above("not sent\n")
            self.run_queued()

    def start(self, request: Request) -> None:
        job = Job(_request_name(request))
        self.job = job
        worker = threading.Thread(target=self._work, args=(job, request), daemon=True)
        worker.start()

    def cancel(self) -> None:
        """Ctrl-C during a command: drop its reply (matched by id when it comes) and go on."""
        self._queued_lines.clear()  # Ctrl-C stops a pasted block too
        job, self.job = self.job, None
        if job is None:
            return
        job.abandoned = True
        self.session.cancel.set()  # a waiting shell command (reconnect) stops too
        if job.pending is not None:
            job.pending.abandon()
        self.print_above(f"^C: stopped waiting for {job.name}; a late reply will be dropped\n")

    # -- the worker thread ---------------------------------------------------------

    def _work(self, job: Job, request: Request) -> None:
        renderer = Renderer(
            self.session.settings.fmt,
            job.out,
            job.err,
            color=self.session.settings.color,
            width=self.app.output.get_size().columns,
        )
        try:
            if isinstance(request, Command | Transaction | RawJson):
                self._send(job, request, renderer)
            else:
                self._run_other(request, renderer)
        except ExitShell:
            job.leave = True
        except QmpshError as exc:
            renderer.error(str(exc))
        except Exception as exc:  # a bug must cost one line, not the session
            renderer.error(f"internal error: {exc!r}")
        self._call_soon(lambda: self._finish(job))

    def _send(self, job: Job, request: Command | Transaction | RawJson, renderer: Renderer) -> None:
        """Like Session.send, but keeps the PendingReply so Ctrl-C can abandon it."""
        message = self.session.message_for(request)
        self.session.wait_mark = self.session.events.last_seq
        job.pending = self.session.client.submit(message)
        try:
            reply = job.pending.result(self.session.settings.timeout)
        except QmpshError:
            job.pending.abandon()
            raise
        name = str(message.get("execute") or message.get("exec-oob") or "")
        renderer.reply(name, reply)

    def _run_other(self, request: Request, renderer: Renderer) -> None:
        """Shell and HMP commands go through the session with output redirected."""
        original = self.session.renderer
        self.session.renderer = renderer
        try:
            self.session.run_request(request)
        finally:
            self.session.renderer = original

    def _finish(self, job: Job) -> None:
        if job.abandoned or self.job is not job:
            return
        self.job = None
        self._after_reconnect()
        text = job.out.getvalue() + job.err.getvalue()
        if job.leave:
            self.app.exit(result=self.status)
        elif self.use_pager and pager.needs_paging(text, self.app.output.get_size().rows):
            run_in_terminal(lambda: self._page(text))
        elif text:
            self.print_above(text)
        if not job.leave:
            self.run_queued()

    def _page(self, text: str) -> None:
        if not pager.page(text):
            self._write(text)

    # -- printing above the prompt -----------------------------------------------

    def print_above(self, text: str) -> None:
        """Write into the scrollback, above the prompt and the pane (UI thread only)."""
        run_in_terminal(lambda: self._write(text))

    def _write(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def _call_soon(self, callback: Any) -> None:
        loop = self.app.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(callback)

    # -- events (called on the client's reader thread) -----------------------------

    def _on_event(self, logged: LoggedEvent) -> None:
        flt = self.session.event_filter
        if flt is not None and not flt.matches(logged.event):
            return
        if self.pane_shown():
            self._redraw_for_events()
        elif self.session.show_events and not self.pane_fits():
            self._queue_line(logged)
        else:
            self.unseen += 1
            self._redraw_for_events()

    def _redraw_for_events(self) -> None:
        """Ask for at most one redraw per REDRAW_INTERVAL on behalf of events.

        A flood brings thousands of events a second, and a redraw for each would starve
        the keyboard.  Only these redraws are spaced out: the Application's own
        ``min_redraw_interval`` would also hold back the echo of every keystroke.
        """
        loop = self.app.loop
        if loop is None or loop.is_closed():
            return
        with self._redraw_lock:
            if self._redraw_pending:
                return
            self._redraw_pending = True
        try:
            loop.call_soon_threadsafe(self._schedule_event_redraw, loop)
        except RuntimeError:  # the loop closed in between
            self._redraw_pending = False

    def _schedule_event_redraw(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the UI loop: redraw now, or REDRAW_INTERVAL after the last event redraw."""
        delay = self._last_event_redraw + REDRAW_INTERVAL - time.monotonic()
        if delay <= 0:
            self._event_redraw()
        else:
            loop.call_later(delay, self._event_redraw)

    def _event_redraw(self) -> None:
        with self._redraw_lock:
            self._redraw_pending = False  # events from now on need a redraw of their own
        self._last_event_redraw = time.monotonic()
        self.app.invalidate()

    def _queue_line(self, logged: LoggedEvent) -> None:
        """Batch lines so a burst of events becomes one print, not thousands."""
        line = _paint(logged, self.session.settings.color)
        with self._queue_lock:
            self._event_lines.append(line)
            first = len(self._event_lines) == 1
        if first:
            self._call_soon(self._flush_events)

    def _flush_events(self) -> None:
        with self._queue_lock:
            lines, self._event_lines = self._event_lines, []
        if lines and self.app.is_running:
            self.print_above("".join(lines))

    def warm_schema(self) -> None:
        """Fetch the schema in the background so the first Tab is not the one that waits."""

        def load() -> None:
            try:
                self.schema = self.session.schema
            except QmpshError:
                return
            self.app.invalidate()

        threading.Thread(target=load, name="schema", daemon=True).start()

    def toggle_pane(self) -> None:
        self.session.show_events = not self.session.show_events
        if self.session.show_events:
            self.unseen = 0

    def leave(self, status: int) -> None:
        """End the shell with ``status`` (a signal); the accepted lines are already on disk."""
        if self.app.is_running and not self.app.is_done:
            self.app.exit(result=status)

    def _on_disconnect(self, failure: QmpshError) -> None:
        """The shell stays up: the toolbar says so, and `reconnect` (or --reconnect) heals it."""

        def tell() -> None:
            self.status = EXIT_CONNECTION
            hint = "reconnecting…" if self.auto_reconnect else "type `reconnect` to try again"
            self.print_above(f"qmpsh: {failure}; {hint}\n")
            self._reconnect_due = self.auto_reconnect
            self._start_due_reconnect()

        self._call_soon(tell)

    def _start_due_reconnect(self) -> None:
        """Auto-reconnect once per loss, when no command is running (UI thread)."""
        if self._reconnect_due and self.job is None and self.app.is_running:
            self._reconnect_due = False
            self.start(ShellCommand("reconnect", (str(AUTO_RECONNECT_ATTEMPTS),)))

    def _after_reconnect(self) -> None:
        """A new client: fresh schema, completer and status; else maybe auto-reconnect."""
        if self.session.client is self._client:
            self._start_due_reconnect()
            return
        self._client = self.session.client
        self.status = EXIT_OK
        self.schema = None
        self.completer = _completer(self.session, self._history_lines)  # the new client
        self.buffer.completer = self.completer
        self.warm_schema()


# -- helpers --------------------------------------------------------------------------


class QuietWhenEmpty(Completer):
    """No menu on an empty line unless Tab asked for one.

    A completion still running for the line just accepted restarts on the now empty
    buffer (prompt_toolkit retries with the current text), which would pop up all
    ~200 commands under a fresh prompt.
    """

    def __init__(self, inner: Completer) -> None:
        self.inner = inner

    @staticmethod
    def _wanted(document: Document, event: CompleteEvent) -> bool:
        return bool(document.text.strip()) or event.completion_requested

    def get_completions(self, document: Document, event: CompleteEvent) -> Iterable[Completion]:
        if self._wanted(document, event):
            yield from self.inner.get_completions(document, event)

    async def get_completions_async(
        self, document: Document, event: CompleteEvent
    ) -> AsyncGenerator[Completion, None]:
        if self._wanted(document, event):
            async for completion in self.inner.get_completions_async(document, event):
                yield completion


def _completer(session: Session, history: Callable[[], Sequence[str]]) -> Completer:
    from qmpsh.completer import make_completer

    made: Completer = make_completer(session, history=history)
    # Completion may fetch the schema or live values from QEMU: never on the UI thread.
    threaded = made if isinstance(made, ThreadedCompleter) else ThreadedCompleter(made)
    return QuietWhenEmpty(threaded)


def _prompt_text(session: Session) -> str:
    """``(vm-name) `` from query-name, else ``(qemu X.Y.Z) ``."""
    try:
        name = session.client.execute("query-name").get("name")
    except (QmpshError, AttributeError):
        name = None
    if name:
        return f"({visible(str(name))}) "
    return "(qemu {}.{}.{}) ".format(*session.client.version)


def _request_name(request: Request) -> str:
    if isinstance(request, Command):
        return request.name
    if isinstance(request, RawJson):
        return str(request.message.get("execute") or request.message.get("exec-oob") or "?")
    if isinstance(request, Transaction):
        return "transaction"
    return getattr(request, "name", None) or "hmp"


def _dangerous(request: Request) -> str | None:
    name = _request_name(request) if isinstance(request, Command | RawJson) else None
    return name if name in CONFIRM else None


def _input_error(exc: InputError, text: str, indent: int) -> str:
    """The message, with a caret under the culprit when the line was a single line."""
    if exc.column is None or "\n" in text:
        return f"error: {exc}\n"
    return " " * (indent + exc.column - 1) + "^\n" + f"error: {exc}\n"


def _paint(logged: LoggedEvent, color: bool) -> str:
    line = logged.numbered()
    code = _ANSI.get(severity(logged.event)) if color else None
    return f"{code}{line}\x1b[0m\n" if code else line + "\n"


def banner(session: Session) -> str:
    major, minor, micro = session.client.version
    return (
        f"qmpsh: QEMU {major}.{minor}.{micro} at {session.client.address}; "
        "'help' for help, F2 toggles events, Ctrl-D leaves\n"
    )


def _load_config() -> configmod.Config:
    return configmod.load_config(warn=lambda message: print(message, file=sys.stderr))


def run_interactive(
    session: Session, args: argparse.Namespace, config: configmod.Config | None = None
) -> int:
    """Run the shell until Ctrl-D, ``exit`` or a lost connection; return the exit code.

    ``config`` is the one the command line already read (so it is read once).
    """
    config = config if config is not None else _load_config()
    _apply_config(session, args, config)
    if os.environ.get("TERM") == "dumb":
        return run_plain(session, args, config)
    history = PrivateHistory(configmod.history_path(), config.history_size)
    ui = ShellUI(session, args, config, history=history)
    if not getattr(args, "quiet", False):
        sys.stdout.write(banner(session))
    ui.warm_schema()
    result = run_app(ui)
    return result if result is not None else ui.status


def run_app(ui: ShellUI) -> int | None:
    """Run the Application; SIGTERM and SIGHUP leave it the way Ctrl-D does.

    The command line's handlers raise SystemExit wherever the main thread is; inside
    the event loop that lands in some prompt_toolkit task, which asyncio then reports
    with a traceback.  The loop's own handlers end the Application in order instead.
    """
    signals = (signal.SIGTERM, signal.SIGHUP)
    saved = {sig: signal.getsignal(sig) for sig in signals}

    def install() -> None:
        loop = asyncio.get_running_loop()
        for sig in signals:
            loop.add_signal_handler(sig, ui.leave, 128 + sig)

    try:
        return ui.app.run(pre_run=install)
    finally:  # closing the loop reset them to the default: put the command line's back
        for sig, handler in saved.items():
            if handler is not None:  # None: not set from Python, nothing to restore
                signal.signal(sig, handler)


def _apply_config(session: Session, args: argparse.Namespace, config: configmod.Config) -> None:
    """Config values fill in what the command line left open; flags always win."""
    if config.format and not getattr(args, "format", None) and not getattr(args, "pretty", False):
        session.settings.fmt = config.format  # type: ignore[assignment]
        session.renderer.fmt = config.format  # type: ignore[assignment]
    choice = getattr(args, "color", "auto") or "auto"
    if choice == "auto" and config.color != "auto":
        args.color = config.color
        session.settings.color = session.renderer.color = config.color == "always"
    if config.events_filter and session.event_filter is None:
        try:
            session.event_filter = EventFilter.parse(config.events_filter)
        except InputError as exc:
            print(f"qmpsh: warning: config events.filter: {exc}", file=sys.stderr)


def run_plain(session: Session, args: argparse.Namespace, config: configmod.Config) -> int:
    """A line-by-line loop for TERM=dumb (Emacs shell buffers, serial consoles).

    No cursor movement is possible there, so there is no pane and no menu: events are
    printed as they come, and confirmations are asked with ``input()``.
    """
    session.events.add_listener(lambda logged: print(logged.numbered(), flush=True))
    if not getattr(args, "quiet", False):
        sys.stdout.write(banner(session))
    prompt = _prompt_text(session)
    ask = config.confirm and not session.settings.assume_yes
    while True:
        try:
            line = input(prompt)
            request = session.parse(line)
        except EOFError:
            return EXIT_OK if session.client.connected else EXIT_CONNECTION
        except KeyboardInterrupt:
            print()
            continue
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            continue
        if request is None or (ask and not _confirmed_plain(request)):
            continue
        try:
            session.run_request(request)
        except ExitShell:
            return EXIT_OK
        except KeyboardInterrupt:
            print("^C")
        except QmpshError as exc:
            print(f"error: {exc}", file=sys.stderr)
            if session.client.failure is not None:  # stay up, as the full UI does
                print("qmpsh: type `reconnect` to try again", file=sys.stderr)


def _confirmed_plain(request: Request) -> bool:
    name = _dangerous(request)
    if name is None:
        return True
    try:
        return input(f"{CONFIRM[name]}: really? [y/N] ").strip().lower() in ("y", "yes")
    except (EOFError, KeyboardInterrupt):
        return False
