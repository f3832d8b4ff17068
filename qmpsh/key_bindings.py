"""The shell's own keys, layered over prompt_toolkit's Emacs defaults.

These are merged last, so they win over the defaults for Enter, Ctrl-C and Ctrl-D.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prompt_toolkit.buffer import Buffer
from prompt_toolkit.completion import CompleteEvent, get_common_complete_suffix
from prompt_toolkit.filters import Condition, has_completions
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

if TYPE_CHECKING:
    from qmpsh.ui import ShellUI


def shell_bindings(ui: ShellUI) -> KeyBindings:
    """Enter, Tab, Ctrl-C, Ctrl-D, F2 and the answer line of a confirmation."""
    kb = KeyBindings()
    confirming = Condition(lambda: ui.confirming is not None)

    @kb.add("f2")
    @kb.add("escape", "[", "Q")  # what some terminals send for F2
    def _toggle(event: KeyPressEvent) -> None:
        """Show or hide the event pane (the same as `events on|off`)."""
        ui.toggle_pane()

    @kb.add("c-c", filter=~confirming)
    def _interrupt(event: KeyPressEvent) -> None:
        """Stop waiting for a running command, or else clear the line."""
        if ui.busy:
            ui.cancel()
        else:
            ui.buffer.reset()

    @kb.add("c-d", filter=~confirming & Condition(lambda: not ui.buffer.text))
    def _leave(event: KeyPressEvent) -> None:
        """Ctrl-D on an empty line leaves the shell (QEMU keeps running)."""
        ui.cancel()
        event.app.exit(result=ui.status)

    _line_bindings(kb, ui, confirming)
    _confirm_bindings(kb, ui, confirming)
    return kb


def _line_bindings(kb: KeyBindings, ui: ShellUI, confirming: Condition) -> None:
    """Tab and Enter: complete, close the menu, continue the line or run it."""
    menu_selected = has_completions & Condition(
        lambda: (
            ui.buffer.complete_state is not None
            and ui.buffer.complete_state.current_completion is not None
        )
    )

    @kb.add("tab", filter=~confirming)
    def _tab(event: KeyPressEvent) -> None:
        """Tab completes; a single candidate is taken at once, with the menu closed.

        A menu opened by typing fills as its completions arrive (on a busy machine Tab
        can come while it is still empty, or holds one of many): Tab moves through a
        menu of several, and otherwise asks for the whole answer and waits for it.
        """
        state = ui.buffer.complete_state
        if state is not None and len(state.completions) > 1:
            ui.buffer.complete_next()
        else:
            event.app.create_background_task(complete_requested(ui.buffer))

    @kb.add("enter", filter=menu_selected & ~confirming)
    def _close_menu(event: KeyPressEvent) -> None:
        """Enter on a chosen completion keeps it and closes the menu; it does not run."""
        ui.buffer.complete_state = None

    @kb.add("enter", filter=~menu_selected & ~confirming)
    def _enter(event: KeyPressEvent) -> None:
        """Run the line when it is complete (after the running command, if one runs);
        otherwise start a continuation line."""
        if not ui.session.syntax.is_complete(ui.buffer.text):
            ui.buffer.insert_text("\n")
        else:
            ui.accept()


async def complete_requested(buffer: Buffer) -> None:
    """Tab with no menu open: complete as asked, without blocking the UI thread.

    The completer runs on its own thread (``get_completions_async`` of the buffer's
    ``ThreadedCompleter``): a live value may take QEMU seconds to give.  The buffer's
    own ``start_completion`` cannot be used, because it does nothing while a
    completion started by typing is still on its way.  If the user typed on
    meanwhile, their keys win and the answer is dropped.
    """
    completer, document = buffer.completer, buffer.document
    if completer is None:
        return
    event = CompleteEvent(completion_requested=True)
    completions = [c async for c in completer.get_completions_async(document, event)]
    if buffer.document != document:
        return
    if len(completions) == 1:
        buffer.apply_completion(completions[0])
        return
    common = get_common_complete_suffix(document, completions)
    if common:
        buffer.insert_text(common)
    buffer.start_completion(select_first=False)


def _confirm_bindings(kb: KeyBindings, ui: ShellUI, confirming: Condition) -> None:
    """The answer is a whole line: keys typed ahead go into it and cannot say yes alone."""

    @kb.add("enter", filter=confirming)
    def _answer(event: KeyPressEvent) -> None:
        ui.answer(ui.confirm_buffer.text)

    @kb.add("escape", filter=confirming, eager=True)
    @kb.add("c-c", filter=confirming)
    @kb.add("c-d", filter=confirming)
    def _no(event: KeyPressEvent) -> None:
        """Esc, Ctrl-C and Ctrl-D are a no: the dangerous default is never one key away."""
        ui.answer(None)
