"""What makes the interactive prompt appear sooner: overlap and no needless collection.

prompt_toolkit's import is most of the shell's start-up (55-100 ms).  While the main
thread parses options, reads the config and waits on the socket for QEMU's greeting, a
helper thread imports prompt_toolkit's modules, so the two waits overlap.  Only
prompt_toolkit and the standard library are imported there, never a ``qmpsh`` module:
the main thread imports those, and two threads importing each other's half-loaded
modules could deadlock.  ``wait_for_preload`` runs before ``qmpsh.ui`` is imported, so
no module is ever imported by both threads at once.

The imports also allocate hundreds of thousands of objects, every one of which the
cyclic garbage collector would walk again and again although none is garbage: it is
paused from the start until the prompt has been drawn, then the survivors are frozen
(never scanned again) and collection goes on as usual.
"""

from __future__ import annotations

import gc
import importlib
import threading

__all__ = ["pause_collection", "preload_terminal_ui", "resume_collection", "wait_for_preload"]

# What qmpsh.ui and its layout import from prompt_toolkit, heaviest first.
PROMPT_TOOLKIT_MODULES = (
    "prompt_toolkit.application",
    "prompt_toolkit.buffer",
    "prompt_toolkit.key_binding.defaults",
    "prompt_toolkit.key_binding.bindings.auto_suggest",
    "prompt_toolkit.layout",
    "prompt_toolkit.layout.menus",
    "prompt_toolkit.widgets",
    "prompt_toolkit.styles",
    "prompt_toolkit.history",
    "prompt_toolkit.completion",
    "prompt_toolkit.lexers",
)


_preload: threading.Thread | None = None  # the one helper thread, once started


def preload_terminal_ui() -> None:
    """Start importing prompt_toolkit on a helper thread (once; later calls do nothing)."""
    global _preload
    if _preload is None:
        _preload = threading.Thread(target=_import_prompt_toolkit, name="preload", daemon=True)
        _preload.start()


def wait_for_preload() -> None:
    """Wait until the helper thread is done: after this, importing ``qmpsh.ui`` is safe."""
    if _preload is not None:
        _preload.join()


def _import_prompt_toolkit() -> None:
    for name in PROMPT_TOOLKIT_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # the real import, on the main thread, reports it
            return


def pause_collection() -> None:
    """No cyclic garbage collection until ``resume_collection`` (start-up makes no garbage
    worth the walks)."""
    gc.disable()


def resume_collection() -> None:
    """Freeze what start-up made (it lives as long as the process) and collect again."""
    gc.freeze()
    gc.enable()
