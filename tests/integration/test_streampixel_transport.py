"""The Streampixel client over a real loopback socket (the unit tier has no network)."""

from __future__ import annotations

import socket

import pytest

from pixelbridge.adapters.streampixel import StreampixelClient, StreampixelCredentials
from pixelbridge.domain.errors import Transient

API_KEY = "sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
CREDS = StreampixelCredentials(user_id="663d1f2e3a4b5c6d7e8f9012", api_key=API_KEY)
PROJECT_ID = "67944b8a3f323be4b89a2272"
UPLOAD_ID = "665a2b3c4d5e6f7a8b9c0e1f"


def test_real_connection_refused_on_loopback_is_unambiguous() -> None:
    with socket.socket() as probe:  # grab a free port, then close it so nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = StreampixelClient(f"http://127.0.0.1:{port}/pixelStripeApi", timeout=(1.0, 1.0))
    with pytest.raises(Transient) as caught:
        client.distribute_file(CREDS, PROJECT_ID, UPLOAD_ID)
    assert caught.value.ambiguous is False
    for text in (str(caught.value), repr(caught.value), str(caught.value.args)):
        assert API_KEY not in text
