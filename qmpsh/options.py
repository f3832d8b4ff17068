"""The command line's options and ``--help``: what qmpsh accepts, in groups, and nothing else.

Parsing only: what the options mean at run time is decided in ``cli``.  Only the
standard library is imported, so building the parser costs a ``-c`` call nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from qmpsh import __version__

EPILOG = """\
address:
  PATH or unix:PATH        a QMP unix socket (-qmp unix:PATH,server=on,wait=off)
  HOST:PORT, [::1]:PORT    a QMP TCP socket (-qmp tcp:HOST:PORT,server=on,wait=off)
  libvirt:DOMAIN[@URI]     a libvirt domain, by name or UUID, through libvirt-python
                           (pip install 'qmpsh[libvirt]'); URI default:
                           $LIBVIRT_DEFAULT_URI, else qemu:///system
  ssh://[USER@]HOST[:PORT]/PATH
                           a unix socket on another host, forwarded by your ssh
                           (QMPSH_SSH overrides the ssh command, e.g. "ssh -F FILE")
  qga:ADDRESS, --ga        a qemu-guest-agent socket (guest-sync-delimited handshake,
                           no greeting, no events); -N also detects one: a socket that
                           sends no QMP greeting but answers the sync is a guest agent
  default: $QMPSH_SOCKET, then $QMP_SOCKET

several targets (or libvirt:*[@URI], every running domain there):
  with -c, -f or a pipe, each line runs on every target at once, in line order
  per target; json/raw lines carry "target" ({"target": T, "return": ...}), and
  qmpsh's own errors are {"target": T, "error": {"class": "qmpsh", ...}}; pretty
  output shows one block per target under "==> T <=="; --events lines carry
  "target"; --wait-event waits on each target.  The exit code is the worst of
  all targets: 3 > 4 > 2 > 1 > 0.  At a terminal: a shell with all of them
  connected (connect ADDRESS [as NAME], use NAME, @NAME COMMAND, targets,
  disconnect NAME).

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
  qmpsh ssh://root@vmhost/run/vm1/qmp.sock -c query-status    through your ssh
  qmpsh libvirt:* -c query-status        every running libvirt domain at once
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, sized without importing shutil.

    argparse builds a formatter for every ``add_argument``, and the stock one imports
    shutil (and with it bz2, lzma …) just to ask the terminal's width: ~2 ms of every
    ``-c`` call, for help that is almost never printed.
    """

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=terminal_columns() - 2)  # -2: as argparse does


def terminal_columns() -> int:
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
    """The options, in groups for --help, with qmp-shell's short flags kept for its users."""
    p = argparse.ArgumentParser(
        prog="qmpsh",
        description="An interactive shell for the QEMU Monitor Protocol (QMP).",
        epilog=EPILOG,
        formatter_class=_HelpFormatter,
    )
    _where_options(p.add_argument_group("where to connect"))
    _running_options(p.add_argument_group("running commands"))
    _output_options(p.add_argument_group("output"))
    _event_options(p.add_argument_group("events"))
    _interactive_options(p.add_argument_group("the interactive shell"))
    _other_options(p.add_argument_group("other"))
    return p


def _where_options(g: argparse._ArgumentGroup) -> None:
    """The target: a socket, a libvirt domain, a host over ssh, or a QEMU of our own."""
    g.add_argument(
        "address",
        nargs="*",
        metavar="ADDRESS",
        help="QMP socket: PATH, unix:PATH, HOST:PORT or ssh://HOST/PATH; or libvirt:DOMAIN; "
        "several (or libvirt:*) run each line on all of them at once, output tagged",
    )
    g.add_argument(
        "--launch",
        action="store_true",
        help="start a throwaway demo QEMU (a paused PC with a disk 'disk0' and a CD-ROM "
        "'ide1-cd0', VNC and SPICE on 127.0.0.1) and connect to it; arguments after -- "
        "are passed to QEMU; it is stopped when qmpsh exits",
    )
    g.add_argument(
        "--wait",
        default="0",
        metavar="SECONDS",
        help="keep retrying until the socket accepts connections (libvirt: until the "
        "domain exists and runs)",
    )
    g.add_argument(
        "-N",
        "--skip-negotiation",
        action="store_true",
        help="do not send qmp_capabilities (the server is already negotiated); a socket "
        "that answers guest-sync-delimited instead of greeting is taken for a guest agent",
    )
    g.add_argument(
        "--ga",
        action="store_true",
        help="the address is a qemu-guest-agent socket (same as qga:ADDRESS)",
    )


def _running_options(g: argparse._ArgumentGroup) -> None:
    """What to run and how strictly: one-shot lines, scripts, HMP, checks and confirmations."""
    g.add_argument(
        "-c",
        "--command",
        action="append",
        default=[],
        metavar="LINE",
        help="run LINE and exit (repeatable; visible in ps: keep passwords out of it)",
    )
    g.add_argument("-f", "--file", metavar="FILE", help="run the lines of FILE and exit")
    g.add_argument(
        "--vminfo",
        action="store_true",
        help="print an overview of the VM (machine, CPUs, memory, disks, NICs, SPICE/VNC "
        "clients, chardevs) and exit; the same as -c vminfo",
    )
    g.add_argument(
        "-H", "--hmp", action="store_true", help="every line is a human monitor (HMP) command"
    )
    g.add_argument(
        "--timeout",
        default="30",
        metavar="SECONDS",
        help="how long to wait for a reply or for --wait-event (default 30)",
    )
    g.add_argument(
        "--exit-on-error", action="store_true", help="stop a script at the first failing line"
    )
    g.add_argument(
        "--no-validate",
        action="store_true",
        help="send requests without checking them against the server's schema",
    )
    g.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="do not ask before quit, system_reset, system_powerdown, stop, "
        "guest-shutdown, guest-suspend-*",
    )
    g.add_argument("-v", "--verbose", action="store_true", help="echo each request as sent")


def _output_options(g: argparse._ArgumentGroup) -> None:
    """How replies look, and where a copy of the traffic goes."""
    g.add_argument(
        "--format",
        choices=("pretty", "json", "raw"),
        help="reply format (default: pretty on a terminal, json otherwise); "
        "raw prints whole wire messages, errors included, on stdout",
    )
    g.add_argument("-p", "--pretty", action="store_true", help="same as --format pretty")
    g.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour output (default auto; NO_COLOR is honoured)",
    )
    g.add_argument("-q", "--quiet", action="store_true", help="no banner and no warnings")
    g.add_argument("--no-pager", action="store_true", help="never page long replies")
    g.add_argument(
        "-l",
        "--logfile",
        metavar="FILE",
        help="append every message both ways as JSON lines (same as --transcript)",
    )
    g.add_argument(
        "--transcript",
        metavar="FILE",
        help="append every message both ways and every event as JSON lines",
    )


def _event_options(g: argparse._ArgumentGroup) -> None:
    """Where events go, which ones, and what to wait for."""
    g.add_argument(
        "--events",
        nargs="?",
        const="-",
        metavar="=FILE",
        help="write every event as a JSON line to stderr, or with --events=FILE (the = is "
        "needed) append to FILE",
    )
    g.add_argument(
        "--events-filter",
        metavar="SPEC",
        help="only show events matching SPEC (globs, !NAME, field=value)",
    )
    g.add_argument(
        "--wait-event",
        metavar="EVENT",
        help="after any commands, wait for EVENT (with field=value filters in "
        "--events-filter) and print it; exit 4 on timeout",
    )


def _interactive_options(g: argparse._ArgumentGroup) -> None:
    """Options that only the interactive shell reads."""
    g.add_argument(
        "--no-pane",
        action="store_true",
        help="print events above the prompt instead of in a side pane",
    )
    g.add_argument(
        "--reconnect",
        action="store_true",
        help="when the connection is lost, reconnect on its own "
        "(back-off 0.1 s to 5 s, until Ctrl-C); without it, type `reconnect`",
    )


def _other_options(g: argparse._ArgumentGroup) -> None:
    """Everything that is not about one session: config, completions, discovery."""
    g.add_argument("--version", action="version", version=f"qmpsh {__version__}")
    g.add_argument(
        "--config",
        metavar="PATH",
        help="read defaults from this TOML file (default: $QMPSH_CONFIG, "
        "else $XDG_CONFIG_HOME/qmpsh/config.toml); command-line flags win",
    )
    g.add_argument(
        "--completions",
        choices=("bash", "zsh", "fish"),
        metavar="SHELL",
        help="print the completion script for SHELL (bash, zsh or fish) and exit",
    )
    g.add_argument(
        "--list-sockets",
        action="store_true",
        help="print the unix sockets found in the current directory and $XDG_RUNTIME_DIR, "
        "then the local libvirtd's running domains as libvirt:NAME (with the libvirt "
        "extra; QMPSH_LIBVIRT_LIST=no leaves them out), one per line, and exit; with an address "
        "ssh://[USER@]HOST[:PORT], the sockets on that host (home directory for the current one)",
    )


def split_qemu_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split at the first ``--``: what follows goes to QEMU (``--launch -- -M pc``)."""
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []
