"""Why the interactive prompt appears no later than it must: no needless collection.

Start-up imports prompt_toolkit (and with it asyncio) and builds the Application:
hundreds of thousands of objects, every one of which the cyclic garbage collector
would walk again and again although none is garbage.  Collection is paused from the
start of ``main`` until the shell's first draw (or until a script is about to run),
then the survivors are frozen (never scanned again) and collection goes on as usual.

Importing prompt_toolkit on a helper thread while connecting was tried and measured
slower (the imports are CPU-bound, and the two threads only took turns at the
interpreter, 215-248 ms to the prompt against 172-194 ms without the thread).
"""

from __future__ import annotations

import gc

__all__ = ["pause_collection", "resume_collection"]


def pause_collection() -> None:
    """No cyclic garbage collection until ``resume_collection`` (start-up makes no
    garbage worth the walks)."""
    gc.disable()


def resume_collection() -> None:
    """Freeze what start-up made (it lives as long as the process) and collect again.

    Nothing is done if collection runs: it was never paused (qmpsh's code used in
    another program, a test), and another program's objects are not ours to freeze.
    """
    if gc.isenabled():
        return
    gc.freeze()
    gc.enable()
