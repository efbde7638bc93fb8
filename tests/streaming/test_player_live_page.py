"""The room's page around a webcast, as the server writes it: before the session a hidden
player waits for the picture beside the countdown; on air the player is the live one, and a
signal that dropped is said in the room and over the picture from the first paint."""

from __future__ import annotations

from typing import Any

from frontend import portal_room
from tests.streaming.live import _live_session


def _live_playback(signal: str) -> Any:
    def answer(*_args: Any) -> dict[str, Any]:
        return {"state": "live", "hls_url": "/media/live/abc/master.m3u8", "server_time": "",
                "position_s": 12.0, "duration_s": None, "premiere_at": None,
                "poster_url": None, "thumbnails_url": None, "signal": signal}
    return answer


def test_before_the_session_a_hidden_player_waits_beside_the_countdown(client, staff, db):
    event_id = _live_session(staff, db, live=False)
    page = client.get(f"/events/{event_id}/live").text
    assert 'class="room-countdown"' in page
    assert 'data-state="waiting"' in page and 'data-src=""' in page
    assert "js/player_live.js" in page
    assert "信号中断" not in page  # no notice before there is a signal to lose


def test_on_air_the_room_plays_live_and_says_when_the_signal_dropped(client, staff, db,
                                                                    monkeypatch):
    event_id = _live_session(staff, db)
    monkeypatch.setattr(portal_room, "playback_of", _live_playback("waiting"))
    page = client.get(f"/events/{event_id}/live").text
    assert 'data-state="live"' in page and 'data-src="/media/live/abc/master.m3u8"' in page
    assert 'class="room-countdown"' not in page
    assert page.count("信号中断，正在等待") == 2  # the room's notice and the picture's
    assert "直播" in page and "回到直播" in page
    monkeypatch.setattr(portal_room, "playback_of", _live_playback("lost"))
    assert client.get(f"/events/{event_id}/live").text.count("直播信号已中断") == 2
    monkeypatch.setattr(portal_room, "playback_of", _live_playback("on"))
    page = client.get(f"/events/{event_id}/live").text
    assert "信号中断" not in page and "直播信号已中断" not in page
