"""Run the whole test suite several times with the CPUs busy, then once as a user whose
environment and config differ from every default: a race or a leak of the user's
settings into a test shows up here, not on someone else's machine.

    python3 benchmarks/stress_tests.py              # 5 runs beside 2 CPU hogs, then the config run
    python3 benchmarks/stress_tests.py --runs 2 --hogs 2

The hogs are ``python3 -c 'while 1: pass'`` processes this script starts and stops by
PID.  The config run gets a fresh HOME and XDG dirs holding a ``config.toml`` that sets
every option to a non-default value, plus hostile variables (``QMPSH_SOCKET``,
``NO_COLOR``, ``COLUMNS``, ``TERM=dumb``, ``PAGER`` …); afterwards nothing but that config
may exist under that HOME, or a test wrote to the user's files.  Exit status 0 only if
every run passed.  This is a proof of robustness, not a benchmark: no time is asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Every option away from its default (see qmpsh/config.py); checked against Config below.
HOSTILE_CONFIG = """\
format = "raw"
color = "always"
pager = false
confirm = false
history_size = 1
reconnect = true

[events]
pane = false
capacity = 1
filter = "STOP"
"""


@contextmanager
def cpu_hogs(count: int) -> Iterator[list[int]]:
    """``count`` busy loops, started here and killed by PID when the block ends."""
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while 1: pass"], stdin=subprocess.DEVNULL)
        for _ in range(count)
    ]
    try:
        yield [hog.pid for hog in hogs]
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def check_config_covers_every_option(path: Path) -> None:
    """A new option the hostile config does not set would make the config run a lie."""
    sys.path.insert(0, str(REPO))
    from qmpsh.config import Config, load_config

    warnings: list[str] = []
    loaded = load_config(path, warn=warnings.append, env={})
    defaults = Config()
    same = [
        f.name
        for f in dataclasses.fields(Config)
        if getattr(loaded, f.name) == getattr(defaults, f.name)
    ]
    if warnings or same:
        raise SystemExit(f"stress config is stale: warnings {warnings}, defaults kept for {same}")


def hostile_env(home: Path) -> dict[str, str]:
    """The user we test for: own config, own sockets, odd terminal settings."""
    config = home / "config" / "qmpsh" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(HOSTILE_CONFIG)
    check_config_covers_every_option(config)
    return dict(
        os.environ,
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_RUNTIME_DIR=str(home / "run"),
        QMPSH_CONFIG=str(config),
        QMPSH_HISTFILE=str(home / "history"),
        QMPSH_SOCKET=str(home / "no-such.sock"),
        QMP_SOCKET=str(home / "no-such.sock"),
        LIBVIRT_DEFAULT_URI="qemu:///nowhere",
        NO_COLOR="1",
        COLUMNS="20",
        LINES="5",
        TERM="dumb",
        PAGER="false",
        LESS="-X",
    )


def leftovers(home: Path) -> list[str]:
    """Files under the hostile HOME other than the config we put there."""
    return sorted(
        str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and p.name != "config.toml"
    )


def run_suite(label: str, env: dict[str, str], pytest_args: list[str], log: Path) -> bool:
    """One full pytest run; prints its summary line and any failures, keeps its output."""
    load = os.getloadavg()[0]
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", *pytest_args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    log.write_text(result.stdout + result.stderr)
    lines = result.stdout.strip().splitlines()
    summary = lines[-1] if lines else result.stderr.strip()[-200:]
    print(f"{label}: exit {result.returncode}, load {load:.1f} at start, "
          f"{time.monotonic() - started:.0f} s: {summary}", flush=True)  # fmt: skip
    for line in lines:
        if line.startswith(("FAILED", "ERROR")):
            print(f"    {line}", flush=True)
    return result.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="suite runs beside the hogs")
    parser.add_argument("--hogs", type=int, default=2, help="busy-loop processes (default 2)")
    parser.add_argument("--no-config-run", action="store_true", help="skip the hostile-user run")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; {args.hogs} hogs", flush=True)
    logs = Path(tempfile.mkdtemp(prefix="qmpsh-stress-logs-"))
    print(f"full pytest output of each run in {logs}", flush=True)
    ok = True
    with cpu_hogs(args.hogs) as pids:
        print(f"hogs: pids {pids}", flush=True)
        for n in range(1, args.runs + 1):
            ok &= run_suite(
                f"run {n}/{args.runs}", dict(os.environ), args.pytest_args, logs / f"run-{n}.log"
            )
        if not args.no_config_run:
            with tempfile.TemporaryDirectory(prefix="qmpsh-stress-home-") as tmp:
                home = Path(tmp)
                ok &= run_suite(
                    "hostile user", hostile_env(home), args.pytest_args, logs / "hostile.log"
                )
                written = leftovers(home)
                if written:
                    print(f"    tests wrote into the user's HOME: {written}", flush=True)
                    ok = False
    print("all runs passed" if ok else "SOME RUNS FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
