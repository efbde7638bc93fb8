"""A real publisher through the hub (streaming.live_hub): the private preview, on air from the
session's `live`, off air and archived within 10 s of `ended` (tests/streaming/live_publish.py
feeds it)."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from streaming import messages, protocol
from streaming.live_playlists import parse_run
from streaming.models import LiveMessage, Recording, Viewer
from tests.streaming.live import _live_session
from tests.streaming.live_publish import (
    Publisher,
    end_session,
    preview_of,
    segments_in,
    stream_row,
    wait_for,
    webcast_of,
)


def test_preview_then_on_air_then_the_archive(client: Any, staff: Any, db: Session,
                                              settings: Any) -> None:
    event_id = _live_session(staff, db, live=False)
    admin = staff("admin")
    publisher = Publisher(client, event_id, seconds=30)  # cut off by `ended`
    preview = wait_for(lambda: len(segments_in(preview_of(admin, event_id))) >= 2 and
                       preview_of(admin, event_id))
    webcast = webcast_of(admin, event_id)
    assert (webcast["state"], webcast["signal"], webcast["source"], webcast["runs"]) == \
        ("preview", "on", "rtmp", 1)
    assert (webcast["width"], webcast["height"]) == (320, 180)
    # The public: no video named, nothing of the preview to fetch.
    playback = client.get(f"/api/events/{event_id}/playback").json()
    assert playback["hls_url"] is None
    key_url = webcast["preview_url"].rsplit("/", 1)[0]
    first = segments_in(preview)[0]
    assert client.get(f"{key_url}/180p/{first}").status_code == 404
    assert client.get(f"{key_url}/master.m3u8").status_code == 404
    assert client.get(webcast["preview_url"]).status_code == 404
    assert admin.get(f"{key_url}/180p/{first}").status_code == 200

    assert admin.post(f"/api/events/{event_id}/status", json={"status": "live"}).status_code \
        == 200
    on_air = stream_row(db, event_id).on_air_at
    assert on_air is not None and webcast_of(admin, event_id)["state"] == "on_air"
    public = wait_for(lambda: (answer := client.get(f"{key_url}/180p/live.m3u8")).status_code
                      == 200 and len(segments_in(answer.text)) >= 2 and answer)
    assert public.headers["cache-control"] == "public, max-age=1"
    listed = parse_run(public.text)
    assert listed[0].at is not None and listed[0].at >= on_air
    previewed = parse_run(preview_of(admin, event_id))
    before = [s for s in previewed if s.number < listed[0].number]
    assert before, "the preview before the on-air moment"
    assert client.get(f"{key_url}/180p/{before[-1].uri}").status_code == 404
    assert admin.get(f"{key_url}/180p/{before[-1].uri}").status_code == 200  # the console's
    fetched = client.get(f"{key_url}/180p/{listed[0].uri}")
    assert fetched.status_code == 200
    assert fetched.headers["cache-control"] == "public, max-age=31536000, immutable"
    master = client.get(f"{key_url}/master.m3u8")
    assert master.status_code == 200 and "180p/live.m3u8" in master.text
    playback = client.get(f"/api/events/{event_id}/playback").json()
    assert (playback["state"], playback["hls_url"], playback["signal"]) == \
        ("live", f"{key_url}/master.m3u8", "on")
    assert playback["position_s"] >= 2

    # A comment while on air counts from the on-air moment.
    joined = client.post(f"/api/events/{event_id}/viewers", json={"nickname": "居民"}).json()
    viewer = db.get(Viewer, joined["viewer_id"])
    assert viewer is not None
    sent_at = datetime.now(UTC)
    message, _ = messages.send(db, viewer, protocol.Sent("comment", "听得很清楚", "c1", 999.0))
    db.commit()
    expected = (sent_at - on_air).total_seconds()
    assert message.video_time is not None and abs(message.video_time - expected) < 1

    time.sleep(2)
    ended = end_session(admin, db, event_id)
    vod = wait_for(lambda: (answer := client.get(f"/api/events/{event_id}/playback").json())
                   ["state"] == "vod" and answer, timeout=10)
    took = time.monotonic() - ended
    assert took <= 10
    publisher.join()
    assert publisher.refused is not None and publisher.refused.code == "ended"
    stream = stream_row(db, event_id)
    assert stream.state == "ended" and stream.off_air_at is not None
    recording = db.get(Recording, stream.recording_id)
    assert recording is not None and recording.state == "succeeded"
    on_air_s = (stream.off_air_at - on_air).total_seconds()
    assert abs(recording.duration_s - on_air_s) <= 2.5, (recording.duration_s, on_air_s)
    assert vod["duration_s"] == recording.duration_s and vod["poster_url"]
    assert vod["thumbnails_url"] and client.get(vod["thumbnails_url"]).status_code == 200
    assert client.get(vod["poster_url"]).status_code == 200
    folder = settings.media_dir / "hls" / recording.media_key
    assert (folder / "thumbs-001.jpg").is_file()
    archived = (folder / "180p" / "index.m3u8").read_text()
    assert "#EXT-X-ENDLIST" in archived and "#EXT-X-PLAYLIST-TYPE:VOD" in archived
    assert sorted(p.name for p in (folder / "180p").glob("*.ts")) == sorted(segments_in(archived))
    assert segments_in(archived)[0] == listed[0].uri  # from the on-air moment, the preview gone
    probed = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type",
         "-of", "json", str(folder / "master.m3u8")], capture_output=True, check=True).stdout)
    assert {s["codec_type"] for s in probed["streams"]} == {"video", "audio"}
    assert abs(float(probed["format"]["duration"]) - recording.duration_s) < 1
    assert not (settings.media_dir / "live" / stream.media_key).exists()
    assert client.get(f"{key_url}/master.m3u8").status_code == 404
    # The comment replays at its time.
    replay = db.get(LiveMessage, message.id)
    assert replay is not None and replay.video_time == message.video_time
