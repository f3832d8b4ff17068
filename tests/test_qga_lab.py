"""The guest-agent lab is safe: qemu-ga runs on the host, so nothing but reads may pass."""

from __future__ import annotations

from qga_lab import ALLOWED, QemuGa

HOST_TOUCHING = (
    "guest-shutdown",
    "guest-exec",
    "guest-file-open",
    "guest-set-time",
    "guest-fsfreeze-freeze",
    "guest-suspend-ram",
    "guest-set-user-password",
)


def test_host_touching_rpcs_are_refused_and_reads_pass() -> None:
    with QemuGa() as ga:
        for rpc in HOST_TOUCHING:
            reply = ga.call({"execute": rpc})
            assert reply["error"]["class"] == "CommandNotFound", rpc  # type: ignore[index]
        assert ga.call({"execute": "guest-ping"}) == {"return": {}}
        info = ga.call({"execute": "guest-info"})["return"]
        enabled = {c["name"] for c in info["supported_commands"] if c["enabled"]}  # type: ignore[index]
        assert enabled == set(ALLOWED) & {c["name"] for c in info["supported_commands"]}  # type: ignore[index]
        assert len(info["supported_commands"]) > len(enabled)  # type: ignore[index]
