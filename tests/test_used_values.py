"""UsedValues: what the history says a user typed for each argument."""

from __future__ import annotations

from qmpsh.used_values import UsedValues


def test_values_per_key_newest_first_and_unquoted() -> None:
    lines = [
        "blockdev-add driver=raw node-name=a",
        "transaction( block-dirty-bitmap-add node=a name=b0,"
        " block-dirty-bitmap-add node=c name='x y' )",
        'blockdev-add driver=qcow2 node-name=b file.driver=file file.filename="/tmp/d e.qcow2"',
    ]
    used = UsedValues(lambda: lines)
    assert used.for_key("driver") == ["qcow2", "file", "raw"]
    assert used.for_key("file.driver") == ["qcow2", "file", "raw"]  # matched by last part
    assert used.for_key("filename") == ["/tmp/d e.qcow2"]
    assert used.for_key("node") == ["a", "c"]
    assert used.for_key("name") == ["b0", "x y"]
    assert used.for_key("missing") == []


def test_prefer_moves_used_names_forward_and_keeps_the_rest_in_order() -> None:
    used = UsedValues(lambda: ["x driver=c", "x driver=zzz", "x driver=a"])
    assert used.prefer("driver", ["a", "b", "c", "d"]) == ["a", "c", "b", "d"]


def test_the_index_follows_a_growing_history() -> None:
    lines: list[str] = []
    used = UsedValues(lambda: lines)
    assert used.for_key("id") == []
    lines.append("device_del id=net0")
    assert used.for_key("id") == ["net0"]
