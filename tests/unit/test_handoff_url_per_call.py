"""The handoff URL Streampixel gets is made at each upload-file call, never read from the record.

In presigned mode a URL is signed with the calling function's session and dies with it: a URL stored
at conversion (or at an earlier upload) may be dead by the time an upload or an operator retry uses it.
The token that matches Streampixel's events to the build is in the URL's path, so every freshly signed
URL still matches."""

from __future__ import annotations

import pytest

from pixelbridge.domain.errors import Transient
from pixelbridge.ports import UploadResult
from tests.support.fakes import RecordingHandoff
from tests.unit.test_streampixel_truth import FIRST, SECOND, ZIP_KEY, World, build


class SigningHandoff(RecordingHandoff):
    """Presigned mode: each URL carries the signature of the moment it was made."""

    def __init__(self) -> None:
        super().__init__("https://handoff.s3.us-east-1.amazonaws.com")
        self.signed = 0

    def url_for(self, key: str) -> str:
        self.signed += 1
        return f"{self.base_url}/{key}?X-Amz-Expires=10800&X-Amz-Signature=sig{self.signed}"


def test_upload_signs_the_url_at_the_call_and_ignores_a_stored_one() -> None:
    stale = f"https://handoff.s3.us-east-1.amazonaws.com/{ZIP_KEY}?X-Amz-Signature=signed-by-the-converter"
    world = World(build(zipUrl=stale), [UploadResult(FIRST, "queued")], handoff=SigningHandoff())
    world.tasks.upload("b1")
    assert world.streampixel.uploads == [
        f"{world.handoff.base_url}/{ZIP_KEY}?X-Amz-Expires=10800&X-Amz-Signature=sig1"
    ]


def test_a_re_upload_gets_a_newly_signed_url_and_events_for_either_url_match_the_build() -> None:
    refused = Transient("connection refused", ambiguous=False)  # never sent: uploaded again in a new slot
    world = World(build(), [refused, UploadResult(SECOND, "queued")], handoff=SigningHandoff())
    with pytest.raises(Transient):
        world.tasks.upload("b1")
    world.tasks.upload("b1")
    first_url, second_url = world.streampixel.uploads
    assert first_url != second_url and first_url.split("?")[0] == second_url.split("?")[0]
    assert world.send("build.downloading", SECOND, fileUrl=second_url)
    assert world.send("build.extracting", SECOND, fileUrl=first_url)  # the token, not the signature
    assert world.send("build.saving", SECOND, fileUrl=second_url)
    assert world.handoff.deleted == [ZIP_KEY]  # two events after the download: the zip may go
