"""A webcast's runs (streaming.live_hub): a publisher that drops and comes back goes on in the
same stream with a discontinuity; sound alone and a picture alone are webcasts too."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from events.models import Event
from streaming.live_playlists import parse_run
from streaming.models import Recording
from streaming.transcode import run_one
from tests.streaming.live import _live_session, _upload
from tests.streaming.live_publish import (
    Publisher,
    end_session,
    preview_of,
    segments_in,
    stream_row,
    wait_for,
    webcast_of,
)


def _public(client: Any, admin: Any, event_id: int, rendition: str) -> str:
    url = webcast_of(admin, event_id)["preview_url"]
    answer = client.get(url.replace("preview.m3u8", f"{rendition}/live.m3u8"))
    return answer.text if answer.status_code == 200 else ""


# The hub's timing in real time (a run's pieces, the grace time): its rows are the same on either
# database, and the run that becomes a recording runs on PostgreSQL below (tests/conftest.py).
@pytest.mark.sqlite_pass_only
def test_a_publisher_back_within_the_grace_time_goes_on_with_a_discontinuity(
        client: Any, staff: Any, db: Session) -> None:
    client.app.state.settings.live_grace_s = 3
    event_id = _live_session(staff, db)  # live before the publisher: on air at once
    admin = staff("admin")
    Publisher(client, event_id, seconds=4).join()
    first = wait_for(lambda: segments_in(_public(client, admin, event_id, "180p")))
    playback = client.get(f"/api/events/{event_id}/playback").json()
    assert (playback["state"], playback["signal"]) == ("live", "waiting")
    assert webcast_of(admin, event_id)["state"] == "waiting"

    Publisher(client, event_id, seconds=4).join()
    text = _public(client, admin, event_id, "180p")
    numbers = [segment.number for segment in parse_run(text)]
    assert numbers == sorted(set(numbers)) and len(numbers) > len(first)  # numbered on
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1
    assert text.index("#EXT-X-DISCONTINUITY") > text.index(first[-1])
    assert stream_row(db, event_id).runs == 2
    time.sleep(3.5)
    playback = client.get(f"/api/events/{event_id}/playback").json()
    assert playback["signal"] == "lost" and playback["hls_url"]  # the stream stays


def test_sound_alone_is_a_webcast_and_an_archive_an_upload_replaces(
        client: Any, staff: Any, db: Session, settings: Any, clips: dict[str, Path]) -> None:
    event_id = _live_session(staff, db)
    admin = staff("admin")
    Publisher(client, event_id, seconds=5, video=False).join()
    wait_for(lambda: len(segments_in(_public(client, admin, event_id, "audio"))) >= 2)
    webcast = webcast_of(admin, event_id)
    assert (webcast["width"], webcast["height"]) == (0, 0)
    master = client.get(webcast["preview_url"].replace("preview.m3u8", "master.m3u8")).text
    assert "audio/live.m3u8" in master and "RESOLUTION" not in master
    end_session(admin, db, event_id)
    wait_for(lambda: client.get(f"/api/events/{event_id}/playback").json()["state"] == "vod",
             timeout=10)
    recording = db.get(Recording, stream_row(db, event_id).recording_id)
    assert recording is not None and recording.renditions == "audio"
    assert recording.duration_s > 3
    assert (settings.media_dir / "hls" / recording.media_key / "poster.jpg").is_file()
    # The archive lists it like an upload; a recording uploaded later replaces it.
    title = db.get(Event, event_id).title  # type: ignore[union-attr]
    assert title in client.get("/archive").text
    vod = client.get(f"/api/events/{event_id}/playback").json()["hls_url"]
    assert client.get(vod).status_code == 200
    assert _upload(admin, event_id, clips["audio"]).status_code == 202
    while run_one(settings):
        pass
    replaced = client.get(f"/api/events/{event_id}/playback").json()
    assert replaced["state"] == "vod" and replaced["hls_url"] != vod
    assert replaced["duration_s"] < 3


@pytest.mark.sqlite_pass_only  # the hub's media handling: as the grace time above
def test_a_picture_without_sound_from_the_browser(client: Any, staff: Any, db: Session) -> None:
    event_id = _live_session(staff, db, live=False)
    admin = staff("admin")
    Publisher(client, event_id, seconds=5, container="webm", audio=False).join()
    wait_for(lambda: len(segments_in(preview_of(admin, event_id))) >= 2)
    webcast = webcast_of(admin, event_id)
    assert (webcast["width"], webcast["height"], webcast["last_error"]) == (320, 180, "")
    master = admin.get(webcast["preview_url"]).text
    assert "180p/preview.m3u8" in master and "AUDIO" not in master
