"""Schema-aware typing and validation, against the real QEMU's schema and the real QEMU."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from qemu import Qemu, RawMonitor

from qmpsh.errors import InputError
from qmpsh.request import Argument, Command, Transaction
from qmpsh.schema import Schema
from qmpsh.validate import type_command, type_transaction

# A tiny stand-in for the parser: words separated by single spaces, values
# without spaces, quotes only around a whole value.  Enough to place columns.
WORD = re.compile(r"\S+")


def guess(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def argument(word: str, start: int) -> Argument:
    key, _, text = word.partition("=")
    quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in "'\""
    value_text = text[1:-1] if quoted else text
    value = value_text if quoted else guess(text)
    column = start + 1
    return Argument(tuple(key.split(".")), value_text, value, quoted, column, column + len(key) + 1)


def command(line: str, offset: int = 0) -> Command:
    words = list(WORD.finditer(line))
    args = tuple(argument(m.group(), offset + m.start()) for m in words[1:])
    return Command(words[0].group(), args, offset + words[0].start() + 1)


def typed(schema: Schema, line: str) -> dict[str, Any]:
    return type_command(command(line), schema)


def error(schema: Schema, line: str) -> InputError:
    with pytest.raises(InputError) as info:
        type_command(command(line), schema)
    return info.value


def test_str_members_keep_the_text(schema: Schema) -> None:
    assert typed(schema, "eject id=123 force=true") == {"id": "123", "force": True}
    assert typed(schema, "eject id=null") == {"id": "null"}
    assert typed(schema, "eject id=1e3") == {"id": "1e3"}


def test_int_and_bool_conversion(schema: Schema) -> None:
    assert typed(schema, "block_resize node-name=n0 size=1024") == {
        "node-name": "n0",
        "size": 1024,
    }
    assert typed(schema, "block_resize node-name=n0 size=0x10")["size"] == 16
    assert typed(schema, "eject id=x force=on") == {"id": "x", "force": True}
    assert typed(schema, "eject id=x force=No") == {"id": "x", "force": False}


def test_bad_scalars_point_at_the_value(schema: Schema) -> None:
    err = error(schema, "block_resize node-name=n0 size=abc")
    assert err.message == "'abc' is not an int for 'size'"
    assert err.column == len("block_resize node-name=n0 size=") + 1
    err = error(schema, "eject id=x force=maybe")
    assert err.message == "'maybe' is not a bool for 'force'" and err.column == 18


def test_quoted_values_stay_strings(schema: Schema) -> None:
    assert typed(schema, 'eject id="123"') == {"id": "123"}
    err = error(schema, 'block_resize node-name=n0 size="5"')
    assert "quoted" in err.message and "'size'" in err.message


def test_enum_values_are_checked(schema: Schema) -> None:
    err = error(schema, "blockdev-add driver=qcow3 node-name=n0")
    assert "'qcow3'" in err.message and "(did you mean 'qcow" in err.message
    assert err.column == len("blockdev-add driver=") + 1
    err = error(schema, "blockdev-add driver=zzzzzzzz")
    assert "one of blkdebug," in err.message and "in all)" in err.message


def test_unknown_command_and_argument_suggest_a_name(schema: Schema) -> None:
    err = error(schema, "query-spcie")
    assert err.message == "unknown command 'query-spcie' (did you mean 'query-spice'?)"
    assert err.column == 1
    err = error(schema, "eject devce=ide0")
    assert err.message == "unknown argument 'devce' for 'eject' (did you mean 'device'?)"
    assert err.column == len("eject ") + 1


def test_unknown_nested_argument(schema: Schema) -> None:
    line = "blockdev-add driver=qcow2 node-name=n file.driver=file file.filenme=/x"
    err = error(schema, line)
    assert "did you mean 'file.filename'" in err.message
    assert err.column == line.index("file.filenme") + 1
    err = error(schema, "blockdev-add node-name=n file=x")
    assert "depend on 'driver'" in err.message


def test_missing_required_arguments(schema: Schema) -> None:
    err = error(schema, "block_resize node-name=n0")
    assert err.message == "'block_resize' needs argument 'size'" and err.column == 1
    err = error(schema, "blockdev-add driver=qcow2 node-name=n0")
    assert err.message == "'blockdev-add' needs argument 'file'"
    line = "blockdev-add driver=qcow2 node-name=n0 file.driver=file"
    err = error(schema, line)
    assert err.message == "'blockdev-add' needs argument 'file.filename'"
    assert err.column == line.index("file.driver") + 1


def test_dotted_keys_build_nested_objects(schema: Schema) -> None:
    line = "blockdev-add driver=qcow2 node-name=n0 file.driver=file file.filename=/tmp/x"
    assert typed(schema, line) == {
        "driver": "qcow2",
        "node-name": "n0",
        "file": {"driver": "file", "filename": "/tmp/x"},
    }


def test_alternates_pick_a_sensible_branch(schema: Schema) -> None:
    base = "blockdev-add driver=qcow2 node-name=n0"
    assert typed(schema, f"{base} file=node1")["file"] == "node1"
    assert typed(schema, f"{base} file=123")["file"] == "123"
    as_json = typed(schema, base + ' file={"driver":"file","filename":"/x"}')
    assert as_json["file"] == {"driver": "file", "filename": "/x"}
    assert typed(schema, f"{base} file=f backing=null")["backing"] is None
    assert typed(schema, f"{base} file=f overlap-check=all")["overlap-check"] == "all"


def test_json_values_are_checked_inside(schema: Schema) -> None:
    base = "blockdev-add driver=qcow2 node-name=n0 file="
    err = error(schema, base + '{"driver":"file"}')
    assert "missing member 'filename'" in err.message and err.column == len(base) + 1
    err = error(schema, base + '{"driver":"file","filename":7}')
    assert "filename: expected str" in err.message
    err = error(schema, "blockdev-add driver=qcow2 node-name=n0 file=f cache=[1]")
    assert err.message == "'[1]' is not an object for 'cache'"


def test_device_add_keeps_device_properties(schema: Schema) -> None:
    line = "device_add driver=e1000 id=123 mac=52:54:00:12:34:56 bootindex=1"
    assert typed(schema, line) == {
        "driver": "e1000",
        "id": "123",
        "mac": "52:54:00:12:34:56",
        "bootindex": 1,
    }
    assert error(schema, "device_add id=net1").message == "'device_add' needs argument 'driver'"


def test_duplicate_keys_are_refused(schema: Schema) -> None:
    err = error(schema, "eject id=a id=b")
    assert err.message == "key 'id' is set twice" and err.column == 12  # syntax's one rule


def test_without_schema_or_validation_the_guesses_pass(schema: Schema) -> None:
    cmd = command("eject id=123 devce=x force=maybe")
    assert type_command(cmd, None) == {"id": 123, "devce": "x", "force": "maybe"}
    assert type_command(cmd, schema, validate=False) == {
        "id": "123",
        "devce": "x",
        "force": "maybe",
    }
    assert type_command(command("query-spcie a=1"), schema, validate=False) == {"a": 1}


def transaction(*actions: str) -> Transaction:
    return Transaction(tuple(command(a, offset=12) for a in actions))


def test_transaction_actions_are_typed(schema: Schema) -> None:
    tx = transaction("abort", "block-dirty-bitmap-add node=n0 name=7 granularity=65536")
    assert type_transaction(tx, schema) == [
        {"type": "abort", "data": {}},
        {
            "type": "block-dirty-bitmap-add",
            "data": {"node": "n0", "name": "7", "granularity": 65536},
        },
    ]
    assert type_transaction(tx, None)[1]["data"]["name"] == 7


def test_transaction_errors(schema: Schema) -> None:
    with pytest.raises(InputError) as info:
        type_transaction(transaction("abort", "abrot"), schema)
    assert info.value.message == "unknown transaction action 'abrot' (did you mean 'abort'?)"
    assert info.value.column == 13
    with pytest.raises(InputError) as info:
        type_transaction(transaction("block-dirty-bitmap-add node=n0"), schema)
    assert info.value.message == "'block-dirty-bitmap-add' needs argument 'name'"


def test_typed_commands_are_accepted_by_qemu(qemu: Qemu, schema: Schema) -> None:
    with RawMonitor(qemu.socket) as mon:
        secret = typed(schema, "object-add qom-type=secret id=sec0 data=123")
        assert secret["data"] == "123"
        mon.execute("object-add", **secret)
        mon.execute("object-del", **typed(schema, "object-del id=sec0"))
        node = typed(schema, "blockdev-add driver=null-co node-name=n0 size=1048576 read-only=on")
        mon.execute("blockdev-add", **node)
        tx = transaction("block-dirty-bitmap-add node=n0 name=7 granularity=65536")
        mon.execute("transaction", actions=type_transaction(tx, schema))
        bitmaps = mon.execute("query-named-block-nodes")[0]["dirty-bitmaps"]
        assert [(b["name"], b["granularity"]) for b in bitmaps] == [("7", 65536)]
        mon.execute("blockdev-del", **typed(schema, "blockdev-del node-name=n0"))
