"""prompt_toolkit's default key bindings without vi mode's: qmpsh edits in emacs mode.

``Application`` builds its defaults itself at every start: 582 bindings, 331 of them vi
mode's (``load_vi_bindings`` was 2.8 of the 4.5 ms the defaults took in a warm process,
more in a cold one), for a mode qmpsh never enters.  While qmpsh's Application is
built, its defaults are prompt_toolkit's own list
(``key_binding.defaults.load_key_bindings``) less the two vi loaders.  A prompt_toolkit
whose Application finds its defaults elsewhere keeps them: slower, never wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prompt_toolkit.application import application
from prompt_toolkit.filters import buffer_has_focus
from prompt_toolkit.key_binding import (
    ConditionalKeyBindings,
    KeyBindingsBase,
    merge_key_bindings,
)
from prompt_toolkit.key_binding.bindings.basic import load_basic_bindings
from prompt_toolkit.key_binding.bindings.cpr import load_cpr_bindings
from prompt_toolkit.key_binding.bindings.emacs import (
    load_emacs_bindings,
    load_emacs_search_bindings,
    load_emacs_shift_selection_bindings,
)
from prompt_toolkit.key_binding.bindings.mouse import load_mouse_bindings

__all__ = ["emacs_defaults", "emacs_only"]


def emacs_defaults() -> KeyBindingsBase:
    """prompt_toolkit's ``load_key_bindings()`` without ``load_vi_bindings()`` and
    ``load_vi_search_bindings()``, in the same order and under the same conditions."""
    editing = merge_key_bindings(
        [
            load_basic_bindings(),
            load_emacs_bindings(),
            load_emacs_search_bindings(),
            load_emacs_shift_selection_bindings(),
        ]
    )
    return merge_key_bindings(
        [
            ConditionalKeyBindings(editing, buffer_has_focus),
            load_mouse_bindings(),
            load_cpr_bindings(),
        ]
    )


@contextmanager
def emacs_only() -> Iterator[None]:
    """An ``Application`` built inside this block has ``emacs_defaults`` as defaults."""
    original = getattr(application, "load_key_bindings", None)
    if original is None:
        yield
        return
    setattr(application, "load_key_bindings", emacs_defaults)  # noqa: B010 - not exported
    try:
        yield
    finally:
        setattr(application, "load_key_bindings", original)  # noqa: B010
