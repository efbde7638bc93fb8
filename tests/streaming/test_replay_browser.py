"""Comments replayed over the recording, in Chromium on a 390-pixel phone: each flies over the
video when the video reaches its time (not before, and not a flood of skipped ones after a jump
ahead), the side list marks it and its time seeks the video, markup stays text, and the 弹幕
button turns the overlay off for good on this device."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe

from tests.frontend.browser import CSP_BLOCKED, CSP_WATCH, screenshot
from tests.frontend.test_accessibility_browser import blocking_violations
from tests.streaming.live import _premiered_session, _said_during_premiere

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 800}
MARKUP = "<img src=x onerror=alert(1)>"
SAID = [("开场前的留言", None), ("一秒的留言", 1.0), (MARKUP, 2.0), ("三秒的留言", 3.0)]
# A comment's markup must not run: alert() would say so.
TRAP = "window.__alerted = false; window.alert = () => { window.__alerted = true; };"
# Notes each message that shows over the video, with the video's time at that moment.
WATCH_OVERLAY = """() => { window.__flown = [];
  const video = document.querySelector('video');
  new MutationObserver(records => records.forEach(record => record.addedNodes.forEach(node => {
    if (node.isConnected && node.classList.contains('is-shown'))
      window.__flown.push({text: node.textContent, at: video.currentTime}); })))
    .observe(document.querySelector('.player-danmaku'), {childList: true}); }"""
FLOWN = "() => window.__flown.map(f => f.text)"


def _open(browser: Any, live_server: str, event_id: int, **options: Any) -> Any:
    context = browser.new_context(locale="zh-CN", **{"viewport": PHONE, **options})
    page = context.new_page()
    page.add_init_script(CSP_WATCH)
    page.add_init_script(TRAP)
    page.comment_reads = []  # what replay.js asks of the comments' API
    page.on("request", lambda request: page.comment_reads.append(request.url)
            if "/comments" in request.url else None)
    page.goto(f"{live_server}/events/{event_id}/live")
    _ready(page)
    return page


def _ready(page: Any) -> None:
    """replay.js has every message, and the video can seek."""
    page.locator('#live[data-replay-ready="1"]').wait_for()
    page.wait_for_function("() => document.querySelector('video').readyState >= 2",
                           timeout=15000)


def _seek(page: Any, seconds: float) -> None:
    page.evaluate("s => new Promise(done => { const v = document.querySelector('video');"
                  " v.addEventListener('seeked', () => setTimeout(done, 100), {once: true});"
                  " v.currentTime = s; })", seconds)


def _play(page: Any) -> None:
    page.evaluate("() => { const v = document.querySelector('video'); v.muted = true;"
                  " return v.play(); }")


def _video_time(page: Any) -> float:
    return float(page.evaluate("() => document.querySelector('video').currentTime"))


def _item(page: Any, text: str) -> Any:
    return page.locator(".live-list .live-item", has_text=text)


def test_comments_come_back_at_their_video_time_over_the_video_and_in_the_list(
        staff, db, settings, clips, live_server, browser):
    event_id = _premiered_session(staff, db, settings, clips["long"])
    _said_during_premiere(db, event_id, SAID)
    page = _open(browser, live_server, event_id)
    try:
        toggle = page.get_by_role("button", name="弹幕")
        assert toggle.is_visible() and toggle.get_attribute("aria-pressed") == "true"
        assert page.get_by_role("heading", name="留言回放").is_visible()
        assert page.locator(".live-list .live-text").all_text_contents() == \
            [text for text, _time in SAID]
        # The page rendered the first page: replay.js keeps it and reads on after its last
        # seq, not everything again from 0.
        assert [url.split("?")[1] for url in page.comment_reads] == \
            [f"after={len(SAID)}&limit=500"]
        # A message sent without a position is listed, with no time to jump to.
        assert _item(page, "开场前的留言").get_by_role("button").count() == 0
        for label in ("跳到 0:01", "跳到 0:02", "跳到 0:03"):
            assert page.get_by_role("button", name=label).is_visible()
        page.evaluate(WATCH_OVERLAY)

        # A jump ahead does not pour out every message it skipped; the list catches up.
        _seek(page, 8)
        assert page.evaluate(FLOWN) == []
        assert _item(page, "三秒的留言").get_attribute("aria-current") == "true"
        _seek(page, 0)
        assert page.locator(".live-list [aria-current]").count() == 0
        assert page.locator(".live-list .replay-reached").count() == 0

        # Played from the start: the 1 s message flies when the video passes 1 s, not before.
        _play(page)
        page.wait_for_function("() => window.__flown.length > 0", timeout=10000)
        first = page.evaluate("() => window.__flown[0]")
        assert first["text"] == "一秒的留言" and 1.0 <= first["at"] < 1.8, first
        flying = page.locator(".player-danmaku .danmaku-item", has_text="一秒的留言")
        left = flying.bounding_box()["x"]
        page.wait_for_timeout(300)
        assert flying.bounding_box()["x"] < left  # it moves across the picture
        assert "replay-reached" in (_item(page, "一秒的留言").get_attribute("class") or "")
        assert _item(page, "一秒的留言").get_attribute("aria-current") == "true"
        assert "replay-reached" not in (_item(page, "三秒的留言").get_attribute("class") or "")

        # Markup in a comment shows as the characters typed, over the video and in the list.
        page.wait_for_function(f"() => window.__flown.some(f => f.text === {MARKUP!r})",
                               timeout=10000)
        page.wait_for_timeout(600)
        screenshot(page, "replay-phone-overlay", full_page=False)
        assert page.locator(".player-danmaku img, .live-list img").count() == 0
        assert page.evaluate("() => window.__alerted") is False

        # A time in the list takes the video there; the focus stays on it.
        page.evaluate("() => document.querySelector('video').pause()")
        page.get_by_role("button", name="跳到 0:03").click()
        page.wait_for_function("() => Math.abs(document.querySelector('video').currentTime"
                               " - 3) < 0.3")
        page.wait_for_function("() => document.querySelector('.live-list [aria-current]')"
                               ".textContent.includes('三秒的留言')")
        assert page.evaluate("() => document.activeElement.getAttribute('aria-label')") == \
            "跳到 0:03"
        screenshot(page, "replay-phone", full_page=False)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        assert blocking_violations(Axe(), page) == []

        # 弹幕 off: nothing flies any more, and the choice outlives a reload.
        toggle.click()
        assert toggle.get_attribute("aria-pressed") == "false"
        assert page.locator(".player-danmaku").is_hidden()
        assert page.locator(".player-danmaku .danmaku-item").count() == 0
        page.evaluate("() => { window.__flown = []; }")
        _seek(page, 0.5)
        _play(page)
        page.wait_for_function("() => document.querySelector('video').currentTime > 2.3",
                               timeout=10000)
        assert page.evaluate(FLOWN) == []
        assert _item(page, "一秒的留言").get_attribute("class").count("replay-reached") == 1
        page.reload()
        _ready(page)
        assert page.get_by_role("button", name="弹幕").get_attribute("aria-pressed") == "false"
        assert page.locator(".player-danmaku").is_hidden()
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        page.context.close()


def test_the_overlay_waits_to_be_asked_when_motion_is_reduced_and_the_list_sits_beside_when_wide(
        staff, db, settings, clips, live_server, browser):
    event_id = _premiered_session(staff, db, settings, clips["long"])
    _said_during_premiere(db, event_id, SAID[1:2])
    page = _open(browser, live_server, event_id, reduced_motion="reduce")
    try:
        toggle = page.get_by_role("button", name="弹幕")
        assert toggle.get_attribute("aria-pressed") == "false"
        assert page.locator(".player-danmaku").is_hidden()
        # On a phone the list is under the video.
        video = page.locator("video").bounding_box()
        panel = page.locator("#live").bounding_box()
        assert panel["y"] >= video["y"] + video["height"]
        toggle.click()  # asked for: the message shows, still, where it can be read
        page.evaluate(WATCH_OVERLAY)
        _seek(page, 0.8)
        _play(page)
        page.wait_for_function("() => window.__flown.length > 0", timeout=10000)
        shown = page.locator(".player-danmaku .danmaku-item").bounding_box()
        page.wait_for_timeout(300)
        assert page.locator(".player-danmaku .danmaku-item").bounding_box()["x"] == shown["x"]
        assert shown["x"] >= video["x"] and shown["x"] + shown["width"] <= video["x"] + \
            video["width"]
        page.set_viewport_size(WIDE)
        video = page.locator("video").bounding_box()
        panel = page.locator("#live").bounding_box()
        assert panel["x"] >= video["x"] + video["width"] and panel["y"] < video["y"] + 50
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        page.context.close()
