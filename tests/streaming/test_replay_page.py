"""The room's page after a premiere, as the server renders it: the comments panel becomes the
replay (what static/js/replay.js needs: the comments' address, its texts, the 弹幕 button and the
overlay over the video), each message with its video time; an open room and a recording with
nothing said carry none of it."""

from __future__ import annotations

import json
import re

from frontend.portal_room import video_clock
from tests.streaming.live import _live_session, _premiered_session, _said_during_premiere

HTML = {"accept": "text/html"}


def _panel(page: str) -> str:
    found = re.search(r'<section class="panel live[^"]*" id="live".*?</section>', page, re.S)
    assert found, "no comments panel"
    return found.group(0)


def test_after_a_premiere_the_panel_replays_its_comments(client, staff, db, settings, clips):
    event_id = _premiered_session(staff, db, settings, clips["video"])
    _said_during_premiere(db, event_id, [("开场前就来了", None), ("第一条", 1.0),
                                         ("<img src=x onerror=alert(1)>", 2.0)])
    assert client.get(f"/api/events/{event_id}/playback").json()["state"] == "vod"
    page = client.get(f"/events/{event_id}/live", headers=HTML).text
    panel = _panel(page)
    assert 'class="panel live replay"' in panel and 'data-replay="1"' in panel
    assert f'data-comments-url="/api/events/{event_id}/comments"' in panel
    texts = json.loads(re.search(r'data-replay-text="([^"]*)"', panel).group(1)
                       .replace("&#34;", '"').replace("&quot;", '"'))
    assert texts["seek"] == "跳到 %(time)s"
    assert "<h2 id=\"live-title\">留言回放</h2>" in panel
    # Each message with its time, as text until the script makes it a button; none for the one
    # sent without a position.
    assert re.findall(r'<span class="replay-time">([^<]*)</span>', panel) == ["0:01", "0:02"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in panel and "<img" not in panel
    # The overlay over the picture and its button (the script shows it), and the script.
    assert '<div class="player-danmaku" aria-hidden="true" hidden></div>' in page
    button = re.search(r'<button[^>]*player-danmaku-toggle[^>]*>([^<]*)</button>', page)
    assert button and button.group(1) == "弹幕" and 'aria-pressed="false"' in button.group(0)
    assert "js/replay.js" in page and "css/replay.css" in page
    assert 'class="room-stage room-stage-side"' in page
    english = client.get(f"/events/{event_id}/live?lang=en", headers=HTML).text
    assert ">On-screen comments</button>" in english and "Comment replay" in english


def test_an_open_room_or_a_recording_with_no_comment_has_no_replay(client, staff, db, settings,
                                                                   clips):
    live_id = _live_session(staff, db, moderation="post")
    page = client.get(f"/events/{live_id}/live", headers=HTML).text
    assert 'data-open="1"' in page and "data-replay" not in page
    assert "player-danmaku" not in page and "js/replay.js" not in page
    quiet_id = _premiered_session(staff, db, settings, clips["video"])
    page = client.get(f"/events/{quiet_id}/live", headers=HTML).text
    assert "player-video" in page and 'id="live"' not in page
    assert "player-danmaku" not in page and "js/replay.js" not in page


def test_a_video_time_reads_as_on_the_player() -> None:
    assert [video_clock(s) for s in (0, 1.0, 59.9, 61, 3600, 3725.5)] == \
        ["0:00", "0:01", "0:59", "1:01", "1:00:00", "1:02:05"]
