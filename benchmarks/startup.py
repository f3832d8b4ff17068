"""How long until the interactive prompt appears, and until the first reply is on screen.

Each contender runs in a real pseudo-terminal (pexpect, 160x45) against one throwaway
QEMU (``-machine none``), all on the peer venv's interpreter with byte-code compiled,
runs interleaved so the machine's load drifts over all alike:

- raw: a Python process that reads the greeting, negotiates, prints a prompt and
  answers one typed line with the reply: the limit for any Python client;
- raw + prompt_toolkit: the same, its prompt a bare ``PromptSession().prompt()``: the
  limit for any shell built on prompt_toolkit (qmpsh's own Application is no lighter);
- qmp-shell (``qemu.qmp``): the peer;
- qmpsh, warm: the full shell with its schema cache filled by an earlier run;
- qmpsh, cold: the same with an empty cache (``XDG_CACHE_HOME`` fresh each run), so
  ``query-qmp-schema`` is fetched and indexed before completion can work;
- qmpsh TERM=dumb: the plain line loop (no prompt_toolkit), for reference.

"prompt" is from spawning the process to its prompt on the terminal; "first reply" is
from spawning to the reply of ``query-status`` typed as soon as the prompt showed.
qmpsh paints its prompt before prompt_toolkit has loaded and keeps the keys typed at
it (``qmpsh/early_prompt.py``): its "prompt" is when typing can start, and its "first
reply" includes the wait for the Application to take those keys over.
Target (issue 11, item 20): qmpsh's prompt within 2x qmp-shell's, warm cache.

    python benchmarks/startup.py            # 15 runs of each
    python benchmarks/startup.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pexpect
from _common import (
    BASE_MACHINE,
    Qemu,
    compiled_tree_env,
    install_qmpsh_in_peer_venv,
    peer_python,
    peer_qmp_shell,
    peer_version,
)

TIMEOUT = 30.0
RAW_SHELL = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb", buffering=0)
f.readline()
f.write(b'{"execute":"qmp_capabilities"}\n'); f.readline()
line = input("(raw) ")
f.write(json.dumps({"execute": line.strip()}).encode() + b"\n")
print(json.loads(f.readline())["return"])
"""
PT_SHELL = RAW_SHELL.replace(
    'line = input("(raw) ")',
    'from prompt_toolkit import PromptSession\nline = PromptSession().prompt("(raw-pt) ")',
)


@dataclass
class Contender:
    """One client: how to start it, what its prompt and its reply look like."""

    name: str
    argv: Callable[[str], list[str]]
    prompt: str
    reply: str
    env: Callable[[], dict[str, str]] = dict
    prompts: list[float] = field(default_factory=list)
    replies: list[float] = field(default_factory=list)


def measure(c: Contender, sock: str, base_env: dict[str, str]) -> None:
    """One run: spawn, wait for the prompt, type query-status, wait for the reply."""
    argv = c.argv(sock)
    env = base_env | c.env()
    start = time.perf_counter()
    child = pexpect.spawn(
        argv[0], argv[1:], dimensions=(45, 160), env=env, encoding="utf-8", timeout=TIMEOUT
    )
    try:
        child.expect(c.prompt)
        prompt = time.perf_counter() - start
        child.send("query-status\r")
        child.expect(c.reply)
        reply = time.perf_counter() - start
    finally:
        child.close(force=True)  # by its PID: pexpect kills the child it spawned
    c.prompts.append(prompt)
    c.replies.append(reply)


def contenders(py: str, qmpsh: Path, cache: Path) -> list[Contender]:
    def fresh_cache() -> dict[str, str]:
        return {"XDG_CACHE_HOME": tempfile.mkdtemp(prefix="qmpsh-cold-", dir=cache)}

    qmpsh_prompt = r"\(qemu \d+\.\d+\.\d+\) "
    return [
        Contender("raw", lambda s: [py, "-c", RAW_SHELL, s], r"\(raw\) ", "running"),
        Contender(
            "raw + prompt_toolkit", lambda s: [py, "-c", PT_SHELL, s], r"\(raw-pt\)", "running"
        ),
        Contender("qmp-shell", lambda s: [str(peer_qmp_shell()), s], r"\(QEMU\) ", r"running"),
        Contender("qmpsh, warm cache", lambda s: [str(qmpsh), s], qmpsh_prompt, "running"),
        Contender(
            "qmpsh, cold cache", lambda s: [str(qmpsh), s], qmpsh_prompt, "running", fresh_cache
        ),
        Contender(
            "qmpsh TERM=dumb",
            lambda s: [str(qmpsh), s],
            qmpsh_prompt,
            "running",
            lambda: {"TERM": "dumb"},
        ),
    ]


def report(cs: Sequence[Contender]) -> None:
    peer = next(c for c in cs if c.name == "qmp-shell")
    raw = next(c for c in cs if c.name == "raw")
    floor = next(c for c in cs if c.name == "raw + prompt_toolkit")
    header = (
        "client",
        "prompt",
        "vs qmp-shell",
        "vs raw",
        "vs raw + pt",
        "first reply",
        "vs qmp-shell",
    )
    rows = []
    for c in cs:
        p, r = statistics.median(c.prompts), statistics.median(c.replies)
        rows.append(
            (
                c.name,
                f"{p * 1000:.0f} ms",
                f"{p / statistics.median(peer.prompts):.2f}x",
                f"{p / statistics.median(raw.prompts):.2f}x",
                f"{p / statistics.median(floor.prompts):.2f}x",
                f"{r * 1000:.0f} ms",
                f"{r / statistics.median(peer.replies):.2f}x",
            )
        )
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(
            "  ".join(
                cell.rjust(w) if i else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    print("medians; prompt = spawn to prompt on screen, first reply = spawn to the reply of")
    print("query-status typed at the prompt.  ratios are of medians measured in this run.")
    warm = next(c for c in cs if c.name == "qmpsh, warm cache")
    ratio = statistics.median(warm.prompts) / statistics.median(peer.prompts)
    verdict = "MET" if ratio <= 2 else "NOT MET"
    print(f"target: qmpsh prompt (warm cache) <= 2x qmp-shell's: {ratio:.2f}x, {verdict}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each contender")
    args = parser.parse_args(argv)
    qmpsh = install_qmpsh_in_peer_venv()
    py = str(peer_python())
    home = Path(tempfile.mkdtemp(prefix="qmpsh-startup-"))
    base_env = compiled_tree_env() | {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_STATE_HOME": str(home / "state"),
        "TERM": "xterm-256color",
        "PROMPT_TOOLKIT_NO_CPR": "1",  # pexpect does not answer cursor position requests
    }
    for name in [k for k in base_env if k.startswith("QMPSH_") or k in ("NO_COLOR", "COLUMNS")]:
        del base_env[name]
    cs = contenders(py, qmpsh, home)
    try:
        with Qemu(BASE_MACHINE) as qemu:
            print(
                f"QEMU -machine none; qmp-shell from qemu.qmp {peer_version()}; "
                f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs; {args.runs} runs each"
            )
            for c in cs:  # warm-up: byte-code, page cache, and the warm schema cache
                measure(c, qemu.socket, base_env)
                c.prompts.clear()
                c.replies.clear()
            for _ in range(args.runs):
                for c in cs:
                    measure(c, qemu.socket, base_env)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    report(cs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
