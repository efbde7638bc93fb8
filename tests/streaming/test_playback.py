"""The premiere clock: every viewer at the same moment; before it nothing to play; after it,
on demand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from events.models import Event, EventKind, EventStatus
from streaming.models import Recording
from streaming.playback import playback_of
from streaming.storage import LocalStorage

PREMIERE = datetime(2027, 5, 1, 2, 0, tzinfo=UTC)


def _broadcast(**fields) -> Event:
    fields = {"premiere_at": PREMIERE, **fields}
    return Event(id=7, kind=EventKind.broadcast, status=EventStatus.published, unit_id=1,
                 title="政民互动直播间", starts_at=PREMIERE, ends_at=PREMIERE + timedelta(hours=1),
                 **fields)


def _recording() -> Recording:
    return Recording(id=3, event_id=7, duration_s=600.0, width=1280, height=720,
                     has_audio=True, media_key="7-3-abcdef0123456789abcdef01",
                     published_at=PREMIERE - timedelta(days=1))


def test_the_position_follows_the_clock(tmp_path) -> None:
    storage = LocalStorage(tmp_path)
    event, recording = _broadcast(), _recording()
    before = playback_of(event, recording, storage, PREMIERE - timedelta(seconds=1))
    assert (before["state"], before["hls_url"], before["position_s"]) == ("upcoming", None, None)
    assert before["premiere_at"] == PREMIERE.isoformat()
    for offset in (0.0, 12.5, 599.0):
        now = PREMIERE + timedelta(seconds=offset)
        during = playback_of(event, recording, storage, now)
        assert (during["state"], during["position_s"]) == ("premiere", offset)
        assert during["server_time"] == now.isoformat()
        assert during["hls_url"] == "/media/hls/7-3-abcdef0123456789abcdef01/master.m3u8"
    after = playback_of(event, recording, storage, PREMIERE + timedelta(seconds=600))
    assert (after["state"], after["position_s"]) == ("vod", None)
    assert after["thumbnails_url"].endswith("/thumbs.vtt")


def test_without_a_recording_a_premiere_has_nothing_to_play(tmp_path) -> None:
    answer = playback_of(_broadcast(), None, LocalStorage(tmp_path),
                         PREMIERE + timedelta(seconds=5))
    assert (answer["state"], answer["hls_url"]) == ("unavailable", None)


def test_a_held_session_plays_its_recording_on_demand(tmp_path) -> None:
    storage = LocalStorage(tmp_path)
    meeting = _broadcast(premiere_at=None)
    meeting.kind = EventKind.open_meeting
    later = PREMIERE + timedelta(hours=2)
    assert playback_of(meeting, _recording(), storage, later)["state"] == "unavailable"
    meeting.status = EventStatus.ended
    assert playback_of(meeting, _recording(), storage, later)["state"] == "vod"
    meeting.status = EventStatus.live
    assert playback_of(meeting, None, storage, later)["state"] == "live"
    meeting.status = EventStatus.published
    assert playback_of(meeting, None, storage, PREMIERE - timedelta(days=1))["state"] == \
        "upcoming"


def test_a_cancelled_session_names_no_video_and_previews_wait_for_the_premieres_end(
        tmp_path) -> None:
    storage = LocalStorage(tmp_path)
    during = playback_of(_broadcast(), _recording(), storage, PREMIERE + timedelta(seconds=5))
    assert during["state"] == "premiere" and during["thumbnails_url"] is None
    later = PREMIERE + timedelta(hours=2)
    cancelled = _broadcast()
    cancelled.status = EventStatus.cancelled
    answer = playback_of(cancelled, _recording(), storage, later)
    assert (answer["state"], answer["hls_url"], answer["poster_url"],
            answer["thumbnails_url"]) == ("unavailable", None, None, None)
