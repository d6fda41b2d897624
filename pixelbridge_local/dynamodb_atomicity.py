"""Make moto's DynamoDB serialise writes the way DynamoDB does.

DynamoDB applies conditional writes to one item atomically; moto evaluates the condition and the
update without a lock (and reads the "old" item for ReturnValues before updating), so concurrent
threads (Step Functions executions, webhooks, the converter) could both pass a condition that only
one may pass. One lock around moto's write request handlers restores the guarantee PixelBridge
relies on, for the local stack and the tests.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

WRITE_OPERATIONS = ("put_item", "update_item", "delete_item", "transact_write_items")


@contextmanager
def atomic_dynamodb_writes() -> Iterator[None]:
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.RLock()

    def serialised(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def write(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return write

    patches = [
        mock.patch.object(DynamoHandler, name, serialised(getattr(DynamoHandler, name)))
        for name in WRITE_OPERATIONS
    ]
    for patch in patches:
        patch.start()
    try:
        yield
    finally:
        for patch in patches:
            patch.stop()
