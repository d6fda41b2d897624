"""DynamoDB's 400 KB item limit, guarded in the builds adapter before DynamoDB (or moto) sees the write."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from pixelbridge.adapters.builds import BuildRepository
from pixelbridge.adapters.item_size import MAX_ITEM_BYTES, ItemTooLarge, ensure_fits, item_size, value_size


class RecordingTable:
    def __init__(self) -> None:
        self.writes: list[str] = []
        self.items: list[dict[str, Any]] = []

    def put_item(self, **kwargs: Any) -> None:
        self.writes.append("put_item")
        self.items.append(kwargs["Item"])

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        self.writes.append("update_item")
        return {"Attributes": {"buildId": "b", "status": "received"}}


class RecordingDynamoDB:
    def __init__(self) -> None:
        self.table = RecordingTable()

    def Table(self, name: str) -> RecordingTable:
        return self.table


def test_sizes_follow_dynamodbs_rules() -> None:
    assert item_size({"id": "héllo"}) == 2 + 6  # names and strings in UTF-8 bytes
    assert value_size(True) == value_size(None) == 1
    assert value_size(Decimal("12345")) == 4  # (5 significant digits + 1) // 2 + 1
    assert value_size(["ab", "c"]) == 3 + (1 + 2) + (1 + 1)
    assert value_size({"k": "vv"}) == 3 + 1 + 1 + 2


def test_ensure_fits_refuses_above_400_kb_only() -> None:
    ensure_fits({"b": "x" * (MAX_ITEM_BYTES - 1)}, what="item")
    with pytest.raises(ItemTooLarge, match=f"is {MAX_ITEM_BYTES + 1} bytes"):
        ensure_fits({"b": "x" * MAX_ITEM_BYTES}, what="item")


def test_the_builds_adapter_refuses_an_oversized_record_before_writing() -> None:
    dynamodb = RecordingDynamoDB()
    builds = BuildRepository("builds", dynamodb=dynamodb)
    record = {"buildId": "b-huge", "status": "received", "metadata": {"notes": ["n" * 8000] * 60}}
    with pytest.raises(ItemTooLarge, match="build b-huge"):
        builds.create(record, event="received")
    assert dynamodb.table.writes == []
    assert builds.create({"buildId": "b-ok", "status": "received"}, event="received")
    assert dynamodb.table.writes == ["put_item"]


def test_the_builds_adapter_refuses_an_oversized_update_before_writing() -> None:
    dynamodb = RecordingDynamoDB()
    builds = BuildRepository("builds", dynamodb=dynamodb)
    with pytest.raises(ItemTooLarge, match="update of build b"):
        builds.set_fields("b", {"manifest": {"files": ["f" * 1024] * 400}})
    assert dynamodb.table.writes == []
