"""The HTTP edge's error map: each domain refusal has exactly one status, subclasses included."""

from __future__ import annotations

import pytest

from pixelbridge.domain import errors
from pixelbridge.handlers.http_errors import HTTP_STATUS, status_of


@pytest.mark.parametrize(
    ("refusal", "status"),
    [
        (errors.Invalid, 400),
        (errors.Unauthorized, 401),
        (errors.NotFound, 404),
        (errors.Conflict, 409),
        (errors.TooLarge, 413),
        (errors.UnsupportedFormat, 415),
        (errors.Unavailable, 503),
    ],
)
def test_each_refusal_maps_to_its_status(refusal: type[errors.Rejected], status: int) -> None:
    assert status_of(refusal("code", "message")) == status


def test_every_refusal_kind_in_the_domain_is_mapped() -> None:
    kinds = {
        kind for kind in vars(errors).values() if isinstance(kind, type) and issubclass(kind, errors.Rejected)
    }
    assert kinds - {errors.Rejected} == set(HTTP_STATUS)


def test_a_subclass_takes_its_parents_status() -> None:
    class Throttled(errors.Unavailable):
        pass

    assert status_of(Throttled("throttled", "slow down")) == 503
