"""The schema index, against the schema of the real QEMU the tests start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qmpsh.schema import Schema, cache_file, default_cache_dir, load_schema


def names(members: list[Any]) -> list[str]:
    return [m.name for m in members]


def test_commands_and_events_are_indexed(schema: Schema) -> None:
    commands = schema.command_names()
    assert len(commands) > 150
    assert {"eject", "blockdev-add", "query-status", "transaction"} <= set(commands)
    assert {"STOP", "RESUME", "BLOCK_IO_ERROR"} <= set(schema.event_names())
    assert schema.command("query-spcie") is None
    assert schema.event("eject") is None


def test_command_info_carries_types_and_flags(schema: Schema) -> None:
    status = schema.command("query-status")
    assert status is not None
    assert "status" in names(schema.members(status.ret_type))
    assert schema.command("yank").allow_oob  # type: ignore[union-attr]
    assert not status.allow_oob


def test_union_members_follow_the_tag(schema: Schema) -> None:
    plain = names(schema.arg_members("blockdev-add"))
    assert "driver" in plain and "node-name" in plain
    assert "file" not in plain and "backing" not in plain
    qcow2 = names(schema.arg_members("blockdev-add", {"driver": "qcow2"}))
    assert {"driver", "node-name", "file", "backing", "lazy-refcounts"} <= set(qcow2)
    raw = names(schema.arg_members("blockdev-add", {"driver": "raw"}))
    assert "file" in raw and "backing" not in raw


def test_type_at_follows_nested_unions_and_alternates(schema: Schema) -> None:
    given = {"driver": "qcow2", "file": {"driver": "file"}}
    file_ref = schema.type_at("blockdev-add", ["file"], given)
    assert file_ref is not None and file_ref.meta == "alternate"
    assert schema.describe_type(file_ref.name) in ("object|str", "str|object")
    driver = schema.type_at("blockdev-add", ["file", "driver"], given)
    assert driver is not None and driver.meta == "enum"
    assert {"file", "qcow2", "raw", "null-co"} <= set(driver.values)
    filename = schema.type_at("blockdev-add", ["file", "filename"], given)
    assert filename is not None and filename.name == "str"
    assert schema.type_at("blockdev-add", ["file", "filename"], {"driver": "qcow2"}) is None
    assert schema.type_at("blockdev-add", ["nonsense"], given) is None
    assert schema.type_at("no-such-command", ["x"]) is None


def test_enum_values_of_the_driver(schema: Schema) -> None:
    driver = next(m for m in schema.arg_members("blockdev-add") if m.name == "driver")
    assert {"qcow2", "raw", "file"} <= set(schema.enum_values(driver.type))
    assert schema.enum_values("str") == []


def test_describe_type(schema: Schema) -> None:
    members = {m.name: m for m in schema.arg_members("blockdev-add", {"driver": "qcow2"})}
    assert schema.describe_type("str") == "str"
    assert schema.describe_type(members["driver"].type) == "enum"
    assert schema.describe_type(members["cache"].type) == "object"
    assert set(schema.describe_type(members["backing"].type).split("|")) == {
        "object",
        "str",
        "null",
    }
    actions = next(m for m in schema.arg_members("transaction") if m.name == "actions")
    assert schema.describe_type(actions.type) == "[object]"


def test_signature_keeps_schema_order_and_marks_optional(schema: Schema) -> None:
    assert schema.signature("eject") == "eject  device?:str  id?:str  force?:bool"
    assert schema.signature("block_resize").endswith("size:int")


def test_help_for_a_command(schema: Schema) -> None:
    lines = schema.help_lines("eject")
    assert lines[0] == schema.signature("eject")
    device = next(line for line in lines if line.strip().startswith("device"))
    assert "optional" in device and "deprecated" in device
    assert lines[-1] == "returns: nothing"


def test_help_expands_a_chosen_union_variant(schema: Schema) -> None:
    plain = "\n".join(schema.help_lines("blockdev-add"))
    assert "depend on 'driver'" in plain and "lazy-refcounts" not in plain
    qcow2 = "\n".join(schema.help_lines("blockdev-add", {"driver": "qcow2"}))
    assert "lazy-refcounts" in qcow2


def test_help_for_an_event_and_a_return_type(schema: Schema) -> None:
    lines = schema.help_lines("BLOCK_IO_ERROR")
    assert lines[0] == "event BLOCK_IO_ERROR"
    text = "\n".join(lines)
    assert "operation" in text and "one of: read, write" in text
    assert schema.help_lines("STOP") == ["event STOP", "data: none"]
    status = "\n".join(schema.help_lines("query-status"))
    assert "returns: object" in status and "running" in status
    assert schema.help_lines("no-such-thing") == []


def test_deprecated_and_unstable_features_are_visible(schema: Schema) -> None:
    assert schema.command("drive-backup").deprecated  # type: ignore[union-attr]
    unstable = [n for n in schema.command_names() if schema.command(n).unstable]  # type: ignore[union-attr]
    assert unstable and all(n.startswith("x-") for n in unstable)
    device = next(m for m in schema.arg_members("eject") if m.name == "device")
    assert device.deprecated and device.optional
    assert schema.help_lines("x-query-jit")[0] == "x-query-jit  (unstable)"


def test_cache_round_trip(tmp_path: Path, schema_entries: list[dict[str, Any]]) -> None:
    calls: list[int] = []

    def fetch() -> list[dict[str, Any]]:
        calls.append(1)
        return schema_entries

    key = "7.2.22-Debian 1:7.2+dfsg/7"
    first = load_schema(fetch, key, tmp_path)
    second = load_schema(fetch, key, tmp_path)
    assert len(calls) == 1
    assert second.command_names() == first.command_names()
    [written] = list(tmp_path.iterdir())
    assert written == cache_file(tmp_path, key) and "/" not in written.name[:-5]
    load_schema(fetch, "another version", tmp_path)
    assert len(calls) == 2


@pytest.mark.parametrize("garbage", [b"{not json", b'{"a": 1}', b"[1, 2]", b'[{"x": 1}]', b""])
def test_a_corrupt_cache_is_ignored_and_rewritten(
    tmp_path: Path, schema_entries: list[dict[str, Any]], garbage: bytes
) -> None:
    path = cache_file(tmp_path, "v1")
    path.write_bytes(garbage)
    schema = load_schema(lambda: schema_entries, "v1", tmp_path)
    assert "eject" in schema.command_names()
    assert json.loads(path.read_bytes()) == schema_entries


def test_default_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "qmpsh" / "schema"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "qmpsh" / "schema"
