"""The completer as the Application uses it: on a worker thread, quiet on an empty line.

Completion may fetch the schema or live values from QEMU (up to 2 s), so it never
runs on the UI thread: ``make_completer`` wraps ``QmpCompleter`` in prompt_toolkit's
``ThreadedCompleter``, whose ``get_completions_async`` is what the buffer (and Tab,
see ``key_bindings``) calls.  The completer reads the session's current monitor and
schema each time, so a reconnect needs no new completer.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from prompt_toolkit.completion import CompleteEvent, Completer, Completion, DynamicCompleter
from prompt_toolkit.document import Document

if TYPE_CHECKING:
    from qmpsh.session import Session


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


def shell_completer(session: Session, history: Callable[[], Sequence[str]]) -> Completer:
    """The input line's completer: schema, live values, values typed before (``history``).

    It is made at the first completion, not with the shell: its modules (the schema's
    among them) are then imported after the prompt is on the screen, not before.
    """
    made: list[Completer] = []

    def completer() -> Completer:
        if not made:
            from qmpsh.completer import make_completer

            made.append(make_completer(session, history=history))
        return made[0]

    return QuietWhenEmpty(DynamicCompleter(completer))
