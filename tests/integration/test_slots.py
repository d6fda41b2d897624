"""Slot reservations and call claims against DynamoDB (moto), under concurrency."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import boto3
import pytest
from moto import mock_aws

from pixelbridge.adapters.slots import SlotBook
from pixelbridge_local.dynamodb_atomicity import atomic_dynamodb_writes
from pixelbridge_local.template import create_tables

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
T = TypeVar("T")


def run_concurrently(call: Callable[[], T], *, times: int) -> list[T]:
    """Run ``call`` on ``times`` threads at once; the results in completion order."""
    results: list[T] = []
    lock = threading.Lock()

    def run() -> None:
        result = call()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.fixture
def book() -> Iterator[SlotBook]:
    with mock_aws(), atomic_dynamodb_writes():
        names = create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        yield SlotBook(names["SlotsTable"], dynamodb=boto3.resource("dynamodb", region_name="us-east-1"))


def test_concurrent_reservations_of_one_user_are_distinct_and_spaced(book: SlotBook) -> None:
    ordered = sorted(run_concurrently(lambda: book.reserve("user-1", T0, 120), times=20))
    assert len(set(ordered)) == 20
    assert all(later - earlier == timedelta(seconds=120) for earlier, later in itertools.pairwise(ordered))
    assert ordered[0] == T0


def test_users_do_not_share_slots(book: SlotBook) -> None:
    assert book.reserve("user-1", T0, 120) == T0
    assert book.reserve("user-2", T0, 120) == T0
    assert book.reserve("user-1", T0, 120) == T0 + timedelta(seconds=120)


def test_a_reservation_after_a_quiet_period_starts_now(book: SlotBook) -> None:
    book.reserve("user-1", T0, 120)
    later = T0 + timedelta(hours=1)
    assert book.reserve("user-1", later, 120) == later


def test_call_claims_admit_one_caller_per_spacing(book: SlotBook) -> None:
    assert book.claim_call("user-1", T0, 120) is None
    assert book.claim_call("user-1", T0 + timedelta(seconds=60), 120) == T0 + timedelta(seconds=120)
    assert book.claim_call("user-1", T0 + timedelta(seconds=120), 120) is None


def test_a_call_that_ends_late_moves_the_window(book: SlotBook) -> None:
    assert book.claim_call("user-1", T0, 120) is None
    book.call_ended("user-1", T0 + timedelta(seconds=30))
    assert book.claim_call("user-1", T0 + timedelta(seconds=120), 120) == T0 + timedelta(seconds=150)


def test_concurrent_claims_let_exactly_one_through(book: SlotBook) -> None:
    results = run_concurrently(lambda: book.claim_call("user-1", T0, 120), times=10)
    assert results.count(None) == 1
