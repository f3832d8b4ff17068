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
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO, cast

from qmpsh import __version__
from qmpsh.errors import (
    EXIT_COMMAND_ERROR,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    EventTimeout,
    InputError,
    QmpshError,
)

if TYPE_CHECKING:
    from qmpsh.address import Address
    from qmpsh.client import QmpClient
    from qmpsh.config import Config
    from qmpsh.events import EventFilter
    from qmpsh.libvirt_address import LibvirtAddress
    from qmpsh.session import Format, Settings

EPILOG = """\
address:
  PATH or unix:PATH        a QMP unix socket (-qmp unix:PATH,server=on,wait=off)
  HOST:PORT, [::1]:PORT    a QMP TCP socket (-qmp tcp:HOST:PORT,server=on,wait=off)
  libvirt:DOMAIN[@URI]     a libvirt domain, by name or UUID, through libvirt-python
                           (pip install 'qmpsh[libvirt]'); URI default:
                           $LIBVIRT_DEFAULT_URI, else qemu:///system
  default: $QMPSH_SOCKET, then $QMP_SOCKET

modes:
  at a terminal, qmpsh opens an interactive shell; with -c, -f or a pipe on
  standard input it runs one request per line (blank lines and # comments
  are skipped) and prints one JSON document per reply when stdout is not a
  terminal.

exit codes:
  0  all good
  1  a QMP command returned an error (the script goes on unless --exit-on-error),
     or output could not be written (a full disk)
  2  usage or input-syntax error
  3  connection failed or lost (also: a reply timed out)
  4  `wait` / --wait-event timed out

examples:
  qmpsh --launch                         a throwaway QEMU, and a shell on it
  qmpsh /tmp/qmp.sock -c query-status    one command, JSON out
  qmpsh /tmp/qmp.sock < commands.txt     a script
  qmpsh localhost:4444 --events=ev.jsonl --wait-event SPICE_CONNECTED --timeout 60
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, sized without importing shutil.

    argparse builds a formatter for every ``add_argument``, and the stock one imports
    shutil (and with it bz2, lzma …) just to ask the terminal's width: ~2 ms of every
    ``-c`` call, for help that is almost never printed.
    """

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_terminal_columns() - 2)  # -2: as argparse does


def _terminal_columns() -> int:
    """What ``shutil.get_terminal_size().columns`` would say: $COLUMNS, the terminal, or 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    stream = sys.__stdout__
    if columns > 0 or stream is None:
        return columns if columns > 0 else 80
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


def build_parser() -> argparse.ArgumentParser:
    """The options, with qmp-shell's short flags kept for its users."""
    p = argparse.ArgumentParser(
        prog="qmpsh",
        description="An interactive shell for the QEMU Monitor Protocol (QMP).",
        epilog=EPILOG,
        formatter_class=_HelpFormatter,
    )
    p.add_argument(
        "address", nargs="?", help="QMP socket: PATH, unix:PATH or HOST:PORT; or libvirt:DOMAIN"
    )
    p.add_argument("--version", action="version", version=f"qmpsh {__version__}")
    p.add_argument(
        "--launch",
        action="store_true",
        help="start a throwaway QEMU (-machine none, VNC and SPICE on 127.0.0.1) and connect "
        "to it; arguments after -- are passed to QEMU; it is stopped when qmpsh exits",
    )
    p.add_argument(
        "--wait",
        default="0",
        metavar="SECONDS",
        help="keep retrying until the socket accepts connections (libvirt: until the "
        "domain exists and runs)",
    )
    p.add_argument(
        "-c",
        "--command",
        action="append",
        default=[],
        metavar="LINE",
        help="run LINE and exit (repeatable; visible in ps: keep passwords out of it)",
    )
    p.add_argument("-f", "--file", metavar="FILE", help="run the lines of FILE and exit")
    p.add_argument(
        "--vminfo",
        action="store_true",
        help="print an overview of the VM (machine, CPUs, memory, disks, NICs, SPICE/VNC "
        "clients, chardevs) and exit; the same as -c vminfo",
    )
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
        metavar="=FILE",
        help="write every event as a JSON line to stderr, or with --events=FILE (the = is "
        "needed) append to FILE",
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
        default="30",
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
        "--reconnect",
        action="store_true",
        help="interactive shell: when the connection is lost, reconnect on its own "
        "(back-off 0.1 s to 5 s, until Ctrl-C); without it, type `reconnect`",
    )
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour output (default auto; NO_COLOR is honoured)",
    )
    p.add_argument(
        "--config",
        metavar="PATH",
        help="read defaults from this TOML file (default: $QMPSH_CONFIG, "
        "else $XDG_CONFIG_HOME/qmpsh/config.toml); command-line flags win",
    )
    p.add_argument(
        "--completions",
        choices=("bash", "zsh", "fish"),
        metavar="SHELL",
        help="print the completion script for SHELL (bash, zsh or fish) and exit",
    )
    p.add_argument(
        "--list-sockets",
        action="store_true",
        help="print the unix sockets found in the current directory, $XDG_RUNTIME_DIR "
        "and libvirt's monitor directories, then the local libvirtd's running domains "
        "as libvirt:NAME (with the libvirt extra), one per line, and exit",
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
    if not _std_streams_open():
        _report("standard output is closed; redirect it to a file or /dev/null instead")
        return EXIT_USAGE
    try:
        status = _dispatch(own, qemu_args)
        sys.stdout.flush()  # here, so a full disk is reported, not ignored at exit
        return status
    except SystemExit:  # --help, --version, a usage error: their text must be out too
        sys.stdout.flush()
        raise
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except OSError as exc:  # `> /dev/full`: replies cannot be written
        return _output_failed(exc)
    finally:
        if argv is None:  # the process is ours (console script, python -m): it ends now
            _skip_exit_collection()


def _dispatch(own: list[str], qemu_args: list[str]) -> int:
    """Parse the options and run the mode they ask for; QmpshError becomes its exit code."""
    parser = build_parser()
    args = parser.parse_args(_events_option(own))
    if args.completions or args.list_sockets:
        return _print_and_exit(args)
    if qemu_args and not args.launch:
        parser.error("arguments after -- are for QEMU and need --launch")
    _install_signal_handlers()
    try:
        _check_numbers(args)
        return _run(args, qemu_args)
    except EventTimeout as exc:
        _report(str(exc))
        return EXIT_TIMEOUT
    except QmpshError as exc:
        _report(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _std_streams_open() -> bool:
    """Point a closed fd 0, 1 or 2 at /dev/null; False when it was stdout.

    ``qmpsh … >&-`` leaves fd 1 free, and the next file opened would take it: the QMP
    socket or a transcript would become "standard output".  Replies that can go
    nowhere are an error; a closed stdin reads as empty, a closed stderr as silence.
    """
    stdout_open = True
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        setattr(sys, name, open(fd, mode, closefd=False))  # noqa: SIM115  (fd stays ours)
        stdout_open = stdout_open and fd != 1
    return stdout_open


def _events_option(argv: list[str]) -> list[str]:
    """A bare ``--events`` means stderr; a file needs ``--events=FILE``.

    argparse would take the word after a bare ``--events`` as its FILE, so
    ``qmpsh --events /run/vm.sock`` appended events to the socket's path and had no
    address left.  Spelling the bare form out keeps the next word for what it is.
    """
    return ["--events=-" if word == "--events" else word for word in argv]


def _output_failed(exc: OSError) -> int:
    """One line for a reply that could not be written (``> /dev/full``, a dead disk).

    Files qmpsh opens itself report their own failures and never raise, and socket
    errors arrive as QmpshError: an OSError that gets here came from writing stdout.
    """
    _report(f"cannot write standard output: {exc.strerror or exc}")
    _silence_stdout()  # the unwritten rest must not fail again at exit
    return EXIT_COMMAND_ERROR


def _check_numbers(args: argparse.Namespace) -> None:
    """--timeout and --wait as seconds, refused like `wait … timeout=` refuses them."""
    from qmpsh.durations import parse_seconds

    args.timeout = parse_seconds(args.timeout, "--timeout", zero_ok=False)
    args.wait = parse_seconds(args.wait, "--wait")


def _skip_exit_collection() -> None:
    """Spare the process the full garbage collection Python runs at exit.

    It walks every object the imports made (~5 ms, a tenth of a ``-c`` call) only to
    free memory the OS takes back anyway; our files are all closed by this point.
    """
    import gc

    gc.freeze()


def _print_and_exit(args: argparse.Namespace) -> int:
    """--completions and --list-sockets need no address and never connect."""
    if args.completions:
        from qmpsh.shell_completions import print_completions

        return print_completions(args.completions)
    from qmpsh.discover import print_sockets

    return print_sockets()


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
    if args.vminfo:
        if args.command or args.file:
            raise InputError("--vminfo runs on its own: leave out -c and -f")
        args.command = ["vminfo"]
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

    with contextlib.ExitStack() as stack:
        with _signals_deferred():
            qemu = stack.enter_context(launch_qemu(qemu_args))
        if not args.quiet and sys.stdin.isatty() and not (args.command or args.file):
            # At a terminal, say where a viewer can connect; scripts get no chatter.
            print(
                f"qmpsh: launched QEMU (pid {qemu.pid}): VNC 127.0.0.1:{qemu.vnc_port}, "
                f"SPICE 127.0.0.1:{qemu.spice_port}; it stops when qmpsh exits",
                file=sys.stderr,
            )
        yield f"unix:{qemu.socket_path}"


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP until the launched QEMU is in hand.

    Until ``launch_qemu`` returns there is nothing to stop QEMU by, and it runs in its
    own session: an interrupt there would leave it running for ever.  The signal is
    acted on as soon as the block ends, so the caller's cleanup stops QEMU.
    """
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {
        sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in held
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        signal.raise_signal(caught[0])  # now handled as usual: SystemExit or KeyboardInterrupt


def _connect_and_run(args: argparse.Namespace, address_text: str, scripted: bool) -> int:
    from qmpsh.address import parse_address
    from qmpsh.events import EventFilter, EventLog
    from qmpsh.render import Renderer
    from qmpsh.session import Session

    address = parse_address(address_text)
    warning = remote_warning(address, quiet=args.quiet)
    if warning:
        print(warning, file=sys.stderr)
    config = _load_config(args)
    settings = _settings(args, scripted)
    renderer = Renderer(settings.fmt, sys.stdout, sys.stderr, color=settings.color)
    client = _monitor_for(address, args)
    events = EventLog(config.events_capacity)
    session = Session(client, settings, renderer, event_log=events, echo=_echo)
    if args.events_filter:
        session.event_filter = EventFilter.parse(args.events_filter)
    else:
        session.event_filter = _config_filter(config, args.quiet)
    with contextlib.ExitStack() as stack:
        outputs = _wire_outputs(args, session, stack)
        client.connect(wait=args.wait, negotiate=not args.skip_negotiation)
        stack.callback(lambda: session.client.close())  # the client `reconnect` made, if any
        if scripted:
            status = _run_script(args, session)
        else:
            status = _run_interactive(args, session, config)
        if args.wait_event:
            status = max(status, _wait_event(args, session))
        return max(status, _output_losses(outputs))


def _monitor_for(address: Address | LibvirtAddress, args: argparse.Namespace) -> QmpClient:
    """The connection for the address's kind, not yet connected."""
    from qmpsh.libvirt_address import LibvirtAddress

    if isinstance(address, LibvirtAddress):
        from qmpsh.libvirt_monitor import open_libvirt_monitor

        # libvirt taints the domain at our first command: say so once, not at reconnects
        monitor = open_libvirt_monitor(address, args.timeout, None if args.quiet else _warn)
        return cast("QmpClient", monitor)  # same surface; a Monitor protocol will say so
    from qmpsh.client import QmpClient

    return QmpClient(address, timeout=args.timeout)


def _load_config(args: argparse.Namespace) -> Config:
    """Read the config once, for both modes; its values fill in only what flags left open."""
    from qmpsh.config import load_config

    path: str | None = args.config or None  # a str: pathlib would cost every -c call ~2 ms
    if path is not None and not os.path.exists(path):
        raise InputError(f"config file not found: {path}")
    quiet = args.quiet
    config = load_config(path, warn=lambda message: None if quiet else _warn(message))
    if config.format and not args.format and not args.pretty:
        args.format = config.format
    if args.color == "auto":
        args.color = config.color
    return config


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def _config_filter(config: Config, quiet: bool) -> EventFilter | None:
    """The config's default event filter; a bad one costs a warning, not the run."""
    from qmpsh.events import EventFilter

    if not config.events_filter:
        return None
    try:
        return EventFilter.parse(config.events_filter)
    except InputError as exc:
        if not quiet:
            _warn(f"qmpsh: warning: config events.filter: {exc}")
        config.events_filter = None  # warned once; the interactive shell must not warn again
        return None


def remote_warning(address: Address | LibvirtAddress, *, quiet: bool) -> str | None:
    """The warning for a TCP address off this host: anyone who can reach it owns the VM."""
    from qmpsh.address import TcpAddress

    if quiet or not isinstance(address, TcpAddress) or address.is_loopback:
        return None
    return f"qmpsh: warning: {address} is not loopback; QMP has no authentication"


def _redacting(session: Any, record: Callable[[str, dict[str, Any]], None]) -> Any:
    """A transcript listener that masks secrets by the session's schema, once it has one."""

    def listener(direction: str, message: dict[str, Any]) -> None:
        record(direction, session.redact(message) if direction == "out" else message)

    return listener


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


def _wire_outputs(args: argparse.Namespace, session: Any, stack: contextlib.ExitStack) -> list[Any]:
    """--events and --transcript/-l: files get every event, from the reader thread.

    Returns the writers, whose ``loss()`` says at the end what a full disk cost.
    """
    from qmpsh.events import JsonLinesWriter

    outputs: list[Any] = []
    if args.events == "":
        raise InputError("--events= needs a file name (a bare --events writes to stderr)")
    if args.events:
        target = sys.stderr if args.events == "-" else args.events
        writer = stack.enter_context(JsonLinesWriter(target))
        outputs.append(writer)
        flt = session.event_filter
        session.client.add_event_listener(
            lambda event: writer.write(event) if flt is None or flt.matches(event) else None
        )
    for path in {p for p in (args.transcript, args.logfile) if p}:
        from qmpsh.transcript import Transcript  # only when asked: it costs start-up time

        transcript = stack.enter_context(Transcript(path))
        outputs.append(transcript)
        session.client.add_transcript_listener(_redacting(session, transcript.record))
    return outputs


def _output_losses(outputs: list[Any]) -> int:
    """Lines a full disk swallowed were said at once; the exit status says it again."""
    losses = [loss for loss in (o.loss() for o in outputs) if loss]
    for loss in losses:
        _report(loss)
    return EXIT_COMMAND_ERROR if losses else EXIT_OK


def _run_script(args: argparse.Namespace, session: Any) -> int:
    from qmpsh.script import run_lines

    if args.command:
        return run_lines(session, args.command, numbered=len(args.command) > 1)
    if args.file:
        try:
            fh = open(args.file, "rb")  # noqa: SIM115  (closed below)
        except OSError as exc:
            raise InputError(f"cannot read {args.file}: {exc.strerror}") from None
        # Only open() is guarded: an EPIPE from printing (`| head`) is not a read error.
        with fh:
            return run_lines(session, utf8_lines(fh, args.file), numbered=True)
    return run_lines(session, utf8_lines(sys.stdin.buffer, "standard input"), numbered=True)


def utf8_lines(stream: Iterable[bytes], name: str) -> Iterator[str]:
    """The lines of a script, strictly UTF-8: the same rule for -f and standard input.

    Python reads a pipe with ``surrogateescape`` under some locales, so a stray byte
    used to travel to QEMU as ``\\udcff``.  A line that is not UTF-8 stops the script
    with an input error naming it; nothing after it is sent.
    """
    for number, raw in enumerate(stream, start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{name} is not UTF-8 text: byte 0x{raw[exc.start]:02x} ({exc.reason})",
                column=len(raw[: exc.start].decode("utf-8", "replace")) + 1,
                line=number,
            ) from None


def _run_interactive(args: argparse.Namespace, session: Any, config: Config) -> int:
    from qmpsh.ui import run_interactive

    status: int = run_interactive(session, args, config)
    return status


def _wait_event(args: argparse.Namespace, session: Any) -> int:
    """Wait for EVENT, narrowed by --events-filter's ``!NAME`` and ``field=value`` terms.

    The filter's name globs are left out: in ``wait`` they would widen the names
    accepted (``VNC_INITIALIZED VNC_*`` would take VNC_CONNECTED) instead of narrowing.
    """
    import shlex

    from qmpsh.events import EventFilter

    words = [args.wait_event]
    if args.events_filter:
        flt = EventFilter.parse(args.events_filter)
        words += [f"!{glob}" for glob in flt.exclude]
        # Unquoted: `wait` takes shell words and quotes each value again itself.
        words += [_raw_term(p.path, p.negated, p.pattern) for p in flt.predicates]
    words.append(f"timeout={args.timeout}")
    status: int = session.run_line("wait " + " ".join(map(shlex.quote, words)))
    return status


def _raw_term(path: tuple[str, ...], negated: bool, pattern: str) -> str:
    return f"{'.'.join(path)}{'!=' if negated else '='}{pattern}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
