"""A real OpenSSH server on 127.0.0.1 for the ssh tests, started and stopped by PID.

``SshdLab`` makes a private directory with a host key, a client key authorised for the
current user (root in CI), an ``sshd_config`` and an ssh client config, then runs
``sshd -D`` (foreground, so we hold its PID) on a free loopback port.  qmpsh is pointed
at the client config through ``QMPSH_SSH="ssh -F FILE"``: OpenSSH reads the passwd
home's ``~/.ssh``, not ``$HOME``'s, so without ``-F`` the tests would use (and depend
on) the user's real config.

sshd writes its log to a file here (``-E``), at VERBOSE: the tests read it to prove
that a connection really went through (or was refused by) this server.  Sessions get
``XDG_RUNTIME_DIR`` pointing into the lab (``SetEnv``), so ``--list-sockets ssh://``
has a remote directory the tests fill.  When the lab cannot be set up (no sshd, no
ssh-keygen), a test fails: there are no skips.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from qemu import free_port

SSHD = "/usr/sbin/sshd"
START_TIMEOUT = 20.0
SERVER_CONFIG = """\
ListenAddress 127.0.0.1
HostKey {dir}/host_key
PidFile {dir}/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile {dir}/authorized_keys
StrictModes no
AllowStreamLocalForwarding yes
X11Forwarding no
LogLevel VERBOSE
SetEnv XDG_RUNTIME_DIR={dir}/run
"""
CLIENT_CONFIG = """\
Host *
  Port {port}
  User {user}
  IdentityFile {key}
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile {dir}/known_hosts
  GlobalKnownHostsFile /dev/null
  BatchMode yes
  ControlMaster no
"""


class SshdLab:
    """One sshd with its keys and configs in a temp dir; ``stop()`` kills it by PID."""

    def __init__(self) -> None:
        for tool in (SSHD, "ssh", "ssh-keygen"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} not found: install openssh-server openssh-client")
        self.dir = Path(tempfile.mkdtemp(prefix="qmpsh-sshd-"))
        self.port = free_port()
        self.log_path = self.dir / "sshd.log"
        self.runtime_dir = self.dir / "run"  # the remote sessions' $XDG_RUNTIME_DIR
        self.runtime_dir.mkdir(mode=0o700)
        self.client_key = self.dir / "client_key"
        self.wrong_key = self.dir / "wrong_key"
        self.proc: subprocess.Popen[bytes] | None = None
        try:
            self._make_keys()
            self.config = self._write(self.dir / "sshd_config", SERVER_CONFIG)
            self.client_config = self.client_config_with(self.client_key)
            self._start()
        except BaseException:
            self.stop()
            raise

    def _make_keys(self) -> None:
        for key in (self.dir / "host_key", self.client_key, self.wrong_key):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                check=True,
                stdin=subprocess.DEVNULL,
            )
        shutil.copy(self.client_key.with_suffix(".pub"), self.dir / "authorized_keys")

    def _write(self, path: Path, template: str, **fields: object) -> Path:
        user = pwd.getpwuid(os.getuid()).pw_name  # root here; sshd also runs as anyone else
        path.write_text(template.format(dir=self.dir, port=self.port, user=user, **fields))
        return path

    def client_config_with(self, key: Path, name: str = "ssh_config") -> Path:
        """An ssh client config for this server that offers ``key`` (the wrong one, say)."""
        return self._write(self.dir / name, CLIENT_CONFIG, key=key)

    def ssh_env(self, config: Path | None = None) -> dict[str, str]:
        """The environment entries that point qmpsh's ssh at this lab."""
        chosen = self.client_config if config is None else config
        return {"QMPSH_SSH": f"ssh -F {shlex.quote(str(chosen))}"}

    def _start(self) -> None:
        if os.geteuid() == 0:  # as root, sshd refuses to start without its privsep dir
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-f", str(self.config), "-p", str(self.port), "-E", str(self.log_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while "Server listening" not in self.log():
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited early ({self.proc.returncode}): {self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start listening: {self.log()}")
            time.sleep(0.02)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # by PID: the listener; its session children go with it
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SshdLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
