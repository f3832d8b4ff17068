"""Fan-out: one script on several targets at once, every line of output naming its target.

``qmpsh T1 T2 … -c CMD`` (or ``-f FILE``, or a piped script) reads the script once
and runs each line on every target in parallel, one thread per target, each in
line order.  Connecting is part of a target's own thread, so fifty targets connect
at once and a dead one only costs its own line.

How the output looks is decided here and only here:

- ``json``: one line per target and request, ``{"target": T, "return": …}`` or
  ``{"target": T, "error": {"class", "desc"}}`` (QEMU's error as sent).  HMP text
  is a ``"return"`` string, as with one target; text a shell command prints
  (``help``, ``reconnect``) is ``{"target": T, "text": …}``; qmpsh's own errors (bad
  input, a lost or unreachable target, a wait that timed out) are
  ``{"target": T, "error": {"class": "qmpsh", "desc": …}}``.  All go to standard
  output, so a program reads one stream; lines of different targets interleave,
  lines of one target keep their order.
- ``raw``: the whole wire reply with ``"target"`` first, same rules otherwise.
- ``pretty``: each target's output (errors included, in place) is kept until the
  target is done and then printed whole under ``==> T <==``, in the order the
  targets were given, so no two targets' lines ever mix.
- the ``-v`` echo and notices (libvirt's taint) go to standard error, each line
  prefixed with ``T: `` (in pretty, inside the target's block).

The ``"target"`` key always comes first and is always ours: a key of that name in
what QEMU sends is dropped rather than allowed to pass for another target.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any, TextIO, cast

from qmpsh.errors import EXIT_CONNECTION, QmpshError
from qmpsh.render import Format, Renderer, compact
from qmpsh.session import Output
from qmpsh.targets import worst
from qmpsh.visible import visible

SCRIPT_WINDOW = 4096  # lines read ahead of the slowest target before reading waits
OWN_ERROR_CLASS = "qmpsh"  # the error class of failures that did not come from QEMU

TargetWork = Callable[[str, Output, Iterable[str]], int]


def tagged(target: str, message: dict[str, Any]) -> dict[str, Any]:
    """``message`` with ``"target"`` first; a ``"target"`` key inside it is dropped."""
    result: dict[str, Any] = {"target": target}
    result.update((key, value) for key, value in message.items() if key != "target")
    return result


class TaggedRenderer(Renderer):
    """A ``Renderer`` whose json and raw lines each name the target (see the module doc)."""

    def __init__(
        self,
        target: str,
        fmt: Format,
        out: TextIO,
        err: TextIO,
        *,
        color: bool,
        width: int | None = None,
    ) -> None:
        super().__init__(fmt, out, err, color=color, width=width)
        self.target = target

    def reply(self, command: str | None, reply: dict[str, Any]) -> None:
        if self.fmt == "pretty":
            super().reply(command, reply)
        elif self.fmt == "raw":
            self._line(reply)
        elif "error" in reply:
            self._line({"error": reply["error"]})
        else:
            self._line({"return": reply.get("return")})

    def text(self, text: str) -> None:
        if self.fmt == "pretty":
            super().text(text)
        else:
            self._line({"text": text.replace("\r\n", "\n").removesuffix("\n")})

    def error(self, message: str) -> None:
        if self.fmt == "pretty":
            super().error(message)
        else:
            desc = " ".join(message.splitlines())
            self._line({"error": {"class": OWN_ERROR_CLASS, "desc": desc}})

    def _line(self, message: dict[str, Any]) -> None:
        self.out.write(compact(tagged(self.target, message)) + "\n")  # one write: one line
        self.out.flush()


def renderer_factory(target: str) -> Callable[..., Renderer]:
    """What ``Session.make_renderer`` is set to for a target of a fan-out."""

    def make(fmt: Format, out: TextIO, err: TextIO, **kwargs: Any) -> Renderer:
        return TaggedRenderer(target, fmt, out, err, **kwargs)

    return make


class LineStream(io.TextIOBase):
    """A target's view of a shared stream: whole lines only, one target's at a time.

    Text is held until its newline, then written with ``prefix`` under the lock all
    targets share, so threads never split each other's lines.  Lines that cannot be
    encoded (a lone surrogate from a hostile QEMU) are written escaped.
    """

    def __init__(self, stream: TextIO, lock: threading.Lock, prefix: str = "") -> None:
        super().__init__()
        self._stream = stream
        self._lock = lock
        self._prefix = prefix
        self._partial: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *whole, rest = text.split("\n")
        if whole:
            first = "".join(self._partial) + whole[0]
            self._partial = []
            self._emit([first, *whole[1:]])
        if rest:
            self._partial.append(rest)
        return len(text)

    def _emit(self, lines: list[str]) -> None:
        block = "".join(f"{self._prefix}{line}\n" for line in lines)
        if not block.isascii():
            block = block.encode("utf-8", "backslashreplace").decode("utf-8")
        with self._lock:
            self._stream.write(block)
            self._stream.flush()

    def flush(self) -> None:
        """A line is written when complete; a partial one waits for its end (or ``close``)."""

    def close(self) -> None:
        if self._partial:
            self._emit(["".join(self._partial)])
            self._partial = []
        super().close()


class SharedScript:
    """The script's lines, read once by one thread and run by every target at its pace.

    Each target reads through a cursor of its own; lines every open cursor has passed
    are dropped, and reading stops ``SCRIPT_WINDOW`` lines ahead of the slowest one,
    so an endless pipe takes bounded memory.  A cursor is closed when its target is
    done (or dead), so it never holds the others back.  A read error (a line that is
    not UTF-8) reaches every target at that line, as it would a single one.
    """

    def __init__(self, readers: int) -> None:
        self._lines: list[str] = []
        self._base = 0  # the script index of self._lines[0]
        self._cursors: dict[int, int] = {n: 0 for n in range(readers)}
        self._end: int | None = None
        self._error: QmpshError | None = None
        self._cond = threading.Condition()

    def feed(self, source: Iterable[str]) -> None:
        """Read ``source`` to its end (on the calling thread), waiting for slow targets."""
        try:
            for line in source:
                with self._cond:
                    self._cond.wait_for(self._has_room)
                    self._lines.append(line)
                    self._cond.notify_all()
        except QmpshError as exc:
            with self._cond:
                self._error = exc
        finally:
            with self._cond:
                self._end = self._base + len(self._lines)
                self._cond.notify_all()

    def _has_room(self) -> bool:
        return len(self._lines) < SCRIPT_WINDOW or not self._cursors

    def reader(self, number: int) -> Iterator[str]:
        """Target ``number``'s lines, in order; raises the read error where it happened."""
        try:
            while True:
                with self._cond:
                    index = self._cursors[number]
                    self._cond.wait_for(partial(self._has_line, index))
                    if index - self._base < len(self._lines):
                        line = self._lines[index - self._base]
                    elif self._error is not None:
                        raise self._error
                    else:
                        return
                    self._cursors[number] = index + 1
                    self._trim()
                yield line
        finally:
            self.close(number)

    def _has_line(self, index: int) -> bool:
        return index - self._base < len(self._lines) or self._end is not None

    def close(self, number: int) -> None:
        with self._cond:
            if self._cursors.pop(number, None) is not None:
                self._trim()
                self._cond.notify_all()

    def _trim(self) -> None:
        lowest = min(self._cursors.values(), default=self._base + len(self._lines))
        drop = lowest - self._base
        if drop >= SCRIPT_WINDOW // 4 or not self._cursors:  # in batches: not per line
            del self._lines[:drop]
            self._base = lowest
            self._cond.notify_all()


class Blocks:
    """Pretty fan-out: each target writes into a block of its own, printed whole.

    A block is printed once its target is done and every target given before it has
    been printed, so the output reads in the order of the command line.
    """

    def __init__(self, names: Sequence[str], out: TextIO, *, color: bool) -> None:
        self._names = list(names)
        self._buffers = [io.StringIO() for _ in names]
        self._done = [False] * len(names)
        self._printed = 0
        self._out = out
        self._color = color
        self._lock = threading.Lock()

    def buffer(self, number: int) -> io.StringIO:
        return self._buffers[number]

    def finish(self, number: int) -> None:
        with self._lock:
            self._done[number] = True
            while self._printed < len(self._names) and self._done[self._printed]:
                self._print(self._printed)
                self._printed += 1

    def _print(self, number: int) -> None:
        header = f"==> {visible(self._names[number])} <=="
        if self._color:
            header = f"\x1b[1m{header}\x1b[0m"
        separator = "\n" if number else ""
        self._out.write(f"{separator}{header}\n{self._buffers[number].getvalue()}")
        self._out.flush()
        self._buffers[number] = io.StringIO()  # printed: its memory can go


class FanOut:
    """Runs one piece of work per target, each on its own thread, with its own output."""

    def __init__(
        self, names: Sequence[str], fmt: Format, *, color: bool, width: int | None
    ) -> None:
        """``width`` is the terminal's, or None where nothing should wrap (a pipe)."""
        self.names = list(names)
        self.fmt = fmt
        self._color = color
        self._width = width
        self._out_lock = threading.Lock()
        self._err_lock = threading.Lock()
        self._blocks = Blocks(names, sys.stdout, color=color) if fmt == "pretty" else None

    def output(self, number: int) -> Output:
        """Where target ``number`` writes (see the module doc for what goes where)."""
        name = self.names[number]
        if self._blocks is not None:
            buffer = self._blocks.buffer(number)
            return Output(buffer, buffer, self._width)
        out = LineStream(sys.stdout, self._out_lock)
        err = LineStream(sys.stderr, self._err_lock, prefix=f"{visible(name)}: ")
        return Output(cast(TextIO, out), cast(TextIO, err), None)

    def run(self, work: TargetWork, script: Iterable[str]) -> int:
        """Run ``work(name, output, lines)`` on every target; the worst exit status.

        ``work`` must report its own failures on ``output`` and return a status; an
        error it lets out is reported here, tagged, with its exit code.
        """
        shared = SharedScript(len(self.names))
        statuses: list[int] = [0] * len(self.names)
        threads = [
            threading.Thread(
                target=self._one,
                args=(work, number, shared, statuses),
                name=f"target-{number}",
                daemon=True,  # Ctrl-C ends the run; the caller closes what they opened
            )
            for number in range(len(self.names))
        ]
        for thread in threads:
            thread.start()
        shared.feed(script)
        for thread in threads:
            thread.join()
        return worst(statuses)

    def _one(
        self, work: TargetWork, number: int, shared: SharedScript, statuses: list[int]
    ) -> None:
        name = self.names[number]
        output = self.output(number)
        lines = shared.reader(number)
        try:
            statuses[number] = work(name, output, lines)
        except QmpshError as exc:
            self.report(name, output, str(exc))
            statuses[number] = exc.exit_code
        except Exception as exc:  # a bug must cost one target, not the run
            self.report(name, output, f"internal error: {exc!r}")
            statuses[number] = EXIT_CONNECTION
        finally:
            shared.close(number)
            for stream in (output.out, output.err):
                if isinstance(stream, LineStream):
                    stream.close()
            if self._blocks is not None:
                self._blocks.finish(number)

    def report(self, name: str, output: Output, message: str) -> None:
        """One error line for target ``name``, in the run's format."""
        TaggedRenderer(
            name, self.fmt, output.out, output.err, color=self._color, width=output.width
        ).error(message)
