"""The widgets of the interactive shell, each built by one small factory (ptpython style).

Input on the left, the event pane on the right, a toolbar below.  The pane is a
``ConditionalContainer`` so it vanishes when hidden (F2), when the terminal is too
narrow, and when the application is done.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from prompt_toolkit.filters import Condition, has_focus, is_done
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.layout import (
    BufferControl,
    ConditionalContainer,
    Dimension,
    Float,
    FloatContainer,
    FormattedTextControl,
    HSplit,
    UIContent,
    UIControl,
    VSplit,
    Window,
)
from prompt_toolkit.layout.containers import Container
from prompt_toolkit.layout.menus import CompletionsMenu
from prompt_toolkit.layout.processors import (
    AppendAutoSuggestion,
    BeforeInput,
    ConditionalProcessor,
    HighlightIncrementalSearchProcessor,
    HighlightMatchingBracketProcessor,
)
from prompt_toolkit.widgets import SearchToolbar

from qmpsh.event_summary import severity

if TYPE_CHECKING:
    from qmpsh.ui import ShellUI

MENU_ROWS = 8  # space kept free below the input so the completion menu fits


class EventPaneControl(UIControl):
    """The newest events that fit, newest at the bottom, one summary each.

    A summary wider than the pane wraps onto indented rows rather than being cut:
    the part a user watches for (a SPICE session id, a STOP's cause) is often at
    the end.  ``lines`` holds the whole summaries last drawn, so tests (and curious
    users of the API) can see that an event reached the screen without a keypress.
    """

    def __init__(self, ui: ShellUI) -> None:
        self.ui = ui
        self.lines: list[str] = []
        self._width = 60  # until the first render tells us

    def _cap(self) -> int:
        return max(3, self.ui.app.output.get_size().rows // 2)

    def _rows(self, width: int) -> list[tuple[str, str]]:
        """(style, text) screen rows of the newest events that fit, oldest first."""
        cap = self._cap()
        events = self.ui.pane_events(cap)
        self.lines = [logged.numbered() for logged in events]
        rows: list[tuple[str, str]] = []
        for logged, text in zip(events, self.lines, strict=True):
            style = f"class:event.{severity(logged.event)}"
            rows.extend((style, chunk) for chunk in _wrap(text, width))
        return rows[-cap:]

    def rows(self) -> int:
        """As many rows as the events need, up to half the terminal: the pane grows as
        events come instead of pushing the prompt to the top of an empty screen."""
        rows = max(1, len(self._rows(self._width)))
        self.ui.tallest_pane = max(self.ui.tallest_pane, rows)  # the input keeps this height
        return rows

    def preferred_height(
        self, width: int, max_available_height: int, wrap_lines: bool, get_line_prefix: object
    ) -> int | None:
        return self.rows()

    def create_content(self, width: int, height: int) -> UIContent:
        self._width = max(width, 8)
        rows = self._rows(self._width)[-height:] if height > 0 else []
        if not rows:
            self.lines = ["(no events yet; F2 hides this pane)"[:width]]
            rows = [("class:busy", self.lines[0])]

        def line(i: int) -> StyleAndTextTuples:
            return [rows[i]]

        return UIContent(get_line=line, line_count=len(rows), show_cursor=False)

    def is_focusable(self) -> bool:
        return False


def _wrap(text: str, width: int) -> list[str]:
    """Cut ``text`` into rows of ``width`` at spaces; continuation rows are indented."""
    if len(text) <= width:
        return [text]
    return textwrap.wrap(
        text, width, subsequent_indent="  ", break_on_hyphens=False, drop_whitespace=True
    ) or [text[:width]]


def event_pane(ui: ShellUI) -> Container:
    shown = Condition(ui.pane_shown) & ~is_done
    control = EventPaneControl(ui)
    body = VSplit(
        [
            Window(width=1, char="│", style="class:event-pane.border"),
            Window(control, style="class:event-pane", wrap_lines=False),
        ],
        width=Dimension(weight=2),
        height=lambda: Dimension.exact(control.rows()),
    )
    return ConditionalContainer(body, filter=shown)


def input_window(ui: ShellUI, search: SearchToolbar) -> Window:
    """The line being edited, with the prompt, bracket matching and history suggestion."""
    control = BufferControl(
        buffer=ui.buffer,
        lexer=ui.lexer(),
        search_buffer_control=search.control,
        preview_search=True,  # Ctrl-R shows the entry found (all its lines) as you type
        input_processors=[
            BeforeInput(ui.prompt_fragments),
            HighlightIncrementalSearchProcessor(),
            ConditionalProcessor(HighlightMatchingBracketProcessor(), has_focus(ui.buffer)),
            ConditionalProcessor(AppendAutoSuggestion(), has_focus(ui.buffer) & ~is_done),
        ],
    )

    def height() -> Dimension:
        """Room for the menu below the cursor row, inside this window: drawn lower, it
        would cover the toolbar's signature hint, which is exactly what one reads then.
        And as tall as the pane has been, so F2 does not move the toolbar."""
        if ui.buffer.completer is None or ui.app.is_done:
            return Dimension()
        below_cursor = ui.buffer.document.cursor_position_row + 1 + MENU_ROWS
        return Dimension(min=max(below_cursor, ui.tallest_pane))

    def continuation(line: int, wrap_count: int) -> StyleAndTextTuples:
        """A marker under the prompt on the second and later lines of one request."""
        if line == 0 or wrap_count > 0:
            return []
        width = len(ui.prompt_text)
        return [("class:prompt.continuation", "...".rjust(width - 1) + " ")]

    return Window(
        control,
        height=height,
        width=Dimension(weight=3),
        wrap_lines=True,
        dont_extend_height=True,  # spare rows stay below the toolbar, pane shown or not
        get_line_prefix=continuation,
    )


def confirm_line(ui: ShellUI) -> Container:
    """The question and its answer line, in place of the prompt: it must not look like one."""
    from qmpsh.confirm import question

    def text() -> StyleAndTextTuples:
        return [("class:confirm", question(ui.confirm_text))]

    control = BufferControl(buffer=ui.confirm_buffer, input_processors=[BeforeInput(text)])
    window = Window(control, wrap_lines=True, style="class:confirm.answer")
    return ConditionalContainer(window, filter=Condition(lambda: ui.confirming is not None))


def toolbar(ui: ShellUI) -> Container:
    """As many rows as it needs: a long signature hint wraps rather than being cut."""
    window = Window(
        FormattedTextControl(ui.toolbar_fragments),
        wrap_lines=True,
        dont_extend_height=True,  # spare rows go to the input, never under the toolbar
        style="class:bottom-toolbar",
    )
    return ConditionalContainer(window, filter=~is_done)


def toolbar_fragments(ui: ShellUI) -> StyleAndTextTuples:
    """Signature hint, then what is going on: running, connection, unseen events."""
    parts: StyleAndTextTuples = []
    hint = signature(ui)
    if hint:
        parts.append(("class:toolbar.signature", hint + "  "))
    if ui.job is not None:
        parts.append(("class:busy", f"running {ui.job.name}… Ctrl-C stops waiting  "))
        if ui.queued:
            parts.append(("class:busy", f"{ui.queued} queued  "))
    client = ui.session.client
    if client.failure is not None:
        parts.append(("class:toolbar.disconnected", f"{_disconnected(ui)}  "))
    else:
        parts.append(("class:toolbar.state", f"{client.address}  "))
        state = ui.run_state.state
        if state is not None:
            style = "class:toolbar.running" if state == "running" else "class:toolbar.stopped"
            parts.append((style, f"{state}  "))
    if ui.unseen:
        parts.append(("class:toolbar.unseen", f"{ui.unseen} unseen events (F2)"))
    return parts


def _disconnected(ui: ShellUI) -> str:
    """Why there is no connection and what happens next: a reconnect's tries, or a hint."""
    from qmpsh.reconnect import last_attempt

    if ui.job is not None:
        attempt = last_attempt(ui.targets.current)
        if attempt is None:
            return "reconnecting…"
        return (
            f"reconnecting: try {attempt.number} failed ({attempt.error}); "
            f"next in {attempt.delay:g} s, Ctrl-C stops"
        )
    if ui.qemu_quit:
        return "QEMU exited: Ctrl-D leaves"
    return "disconnected: type reconnect"


def signature(ui: ShellUI) -> str:
    """The completer engineer's live hint for the command being typed, if available
    (none on an empty line: the first draw imports no completer)."""
    if not ui.buffer.text.strip():
        return ""
    from qmpsh.completer import signature_hint

    try:  # ui.schema, not session.schema: drawing must never wait for QEMU
        hint = signature_hint(ui.schema, ui.buffer.document.text_before_cursor, ui.session.syntax)
    except Exception:  # a hint must never break drawing the screen
        return ""
    return str(hint) if hint else ""


def completions_float() -> Float:
    return Float(xcursor=True, ycursor=True, content=CompletionsMenu(max_height=MENU_ROWS))


def root_container(ui: ShellUI) -> Container:
    search = SearchToolbar()
    confirming = Condition(lambda: ui.confirming is not None)
    body = HSplit(
        [
            confirm_line(ui),  # the whole width: a long question is never cut
            VSplit(
                [
                    ConditionalContainer(input_window(ui, search), filter=~confirming),
                    event_pane(ui),
                ]
            ),
            search,
            toolbar(ui),
        ]
    )
    return FloatContainer(body, floats=[completions_float()])
