"""Who gets a recording's HLS files, and when: not the public once its session is withdrawn or
before it is public, not anyone once the recording is replaced (its files deleted after a
grace time), and during a premiere only as far as the clock has run."""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from server.config import Settings
from streaming import media
from streaming.media import parse_playlist
from streaming.models import Recording, TranscodeJob
from streaming.storage import LocalStorage
from tests.conftest import assign_hosts, event_body, publish

SEGMENT_S = 4.0
PAST_TTL = media.DECISION_TTL + timedelta(seconds=1)


def fake_recording(db: Session, settings: Settings, event_id: int, duration: float = 60.0,
                   published_at: datetime | None = None) -> str:
    """A published recording as the transcoder leaves it (playlists, segments, poster, seek
    previews, its source), without running ffmpeg; returns its key."""
    recording = Recording(event_id=event_id, state="succeeded", duration_s=duration, width=320,
                          height=240, has_audio=True, renditions="360p", size_bytes=1000,
                          published_at=published_at or datetime.now(UTC))
    db.add(recording)
    db.commit()
    db.refresh(recording)
    assert recording.id is not None
    key = f"{event_id}-{recording.id}-{secrets.token_hex(12)}"
    folder = settings.media_dir / "hls" / key
    (folder / "360p").mkdir(parents=True)
    (folder / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=320x240\n"
        "360p/index.m3u8\n")
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-TARGETDURATION:4", "#EXT-X-MEDIA-SEQUENCE:0",
             "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS"]
    count = math.ceil(duration / SEGMENT_S)
    for index in range(count):
        length = min(SEGMENT_S, duration - index * SEGMENT_S)
        lines += [f"#EXTINF:{length:.6f},", f"seg_{index:05d}.ts"]
        (folder / "360p" / f"seg_{index:05d}.ts").write_bytes(b"G" * 188)
    (folder / "360p" / "index.m3u8").write_text("\n".join([*lines, "#EXT-X-ENDLIST", ""]))
    (folder / "poster.jpg").write_bytes(b"\xff\xd8poster")
    (folder / "thumbs.vtt").write_text("WEBVTT\n\n00:00:00.000 --> 00:00:10.000\n"
                                       "thumbs-001.jpg#xywh=0,0,160,90\n")
    (folder / "thumbs-001.jpg").write_bytes(b"\xff\xd8sheet")
    LocalStorage(settings.media_dir).source(recording.id).write_bytes(b"source")
    recording.media_key = key
    db.add(recording)
    db.add(TranscodeJob(recording_id=recording.id, event_id=event_id, state="succeeded",
                        progress=1.0, attempts=1, finished_at=recording.published_at))
    db.commit()
    return key


def broadcast(staff: Any, db: Session, premiere: datetime, *, published: bool = True) -> int:
    """A broadcast premiering at `premiere` (online, so it has a room page)."""
    admin = staff("admin")
    body = event_body(db, kind="broadcast", mode="online", venue="", address="",
                      starts_at=(premiere - timedelta(minutes=5)).isoformat(),
                      ends_at=(premiere + timedelta(hours=1)).isoformat(),
                      registration_opens_at=(premiere - timedelta(days=2)).isoformat(),
                      registration_closes_at=(premiere - timedelta(hours=1)).isoformat(),
                      premiere_at=premiere.isoformat())
    created = staff("editor", "education").post("/api/events", json=body)
    assert created.status_code == 201, created.text
    event_id = int(created.json()["id"])
    if published:
        publish(admin, event_id)
    return event_id


def url(key: str, name: str) -> str:
    return f"/media/hls/{key}/{name}"


def test_a_cancelled_broadcasts_recording_is_no_longer_served(client, staff, db, settings,
                                                             clock):
    event_id = broadcast(staff, db, datetime.now(UTC) - timedelta(hours=2))
    key = fake_recording(db, settings, event_id)
    before = client.get(f"/api/events/{event_id}/playback").json()
    assert before["state"] == "vod" and before["hls_url"] == url(key, "master.m3u8")
    assert client.get(url(key, "360p/seg_00000.ts")).status_code == 200
    assert "player-video" in client.get(f"/events/{event_id}/live").text
    editor = staff("editor", "education")
    captions = editor.post(f"/api/events/{event_id}/tracks",
                           files={"file": ("zh.vtt", b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n")},
                           data={"kind": "captions", "language": "zh", "label": "zh"}).json()
    assert client.get(captions["src"]).status_code == 200

    cancelled = staff("admin").post(f"/api/events/{event_id}/status",
                                    json={"status": "cancelled", "reason": "议题调整"})
    assert cancelled.status_code == 200, cancelled.text
    after = client.get(f"/api/events/{event_id}/playback").json()
    assert (after["state"], after["hls_url"], after["poster_url"]) == ("unavailable", None, None)
    assert "player-video" not in client.get(f"/events/{event_id}/live").text
    clock.advance(PAST_TTL)  # what this process knew of the key has run out
    for name in ("master.m3u8", "360p/index.m3u8", "360p/seg_00000.ts", "poster.jpg"):
        assert client.get(url(key, name)).status_code == 404, name
    assert client.get(captions["src"]).status_code == 404
    assert editor.get(captions["src"]).status_code == 200  # its unit still reads them
    assert editor.get(url(key, "360p/seg_00000.ts")).status_code == 200


def test_a_sessions_media_is_not_public_before_the_session_is(client, staff, db, settings):
    event_id = broadcast(staff, db, datetime.now(UTC) - timedelta(hours=2), published=False)
    key = fake_recording(db, settings, event_id)
    assert client.get(f"/api/events/{event_id}/playback").status_code == 404
    assert client.get(url(key, "master.m3u8")).status_code == 404
    assert client.get(url(key, "360p/seg_00000.ts")).status_code == 404
    # Its unit, an admin and its assigned host preview it; nobody's cache keeps it.
    host = staff("host")
    assign_hosts(db, event_id)
    for who in (staff("editor", "education"), staff("admin"), host):
        shown = who.get(url(key, "360p/seg_00000.ts"))
        assert shown.status_code == 200
        assert shown.headers["cache-control"] == "private, no-store"
    assert staff("editor", "health").get(url(key, "master.m3u8")).status_code == 404


def test_a_premieres_media_is_not_public_before_the_premiere(client, staff, db, settings,
                                                            clock):
    premiere = datetime.now(UTC) + timedelta(minutes=10)
    event_id = broadcast(staff, db, premiere)
    key = fake_recording(db, settings, event_id)
    assert client.get(f"/api/events/{event_id}/playback").json()["hls_url"] is None
    assert client.get(url(key, "360p/seg_00000.ts")).status_code == 404
    assert staff("editor", "education").get(url(key, "360p/seg_00000.ts")).status_code == 200
    clock.advance(timedelta(minutes=10, seconds=1))
    assert client.get(url(key, "360p/seg_00000.ts")).status_code == 200


def test_a_replaced_recording_is_404_and_deleted_after_a_grace_time(client, staff, db,
                                                                   settings, clock):
    from streaming.retention import sweep_media

    event_id = broadcast(staff, db, datetime.now(UTC) - timedelta(hours=2))
    old = fake_recording(db, settings, event_id,
                         published_at=datetime.now(UTC) - timedelta(hours=3))
    assert client.get(url(old, "360p/seg_00000.ts")).status_code == 200
    new = fake_recording(db, settings, event_id, published_at=datetime.now(UTC))
    clock.advance(PAST_TTL)
    assert client.get(url(old, "360p/seg_00000.ts")).status_code == 404
    assert client.get(url(old, "master.m3u8")).status_code == 404
    assert client.get(url(new, "360p/seg_00000.ts")).status_code == 200
    hls, sources = settings.media_dir / "hls", settings.media_dir / "sources"
    old_id, new_id = (int(key.split("-")[1]) for key in (old, new))
    storage = LocalStorage(settings.media_dir)
    grace = timedelta(seconds=settings.replaced_media_grace_s)
    assert grace == timedelta(minutes=10)
    # A viewer mid-segment is not cut: the files stay for the grace time.
    assert sweep_media(db, storage, grace, clock.now) == 0
    assert (hls / old).is_dir() and (sources / f"{old_id}.src").exists()
    clock.advance(grace)
    assert sweep_media(db, storage, grace, clock.now) == 1
    db.commit()
    assert not (hls / old).exists() and not (sources / f"{old_id}.src").exists()
    assert (hls / new / "master.m3u8").exists() and (sources / f"{new_id}.src").exists()
    assert db.get(Recording, old_id).media_key == ""
    assert sweep_media(db, storage, grace, clock.now) == 0  # nothing twice
    assert client.get(f"/api/events/{event_id}/playback").json()["hls_url"] == \
        url(new, "master.m3u8")


def test_the_sweep_deletes_failed_and_orphaned_files_after_the_grace_time(db, settings, staff,
                                                                          clock):
    from streaming.retention import sweep_media

    event_id = broadcast(staff, db, datetime.now(UTC) - timedelta(hours=2))
    playing = fake_recording(db, settings, event_id)
    storage = LocalStorage(settings.media_dir)
    failed = Recording(event_id=event_id, state="failed", duration_s=3)
    db.add(failed)
    db.commit()
    db.refresh(failed)
    assert failed.id is not None
    db.add(TranscodeJob(recording_id=failed.id, event_id=event_id, state="failed", attempts=3,
                        finished_at=clock.now))
    db.commit()
    storage.source(failed.id).write_bytes(b"damaged")
    orphan = storage.hls_root / f"{event_id}-999-{secrets.token_hex(12)}"  # publish, then died
    orphan.mkdir()
    (orphan / "master.m3u8").write_text("#EXTM3U\n")
    stray = storage.source(12345)  # a source no recording names
    stray.write_bytes(b"x")
    grace = timedelta(minutes=10)
    assert sweep_media(db, storage, grace, clock.now) == 0
    assert orphan.exists() and storage.source(failed.id).exists() and stray.exists()
    clock.advance(grace + timedelta(minutes=1))
    assert sweep_media(db, storage, grace, clock.now) == 3
    assert not orphan.exists() and not storage.source(failed.id).exists()
    assert not stray.exists()
    assert (storage.hls_root / playing / "master.m3u8").exists()


def _segments(text: str) -> list[str]:
    return [segment.uri for segment in parse_playlist(text).segments]


def test_a_premiere_serves_a_playlist_that_grows_with_the_clock(client, staff, db, settings,
                                                               clock):
    premiere = clock.now - timedelta(seconds=10)
    event_id = broadcast(staff, db, premiere)
    key = fake_recording(db, settings, event_id, duration=60.0)
    playback = client.get(f"/api/events/{event_id}/playback").json()
    assert playback["state"] == "premiere" and playback["thumbnails_url"] is None
    assert client.get(playback["hls_url"]).status_code == 200

    # At 10 s: the three segments begun (0, 4, 8 s) and two of lead.
    playlist = client.get(url(key, "360p/index.m3u8"))
    assert playlist.status_code == 200
    assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert playlist.headers["cache-control"] == "public, max-age=1"
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in playlist.text
    assert "#EXT-X-ENDLIST" not in playlist.text and "VOD" not in playlist.text
    assert playlist.text.startswith("#EXTM3U\n")
    assert _segments(playlist.text) == [f"seg_{i:05d}.ts" for i in range(5)]
    assert client.get(url(key, "360p/seg_00004.ts")).status_code == 200
    for later in ("seg_00005.ts", "seg_00014.ts"):
        early = client.get(url(key, f"360p/{later}"))
        assert (early.status_code, early.json()["error"]) == (404, "not_yet")
        assert early.headers["cache-control"] == "no-store"
    assert client.get(url(key, "thumbs.vtt")).status_code == 404  # previews show the end
    assert client.get(url(key, "thumbs-001.jpg")).status_code == 404

    clock.advance(timedelta(seconds=20))  # at 30 s
    assert _segments(client.get(url(key, "360p/index.m3u8")).text)[-1] == "seg_00009.ts"
    assert client.get(url(key, "360p/seg_00005.ts")).status_code == 200
    assert client.get(url(key, "360p/seg_00010.ts")).status_code == 404

    clock.advance(timedelta(seconds=31))  # the premiere is over: the whole recording, on demand
    assert client.get(f"/api/events/{event_id}/playback").json()["state"] == "vod"
    whole = client.get(url(key, "360p/index.m3u8"))
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in whole.text and whole.text.rstrip().endswith(
        "#EXT-X-ENDLIST")
    assert len(_segments(whole.text)) == 15
    assert client.get(url(key, "360p/seg_00014.ts")).status_code == 200
    assert client.get(url(key, "thumbs.vtt")).status_code == 200


def test_the_event_playlist_keeps_every_tag_of_a_segment() -> None:
    text = ("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n"
            "#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.0,\nseg_0.m4s\n#EXT-X-DISCONTINUITY\n"
            "#EXTINF:4.0,\nseg_1.m4s\n#EXTINF:4.0,\nseg_2.m4s\n#EXTINF:4.0,\nseg_3.m4s\n"
            "#EXT-X-ENDLIST\n")
    playlist = parse_playlist(text)
    assert [s.start for s in playlist.segments] == [0, 4, 8, 12]
    cut = playlist.event_text(0.5)
    assert cut == ("#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-VERSION:7\n"
                   "#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.0,\n"
                   "seg_0.m4s\n#EXT-X-DISCONTINUITY\n#EXTINF:4.0,\nseg_1.m4s\n#EXTINF:4.0,\n"
                   "seg_2.m4s\n")


def test_the_sweep_runs_in_the_workers_rounds() -> None:
    from server.worker import JOBS

    assert "replaced_media" in {job.name for job in JOBS}


def test_a_segment_is_held_back_wherever_its_playlist_lists_it(tmp_path) -> None:
    from streaming.media import released

    (tmp_path / "720p").mkdir()
    body = "".join(f"#EXTINF:4.0,\n720p/seg_{i}.ts\n" for i in range(10))
    (tmp_path / "720p.m3u8").write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:4\n{body}")
    (tmp_path / "master.m3u8").write_text("#EXTM3U\n720p.m3u8\n")
    assert released(tmp_path, "720p/seg_2.ts", 1.0)
    assert not released(tmp_path, "720p/seg_3.ts", 1.0)
    assert released(tmp_path, "720p/seg_3.ts", 4.0)
    assert released(tmp_path, "720p/init.mp4", 0.0)  # no playlist lists it as a segment
    assert not released(tmp_path, "thumbs.vtt", 1.0)
