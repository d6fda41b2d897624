"""A build record stays small whatever outside parties send: bounded entries, summarised timelines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pixelbridge.adapters.item_size import item_size
from pixelbridge.domain.timeline import (
    KEEP_FIRST,
    KEEP_LAST,
    SUMMARY_EVENT,
    compact_timeline,
    needs_compaction,
    timeline_entry,
)
from pixelbridge.usecases.convert_build import MAX_MANIFEST_NOTES, bounded_notes

START = datetime(2026, 5, 1, tzinfo=UTC)


def test_ten_thousand_outside_events_keep_the_record_under_350_kb_and_every_one_counted() -> None:
    """What the repository does on every write: append a bounded entry, summarise when over budget."""
    huge = "y" * 60_000
    timeline = [timeline_entry(START, "received", status="received")]
    for number in range(10_000):
        at = START + timedelta(seconds=number)
        data = {"timestamp": f"t{number}", "status": huge, "extra": list(range(500))}
        timeline.append(timeline_entry(at, "build.downloading", f"Streampixel: {huge}", data=data))
        if needs_compaction(timeline):  # the timeline is at its largest right now
            assert item_size({"timeline": timeline}) < 350 * 1024
            timeline = compact_timeline(timeline)
    timeline.append(timeline_entry(START + timedelta(days=1), "build.approved", status="approved"))
    timeline = compact_timeline(timeline)
    (summary,) = [entry for entry in timeline if entry["event"] == SUMMARY_EVENT]
    kept = [entry for entry in timeline if entry["event"] == "build.downloading"]
    assert summary["omitted"] + len(kept) == 10_000
    assert len(timeline) == KEEP_FIRST + KEEP_LAST + 1
    assert timeline[0]["event"] == "received" and timeline[-1]["event"] == "build.approved"
    assert len(kept[-1]["detail"]) < 600 and kept[-1]["data"]["extra"][-1] == "... (+480 items)"


def test_repeats_are_counted_on_one_entry_with_the_last_time() -> None:
    same: list[dict[str, Any]] = [
        timeline_entry(START + timedelta(minutes=n), "rate limited", "upload-file answered 429")
        for n in range(5)
    ]
    (entry,) = compact_timeline(same)
    assert entry["repeats"] == 5 and entry["lastAt"] == same[-1]["at"] and entry["at"] == same[0]["at"]


def test_oversized_event_data_is_replaced_by_its_size() -> None:
    data = {f"k{n}": "z" * 300 for n in range(20)}
    entry = timeline_entry(START, "build.processing", data=data)
    assert entry["data"]["omitted"].endswith("bytes of event data")


def test_manifest_notes_are_the_first_ones_and_a_count() -> None:
    notes = [f"duplicate directory entry d{n}/ listed once" for n in range(20_000)]
    kept = bounded_notes(notes)
    assert kept[:MAX_MANIFEST_NOTES] == notes[:MAX_MANIFEST_NOTES]
    assert kept[-1] == f"... and {20_000 - MAX_MANIFEST_NOTES} more notes like these"
    assert bounded_notes(notes[:3]) == notes[:3]
