"""Command line: choose the mode, wire the session together, map failures to exit codes.

Only the standard library and qmpsh's pure modules are imported here, so a piped
script or ``-c`` call starts fast; the interactive shell (prompt_toolkit) and rich
are imported only when they are about to be used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from qmpsh import __version__
from qmpsh.errors import (
    EXIT_OK,
    EXIT_TIMEOUT,
    EventTimeout,
    InputError,
    QmpshError,
)

if TYPE_CHECKING:
    from qmpsh.session import Format, Settings

EPILOG = """\
address:
  PATH or unix:PATH        a QMP unix socket (-qmp unix:PATH,server=on,wait=off)
  HOST:PORT, [::1]:PORT    a QMP TCP socket (-qmp tcp:HOST:PORT,server=on,wait=off)
  default: $QMPSH_SOCKET, then $QMP_SOCKET

modes:
  at a terminal, qmpsh opens an interactive shell; with -c, -f or a pipe on
  standard input it runs one request per line (blank lines and # comments
  are skipped) and prints one JSON document per reply when stdout is not a
  terminal.

exit codes:
  0  all good
  1  a QMP command returned an error (the script goes on unless --exit-on-error)
  2  usage or input-syntax error
  3  connection failed or lost (also: a reply timed out)
  4  `wait` / --wait-event timed out

examples:
  qmpsh --launch                         a throwaway QEMU, and a shell on it
  qmpsh /tmp/qmp.sock -c query-status    one command, JSON out
  qmpsh /tmp/qmp.sock < commands.txt     a script
  qmpsh localhost:4444 --events=ev.jsonl --wait-event SPICE_CONNECTED --timeout 60
"""


def build_parser() -> argparse.ArgumentParser:
    """The options, with qmp-shell's short flags kept for its users."""
    p = argparse.ArgumentParser(
        prog="qmpsh",
        description="An interactive shell for the QEMU Monitor Protocol (QMP).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("address", nargs="?", help="QMP socket: PATH, unix:PATH or HOST:PORT")
    p.add_argument("--version", action="version", version=f"qmpsh {__version__}")
    p.add_argument(
        "--launch",
        action="store_true",
        help="start a throwaway QEMU (-machine none, VNC and SPICE on 127.0.0.1) and connect "
        "to it; arguments after -- are passed to QEMU; it is stopped when qmpsh exits",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep retrying until the socket accepts connections",
    )
    p.add_argument(
        "-c",
        "--command",
        action="append",
        default=[],
        metavar="LINE",
        help="run LINE and exit (repeatable)",
    )
    p.add_argument("-f", "--file", metavar="FILE", help="run the lines of FILE and exit")
    p.add_argument(
        "--format",
        choices=("pretty", "json", "raw"),
        help="reply format (default: pretty on a terminal, json otherwise); "
        "raw prints whole wire messages, errors included, on stdout",
    )
    p.add_argument("-p", "--pretty", action="store_true", help="same as --format pretty")
    p.add_argument(
        "--exit-on-error", action="store_true", help="stop a script at the first failing line"
    )
    p.add_argument(
        "--events",
        nargs="?",
        const="-",
        metavar="FILE",
        help="write every event as a JSON line to stderr, or append to FILE",
    )
    p.add_argument(
        "--events-filter",
        metavar="SPEC",
        help="only show events matching SPEC (globs, !NAME, field=value)",
    )
    p.add_argument(
        "--wait-event",
        metavar="EVENT",
        help="after any commands, wait for EVENT (with field=value filters in "
        "--events-filter) and print it; exit 4 on timeout",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for a reply or for --wait-event (default 30)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="echo each request as sent")
    p.add_argument(
        "-H", "--hmp", action="store_true", help="every line is a human monitor (HMP) command"
    )
    p.add_argument(
        "-N",
        "--skip-negotiation",
        action="store_true",
        help="do not send qmp_capabilities (the server is already negotiated)",
    )
    p.add_argument(
        "-l",
        "--logfile",
        metavar="FILE",
        help="append every message both ways as JSON lines (same as --transcript)",
    )
    p.add_argument(
        "--transcript",
        metavar="FILE",
        help="append every message both ways and every event as JSON lines",
    )
    p.add_argument(
        "--no-validate",
        action="store_true",
        help="send requests without checking them against the server's schema",
    )
    p.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="do not ask before quit, system_reset, system_powerdown, stop",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no banner and no warnings")
    p.add_argument(
        "--no-pane",
        action="store_true",
        help="print events above the prompt instead of in a side pane",
    )
    p.add_argument("--no-pager", action="store_true", help="never page long replies")
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour output (default auto; NO_COLOR is honoured)",
    )
    return p


def split_qemu_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split at the first ``--``: what follows goes to QEMU (``--launch -- -M pc``)."""
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qmpsh`` command; returns the process exit code."""
    own, qemu_args = split_qemu_args(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(own)
    if qemu_args and not args.launch:
        parser.error("arguments after -- are for QEMU and need --launch")
    _install_signal_handlers()
    try:
        return _run(args, qemu_args)
    except EventTimeout as exc:
        _report(str(exc))
        return EXIT_TIMEOUT
    except QmpshError as exc:
        _report(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK


def _report(message: str) -> None:
    print(f"qmpsh: error: {message}", file=sys.stderr)


def _silence_stdout() -> None:
    """After EPIPE (``qmpsh … | head``), stop Python from complaining at exit."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _install_signal_handlers() -> None:
    """SIGTERM/SIGHUP unwind like Ctrl-C would, so --launch's QEMU and temp dir go too."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)


def _run(args: argparse.Namespace, qemu_args: list[str]) -> int:
    scripted = bool(args.command or args.file) or not sys.stdin.isatty()
    with _target(args, qemu_args) as address_text:
        return _connect_and_run(args, address_text, scripted)


@contextlib.contextmanager
def _target(args: argparse.Namespace, qemu_args: list[str]) -> Iterator[str]:
    """The address to connect to; with --launch, a QEMU that lives as long as this block."""
    if not args.launch:
        text = args.address or os.environ.get("QMPSH_SOCKET") or os.environ.get("QMP_SOCKET")
        if not text:
            raise InputError(
                "no QMP address: give PATH or HOST:PORT, set QMPSH_SOCKET, or use --launch"
            )
        yield text
        return
    if args.address:
        raise InputError("give either an address or --launch, not both")
    from qmpsh.address import launch_qemu

    with launch_qemu(qemu_args) as qemu:
        yield f"unix:{qemu.socket_path}"


def _connect_and_run(args: argparse.Namespace, address_text: str, scripted: bool) -> int:
    from qmpsh.address import TcpAddress, parse_address
    from qmpsh.client import QmpClient
    from qmpsh.events import EventFilter
    from qmpsh.render import Renderer
    from qmpsh.session import Session

    address = parse_address(address_text)
    if isinstance(address, TcpAddress) and not address.is_loopback and not args.quiet:
        print(
            f"qmpsh: warning: {address} is not loopback; QMP has no authentication", file=sys.stderr
        )
    settings = _settings(args, scripted)
    renderer = Renderer(settings.fmt, sys.stdout, sys.stderr, color=settings.color)
    client = QmpClient(address, timeout=args.timeout)
    session = Session(client, settings, renderer, echo=_echo)
    if args.events_filter:
        session.event_filter = EventFilter.parse(args.events_filter)
    with contextlib.ExitStack() as stack:
        _wire_outputs(args, session, stack)
        client.connect(wait=args.wait, negotiate=not args.skip_negotiation)
        stack.callback(client.close)
        if scripted:
            status = _run_script(args, session)
        else:
            status = _run_interactive(args, session)
        if args.wait_event:
            status = max(status, _wait_event(args, session))
        return status


def _settings(args: argparse.Namespace, scripted: bool) -> Settings:
    from qmpsh.session import Settings

    fmt: Format = args.format or ("pretty" if args.pretty or sys.stdout.isatty() else "json")
    return Settings(
        fmt=fmt,
        validate=not args.no_validate,
        verbose=args.verbose,
        hmp_mode=args.hmp,
        exit_on_error=args.exit_on_error,
        interactive=not scripted,
        assume_yes=args.yes,
        timeout=args.timeout,
        color=_want_color(args.color, sys.stdout),
    )


def _want_color(choice: str, stream: TextIO) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return stream.isatty() and os.environ.get("TERM") != "dumb"


def _echo(message: dict[str, Any]) -> None:
    from qmpsh.redact import redact_message

    print(json.dumps(redact_message(message), separators=(",", ":")), file=sys.stderr)


def _wire_outputs(args: argparse.Namespace, session: Any, stack: contextlib.ExitStack) -> None:
    """--events and --transcript/-l: files get every event, from the reader thread."""
    from qmpsh.events import JsonLinesWriter
    from qmpsh.transcript import Transcript

    if args.events:
        target = sys.stderr if args.events == "-" else args.events
        writer = stack.enter_context(JsonLinesWriter(target))
        flt = session.event_filter
        session.client.add_event_listener(
            lambda event: writer.write(event) if flt is None or flt.matches(event) else None
        )
    for path in {p for p in (args.transcript, args.logfile) if p}:
        transcript = stack.enter_context(Transcript(path))
        session.client.add_transcript_listener(transcript.record)


def _run_script(args: argparse.Namespace, session: Any) -> int:
    from qmpsh.script import run_lines

    if args.command:
        return run_lines(session, args.command, numbered=len(args.command) > 1)
    if args.file:
        try:
            with open(args.file, encoding="utf-8") as fh:
                return run_lines(session, fh, numbered=True)
        except OSError as exc:
            raise InputError(f"cannot read {args.file}: {exc.strerror}") from None
    return run_lines(session, sys.stdin, numbered=True)


def _run_interactive(args: argparse.Namespace, session: Any) -> int:
    from qmpsh.ui import run_interactive

    status: int = run_interactive(session, args)
    return status


def _wait_event(args: argparse.Namespace, session: Any) -> int:
    words = [args.wait_event]
    if args.events_filter:
        words.append(args.events_filter)
    words.append(f"timeout={args.timeout}")
    status: int = session.run_line("wait " + " ".join(words))
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
