"""The live room's comments in Chromium on a 375-pixel phone: join with a nickname, send, see
the message as text on this page and another viewer's, a reload that shows it once, and a
pre-moderated room where the host's approval brings the held message in."""

from __future__ import annotations

from axe_playwright_python.sync_playwright import Axe
from sqlmodel import select

from streaming.models import Viewer
from tests.conftest import assign_hosts
from tests.frontend.browser import (
    CSP_BLOCKED,
    CSP_WATCH,
    PHONE,
    no_horizontal_scroll,
    screenshot,
)
from tests.frontend.test_accessibility_browser import blocking_violations
from tests.streaming.live import _live_session
from tests.streaming.room_pages import connected as _connected
from tests.streaming.room_pages import join as _join
from tests.streaming.room_pages import send as _send
from tests.streaming.room_pages import texts as _texts
from tests.streaming.room_pages import viewer_page as _viewer_page

MARKUP = "<b>粗</b><script>x()</script>"

def test_a_comment_reaches_both_viewers_as_text_and_a_reload_shows_it_once(
        client, staff, db, live_server, browser):
    event_id = _live_session(staff, db, moderation="post")
    first = _viewer_page(browser, live_server, event_id)
    second = _viewer_page(browser, live_server, event_id)
    try:
        assert first.get_by_text("留言即时显示；主持人会删除不当言论。").is_visible()
        assert first.get_by_text("暂无留言。").is_visible()
        _join(first, "老王")
        _join(second, "小李")
        assert first.locator(".live-nickname").text_content() == "老王"
        _send(first, MARKUP)
        for page in (first, second):
            page.locator(".live-list .live-text").first.wait_for()
            assert _texts(page) == [MARKUP]
            assert page.locator(".live-list .live-author").all_text_contents() == ["老王"]
            assert page.locator(".live-list b, .live-list script").count() == 0
            assert page.evaluate("() => window.__ran") is False
            # Only the latest, once, for a screen reader.
            page.wait_for_function("() => document.querySelector('.live-announce')"
                                   ".textContent.length > 0")
            assert page.locator(".live-announce").text_content() == f"老王：{MARKUP}"
        assert first.get_by_label("留言内容").input_value() == ""
        # The reload keeps the viewer (the cookie) and shows the backlog once.
        first.reload()
        _connected(first)
        first.wait_for_timeout(500)  # time for a doubled frame to arrive, if one came
        assert _texts(first) == [MARKUP]
        assert first.locator(".live-nickname").text_content() == "老王"
        assert first.locator(".live-join").is_hidden()
        assert first.evaluate("() => window.__ran") is False
        screenshot(first, "live-room-phone")
        assert blocking_violations(Axe(), first) == []  # joined, with a message
        for page in (first, second):
            assert no_horizontal_scroll(page)
            assert page.evaluate(CSP_BLOCKED) == []
    finally:
        first.context.close()
        second.context.close()


def test_a_held_message_appears_once_a_host_approves_it(client, staff, db, live_server,
                                                        browser):
    event_id = _live_session(staff, db, moderation="pre")
    host = staff("host")
    assign_hosts(db, event_id)
    page = _viewer_page(browser, live_server, event_id)
    try:
        assert page.get_by_text("留言经主持人审核后向所有人显示。").is_visible()
        _join(page, "张阿姨")
        page.get_by_label("向主持人提问").check()
        _send(page, "停车难怎么解决？")
        page.get_by_text("您的留言已提交，等待主持人审核").wait_for()
        assert _texts(page) == []
        queue = host.get(f"/api/events/{event_id}/comments", params={"state": "held"}).json()
        assert [m["text"] for m in queue] == ["停车难怎么解决？"]
        assert queue[0]["kind"] == "question"
        approved = host.post(f"/api/comments/{queue[0]['id']}/moderation",
                             json={"action": "approve"})
        assert approved.status_code == 200, approved.text
        page.locator(".live-list .live-text").first.wait_for()
        assert _texts(page) == ["停车难怎么解决？"]
        assert page.locator(".live-list .live-kind").all_text_contents() == ["提问"]
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        page.context.close()


# Keeps the page's sockets where a test can reach them (to drop one as a phone's network does).
TRACK_SOCKETS = """(() => { const Native = window.WebSocket; window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(url, protocols) { super(url, protocols); window.__sockets.push(this); } }; })();"""


def test_a_dropped_connection_comes_back_by_itself_and_misses_nothing(
        client, staff, db, live_server, browser):
    from tests.streaming.live import _frame, _socket
    from tests.streaming.live import _join as join_over_http
    from tests.streaming.live import _send as send_over_socket

    event_id = _live_session(staff, db, moderation="post")
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.add_init_script(CSP_WATCH)
    page.add_init_script(TRACK_SOCKETS)
    other = join_over_http(client, event_id, "小李")
    try:
        page.goto(f"{live_server}/events/{event_id}/live")
        _join(page, "老王")
        _send(page, "第一条")
        page.locator(".live-list .live-text").first.wait_for()
        with _socket(live_server, event_id, other["viewer_token"]) as ws:
            _frame(ws)  # hello
            page.evaluate("() => window.__sockets[window.__sockets.length - 1].close()")
            page.get_by_text("重新连接中…").wait_for()
            send_over_socket(ws, "断线期间的留言")
            page.locator(".live-list .live-text").nth(1).wait_for()
        _connected(page)
        assert _texts(page) == ["第一条", "断线期间的留言"]
        urls = page.evaluate("() => window.__sockets.map(s => s.url)")
        # It watched before joining (no token), joined, and came back from its own position
        # (seq 1, stream position 1), not from "a little before" it.
        assert len(urls) == 3 and "token=" not in urls[0] and "token=" in urls[1]
        assert "after=1&pos=1&" in urls[2]
        assert page.locator(".live-state").is_hidden()
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        context.close()


def test_a_banned_viewer_is_told_why_and_the_page_stops_reconnecting(
        client, staff, db, live_server, browser):
    event_id = _live_session(staff, db, moderation="post")
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.add_init_script(CSP_WATCH)
    page.add_init_script(TRACK_SOCKETS)
    try:
        page.goto(f"{live_server}/events/{event_id}/live")
        _join(page, "小广告")
        _send(page, "加微信")
        page.locator(".live-list .live-text").first.wait_for()
        viewer_id = db.exec(select(Viewer).where(Viewer.nickname == "小广告")).one().id
        banned = staff("admin").post(f"/api/events/{event_id}/bans",
                                     json={"viewer_id": viewer_id, "reason": "广告"})
        assert banned.status_code == 201, banned.text
        page.locator(".live-list .live-text").first.wait_for(state="detached")  # `removed`
        page.evaluate("() => window.__sockets[window.__sockets.length - 1].close()")
        page.get_by_text("您已被主持人移出直播间。").wait_for()  # the socket closed with 4403
        page.wait_for_timeout(2500)
        assert page.evaluate("() => window.__sockets.length") == 3  # watch, join; no loop
        assert page.locator(".live-send").is_hidden() and page.locator(".live-join").is_hidden()
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        context.close()


def test_a_comment_during_a_premiere_keeps_the_videos_moment(
        staff, db, settings, clips, live_server, browser):
    from datetime import UTC, datetime, timedelta

    from tests.streaming.live import _recorded_session

    premiere = datetime.now(UTC) + timedelta(seconds=1)
    event_id = _recorded_session(
        staff, db, settings, clips["long"], kind="broadcast", moderation="post",
        starts_at=(premiere - timedelta(minutes=1)).isoformat(),
        ends_at=(premiere + timedelta(hours=1)).isoformat(),
        registration_closes_at=(premiere - timedelta(minutes=2)).isoformat(),
        premiere_at=premiere.isoformat())
    page = browser.new_page(viewport=PHONE)
    page.add_init_script(CSP_WATCH)
    try:
        wait = (premiere - datetime.now(UTC)).total_seconds() + 0.5
        page.wait_for_timeout(max(0, wait) * 1000)  # the premiere has begun
        page.goto(f"{live_server}/events/{event_id}/live")
        assert page.locator(".player-premiere").is_visible()
        page.evaluate("() => { document.querySelector('video').muted = true; }")
        # It starts by itself (muted) at the premiere's moment: no 加入首映 to press.
        page.wait_for_function("() => document.querySelector('video').currentTime > 1",
                               timeout=15000)
        _join(page, "首映观众")
        _send(page, "画面很清楚")
        page.locator(".live-list .live-text").first.wait_for()
        # It flies over the video too (弹幕, on by default).
        page.locator(".player-danmaku .danmaku-item", has_text="画面很清楚").wait_for()
        shown = page.evaluate("() => document.querySelector('video').currentTime")
        said = staff("admin").get(f"/api/events/{event_id}/comments").json()
        assert [m["text"] for m in said] == ["画面很清楚"]
        assert 0.5 < said[0]["video_time"] <= shown + 0.1, (said, shown)
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        page.close()
