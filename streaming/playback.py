"""What a session's player does now: the premiere clock and on-demand playback."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from events.models import Event, EventKind, EventStatus
from streaming.models import Recording
from streaming.storage import Storage


def playback_of(event: Event, recording: Recording | None, storage: Storage,
                now: datetime) -> dict[str, Any]:
    """What a player does now: wait (upcoming), join the premiere at `position_s`, play on
    demand (vod), or nothing (unavailable). A premiere's video is not named before it; a
    cancelled session's is never named again (streaming.media serves nobody its files); the
    seek previews, which show the whole video, wait for a premiere's end."""
    duration = recording.duration_s if recording is not None else None
    answer: dict[str, Any] = {"state": "unavailable", "hls_url": None,
                              "server_time": now.isoformat(), "position_s": None,
                              "duration_s": duration, "premiere_at": None, "poster_url": None,
                              "thumbnails_url": None}
    if event.status == EventStatus.cancelled:
        return answer
    url = None
    if recording is not None and recording.media_key:
        url = storage.url(recording.media_key, "master.m3u8")
    premiere = event.premiere_at if event.kind == EventKind.broadcast else None
    if premiere is not None:
        answer["premiere_at"] = premiere.isoformat()
        if now < premiere:
            answer["state"] = "upcoming"
            return answer
        if recording is None or url is None:
            return answer
        position = (now - premiere).total_seconds()
        if position < recording.duration_s:
            answer.update(state="premiere", position_s=round(position, 3))
        else:
            answer["state"] = "vod"
    elif event.status == EventStatus.live:
        answer["state"] = "live"  # the live stream's address comes with issue 11
        return answer
    elif url is not None and event.status in (EventStatus.ended, EventStatus.archived):
        answer["state"] = "vod"
    elif now < event.starts_at:
        answer["state"] = "upcoming"
        return answer
    if answer["state"] in ("premiere", "vod") and recording is not None:
        answer["hls_url"] = url
        answer["poster_url"] = storage.url(recording.media_key, "poster.jpg")
        if recording.width and answer["state"] == "vod":
            answer["thumbnails_url"] = storage.url(recording.media_key, "thumbs.vtt")
    return answer
