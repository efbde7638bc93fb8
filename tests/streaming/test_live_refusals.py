"""What the hub refuses or cuts off (streaming.live_hub), each with a reason for the console and
the service going on: a second publisher, an ended session, bytes that are no video, an encoder
that dies."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
from sqlmodel import Session

from streaming.live_hub import IngestRefused
from tests.streaming.live import _live_session
from tests.streaming.live_publish import (
    Publisher,
    end_session,
    segments_in,
    stream_row,
    wait_for,
    webcast_of,
)


def _open(client: Any, event_id: int, container: str = "flv") -> Any:
    return client.portal.call(client.app.state.live_hub.open_feed, event_id, "rtmp", container)


def test_a_second_publisher_is_refused_while_the_first_goes_on(client: Any, staff: Any,
                                                                 db: Session) -> None:
    event_id = _live_session(staff, db)
    admin = staff("admin")
    first = Publisher(client, event_id, seconds=4)
    with pytest.raises(IngestRefused) as refused:
        _open(client, event_id)
    assert refused.value.code == "busy" and "已有一路信号" in refused.value.message
    first.join()
    assert first.refused is None and webcast_of(admin, event_id)["runs"] == 1
    end_session(admin, db, event_id)
    wait_for(lambda: stream_row(db, event_id).state == "ended", timeout=10)
    with pytest.raises(IngestRefused) as refused:
        _open(client, event_id)
    assert refused.value.code == "ended"


def test_bytes_that_are_no_video_are_cut_off_with_a_reason(client: Any, staff: Any,
                                                           db: Session) -> None:
    event_id = _live_session(staff, db)
    admin = staff("admin")
    feed = _open(client, event_id, "webm")
    garbage = os.urandom(512 * 1024)
    with pytest.raises(IngestRefused) as refused:
        for _ in range(20):
            client.portal.call(feed.write, garbage)
    client.portal.call(feed.close)
    assert refused.value.code == "not_video"
    webcast = webcast_of(admin, event_id)
    assert "无法识别" in webcast["last_error"] and webcast["state"] == "waiting"
    assert client.get("/healthz").status_code == 200
    # The next publisher is taken, and its stream plays.
    Publisher(client, event_id, seconds=3).join()
    assert webcast_of(admin, event_id)["last_error"] == ""
    url = webcast_of(admin, event_id)["preview_url"].replace("preview.m3u8", "180p/live.m3u8")
    assert segments_in(client.get(url).text)


def test_an_encoder_that_dies_ends_the_run_with_a_reason(client: Any, staff: Any,
                                                         db: Session) -> None:
    event_id = _live_session(staff, db)
    admin = staff("admin")
    publisher = Publisher(client, event_id, seconds=20)
    hub = client.app.state.live_hub
    run = wait_for(lambda: (found := hub.runs.get(event_id)) is not None
                   and found.process is not None and found)
    os.kill(run.process.pid, signal.SIGKILL)
    publisher.join()
    assert publisher.refused is not None and publisher.refused.code == "encoder"
    webcast = webcast_of(admin, event_id)
    assert "编码器意外停止" in webcast["last_error"] and webcast["state"] == "waiting"
    assert webcast["signal"] == "waiting"
    Publisher(client, event_id, seconds=3).join()
    assert webcast_of(admin, event_id)["runs"] == 2


def test_a_picture_too_large_or_a_rate_too_high_is_cut_off(client: Any, staff: Any,
                                                           db: Session) -> None:
    event_id = _live_session(staff, db)
    admin = staff("admin")
    settings = client.app.state.settings
    settings.max_ingest_pixels = 320 * 180 - 1
    large = Publisher(client, event_id, seconds=10)
    large.join()
    assert large.refused is not None and large.refused.code == "too_large"
    assert "320×180" in webcast_of(admin, event_id)["last_error"]
    settings.max_ingest_pixels, settings.max_ingest_kbps = 320 * 180, 20
    fast = Publisher(client, event_id, seconds=15)
    fast.join()
    assert fast.refused is not None and fast.refused.code == "too_fast"
    assert "20 kbps" in webcast_of(admin, event_id)["last_error"]
    assert client.get(f"/api/events/{event_id}/live").status_code == 401


# What the hub refuses is decided in this process before any row changes (one hub holds the
# ingest port: deploy/nginx); the key's check runs on PostgreSQL in test_ingest_api.py and the
# hub's rows in test_live_runs.py and test_live_hub.py (tests/conftest.py).
pytestmark = pytest.mark.sqlite_pass_only
