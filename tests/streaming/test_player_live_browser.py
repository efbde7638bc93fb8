"""The live player in Chromium on a phone, against a live EVENT playlist that grows as the
encoder's would (tests/streaming/live_media.py) and a playback answer the test steers: the
room turns from its countdown to the live picture by itself, shows 直播 at the live edge and
回到直播 after a seek back (the bar built from what is seekable: a live duration is
Infinity), says 信号中断，正在等待 and 直播信号已中断 over the picture and in the room, and
opens the archive when the session ends."""

from __future__ import annotations

from typing import Any

from tests.frontend.browser import CSP_BLOCKED, CSP_WATCH, screenshot
from tests.streaming.live import _live_session
from tests.streaming.live_media import GrowingStream

PHONE = {"width": 375, "height": 812}


def _live_answer(stream: GrowingStream, signal: str) -> dict[str, Any]:
    return {"state": "live", "hls_url": stream.url, "server_time": None, "position_s": 8.0,
            "duration_s": None, "premiere_at": None, "poster_url": None,
            "thumbnails_url": None, "signal": signal}


def test_the_room_turns_live_by_itself_and_the_player_follows_the_live_edge(
        staff, db, live_server, browser, tmp_path):
    event_id = _live_session(staff, db, live=False)  # online, starts in 10 minutes
    stream = GrowingStream(tmp_path / "live")
    steer: dict[str, Any] = {"answer": None}
    asked: list[str] = []

    def playback(route: Any) -> None:
        asked.append(steer["answer"]["state"] if steer["answer"] else "real")
        if steer["answer"] is None:
            route.continue_()  # the server's own answer: upcoming
        else:
            route.fulfill(json=steer["answer"])

    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.add_init_script(CSP_WATCH)
    page.route(f"**/api/events/{event_id}/playback", playback)
    stream.route(page)
    try:
        page.goto(f"{live_server}/events/{event_id}/live")
        assert page.locator(".room-countdown").is_visible()
        assert page.locator(".player").is_hidden()
        page.wait_for_timeout(1500)
        assert asked == ["real"]  # it asks by itself while it waits
        steer["answer"] = _live_answer(stream, "on")
        # On air: the player takes the screen's place and plays muted (the page, written
        # before the room opened, comes back once for the comments panel, then mounts it).
        page.wait_for_function("() => document.querySelector('video').currentTime > 1",
                               timeout=25000)
        assert page.locator(".room-countdown").is_hidden()
        assert page.evaluate("() => document.querySelector('video').duration") is None \
            or page.evaluate("() => document.querySelector('video').duration === Infinity")
        badge = page.locator(".player-live-badge")
        assert badge.is_visible() and badge.inner_text().strip() == "直播"
        page.wait_for_function(  # at the edge once it plays there: red, no 回到直播
            "() => !document.querySelector('.player-live-badge').classList"
            ".contains('is-behind')", timeout=5000)
        assert page.get_by_role("button", name="回到直播").is_hidden()
        assert page.locator(".player-time").is_hidden()
        # hls.js plays near the edge: three 2 s segments behind it, give or take one.
        edge = "(() => { const v = document.querySelector('video');" \
               " return v.seekable.end(v.seekable.length - 1) - v.currentTime; })()"
        page.wait_for_function(f"() => {edge} < 9", timeout=10000)
        # The bar spans what is seekable: from the first segment to the edge.
        seek_max = float(page.locator(".player-seek").get_attribute("max") or 0)
        assert seek_max > 6
        screenshot(page, "player-live-phone")

        # A seek back into the EVENT playlist (DVR): behind the edge, 回到直播 shows.
        page.evaluate("() => { document.querySelector('video').currentTime = 0.5; }")
        back = page.get_by_role("button", name="回到直播")
        back.wait_for(state="visible", timeout=5000)
        assert "is-behind" in (badge.get_attribute("class") or "")
        assert page.locator(".player-time").inner_text().startswith("-")
        page.wait_for_timeout(2500)  # hls.js does not pull the viewer back by itself
        assert page.evaluate("() => document.querySelector('video').currentTime") < 5
        back.click()
        page.wait_for_function(f"() => {edge} < 9", timeout=5000)
        back.wait_for(state="hidden", timeout=5000)

        # The publisher dropped: the picture and the room say so, then when it is lost.
        steer["answer"] = _live_answer(stream, "waiting")
        overlay, notice = page.locator(".player-signal"), page.locator(".room-signal")
        overlay.wait_for(state="visible", timeout=8000)
        assert overlay.inner_text() == notice.inner_text() == "信号中断，正在等待"
        assert notice.is_visible()
        steer["answer"] = _live_answer(stream, "lost")
        page.wait_for_function(
            "() => document.querySelector('.room-signal').textContent === '直播信号已中断'",
            timeout=8000)
        steer["answer"] = _live_answer(stream, "on")
        overlay.wait_for(state="hidden", timeout=8000)
        assert notice.is_hidden()

        # Ended: the page comes back as the archive (here: the server's own answer again).
        steer["answer"] = {**_live_answer(stream, "on"), "state": "unavailable", "hls_url": None}
        page.locator(".room-signal", has_text="直播已结束").wait_for(timeout=8000)
        steer["answer"] = {**_live_answer(stream, "on"), "state": "vod"}
        with page.expect_navigation(timeout=15000):
            pass
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        context.close()
