"""The widgets of the interactive shell, each built by one small factory (ptpython style).

Input on the left, the event pane on the right, a toolbar below.  The pane is a
``ConditionalContainer`` so it vanishes when hidden (F2), when the terminal is too
narrow, and when the application is done.
"""

from __future__ import annotations

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
    """The newest events that fit, newest at the bottom, one summary line each.

    ``lines`` is what was last drawn, so tests (and curious users of the API) can see
    that an event reached the screen without pressing a key.
    """

    def __init__(self, ui: ShellUI) -> None:
        self.ui = ui
        self.lines: list[str] = []

    def rows(self) -> int:
        """As many rows as there are events, up to half the terminal: the pane grows as
        events come instead of pushing the prompt to the top of an empty screen."""
        cap = max(3, self.ui.app.output.get_size().rows // 2)
        return max(1, min(len(self.ui.pane_events(cap)), cap))

    def preferred_height(
        self, width: int, max_available_height: int, wrap_lines: bool, get_line_prefix: object
    ) -> int | None:
        return self.rows()

    def create_content(self, width: int, height: int) -> UIContent:
        events = self.ui.pane_events(height)
        self.lines = [logged.summary()[:width] for logged in events]
        styles = [f"class:event.{severity(logged.event)}" for logged in events]
        if not self.lines:
            self.lines, styles = ["(no events yet; F2 hides this pane)"[:width]], ["class:busy"]

        def line(i: int) -> StyleAndTextTuples:
            return [(styles[i], self.lines[i])]

        return UIContent(get_line=line, line_count=len(self.lines), show_cursor=False)

    def is_focusable(self) -> bool:
        return False


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
        input_processors=[
            BeforeInput(ui.prompt_fragments),
            HighlightIncrementalSearchProcessor(),
            ConditionalProcessor(HighlightMatchingBracketProcessor(), has_focus(ui.buffer)),
            ConditionalProcessor(AppendAutoSuggestion(), has_focus(ui.buffer) & ~is_done),
        ],
    )

    def height() -> Dimension:
        menu_possible = ui.buffer.completer is not None and not ui.app.is_done
        return Dimension(min=MENU_ROWS) if menu_possible else Dimension()

    return Window(control, height=height, width=Dimension(weight=3), wrap_lines=True)


def confirm_line(ui: ShellUI) -> Container:
    def text() -> StyleAndTextTuples:
        return [("class:confirm", f"{ui.confirm_text}: really? [y/N] ")]

    window = Window(FormattedTextControl(text), height=1)
    return ConditionalContainer(window, filter=Condition(lambda: ui.confirming is not None))


def toolbar(ui: ShellUI) -> Container:
    window = Window(
        FormattedTextControl(ui.toolbar_fragments), height=1, style="class:bottom-toolbar"
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
    client = ui.session.client
    if client.failure is not None:
        parts.append(("class:toolbar.disconnected", "disconnected  "))
    else:
        parts.append(("class:toolbar.state", f"{client.address}  "))
    if ui.unseen:
        parts.append(("class:toolbar.unseen", f"{ui.unseen} unseen events (F2)"))
    return parts


def signature(ui: ShellUI) -> str:
    """The completer engineer's live hint for the command being typed, if available."""
    from qmpsh.completer import signature_hint

    try:  # ui.schema, not session.schema: drawing must never wait for QEMU
        hint = signature_hint(ui.schema, ui.buffer.document.text_before_cursor)
    except Exception:  # a hint must never break drawing the screen
        return ""
    return str(hint) if hint else ""


def completions_float() -> Float:
    return Float(xcursor=True, ycursor=True, content=CompletionsMenu(max_height=MENU_ROWS))


def root_container(ui: ShellUI) -> Container:
    search = SearchToolbar()
    body = HSplit(
        [
            confirm_line(ui),
            VSplit([input_window(ui, search), event_pane(ui)]),
            search,
            toolbar(ui),
        ]
    )
    return FloatContainer(body, floats=[completions_float()])
