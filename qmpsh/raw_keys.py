"""Keys pressed while qmpsh prints above the prompt reach qmpsh, not the tty driver.

prompt_toolkit's ``run_in_terminal`` puts the terminal back in cooked mode for as
long as its function runs, because that function may be a program that wants a line
discipline (an editor, ``input()``).  qmpsh uses it to print replies and events above
the prompt, and there cooked mode loses keys: a Ctrl-D pressed then is eaten by the
tty as end-of-file and never arrives (the shell does not leave), Ctrl-\\ kills qmpsh
with SIGQUIT, Ctrl-Z stops it.  Printing needs no line discipline, so the input stays
raw throughout and such keys wait, like any other, until the prompt reads them.  The
pager is the one foreign program run above the prompt; it asks for ``cooked()``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyPress


class RawWhilePrinting(Input):
    """``inner``, except that ``cooked_mode()`` (asked by ``run_in_terminal``) keeps raw."""

    def __init__(self, inner: Input) -> None:
        self.inner = inner

    def cooked_mode(self) -> AbstractContextManager[None]:
        return nullcontext()

    def cooked(self) -> AbstractContextManager[None]:
        """The real cooked mode, for a program that reads the terminal itself."""
        return self.inner.cooked_mode()

    # Everything else is the terminal's own input.

    def fileno(self) -> int:
        return self.inner.fileno()

    def typeahead_hash(self) -> str:
        return self.inner.typeahead_hash()

    def read_keys(self) -> list[KeyPress]:
        return self.inner.read_keys()

    def flush_keys(self) -> list[KeyPress]:
        return self.inner.flush_keys()

    def flush(self) -> None:
        self.inner.flush()

    @property
    def closed(self) -> bool:
        return self.inner.closed

    def raw_mode(self) -> AbstractContextManager[None]:
        return self.inner.raw_mode()

    def attach(self, input_ready_callback: Callable[[], None]) -> AbstractContextManager[None]:
        return self.inner.attach(input_ready_callback)

    def detach(self) -> AbstractContextManager[None]:
        return self.inner.detach()

    def close(self) -> None:
        self.inner.close()
