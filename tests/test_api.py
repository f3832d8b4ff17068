"""qmpsh as a library, against a real QEMU: the README's example and each method.

A second, independent monitor (``RawMonitor``) makes events and checks state, so
what the library reports is compared with what QEMU did, not with itself.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from libvirt_lab import LibvirtLab
from qemu import Qemu, RawMonitor
from qga_lab import QemuGa
from sshd_lab import SshdLab
from test_ssh import gone, ssh_children

import qmpsh

README = Path(__file__).parent.parent / "README.md"
PC = ("-machine", "pc", "-display", "none", "-nodefaults")
USB = ("-device", "qemu-xhci,id=usb")  # USB devices unplug without a guest's help


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The schema cache goes to a temp dir, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture(scope="module")
def pc() -> Iterator[Qemu]:
    with Qemu(USB, machine=PC) as q:
        yield q


def readme_example() -> str:
    text = README.read_text()
    section = text[text.index("## qmpsh as a library") :]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    return block.group(1)


def test_readme_example_runs(
    qemu_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # QEMU starts here: the example's x.qcow2 is relative
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "x.qcow2", "1M"], check=True)
    q = qemu_factory(*USB, machine=PC)
    (tmp_path / "qmp.sock").symlink_to(q.socket)
    exec(compile(readme_example(), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "DEVICE_DELETED {'device': 'k1'" in printed
    with RawMonitor(q.socket) as mon:
        nodes = mon.execute("query-named-block-nodes")
    assert any(n["node-name"] == "d0" and n["drv"] == "qcow2" for n in nodes)


def test_execute_returns_the_return_value_and_knows_the_server(pc: Qemu) -> None:
    with qmpsh.connect(pc.socket) as vm:
        assert vm.execute("query-status")["status"] == "running"
        assert vm.version[0] >= 7
        assert vm.greeting["QMP"]["version"]["qemu"]["major"] == vm.version[0]
        assert vm.schema is not None and vm.schema.command("device_add") is not None
        assert vm.run("query-name") == {}
        assert "VM status: running" in vm.run("hmp info status")


def test_keywords_are_typed_by_the_schema(pc: Qemu, tmp_path: Path) -> None:
    image = tmp_path / "y.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "1M"], check=True)
    with qmpsh.connect(pc.socket) as vm:
        sent: list[dict[str, Any]] = []
        vm.monitor.add_transcript_listener(lambda d, m: sent.append(m) if d == "out" else None)
        # node_name is node-name; a dotted key nests; the mapping keeps QMP's names.
        vm.execute("blockdev-add", {"driver": "qcow2"}, node_name="y0", **{"file.driver": "file"},
                   **{"file.filename": str(image)})  # fmt: skip
        assert sent[-1]["arguments"]["node-name"] == "y0"
        assert sent[-1]["arguments"]["file"] == {"driver": "file", "filename": str(image)}
        # id is a str member: 123 goes as "123", which QEMU refuses as an identifier.
        with pytest.raises(qmpsh.CommandError, match="identifier"):
            vm.execute("device_add", driver="usb-kbd", id=123)
        assert sent[-1]["arguments"]["id"] == "123"
        vm.execute("blockdev-del", node_name="y0")


def test_bad_input_raises_before_anything_is_sent(pc: Qemu) -> None:
    with qmpsh.connect(pc.socket) as vm:
        sent: list[dict[str, Any]] = []
        vm.monitor.add_transcript_listener(lambda d, m: sent.append(m) if d == "out" else None)
        vm.schema  # noqa: B018 - loaded before counting
        before = len(sent)
        with pytest.raises(qmpsh.InputError, match="unknown argument 'bogus'"):
            vm.execute("blockdev-del", node_name="x", bogus=1)
        with pytest.raises(qmpsh.InputError, match="unknown command"):
            vm.execute("query-statuz")
        with pytest.raises(qmpsh.InputError):
            vm.run("query-status x=")
        with pytest.raises(qmpsh.InputError, match="is not an int"):
            vm.run("block_resize node-name=a size=big")
        assert len(sent) == before
        assert issubclass(qmpsh.InputError, qmpsh.QmpshError)


def test_command_errors_carry_class_and_desc(pc: Qemu) -> None:
    with qmpsh.connect(pc.socket) as vm:
        with pytest.raises(qmpsh.CommandError) as caught:
            vm.execute("blockdev-del", node_name="nowhere")
        assert caught.value.error_class == "GenericError"
        assert "nowhere" in caught.value.desc
        assert caught.value.exit_code == 1
        reply = vm.execute_message({"execute": "blockdev-del", "arguments": {"node-name": "n"}})
        assert reply["error"]["class"] == "GenericError"  # raw: the reply, not an exception


def test_wait_finds_an_event_that_beat_the_reply_and_times_out(pc: Qemu) -> None:
    with qmpsh.connect(pc.socket) as vm:
        vm.execute("device_add", driver="usb-kbd", id="k2")
        vm.execute("device_del", id="k2")
        event = vm.wait("DEVICE_DELETED", timeout=10, device="k2")
        assert event["data"]["path"] == "/machine/peripheral/k2"
        with pytest.raises(qmpsh.EventTimeout):
            vm.wait("DEVICE_DELETED", timeout=0.2, device="k2")  # that one was taken


def test_a_thousand_events_all_arrive_in_order(pc: Qemu) -> None:
    with qmpsh.connect(pc.socket) as vm:
        for _ in range(500):  # QEMU sends each STOP and RESUME before its command's reply
            vm.execute("stop")
            vm.execute("cont")
        seen = []
        for event in vm.events(timeout=30):
            seen.append(event["event"])
            if len(seen) == 1000:
                break
        assert seen == ["STOP", "RESUME"] * 500
        assert list(vm.events(timeout=0)) == []


def test_beyond_capacity_the_loss_is_reported_then_reading_goes_on(pc: Qemu) -> None:
    with qmpsh.connect(pc.socket, event_capacity=10) as vm:
        for _ in range(15):  # each event is filed before its command's reply
            vm.execute("stop")
            vm.execute("cont")
        with pytest.raises(qmpsh.EventsLost) as caught:
            list(vm.events(timeout=0))
        assert caught.value.lost == 20
        assert len(list(vm.events(timeout=0))) == 10
        vm.clear_events()
        assert list(vm.events(timeout=0)) == []


def test_a_dead_qemu_is_a_disconnect(qemu_factory: Any) -> None:
    q = qemu_factory()
    with qmpsh.connect(q.socket) as vm:
        q.kill()
        with pytest.raises(qmpsh.DisconnectedError):
            list(vm.events(timeout=None))
        with pytest.raises(qmpsh.DisconnectedError):
            vm.execute("query-status")


def test_connect_failure_is_a_connect_error(tmp_path: Path) -> None:
    with pytest.raises(qmpsh.ConnectError) as caught:
        qmpsh.connect(str(tmp_path / "none.sock"), timeout=2)
    assert caught.value.exit_code == 3


def test_a_script_pulls_in_no_terminal_library(pc: Qemu, tmp_path: Path) -> None:
    code = (
        "import sys, qmpsh\n"
        f"with qmpsh.connect({pc.socket!r}) as vm:\n"
        "    vm.run('query-status'); vm.execute('query-name', **{}); vm.schema\n"
        "    vm.execute('qom-list', path='/machine'); list(vm.events(timeout=0))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('rich', 'prompt_toolkit'))))"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"


def test_every_public_name_is_documented() -> None:
    for name in qmpsh.__all__:
        assert getattr(qmpsh, name).__doc__, name
    assert (Path(qmpsh.__file__).parent / "py.typed").exists()


def test_an_argumentless_command_is_checked_when_the_reply_is_an_error(pc: Qemu) -> None:
    with qmpsh.connect(pc.socket) as vm:  # no schema loaded yet: sent as it is
        with pytest.raises(qmpsh.InputError, match="unknown command 'query-statuz'"):
            vm.execute("query-statuz")
        with pytest.raises(qmpsh.InputError, match="needs argument 'node-name'"):
            vm.execute("blockdev-del")


def test_run_refuses_shell_commands_and_empty_lines(pc: Qemu) -> None:
    with qmpsh.connect(pc.socket) as vm:
        with pytest.raises(qmpsh.InputError, match="nothing to run"):
            vm.run("   ")
        assert vm.run('{"execute": "query-status"}')["running"] is True
        actions = "transaction( block-dirty-bitmap-add node=nowhere name=b )"
        with pytest.raises(qmpsh.CommandError):
            vm.run(actions)


def test_an_ssh_address_works_and_close_stops_its_forward(
    pc: Qemu, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SshdLab() as lab:
        for name, value in lab.ssh_env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("TMPDIR", str(tmp_path))
        with qmpsh.connect(f"ssh://127.0.0.1{pc.socket}") as vm:
            assert vm.execute("query-status")["status"] == "running"
            (forward,) = ssh_children(os.getpid())
        assert gone(forward)
        assert "Accepted publickey" in lab.log()


def test_a_stalled_qemu_is_a_command_timeout_and_the_vm_goes_on(qemu_factory: Any) -> None:
    q = qemu_factory()
    with qmpsh.connect(q.socket) as vm:
        vm.timeout = 0.5
        q.kill(signal.SIGSTOP)
        try:
            with pytest.raises(qmpsh.CommandTimeout):
                vm.execute("query-status")
        finally:
            q.kill(signal.SIGCONT)
        vm.timeout = 30
        assert vm.execute("query-status")["status"] == "running"


def test_a_libvirt_domain_is_an_address_too() -> None:
    lab = LibvirtLab()
    try:
        lab.start()
        name = lab.create_domain("lib")
        told: list[str] = []
        with qmpsh.connect(f"libvirt:{name}", notify=told.append) as vm:
            assert vm.execute("query-name") == {"name": name}
            assert vm.run("query-status")["status"] == "running"
            with pytest.raises(qmpsh.CommandError):
                vm.execute("blockdev-del", node_name="nowhere")
        assert any("taint" in line for line in told)
    finally:
        lab.stop()


def test_the_guest_agent_speaks_through_the_same_api() -> None:
    with QemuGa() as ga, qmpsh.connect(f"qga:{ga.socket_path}") as vm:
        assert vm.execute("guest-ping") == {}
        assert "supported_commands" in vm.execute("guest-info")
        assert vm.schema is None  # no schema: values go as given
        with pytest.raises(qmpsh.CommandError) as caught:
            vm.execute("guest-shutdown", mode="powerdown")  # blocked by the lab
        assert caught.value.error_class == "CommandNotFound"
        with pytest.raises(qmpsh.InputError, match="no events"):
            vm.wait("SHUTDOWN", timeout=1)


def test_run_passes_the_file_a_getfd_names(pc: Qemu, tmp_path: Path) -> None:
    """``file=`` is qmpsh's in the library too: the descriptor goes, QEMU can close it."""
    image = tmp_path / "passed.raw"
    image.write_bytes(b"\0" * 4096)
    with qmpsh.connect(pc.socket) as vm:
        assert vm.run(f"getfd fdname=lib0 file={image}") == {}
        assert vm.run("closefd fdname=lib0") == {}  # only a descriptor that arrived closes
        with pytest.raises(qmpsh.CommandError, match="not found"):
            vm.run("closefd fdname=lib0")
