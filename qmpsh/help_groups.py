"""The words of ``help``: the overview, and the topics that are not QMP commands.

A connected QEMU 7.2 knows over 200 commands.  Listed by name prefix they scatter
(``stop``, ``cont``, ``quit`` and ``eject`` ended up under "other"), so the overview
groups them by what a user sets out to do, from ``GROUPS``: the one table of name
patterns, first match wins, and whatever no pattern names lands in ``FALLBACK``.
The shell's own words come first, ``info`` and ``hmp`` among them, since they are
what a newcomer reaches for.  ``topic`` answers ``help info``, ``help hmp`` and the
filter syntax of ``help events`` / ``help wait``; the ``info`` shortcuts are asked of
``hmp.INFO_QUERIES``, never copied.
"""

from __future__ import annotations

import fnmatch
import textwrap
from collections.abc import Iterable, Sequence

FALLBACK = "other"

# (group, glob patterns); the first group with a matching pattern wins, so the
# narrow patterns (block-job-*, x-query-virtio*) sit above the broad ones.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "VM lifecycle",
        (
            "stop", "cont", "quit", "system_*", "query-status", "inject-nmi", "set-action",
            "watchdog-set-action", "rtc-reset-reinjection", "x-exit-preconfig", "query-name",
            "query-uuid", "query-current-machine", "query-vm-generation-id",
        ),
    ),
    (
        "block jobs",
        ("block-job-*", "job-*", "query-block-jobs", "query-jobs", "block-commit", "block-stream"),
    ),
    (
        "block devices and media",
        (
            "eject", "blockdev-*", "block-*", "block_*", "drive-*", "change-backing-file",
            "query-block*", "query-named-block-nodes", "x-blockdev-*", "x-debug-block-*",
            "x-debug-query-block-graph", "nbd-server-*", "query-pr-managers", "transaction",
        ),
    ),
    ("snapshots and dumps", ("snapshot-*", "dump-guest-memory", "query-dump*", "dumpdtb")),
    (
        "display and input",
        (
            "query-spice", "query-vnc*", "change-vnc-password", "set_password",
            "expire_password", "display-*", "query-display-options", "screendump", "send-key",
            "input-send-event", "query-mice",
        ),
    ),
    ("network", ("netdev_*", "set_link", "announce-self", "query-rx-filter", "query-rocker*")),
    (
        "devices and memory",
        (
            "device_*", "device-*", "query-pci", "x-query-usb", "x-query-virtio*",
            "query-hotpluggable-cpus", "query-cpus-fast", "query-memory-*", "query-memdev",
            "set-numa-node", "query-acpi-ospm-status", "query-iothreads", "query-tpm*",
            "balloon", "query-balloon", "memsave", "pmemsave", "query-sgx*", "query-sev*",
            "sev-inject-launch-secret",
        ),
    ),
    (
        "migration and replication",
        (
            "migrate*", "query-migrate*", "client_migrate_info", "calc-dirty-rate",
            "query-dirty-rate", "*dirty-limit", "query-colo-status", "x-colo-*", "xen-*",
            "query-xen-*",
        ),
    ),
    (
        "chardevs and file descriptors",
        (
            "chardev-*", "query-chardev*", "ringbuf-*", "add-fd", "remove-fd", "query-fdsets",
            "getfd", "closefd", "add_client",
        ),
    ),
    ("objects (QOM)", ("object-*", "qom-*")),
    (
        "introspection and the monitor",
        (
            "query-qmp-schema", "query-commands", "query-version", "query-target",
            "query-machines", "query-cpu-*", "query-command-line-options", "query-kvm",
            "query-stats*", "qmp_capabilities", "human-monitor-command", "query-yank", "yank",
        ),
    ),
    ("tracing and debugging", ("trace-*", "replay-*", "query-replay", "x-query-*")),
)  # fmt: skip


def group_of(name: str) -> str:
    """The group a QMP command is listed under; ``FALLBACK`` when no pattern names it."""
    for group, patterns in GROUPS:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            return group
    return FALLBACK


def grouped(names: Iterable[str]) -> list[tuple[str, list[str]]]:
    """Commands by group, in ``GROUPS`` order, the fallback last; empty groups left out."""
    by_group: dict[str, list[str]] = {}
    for name in sorted(names):
        by_group.setdefault(group_of(name), []).append(name)
    order = [group for group, _ in GROUPS] + [FALLBACK]
    return [(group, by_group[group]) for group in order if group in by_group]


USAGE_COLUMN = 32

# Words the parser reads itself rather than the command registry; listed with them.
SYNTAX_WORDS: tuple[tuple[str, str], ...] = (
    ("info WHAT", "HMP's `info`, answered from QMP where qmpsh can (`help info`)"),
    ("hmp LINE", "any human-monitor command line, passed through (`help hmp`)"),
    ("NAME?", "the same as `help NAME`"),
    ("oob COMMAND [key=value …]", "send as exec-oob (allow-oob commands only; `help oob`)"),
)


def overview(
    command_names: Iterable[str], shell_commands: Iterable[tuple[str, str]], width: int
) -> str:
    """``help``: the shell's words first, then QMP by group; ``shell_commands`` holds
    (usage, summary) pairs from the command registry."""
    lines = ["qmpsh's own commands:"]
    for usage, summary in [*shell_commands, *SYNTAX_WORDS]:
        if len(usage) <= USAGE_COLUMN:
            lines.append(f"  {usage:<{USAGE_COLUMN}} {summary}")
        else:  # a long usage gets its own line rather than pushing the summary off
            lines += [f"  {usage}", f"  {'':<{USAGE_COLUMN}} {summary}"]
    for group, names in grouped(command_names):
        lines.append(f"QMP, {group}:")
        lines += textwrap.wrap(
            "  ".join(names),
            width,
            initial_indent="  ",
            subsequent_indent="  ",
            break_on_hyphens=False,
        )
    lines.append("`help NAME` or `NAME?` describes a command or an event.")
    return "\n".join(lines)


# The event filter, term by term: (example, what it does).  Each example is parsed by
# a test, so the help cannot drift from ``events.EventFilter``.
FILTER_TERMS: tuple[tuple[str, str], ...] = (
    ("SPICE_CONNECTED", "an event name: show only events of that name"),
    ("SPICE_*", "a glob (* ? [..]), case-insensitive; several names: any may match"),
    ("!JOB_STATUS_CHANGE", "a name or glob after '!': hide those events"),
    ("action=stop", "a data field equal to a value (compared as text; the value may be a glob)"),
    ("action!=stop", "the field differs, or is absent"),
    ("client.host=127.0.0.1", "a dotted path into nested data"),
    ("host=127.0.0.1", "a path not found at the top matches any nested field ending in it"),
    ('reason="No space left on device"', "quote a value holding blanks"),
)


def _filter_lines() -> list[str]:
    width = max(len(term) for term, _ in FILTER_TERMS)
    return [
        "event filters (`events filter`, `wait`, --events-filter, --wait-event, and the",
        "config's [events] filter) are terms separated by blanks; an event passes when it",
        "matches a name term (or there is none), no '!' term, and every field term:",
        *(f"  {term:<{width}}  {meaning}" for term, meaning in FILTER_TERMS),
        "e.g.  events filter BLOCK_* !BLOCK_JOB_READY device=disk0",
        "`events filter` alone shows the filter; `events filter none` clears it",
    ]


def _info_lines(commands: Sequence[str]) -> list[str]:
    from qmpsh.hmp import INFO_QUERIES

    known = set(commands)
    width = max(len(sub) for sub in INFO_QUERIES) + len("info ")
    rows = [
        f"  {'info ' + sub:<{width}}  {query}"
        + ("" if query in known or not known else "  (via HMP here)")
        for sub, query in INFO_QUERIES.items()
    ]
    return [
        "info WHAT: the human monitor's `info`.  These are answered from a QMP query and",
        "printed the way HMP prints them (json and raw formats print the query's reply):",
        *rows,
        "Any other `info WHAT` (and these with options) goes to HMP unchanged; Tab after",
        "`info ` offers every subcommand this QEMU has (`hmp help info` lists them).",
    ]


HMP_LINES = (
    "hmp LINE: run one human-monitor command line through QMP's human-monitor-command",
    "and print its text, e.g. `hmp info mtree`, `hmp x /4x 0`.  Tab completes HMP's",
    "command names.  `qmpsh -H` reads every line as HMP, as qmp-shell -H does; qmpsh's",
    "own commands keep working there.  HMP is for people: its text may change between",
    "QEMU versions, so scripts are better off with the QMP command.",
)


def topic(name: str, commands: Sequence[str] = ()) -> list[str]:
    """Help on a word that is not (only) a QMP command: ``info``, ``hmp``, and the
    filter syntax ``events`` and ``wait`` take; empty for any other word.

    ``commands`` are the connected QEMU's, to mark ``info`` shortcuts it cannot answer.
    """
    if name == "info":
        return _info_lines(commands)
    if name == "hmp":
        return list(HMP_LINES)
    if name in ("events", "wait"):
        return _filter_lines()
    return []
