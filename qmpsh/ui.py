"""The interactive shell: one long-running, non-full-screen prompt_toolkit Application.

Why one Application for the whole session rather than one ``prompt()`` per line: a
request runs on a worker thread (``workers``) while the Application keeps running,
so typing, the event pane and Ctrl-C stay alive during a slow command.  Everything
that belongs in the terminal's scrollback (the accepted line, replies, events on
narrow terminals) is printed *above* the Application with ``run_in_terminal``, which
first erases the prompt and the pane; so the pane never ends up in the scrollback.

Replies are rendered into a buffer on the worker thread and written out on the UI
thread, which is also where the pager runs (the terminal must be free for it).
What to show and ask was decided once, from the command line and the config file
(``settings.ShellOptions``, ``session.settings``); this module only follows it.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO, cast

from prompt_toolkit.application import Application, get_app_session, run_in_terminal
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.enums import EditingMode
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import merge_key_bindings
from prompt_toolkit.key_binding.bindings.auto_suggest import load_auto_suggest_bindings
from prompt_toolkit.layout import Layout
from prompt_toolkit.lexers import DynamicLexer, Lexer
from prompt_toolkit.output import ColorDepth, Output

from qmpsh import layout, pager
from qmpsh.banner import shell_prompt
from qmpsh.config import color_depth_name
from qmpsh.confirm import confirmation, ends_qemu, is_yes, question
from qmpsh.emacs_keys import emacs_only
from qmpsh.errors import EXIT_CONNECTION, EXIT_OK, InputError, QmpshError
from qmpsh.event_summary import severity
from qmpsh.events import LoggedEvent
from qmpsh.key_bindings import shell_bindings
from qmpsh.raw_keys import RawWhilePrinting
from qmpsh.reconnect import watch_attempts
from qmpsh.render import acknowledgement
from qmpsh.request import Request, ShellCommand
from qmpsh.run_state import RunState, run_state
from qmpsh.script import logical_lines
from qmpsh.settings import ShellOptions
from qmpsh.startup import resume_collection
from qmpsh.style import make_style
from qmpsh.targets import CurrentSession, TaggedEvent, Targets, split_at_target
from qmpsh.ui_completer import shell_completer
from qmpsh.workers import Job, start_job

if TYPE_CHECKING:
    from qmpsh.early_prompt import EarlyPrompt
    from qmpsh.monitor import Monitor
    from qmpsh.schema import Schema
    from qmpsh.session import Session
from qmpsh.visible import visible

WIDE_ENOUGH = 100  # columns below which events print above the prompt instead of a pane
REDRAW_INTERVAL = 0.05  # event-driven redraws: bursts of thousands/s become 20 redraws/s
AUTO_RECONNECT_ATTEMPTS = 10**9  # --reconnect tries until Ctrl-C
_ANSI = {"error": "\x1b[1;31m", "warning": "\x1b[33m", "notice": "\x1b[36m"}


class ShellUI:
    """The state the layout, key bindings and filters read: one object, no globals."""

    def __init__(
        self,
        session: Session,
        options: ShellOptions | None = None,
        *,
        history: History | None = None,
        input: Input | None = None,
        output: Output | None = None,
        stdout: TextIO | None = None,
        targets: Targets | None = None,
        prompt: str | None = None,
    ) -> None:
        """``targets`` holds every target (``session`` is its current one); without it
        the shell has ``session`` alone until ``connect`` adds another.  ``prompt`` is
        the one already on screen (``early_prompt``), so it is not asked for again."""
        if targets is None:
            targets = Targets()
            targets.add("vm", session)
        self.targets = targets
        # Everything here reads the current target through this, so `use` needs no rewiring.
        self.session = cast("Session", CurrentSession(targets))
        self.several = len(targets) > 1  # once True, the prompt names the current target
        self.options = options if options is not None else ShellOptions()
        self.stdout = stdout if stdout is not None else sys.stdout
        self._reconnect_due = False
        self.job: Job | None = None
        self.confirming: Request | None = None
        self._confirming_on: Session | None = None  # the target an @NAME line goes to
        self._job_session: Session | None = None
        self.confirm_text = ""
        self.qemu_quit = False  # `quit` was confirmed and sent: losing QEMU is no surprise
        self.unseen = 0
        self.tallest_pane = 0  # rows the event pane has reached (the layout keeps them)
        self.schema: Schema | None = None  # set by warm_schema(); the toolbar never waits
        self.status = EXIT_OK
        self.prompt_text = prompt if prompt is not None else self._prompt()
        self._event_lines: list[str] = []  # events waiting to print above the prompt
        self._queued_lines: deque[str] = deque()  # a pasted block's rest, lines typed ahead
        self._queue_lock = threading.Lock()
        self._redraw_lock = threading.Lock()
        self._redraw_pending = False  # an event redraw is scheduled (see _redraw_for_events)
        self._last_event_redraw = 0.0
        self.buffer = self._make_buffer(history)
        self.confirm_buffer = Buffer(name="confirm", multiline=False)  # the y/N answer line
        self._keys = RawWhilePrinting(input or get_app_session().input)
        self._early_lock = threading.Lock()
        self._early_calls: list[Callable[[], object]] | None = []  # None once the loop runs
        self.app = self._make_app(self._keys, output)
        self.app.pre_run_callables.append(self._run_early_calls)
        self._drawn = False
        self.app.after_render += self._after_first_draw
        targets.watch(self._watch, lambda: self._call_soon(self._follow_target))

    def _after_first_draw(self, _: object) -> None:
        """Now that the prompt shows: collect garbage again (``startup``), and load the
        schema, so that neither competed with the first draw for the interpreter."""
        if not self._drawn:
            self._drawn = True
            resume_collection()
            self.warm_schema()

    # -- construction -------------------------------------------------------------

    def _history_lines(self) -> list[str]:
        """Lines typed so far (oldest first), for ranking values used before."""
        return self.buffer.history.get_strings()

    def _make_buffer(self, history: History | None) -> Buffer:
        return Buffer(
            name="default",
            multiline=True,
            completer=shell_completer(self.session, self._history_lines),
            complete_while_typing=True,
            auto_suggest=AutoSuggestFromHistory(),
            history=history if history is not None else InMemoryHistory(),
            enable_history_search=False,
        )

    def _make_app(self, input: Input, output: Output | None) -> Application[int]:
        depth = color_depth_name(self.options.color)
        # Application adds prompt_toolkit's default bindings itself (emacs mode's
        # alone, see emacs_keys): loading them here too built them twice at every start.
        bindings = [load_auto_suggest_bindings(), shell_bindings(self)]
        with emacs_only():
            return Application(
                layout=Layout(layout.root_container(self), focused_element=self.buffer),
                key_bindings=merge_key_bindings(bindings),
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

    @property
    def queued(self) -> int:
        """Requests typed ahead or pasted that wait for the running one (Ctrl-C drops them)."""
        return len(self._queued_lines)

    def pane_fits(self) -> bool:
        """The pane would be drawn: allowed here and the terminal is wide enough."""
        return self.options.pane and self.app.output.get_size().columns >= WIDE_ENOUGH

    def pane_shown(self) -> bool:
        return self.session.show_events and self.pane_fits()

    def lexer(self) -> Lexer:
        """The highlighting lexer (schema-aware, from the same tokenizer as completion),
        made when the line first holds text: its modules (the schema's among them) load
        after the first draw, not before it."""
        made: list[Lexer] = []

        def current() -> Lexer | None:
            if not made and self.buffer.text:
                from qmpsh.lexer import make_lexer

                made.append(make_lexer(self.session))
            return made[0] if made else None

        return DynamicLexer(current)

    def pane_events(self, count: int) -> list[TaggedEvent]:
        """Every target's newest events, tagged with its name once there are several."""
        return self.targets.recent_events(count)

    def prompt_fragments(self) -> StyleAndTextTuples:
        return [("class:prompt", self.prompt_text)]

    def toolbar_fragments(self) -> StyleAndTextTuples:
        return layout.toolbar_fragments(self)

    # -- accepting a line ------------------------------------------------------------

    def accept(self) -> None:
        """Enter on a complete line: echo it into the scrollback, then run it.

        A pasted block holds several requests; they run one after another, each
        echoed as if typed, as a shell would (a transaction or JSON spanning lines
        stays one request).  A line entered while a command runs waits its turn the
        same way (typed ahead, as in a shell): the next command is often typed as soon
        as the last one's output shows, before its job has quite ended.
        """
        text = self.buffer.text
        if text.strip():
            self.buffer.append_to_history()
        self.buffer.reset()
        lines = logical_lines(text.splitlines(), lambda: self.session.syntax)
        requests = [request for _, request in lines]
        if len(requests) > 1 or self.busy:
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
            name, text = split_at_target(text)
            session = self.targets.current if name is None else self.targets.get(name)
            request = session.parse(text)
        except InputError as exc:
            self.print_above(visible(_input_error(exc, text, len(self.prompt_text)), newlines=True))
            return
        if request is None:
            return
        reason = confirmation(request) if session.settings.confirm else None
        if reason is not None:
            self.confirming, self.confirm_text = request, reason
            self._confirming_on = session
            self.confirm_buffer.reset()
            self.app.layout.focus(self.confirm_buffer)  # typed-ahead keys land in the answer
            return
        self.start(request, session)

    def answer(self, line: str | None) -> None:
        """The answer line of a confirmation (None: Esc, Ctrl-C); only y/yes sends."""
        request, self.confirming = self.confirming, None
        self.print_above(question(self.confirm_text) + (line or "") + "\n")  # what was answered
        self.confirm_buffer.reset()
        self.app.layout.focus(self.buffer)
        if line is not None and is_yes(line) and request is not None:
            self.qemu_quit = ends_qemu(self.confirm_text)
            self.start(request, self._confirming_on)
        else:
            self.print_above("not sent\n")
            self.run_queued()

    def start(self, request: Request, session: Session | None = None) -> None:
        """Run ``request`` on a worker thread (on the current target unless ``session``
        is given); the prompt stays live meanwhile."""
        width = self.app.output.get_size().columns
        self._job_session = session if session is not None else self.targets.current
        self.job = start_job(
            self._job_session,
            request,
            width,
            lambda job: self._call_soon(lambda: self._finish(job)),
        )

    def cancel(self) -> None:
        """Ctrl-C during a command: drop its reply (matched by id when it comes) and go on."""
        dropped = self.queued
        self._queued_lines.clear()  # Ctrl-C stops a pasted block and typed-ahead lines too
        job, self.job = self.job, None
        if job is None:
            return
        (self._job_session or self.session).cancel.set()  # a waiting `reconnect` stops too
        job.abandon()
        late = "a late reply will be dropped"
        also = f"; {dropped} queued not run" if dropped else ""
        self.print_above(f"^C: stopped waiting for {job.waiting_for}; {late}{also}\n")

    def _finish(self, job: Job) -> None:
        """On the UI thread, once the worker is done: print (or page) what it made."""
        if job.abandoned or self.job is not job:
            return
        self.job = None
        self.app.invalidate()  # the toolbar's "running …" goes now, even if nothing prints
        text = job.output.getvalue()
        if job.leave:
            self.app.exit(result=self.status)
            return
        if self.options.pager and pager.needs_paging(text, self.app.output.get_size().rows):
            run_in_terminal(lambda: self._page(text))
        elif text:
            self.print_above(text)
        else:  # a success with nothing to show: say so, or the user wonders whether it ran
            self.print_above(acknowledgement(self.session.settings.color))
        self._start_due_reconnect()
        self.run_queued()

    def _page(self, text: str) -> None:
        with self._keys.cooked():
            paged = pager.page(text)  # the pager reads the terminal itself
        if not paged:
            self._write(text)

    # -- printing above the prompt -----------------------------------------------

    def print_above(self, text: str) -> None:
        """Write into the scrollback, above the prompt and the pane (UI thread only)."""
        run_in_terminal(lambda: self._write(text))

    def _write(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def _call_soon(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the UI thread; before the Application runs, as it starts
        (a connection lost or an event logged while it was being built is not dropped)."""
        with self._early_lock:
            if self._early_calls is not None:
                self._early_calls.append(callback)
                return
        loop = self.app.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(callback)

    def _run_early_calls(self) -> None:
        """The Application runs (its loop is set): what ``_call_soon`` kept, in order."""
        with self._early_lock:
            calls, self._early_calls = self._early_calls or [], None
        loop = self.app.loop
        if loop is None:
            return
        for callback in calls:
            loop.call_soon(callback)

    # -- events (called on the client's reader thread) -----------------------------

    def _watch(self, name: str, session: Session) -> None:
        """Hear a target's events, losses and reconnects (for each target, once)."""
        # Events that came before the shell listened (while it was starting, or while
        # `connect` set the target up) are shown like those that come later.
        session.events.listen(lambda logged: self._on_event(name, session, logged))
        session.client.add_disconnect_listener(lambda failure: self._on_disconnect(failure, name))
        session.add_client_listener(self._on_new_client)
        run_state(session).add_listener(self._redraw_for_events)
        watch_attempts(session, self._redraw_for_events)  # reconnect's tries, in the toolbar
        if len(self.targets) > 1:
            self.several = True

    @property
    def run_state(self) -> RunState:
        """The current target's run state, for the toolbar."""
        return run_state(self.targets.current)

    def _follow_target(self) -> None:
        """The current target changed (``connect``, ``use``, ``disconnect``): prompt, schema."""
        self.prompt_text = self._prompt()
        self.schema = None
        self.warm_schema()
        self.app.invalidate()

    def _prompt(self) -> str:
        return shell_prompt(self.targets, self.several)

    def _on_event(self, name: str, session: Session, logged: LoggedEvent) -> None:
        flt = session.event_filter
        if flt is not None and not flt.matches(logged.event):
            return
        if self.pane_shown():
            self._redraw_for_events()
        elif self.session.show_events and not self.pane_fits():
            self._queue_line(TaggedEvent(name if len(self.targets) > 1 else None, logged))
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

    def _queue_line(self, logged: TaggedEvent) -> None:
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
            # Through the loop, not app.invalidate() from this thread: while the shell
            # closes, that raised "no running event loop" here (a stress-run warning).
            self._call_soon(self.app.invalidate)

        threading.Thread(target=load, name="schema", daemon=True).start()

    def toggle_pane(self) -> None:
        """F2: hide events, or show them again, with those that came while hidden.

        Where there is a pane it shows the newest anyway; on a narrow terminal the
        events counted as unseen are printed above the prompt, or they would be lost.
        """
        self.session.show_events = not self.session.show_events
        if not self.session.show_events:
            return
        unseen, self.unseen = self.unseen, 0
        if unseen and not self.pane_fits():
            missed = self.targets.recent_events(unseen)
            color = self.session.settings.color
            self.print_above("".join(_paint(logged, color) for logged in missed))

    def leave(self, status: int) -> None:
        """End the shell with ``status`` (a signal); the accepted lines are already on disk."""
        if self.app.is_running and not self.app.is_done:
            self.app.exit(result=status)

    # -- the connection --------------------------------------------------------------

    def _on_disconnect(self, failure: QmpshError, name: str | None = None) -> None:
        """The shell stays up: the toolbar says so, and `reconnect` (or --reconnect) heals it.

        Another target than the current one only gets a line saying how to heal it.
        """

        def tell() -> None:
            if name is not None and name not in dict(self.targets):
                return  # `disconnect NAME` closed it: nothing was lost
            if name is not None and name != self.targets.current_name:
                shown = visible(name)
                self.print_above(f"qmpsh: {shown}: {failure}; `@{shown} reconnect` tries again\n")
                return
            if self.qemu_quit:  # asked for: say so, and how to leave
                self.print_above("qmpsh: QEMU exited (quit); Ctrl-D or `exit` leaves\n")
                return
            self.status = EXIT_CONNECTION
            auto = self.options.reconnect
            hint = "reconnecting…" if auto else "type `reconnect` to try again"
            self.print_above(f"qmpsh: {failure}; {hint}\n")
            self._reconnect_due = auto
            self._start_due_reconnect()

        self._call_soon(tell)

    def _start_due_reconnect(self) -> None:
        """Auto-reconnect once per loss, when no command is running (UI thread)."""
        if self._reconnect_due and self.job is None and self.app.is_running:
            self._reconnect_due = False
            self.start(ShellCommand("reconnect", (str(AUTO_RECONNECT_ATTEMPTS),)))

    def _on_new_client(self, client: Monitor) -> None:
        """The session reconnected (on a worker thread): a fresh status and schema."""

        def renew() -> None:
            self.status = EXIT_OK
            self.qemu_quit = False
            self.schema = None
            self.warm_schema()

        self._call_soon(renew)


def _input_error(exc: InputError, text: str, indent: int) -> str:
    """The message, with a caret under the culprit when the line was a single line."""
    if exc.column is None or "\n" in text:
        return f"error: {exc}\n"
    return " " * (indent + exc.column - 1) + "^\n" + f"error: {exc}\n"


def _paint(logged: TaggedEvent, color: bool) -> str:
    line = logged.numbered()
    code = _ANSI.get(severity(logged.event)) if color else None
    return f"{code}{line}\x1b[0m\n" if code else line + "\n"


def run_interactive(targets: Targets, options: ShellOptions, painted: EarlyPrompt) -> int:
    """Run the shell until Ctrl-D, ``exit`` or a signal; return the exit code.

    The banner and the prompt are on screen already (``painted``); the Application's
    first draw replaces that prompt with its own.
    """
    from qmpsh.config import history_path
    from qmpsh.history import PrivateHistory

    history = PrivateHistory(history_path(), options.history_size)
    ui = ShellUI(targets.current, options, history=history, targets=targets, prompt=painted.prompt)
    painted.hand_over()
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
