"""The live room's page as the server renders it: the comments panel while the room takes
messages, the viewer kept by the cookie, markup shown as text, and the read-only list once the
room is closed."""

from __future__ import annotations

import json
from typing import Any

from events.models import Event
from frontend import portal_room
from streaming import api_live, room
from tests.streaming.live import _join, _live_session

HTML = {"accept": "text/html"}


def _say(client: Any, event_id: int, token: str, words: str) -> dict[str, Any]:
    with client.websocket_connect(f"/ws/events/{event_id}?token={token}") as ws:
        assert ws.receive_json()["type"] == "hello"
        ws.send_text(json.dumps({"type": "comment", "text": words, "client_id": "c1"}))
        while True:  # past how many watch
            frame = dict(ws.receive_json())
            if frame["type"] != "viewers":
                return frame


def test_an_open_room_shows_the_panel_and_keeps_the_viewer_across_a_reload(client, staff, db):
    event_id = _live_session(staff, db, moderation="post")
    page = client.get(f"/events/{event_id}/live", headers=HTML)
    assert page.status_code == 200
    assert 'data-open="1"' in page.text and 'data-joined="0"' in page.text
    assert 'data-moderation="post"' in page.text and "暂无留言。" in page.text
    assert "js/live.js" in page.text and "<script>" not in page.text.split("</h1>")[1]
    viewer = _join(client, event_id, "老王")  # the client keeps the kaifang_viewer cookie
    said = _say(client, event_id, viewer["viewer_token"], "<b>粗</b><script>x()</script>")
    assert (said["type"], said["seq"]) == ("comment", 1)
    again = client.get(f"/events/{event_id}/live", headers=HTML)
    assert 'data-joined="1"' in again.text and 'data-last-seq="1"' in again.text
    assert "&lt;b&gt;粗&lt;/b&gt;&lt;script&gt;x()&lt;/script&gt;" in again.text
    assert "<b>粗</b>" not in again.text
    assert '<strong class="live-nickname">老王</strong>' in again.text


def test_a_banned_viewer_is_told_and_a_closed_room_is_read_only(client, staff, db, app):
    event_id = _live_session(staff, db, moderation="post")
    viewer = _join(client, event_id, "小李")
    _say(client, event_id, viewer["viewer_token"], "第一条")
    admin = staff("admin")
    banned = admin.post(f"/api/events/{event_id}/bans",
                        json={"viewer_id": viewer["viewer_id"], "reason": "广告"})
    assert banned.status_code == 201, banned.text
    page = client.get(f"/events/{event_id}/live", headers=HTML)
    assert "您已被主持人移出直播间。" in page.text and "live-join" not in page.text
    assert "第一条" not in page.text  # a banned viewer's messages disappear
    # Another viewer, from another address (the ban covers this one's new viewers).
    _other, other_token = room.join(db, app.state.signer, db.get(Event, event_id), "老赵",
                                    "198.51.100.20")
    db.commit()
    _say(client, event_id, other_token, "第二条")
    closed = room.room_of(db, event_id)
    closed.closed = True
    db.add(closed)
    db.commit()
    page = client.get(f"/events/{event_id}/live", headers=HTML)
    assert 'data-open="0"' in page.text and "活动期间的留言" in page.text
    assert "第二条" in page.text and "live-send" not in page.text


def test_a_room_with_nothing_said_and_not_open_has_no_panel(client, staff, db):
    event_id = _live_session(staff, db, moderation="pre", live=False)
    page = client.get(f"/events/{event_id}/live", headers=HTML)
    assert page.status_code == 200 and 'id="live"' not in page.text


def test_the_page_reads_the_cookie_the_api_sets() -> None:
    assert portal_room.VIEWER_COOKIE == api_live.VIEWER_COOKIE
