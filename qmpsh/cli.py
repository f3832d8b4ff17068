"""Command line: choose the mode, wire the session together, map failures to exit codes.

Only the standard library and qmpsh's pure modules are imported here, so a piped
script or ``-c`` call starts fast; the interactive shell (prompt_toolkit) and rich
are imported only when they are about to be used.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO, cast

from qmpsh.errors import (
    EXIT_COMMAND_ERROR,
    EXIT_CONNECTION,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    EventTimeout,
    InputError,
    QmpshError,
)
from qmpsh.options import build_parser, split_qemu_args
from qmpsh.startup import pause_collection, resume_collection

if TYPE_CHECKING:
    from qmpsh.commands import Registry
    from qmpsh.config import Config
    from qmpsh.events import EventFilter
    from qmpsh.session import Output, Session
    from qmpsh.settings import Format, Settings, ShellOptions
    from qmpsh.target_commands import Opener
    from qmpsh.targets import Targets


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qmpsh`` command; returns the process exit code."""
    if argv is None:  # the process is ours: no collection until the first draw or script
        pause_collection()
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
    args.addresses = list(args.address)  # several: a fan-out (or a shell on all of them)
    args.address = args.addresses[0] if len(args.addresses) == 1 else None
    if len(args.addresses) > 1 and (args.list_sockets or args.launch):
        parser.error("--list-sockets and --launch take at most one address")
    if qemu_args and not args.launch:
        parser.error("arguments after -- are for QEMU and need --launch")
    _install_signal_handlers()
    try:
        _check_numbers(args)
        if args.completions or args.list_sockets:
            return _print_and_exit(args)
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

    return print_sockets(args.address, timeout=args.timeout)  # ssh://HOST: the remote's


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
    if scripted:
        resume_collection()  # only the interactive shell waits for its first draw
    if _several(args.addresses):
        return _run_many(args, _expand_targets(args.addresses, args.timeout), scripted)
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
    from qmpsh.known_names import check_event_filter
    from qmpsh.monitor import connect, forward_of

    config = _load_config(args)
    event_filter = _event_filter(args, config)
    targets, commands = None, None
    if not scripted:
        targets, commands, _ = _shell_targets(args, config, event_filter)
    session = _open_session(args, config, event_filter, address_text, _warn, commands=commands)
    client = session.client
    with contextlib.ExitStack() as stack:
        outputs = _wire_outputs(args, session, stack)
        forward = forward_of(client)
        if forward is not None:  # an ssh forward is stopped when the run ends, however it ends
            stack.callback(forward.close)
        connect(client, wait=args.wait, negotiate=not args.skip_negotiation)
        if args.events_filter:  # its event names can only be checked once connected
            check_event_filter(session.event_filter, session.schema)
        stack.callback(lambda: session.client.close())  # the client `reconnect` made, if any
        if targets is None:
            status = _run_script(args, session)
        else:
            stack.callback(targets.close)  # the ones `connect` added, and their ssh forwards
            _add_targets(targets, [session], outputs, tag_first=False)
            status = _run_interactive(targets, _shell_options(args, config))
        if args.wait_event:
            status = max(status, _wait_event(args, session))
        return max(status, _output_losses(outputs))


def _open_session(
    args: argparse.Namespace,
    config: Config,
    event_filter: EventFilter | None,
    address_text: str,
    notify: Callable[[str], None],
    output: Output | None = None,
    *,
    commands: Registry | None = None,
) -> Session:
    """A session on ``address_text``, not yet connected; ``notify`` hears the warnings."""
    from qmpsh.events import EventLog
    from qmpsh.monitor import open_monitor
    from qmpsh.session import Session

    client = open_monitor(
        address_text,
        timeout=args.timeout,
        notify=None if args.quiet else notify,  # libvirt's taint, said once
        guest_agent=args.ga,
        sniff=args.skip_negotiation,  # -N: qmp-shell's way to reach qemu-ga too
        wait=args.wait,
    )
    warning = remote_warning(client.address, quiet=args.quiet)
    if warning:
        notify(warning)
    session = Session(
        client,
        _settings(args, config),
        output,
        event_log=EventLog(config.events_capacity),
        commands=commands,
    )
    session.event_filter = event_filter
    return session


def _several(addresses: Sequence[str]) -> bool:
    """Several targets (or ``libvirt:*``, however many it finds): output names each one."""
    from qmpsh.libvirt_address import is_libvirt_address, parse_libvirt_address

    if len(addresses) > 1:
        return True
    return any(is_libvirt_address(t) and parse_libvirt_address(t).is_wildcard for t in addresses)


def _expand_targets(addresses: Sequence[str], timeout: float) -> list[str]:
    """The targets' names as given, ``libvirt:*[@URI]`` replaced by its running domains.

    A target named twice (also through a wildcard) runs once; a wildcard that finds
    no running domain is an error, not a silent success on nothing.
    """
    from qmpsh.errors import ConnectError
    from qmpsh.libvirt_address import is_libvirt_address, parse_libvirt_address, uri_for

    names: list[str] = []
    for text in addresses:
        if is_libvirt_address(text) and parse_libvirt_address(text).is_wildcard:
            from qmpsh.libvirt_targets import expand_libvirt_targets

            found = [str(address) for address in expand_libvirt_targets(text, timeout)]
            if not found:
                where = uri_for(parse_libvirt_address(text))
                raise ConnectError(f"{text}: no running libvirt domain at {where}")
        else:
            found = [text]
        names += [name for name in found if name not in names]
    return names


def _run_many(args: argparse.Namespace, names: list[str], scripted: bool) -> int:
    """Several targets: the script on all of them at once, or a shell with all connected."""
    if not scripted:
        return _shell_on_all(args, names)
    from qmpsh.fanout import FanOut, renderer_factory
    from qmpsh.monitor import connect, forward_of
    from qmpsh.render import layout_width
    from qmpsh.script import run_lines
    from qmpsh.targets import worst

    config = _load_config(args)
    event_filter = _event_filter(args, config)
    settings = _settings(args, config)  # each target gets its own copy: `format` changes it
    if args.vminfo and settings.fmt == "pretty":
        return _vminfo_table(args, names, config, event_filter, settings.color)
    numbered = not (len(args.command) == 1 and not args.file)
    with contextlib.ExitStack() as stack:
        writers = _open_outputs(args, stack)
        fan = FanOut(names, settings.fmt, color=settings.color, width=layout_width(sys.stdout))
        forwards: list[Any] = []  # stopped here too: Ctrl-C leaves the targets' threads behind
        stack.callback(lambda: [forward.close() for forward in list(forwards)])

        def work(name: str, output: Output, lines: Iterable[str]) -> int:
            def notify(message: str) -> None:
                output.err.write(message + "\n")

            session = _open_session(args, config, event_filter, name, notify, output)
            session.make_renderer = renderer_factory(name)
            with contextlib.ExitStack() as own:
                forward = forward_of(session.client)
                if forward is not None:
                    forwards.append(forward)
                    own.callback(forward.close)
                _attach_outputs(session, writers, target=name)
                connect(session.client, wait=args.wait, negotiate=not args.skip_negotiation)
                own.callback(lambda: session.client.close())
                status = run_lines(session, lines, numbered=numbered)
                if args.wait_event:
                    status = worst([status, _wait_event(args, session)])
                return status

        status = fan.run(work, _script_lines(args, stack))
        return worst([status, _output_losses(writers)])


def _vminfo_table(
    args: argparse.Namespace,
    names: list[str],
    config: Config,
    event_filter: EventFilter | None,
    color: bool,
) -> int:
    """``--vminfo`` on several targets at a terminal: one table row per VM, gathered in
    parallel; a target that cannot be reached is one tagged line on stderr."""
    from concurrent.futures import ThreadPoolExecutor

    from qmpsh.monitor import connect, forward_of
    from qmpsh.render import layout_width
    from qmpsh.targets import worst
    from qmpsh.vminfo import format_rows, gather, summary_row

    def one(name: str) -> tuple[dict[str, str] | None, int]:
        session = _open_session(args, config, event_filter, name, lambda message: None)
        forward = forward_of(session.client)
        try:
            connect(session.client, wait=args.wait, negotiate=not args.skip_negotiation)
            return summary_row(gather(session.client, args.timeout)), EXIT_OK
        except QmpshError as exc:
            _report(f"{name}: {exc}")
            return None, exc.exit_code
        finally:
            session.client.close()
            if forward is not None:
                forward.close()

    with ThreadPoolExecutor(max_workers=min(32, len(names))) as pool:
        results = list(pool.map(one, names))
    rows = [(name, row) for name, (row, _) in zip(names, results, strict=True) if row is not None]
    if rows:
        sys.stdout.write(format_rows(rows, layout_width(sys.stdout), color=color))
    return worst([status for _, status in results])


def _shell_targets(
    args: argparse.Namespace, config: Config, event_filter: EventFilter | None
) -> tuple[Targets, Registry, Opener]:
    """The interactive shell's targets (none yet), the registry its sessions share, and
    how ``connect`` opens one.

    ``connect ADDRESS`` opens a session as the command line opened the first one:
    the same flags, config and filter, and the same registry.
    """
    from qmpsh.monitor import connect
    from qmpsh.target_commands import shell_registry
    from qmpsh.targets import Targets, close_session

    targets = Targets()

    def open_target(address: str, notify: Callable[[str], None]) -> Session:
        session = _open_session(args, config, event_filter, address, notify, commands=registry)
        try:
            connect(session.client, negotiate=not args.skip_negotiation)
        except BaseException:
            close_session(session)
            raise
        return session

    registry = shell_registry(targets, open_target)
    return targets, registry, open_target


def _add_targets(
    targets: Targets, sessions: list[Session], writers: list[Any], *, tag_first: bool
) -> None:
    """Name the sessions (the VM's name, else ``vm``) and add them, the first current.

    --events and transcripts get every target's lines, tagged with its name; the first
    target of a shell started on one address stays untagged, as it always was.
    """
    from qmpsh.target_commands import default_name

    first = sessions[0]
    for session in sessions:
        targets.add(targets.name_for(default_name(session)), session)
    targets.watch(
        lambda name, session: (
            None
            if session is first and not tag_first
            else _attach_outputs(session, writers, target=name)
        )
    )


def _shell_on_all(args: argparse.Namespace, names: list[str]) -> int:
    """``qmpsh T1 T2`` at a terminal: the shell with every target connected (in parallel)."""
    import threading

    from qmpsh.targets import worst

    config = _load_config(args)
    targets, _, opener = _shell_targets(args, config, _event_filter(args, config))
    found: list[Session | QmpshError | None] = [None] * len(names)

    def open_one(number: int) -> None:
        try:
            found[number] = opener(names[number], _warn)
        except QmpshError as exc:
            found[number] = exc

    threads = [threading.Thread(target=open_one, args=(n,), daemon=True) for n in range(len(names))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with contextlib.ExitStack() as stack:
        stack.callback(targets.close)
        for result in found:
            if isinstance(result, QmpshError):
                _report(str(result))
        sessions = [r for r in found if r is not None and not isinstance(r, QmpshError)]
        if not sessions:
            return EXIT_CONNECTION
        writers = _open_outputs(args, stack)
        _add_targets(targets, sessions, writers, tag_first=True)
        status = _run_interactive(targets, _shell_options(args, config))
        return worst([status, EXIT_CONNECTION if len(sessions) < len(names) else EXIT_OK])


def _load_config(args: argparse.Namespace) -> Config:
    """Read the config file once, for every mode (``_settings`` and friends fold it in)."""
    from qmpsh.config import load_config

    path: str | None = args.config or None  # a str: pathlib would cost every -c call ~2 ms
    if path is not None and not os.path.exists(path):
        raise InputError(f"config file not found: {path}")
    quiet = args.quiet
    return load_config(path, warn=lambda message: None if quiet else _warn(message))


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def _event_filter(args: argparse.Namespace, config: Config) -> EventFilter | None:
    """--events-filter, else the config's; a bad one in the config costs a warning only."""
    from qmpsh.events import EventFilter

    if args.events_filter:
        return EventFilter.parse(args.events_filter)
    if not config.events_filter:
        return None
    try:
        return EventFilter.parse(config.events_filter)
    except InputError as exc:
        if not args.quiet:
            _warn(f"qmpsh: warning: config events.filter: {exc}")
        return None


def remote_warning(address: object, *, quiet: bool) -> str | None:
    """The warning for a TCP address off this host: anyone who can reach it owns the VM."""
    from qmpsh.address import TcpAddress

    if quiet or not isinstance(address, TcpAddress) or address.is_loopback:
        return None
    return f"qmpsh: warning: {address} is not loopback; QMP has no authentication"


def _redacting(
    session: Session, record: Callable[[str, dict[str, Any]], None]
) -> Callable[[str, dict[str, Any]], None]:
    """A transcript listener that masks secrets by the session's schema, once it has one."""

    def listener(direction: str, message: dict[str, Any]) -> None:
        record(direction, session.redact(message) if direction == "out" else message)

    return listener


def _settings(args: argparse.Namespace, config: Config) -> Settings:
    """How requests run: each flag, else the config file, else the default; decided here only."""
    from qmpsh.session import Settings

    fmt: Format = args.format or ("pretty" if args.pretty else None) or _config_format(config)
    return Settings(
        fmt=fmt,
        validate=not args.no_validate,
        verbose=args.verbose,
        hmp_mode=args.hmp,
        exit_on_error=args.exit_on_error,
        confirm=config.confirm and not args.yes,
        timeout=args.timeout,
        color=_want_color(_color_choice(args, config), sys.stdout),
    )


def _config_format(config: Config) -> Format:
    """The config's format, else pretty at a terminal and JSON for programs."""
    from qmpsh.settings import format_named

    fmt = format_named(config.format or "")
    return fmt if fmt is not None else ("pretty" if sys.stdout.isatty() else "json")


def _color_choice(args: argparse.Namespace, config: Config) -> str:
    return str(args.color) if args.color != "auto" else config.color


def _shell_options(args: argparse.Namespace, config: Config) -> ShellOptions:
    """What only the interactive shell uses, folded like ``_settings``."""
    from qmpsh.settings import ShellOptions

    return ShellOptions(
        pane=not args.no_pane and config.events_pane,
        pager=not args.no_pager and config.pager,
        reconnect=args.reconnect or config.reconnect,
        quiet=args.quiet,
        color=_color_choice(args, config),
        history_size=config.history_size,
    )


def _want_color(choice: str, stream: TextIO) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return stream.isatty() and os.environ.get("TERM") != "dumb"


def _wire_outputs(
    args: argparse.Namespace, session: Session, stack: contextlib.ExitStack
) -> list[Any]:
    """--events and --transcript/-l: files get every event, from the reader thread.

    Returns the writers, whose ``loss()`` says at the end what a full disk cost.
    """
    writers = _open_outputs(args, stack)
    _attach_outputs(session, writers)
    return writers


def _open_outputs(args: argparse.Namespace, stack: contextlib.ExitStack) -> list[Any]:
    """The --events writer (first, if any) and the transcripts, open for this run."""
    from qmpsh.events import JsonLinesWriter

    writers: list[Any] = []
    if args.events == "":
        raise InputError("--events= needs a file name (a bare --events writes to stderr)")
    if args.events:
        target = sys.stderr if args.events == "-" else args.events
        writers.append(stack.enter_context(JsonLinesWriter(target)))
    for path in {p for p in (args.transcript, args.logfile) if p}:
        from qmpsh.transcript import Transcript  # only when asked: it costs start-up time

        writers.append(stack.enter_context(Transcript(path)))
    return writers


def _attach_outputs(session: Session, writers: list[Any], target: str | None = None) -> None:
    """Send ``session``'s events and messages to the writers; ``target`` tags each line."""
    from qmpsh.events import JsonLinesWriter

    for writer in writers:
        if isinstance(writer, JsonLinesWriter):
            session.client.add_event_listener(_event_writer(session, writer, target))
        else:
            record = writer.record if target is None else partial(writer.record, target=target)
            session.client.add_transcript_listener(_redacting(session, record))


def _event_writer(
    session: Session, writer: Any, target: str | None
) -> Callable[[dict[str, Any]], None]:
    """The --events listener: the session's filter, then one line, tagged when asked."""
    flt = session.event_filter
    tag: Callable[[dict[str, Any]], dict[str, Any]] = lambda event: event  # noqa: E731
    if target is not None:
        from qmpsh.fanout import tagged

        tag = partial(tagged, target)

    def write(event: dict[str, Any]) -> None:
        if flt is None or flt.matches(event):
            writer.write(tag(event))

    return write


def _script_lines(args: argparse.Namespace, stack: contextlib.ExitStack) -> Iterable[str]:
    """The script's lines, from -c, -f or standard input (opened here, read by the caller)."""
    if args.command:
        return list(args.command)
    if args.file:
        try:
            fh = stack.enter_context(open(args.file, "rb"))  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"cannot read {args.file}: {exc.strerror}") from None
        return utf8_lines(fh, args.file)
    return utf8_lines(sys.stdin.buffer, "standard input")


def _output_losses(outputs: list[Any]) -> int:
    """Lines a full disk swallowed were said at once; the exit status says it again."""
    losses = [loss for loss in (o.loss() for o in outputs) if loss]
    for loss in losses:
        _report(loss)
    return EXIT_COMMAND_ERROR if losses else EXIT_OK


def _run_script(args: argparse.Namespace, session: Session) -> int:
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


def _run_interactive(targets: Targets, options: ShellOptions) -> int:
    """The Application at a terminal; the plain loop (no prompt_toolkit) where TERM=dumb."""
    if os.environ.get("TERM") == "dumb":
        from qmpsh.plain import run_plain
        from qmpsh.targets import CurrentSession

        # Lines go to the current target (`use` switches); only its first one's events show.
        resume_collection()
        return run_plain(cast("Session", CurrentSession(targets)), options)
    from qmpsh.banner import shell_banner, shell_prompt
    from qmpsh.early_prompt import early_prompt, wants_colour

    head = "" if options.quiet else shell_banner(targets)
    prompt = shell_prompt(targets, several=len(targets) > 1)
    with early_prompt(head, prompt, colour=wants_colour(options.color)) as painted:
        from qmpsh.ui import run_interactive  # prompt_toolkit: the slow part of starting

        return run_interactive(targets, options, painted)


def _wait_event(args: argparse.Namespace, session: Session) -> int:
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
