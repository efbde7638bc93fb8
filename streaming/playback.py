"""What a session's player does now: the premiere clock and on-demand playback."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from events.models import Event
from streaming import phase
from streaming.live_state import LivePlayback
from streaming.models import Recording
from streaming.phase import Phase
from streaming.storage import Storage


def playback_of(event: Event, recording: Recording | None, storage: Storage,
                now: datetime, live: LivePlayback | None = None) -> dict[str, Any]:
    """What a player does now: wait (upcoming), join the premiere at `position_s`, play on
    demand (vod), or nothing (unavailable). A premiere's video is not named before it; a
    cancelled session's is never named again (streaming.media serves nobody its files); the
    seek previews, which show the whole video, wait for a premiere's end. The rules are
    streaming.phase's (playback_state). While live, `live` (streaming.live_state) names the
    webcast's master and its live edge once on air, and its publisher's signal."""
    duration = recording.duration_s if recording is not None else None
    answer: dict[str, Any] = {"state": "unavailable", "hls_url": None,
                              "server_time": now.isoformat(), "position_s": None,
                              "duration_s": duration, "premiere_at": None, "poster_url": None,
                              "thumbnails_url": None,
                              "signal": live.signal if live is not None else None}
    if phase.phase_of(event, now) is Phase.cancelled:
        return answer
    url = None
    if recording is not None and recording.media_key:
        url = storage.url(recording.media_key, "master.m3u8")
    premiere = phase.premiere_of(event)
    if premiere is not None:
        answer["premiere_at"] = premiere.isoformat()
    playable = recording.duration_s if recording is not None and url is not None else None
    answer["state"] = phase.playback_state(event, now, playable)
    if answer["state"] == "premiere":
        position = phase.premiere_position(event, now, playable)
        answer["position_s"] = None if position is None else round(position, 3)
    if answer["state"] == "live" and live is not None and live.hls_url is not None:
        answer["hls_url"], answer["position_s"] = live.hls_url, live.position_s
    if answer["state"] in phase.PLAYING and recording is not None:
        answer["hls_url"] = url
        answer["poster_url"] = storage.url(recording.media_key, "poster.jpg")
        if recording.width and answer["state"] == "vod":
            answer["thumbnails_url"] = storage.url(recording.media_key, "thumbs.vtt")
    return answer
