"""Completion tables over real ``Document`` objects, against a schema from a real QEMU.

The schema and the live values (node names, device types, chardevs) come from one
QEMU started for this module; nothing here is hand-written QMP.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prompt_toolkit.completion import CompleteEvent, Completion
from prompt_toolkit.document import Document
from qemu import Qemu, RawMonitor

from qmpsh.completer import QmpCompleter, make_completer, rank, signature_hint
from qmpsh.live_values import LiveValues, hmp_command_names
from qmpsh.schema import Schema
from qmpsh.syntax import Syntax
from qmpsh.used_values import UsedValues

EXTRA = (
    "-blockdev",
    "driver=null-co,node-name=nullnode",
    "-chardev",
    "null,id=chr0",
)


@pytest.fixture(scope="module")
def monitor() -> Iterator[RawMonitor]:
    with Qemu(EXTRA) as q, RawMonitor(q.socket) as mon:
        yield mon


@pytest.fixture(scope="module")
def live(monitor: RawMonitor) -> LiveValues:
    def execute(name: str, args: dict[str, Any] | None) -> Any:
        return monitor.execute(name, **(args or {}))

    return LiveValues(execute)


@pytest.fixture(scope="module")
def completer(schema: Schema, live: LiveValues) -> QmpCompleter:
    return QmpCompleter(lambda: schema, live)


def complete(completer: QmpCompleter, text: str, cursor: int | None = None) -> list[Completion]:
    doc = Document(text, len(text) if cursor is None else cursor)
    return list(completer.get_completions(doc, CompleteEvent()))


def texts(found: list[Completion]) -> list[str]:
    return [c.text for c in found]


# (text, cursor, must be present, must be absent, start_position of every completion);
# an empty "present" means nothing at all may be offered.
TABLE: list[tuple[str, int | None, list[str], list[str], int]] = [
    ("query-sp", None, ["query-spice"], ["query-vnc"], -8),
    ("spice", None, ["query-spice"], ["eject"], -5),
    ("", None, ["eject", "query-status", "help", "exit"], [], 0),
    ("eject ", None, ["device=", "id=", "force="], ["eject"], 0),
    ("eject fo", None, ["force="], ["device="], -2),
    ("eject force=", None, ["true", "false", "on", "off", "yes", "no"], ["null"], 0),
    ("eject force=t", None, ["true"], ["false"], -1),
    ("eject id=x ", None, ["force="], ["id="], 0),
    ("blockdev-add driver=qc", None, ["qcow2"], ["raw"], -2),
    ("blockdev-add driver=qcow2 ", None, ["file=", "backing=", "node-name="], ["driver="], 0),
    ("blockdev-add driver=raw ", None, ["file="], ["backing="], 0),
    ("blockdev-add driver=qcow2 file.", None, ["file.driver=", "file.node-name="], [], -5),
    ("blockdev-add driver=qcow2 file.driver=file file.fi", None, ["file.filename="], [], -7),
    ("blockdev-add driver=qcow2 file.driver=", None, ["file", "null-co"], [], 0),
    ("set_password protocol=", None, ["vnc", "spice"], ["true"], 0),
    ("transaction( ", None, ["abort", "drive-backup", "blockdev-snapshot-sync"], ["eject"], 0),
    ("transaction( blockdev-snapshot-sync ", None, ["snapshot-file=", "device="], [], 0),
    ("query-spice", 3, ["query-spice", "query-status"], [], -3),  # cursor mid-word
    ("block-stream device=", None, ["nullnode"], [], 0),
    ("block-stream speed=", None, [], [], 0),  # an int: no name fits
    ("eject device=", None, [], [], 0),  # no removable device here: nothing fits
    ("eject id=", None, [], [], 0),
    ("blockdev-del node-name=nu", None, ["nullnode"], [], -2),
    ("chardev-remove id=", None, ["chr0"], [], 0),
    ("qom-list path=", None, ["/"], [], 0),
    ("qom-list path=/", None, ["/machine", "/chardevs"], [], -1),
    ("qom-list path=/mach", None, ["/machine"], ["/chardevs"], -5),
    ("qom-list path=/machine/", None, ["/machine/unattached"], [], -9),
    ("qom-get path=/machine property=", None, ["type"], [], 0),
    ("device_add driver=e10", None, ["e1000", "e1000e"], ["virtio-net-pci"], -3),
    ("device_add driver=e1000 ", None, ["mac=", "netdev=", "id="], ["driver="], 0),
    ("device_add driver=e1000 mac=x ne", None, ["netdev="], ["mac="], -2),
    ("format ", None, ["pretty", "json", "raw"], [], 0),
    ("help query-sp", None, ["query-spice"], [], -8),
    ("wait BLOCK_JOB_C", None, ["BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"], [], -11),
    ("help eject x", None, [], ["eject"], 0),
    ("help STO", None, ["STOP"], [], -3),
    ("help form", None, ["format"], [], -4),
    ("events ", None, ["filter", "show", "stats", "clear"], [], 0),
    ("events filter ", None, ["STOP", "SPICE_CONNECTED"], ["filter", "show"], 0),
    ("events filter SPICE_", None, ["SPICE_CONNECTED"], ["STOP", "show"], -6),
    ("events filter STOP !SPI", None, ["!SPICE_CONNECTED"], ["STOP"], -4),
    ("events filter stop", None, ["STOP"], [], -4),
    ("events show ", None, [], [], 0),
    ("wait ", None, ["STOP", "RESUME"], ["filter"], 0),
    ("wait STOP ", None, [], [], 0),
    ("eject id='a", None, [], [], 0),
]


@pytest.mark.parametrize(("text", "cursor", "present", "absent", "start"), TABLE)
def test_completion_table(
    completer: QmpCompleter,
    text: str,
    cursor: int | None,
    present: list[str],
    absent: list[str],
    start: int,
) -> None:
    found = complete(completer, text, cursor)
    got = texts(found)
    assert set(present) <= set(got), got[:30]
    assert not set(absent) & set(got)
    assert {c.start_position for c in found} == ({start} if present else set())
    if not present:  # rows without wanted completions expect none at all
        assert got == []


def test_prefix_matches_come_before_substring_matches(completer: QmpCompleter) -> None:
    got = texts(complete(completer, "query-sp"))
    assert got[0] == "query-spice"
    got = texts(complete(completer, "vnc"))
    assert got.index("query-vnc") < len(got)
    assert rank("sp", ["query-spice", "spice-x", "x-sp"]) == ["spice-x", "query-spice", "x-sp"]


def test_dash_and_underscore_are_alike(completer: QmpCompleter) -> None:
    assert "device_add" in texts(complete(completer, "device-ad"))
    assert "query-status" in texts(complete(completer, "query_st"))


def test_required_arguments_come_first(completer: QmpCompleter) -> None:
    got = texts(complete(completer, "block-stream "))
    assert got[0] == "device="
    got = texts(complete(completer, "blockdev-add "))
    assert got[0] == "driver="


def test_eject_offers_device_near_the_top_marked_deprecated(completer: QmpCompleter) -> None:
    found = complete(completer, "eject ")
    assert "device=" in texts(found)[:3]
    meta = {c.text: c.display_meta_text for c in found}
    assert "deprecated" in meta["device="]


def test_command_meta_names_deprecated_and_unstable(completer: QmpCompleter) -> None:
    meta = {c.text: c.display_meta_text for c in complete(completer, "")}
    assert meta["drive-backup"].startswith("deprecated, device sync target")
    assert meta["x-blockdev-change"].startswith("unstable, parent child? node?")


def test_command_meta_says_what_a_command_takes(completer: QmpCompleter) -> None:
    """Item 18: the menu's second column is the arguments at a glance, not ``command``."""
    meta = {c.text: c.display_meta_text for c in complete(completer, "")}
    assert meta["eject"] == "device? id? force?"
    assert meta["query-status"] == "no arguments"
    assert meta["device_add"] == "driver bus? id?"
    assert meta["blockdev-add"].startswith("driver node-name?")
    assert meta["blockdev-add"].endswith("…") and len(meta["blockdev-add"]) <= 40
    assert meta["help"] == "shell: list commands, or describe one"


def test_argument_meta_says_type_and_marks(completer: QmpCompleter) -> None:
    meta = {c.text: c.display_meta_text for c in complete(completer, "block-stream ")}
    assert meta["device="] == "str, required"
    assert meta["speed="] == "int"
    assert meta["on-error="] == "enum"
    meta = {c.text: c.display_meta_text for c in complete(completer, "eject ")}
    assert meta["device="] == "str, deprecated"


def test_info_subcommands_from_hmp_help(completer: QmpCompleter) -> None:
    found = complete(completer, "info sp")
    assert texts(found)[0] == "spice"
    assert {c.start_position for c in found} == {-2}
    assert "block-jobs" in texts(complete(completer, "info bl"))


def test_transaction_action_after_a_comma(completer: QmpCompleter) -> None:
    got = texts(complete(completer, "transaction( abort, blockdev-snap"))
    assert "blockdev-snapshot-sync" in got


def test_hmp_mode_offers_hmp_commands_and_info(schema: Schema, live: LiveValues) -> None:
    hmp = QmpCompleter(lambda: schema, live, syntax=lambda: Syntax(hmp_mode=True))
    assert "stop" in texts(complete(hmp, "sto"))
    assert "query-status" not in texts(complete(hmp, "query-st"))
    assert texts(complete(hmp, "info sp"))[0] == "spice"


def test_refresh_sees_a_new_node(
    completer: QmpCompleter, live: LiveValues, monitor: RawMonitor
) -> None:
    assert "fresh" not in texts(complete(completer, "blockdev-del node-name="))
    monitor.execute("blockdev-add", driver="null-co", **{"node-name": "fresh"})
    live.refresh()
    assert "fresh" in texts(complete(completer, "blockdev-del node-name="))
    monitor.execute("blockdev-del", **{"node-name": "fresh"})
    live.refresh()


def test_unknown_command_offers_no_keys(completer: QmpCompleter) -> None:
    assert complete(completer, "no-such-command ") == []


def test_without_a_schema_names_come_from_query_commands(live: LiveValues) -> None:
    bare = QmpCompleter(lambda: None, live)
    assert texts(complete(bare, "he"))[0] == "help"
    assert "query-status" in texts(complete(bare, "query-sta"))
    assert complete(bare, "eject ") == []  # no schema: no argument names


def test_without_a_schema_or_query_commands_shell_words_remain() -> None:
    def refuses(name: str, args: dict[str, Any] | None) -> Any:
        raise RuntimeError(f"The command {name} has not been found")

    bare = QmpCompleter(lambda: None, LiveValues(refuses))
    assert texts(complete(bare, "he")) == ["help"]


def test_live_values_tolerate_failures() -> None:
    def broken(name: str, args: dict[str, Any] | None) -> Any:
        raise RuntimeError("gone")

    live = LiveValues(broken)
    assert live.node_names() == []
    assert live.device_properties("e1000") == []
    assert live.info_subcommands()  # falls back to the built-in list


def test_live_values_are_cached_until_refresh(live: LiveValues) -> None:
    calls: list[str] = []

    def counting(name: str, args: dict[str, Any] | None) -> Any:
        calls.append(name)
        return []

    counted = LiveValues(counting)
    counted.device_types()
    counted.device_types()
    assert calls == ["qom-list-types"]
    counted.refresh()
    counted.device_types()
    assert len(calls) == 2


def test_hmp_command_names_skip_wrapped_lines() -> None:
    text = "info|i [subcommand] -- show\n[,readonly=on] foo\nstop|s  -- stop\n\tmore text\n"
    assert hmp_command_names(text) == ["i", "info", "s", "stop"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("eject ", "eject  device?:str  id?:str  force?:bool"),
        ("eject force=", "eject  device?:str  id?:str  [force?:bool]"),
        ("eject i", "eject  device?:str  [id?:str]  force?:bool"),
        ("", ""),
    ],
)
def test_signature_hint(schema: Schema, text: str, expected: str) -> None:
    assert signature_hint(schema, text) == expected


def test_signature_hint_follows_the_union_tag(schema: Schema) -> None:
    hint = signature_hint(schema, "blockdev-add driver=qcow2 ")
    assert "backing?:" in hint
    assert "backing?:" not in signature_hint(schema, "blockdev-add ")


def test_make_completer_wraps_for_the_ui(schema: Schema, monitor: RawMonitor) -> None:
    class FakeSession:  # only the attributes the completer reads
        def __init__(self) -> None:
            self.schema = schema
            self.client = None
            self.syntax = Syntax(shell_words={"help"})

        def add_client_listener(self, callback: Any) -> None:
            pass  # never reconnects

    ui = make_completer(FakeSession())
    found = list(ui.get_completions(Document("query-sp"), CompleteEvent()))
    assert "query-spice" in texts(found)


def test_values_used_before_rank_first(schema: Schema, live: LiveValues) -> None:
    history = ["query-status", "blockdev-add driver=qcow2 node-name=d0 file=f0"]
    remembering = QmpCompleter(lambda: schema, live, used=UsedValues(lambda: history))
    assert texts(complete(remembering, "blockdev-add driver=qc"))[:2] == ["qcow2", "qcow"]
    fresh = QmpCompleter(lambda: schema, live)
    assert texts(complete(fresh, "blockdev-add driver=qc"))[:2] == ["qcow", "qcow2"]
    history.append("blockdev-add driver=qcow node-name=d1 file=f1")  # the newest use wins
    assert texts(complete(remembering, "blockdev-add driver=qc"))[:2] == ["qcow", "qcow2"]


def test_bool_values_offered_are_those_validation_accepts(
    completer: QmpCompleter, schema: Schema
) -> None:
    from qmpsh.request import Command
    from qmpsh.syntax import Syntax
    from qmpsh.validate import type_command

    offered = texts(complete(completer, "eject force="))
    assert offered
    for word in offered:
        request = Syntax().parse(f"eject device=x force={word}")
        assert isinstance(request, Command)
        assert type_command(request, schema)["force"] in (True, False)


def test_signature_hint_follows_the_sessions_mode(schema: Schema) -> None:
    from qmpsh.syntax import Syntax

    assert signature_hint(schema, "eject ", Syntax(hmp_mode=True)) == ""  # an HMP line
    assert signature_hint(schema, "eject ").startswith("eject  device?:str")
