"""Issue 17's done-when, end to end in Chromium with a fake camera and the real hub and encoder:
staff go live from the console's go-live page (camera → MediaRecorder → the ingest socket →
the live ladder), watch the private preview, put the session on air; a phone plays it live
through hls.js and posts a comment; after `ended` the room comes back as the archive, which
plays from the same segments with that comment at its time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import event_body, make_user, publish
from tests.frontend.browser import CSP_BLOCKED, CSP_WATCH, screenshot, sign_in
from tests.streaming.camera import camera_browser  # noqa: F401 - the fixture

PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}
PLAYS = "() => { const v = document.querySelector('{0}'); return v && v.currentTime > {1}; }"


def _started_session(staff: Any, db: Any) -> int:
    """An online session, published, that started a minute ago (it may end), post-moderated."""
    admin = staff("admin")
    now = datetime.now(UTC)
    body = event_body(db, mode="online", venue="", address="", moderation="post",
                      starts_at=(now - timedelta(minutes=1)).isoformat(),
                      ends_at=(now + timedelta(hours=2)).isoformat(),
                      registration_opens_at=(now - timedelta(days=1)).isoformat(),
                      registration_closes_at=(now - timedelta(minutes=2)).isoformat())
    event_id = admin.post("/api/events", json=body).json()["id"]
    publish(admin, event_id)
    return int(event_id)


def _plays(page: Any, selector: str, beyond: float, timeout_s: float) -> None:
    page.wait_for_function(PLAYS.replace("{0}", selector).replace("{1}", str(beyond)),
                           timeout=timeout_s * 1000)


def _text_is(page: Any, selector: str, expected: str, timeout_s: float) -> None:
    page.wait_for_function(
        "([s, t]) => (document.querySelector(s) || {}).textContent === t", arg=[selector, expected],
        timeout=timeout_s * 1000)


def test_staff_go_live_from_the_browser_a_phone_watches_and_comments_the_archive_replays_it(
        app, client, staff, db, live_server, camera_browser):  # noqa: F811
    assert getattr(app.state, "live_hub", None) is not None, "the live hub (h17/encoder) runs"
    event_id = _started_session(staff, db)
    make_user(db, "webcaster", "editor", "education")
    console = camera_browser.new_context(viewport=DESKTOP, locale="zh-CN")
    desk = console.new_page()
    desk.add_init_script(CSP_WATCH)
    phone_context = camera_browser.new_context(viewport=PHONE, locale="zh-CN",
                                               is_mobile=True, has_touch=True)
    phone = phone_context.new_page()
    phone.add_init_script(CSP_WATCH)
    try:
        # ---- the console: the camera out, the private preview back -----------------------
        sign_in(desk, live_server, "webcaster", then=f"/console/events/{event_id}/golive")
        desk.get_by_role("button", name="打开摄像头").click()
        desk.wait_for_function("() => document.getElementById('golive-local').videoWidth > 0")
        desk.get_by_role("button", name="开始推流").click()
        _text_is(desk, "#golive-state", "预览（公众看不到）", 30)
        _plays(desk, "#golive-preview", 0.5, 40)  # the encoder's own output, staff only
        desk.wait_for_function(
            "() => document.getElementById('golive-latency').textContent.includes('落后直播点')",
            timeout=10000)
        # Before it is on air the public has no picture.
        before = client.get(f"/api/events/{event_id}/playback").json()
        assert before["hls_url"] is None

        # ---- on air -------------------------------------------------------------------------
        desk.get_by_role("button", name="开始直播（上线）").click()
        _text_is(desk, "#golive-state", "直播中", 20)
        on_air = time.monotonic()
        while True:  # the live master is named once a segment is on air: seconds
            live = client.get(f"/api/events/{event_id}/playback").json()
            if live["hls_url"]:
                break
            assert time.monotonic() - on_air < 20, live
            time.sleep(0.5)
        assert live["state"] == "live" and live["signal"] == "on", live

        # ---- a phone plays it live through hls.js and comments --------------------------------
        phone.goto(f"{live_server}/events/{event_id}/live")
        _plays(phone, "video.player-video", 1.0, 40)
        assert phone.evaluate("() => document.querySelector('video.player-video').src"
                              ".startsWith('blob:')")  # Media Source: hls.js
        assert phone.locator(".player-live-badge").is_visible()
        phone.locator("#live-nickname").fill("手机观众")
        phone.locator(".live-join button[type=submit]").click()
        phone.locator("#live-message").fill("画面清楚，声音正常")
        phone.locator(".live-submit").click()
        phone.locator(".live-list .live-text", has_text="画面清楚，声音正常").wait_for(
            timeout=10000)
        said = [m for m in client.get(f"/api/events/{event_id}/comments").json()
                if m["text"] == "画面清楚，声音正常"]
        assert len(said) == 1 and said[0]["video_time"] is not None, said
        video_time = float(said[0]["video_time"])
        assert 0 < video_time <= time.monotonic() - on_air + 2
        screenshot(phone, "golive-phone-live")
        phone.wait_for_timeout(4000)  # more picture after the comment

        # ---- off air: the archive, within seconds ---------------------------------------------
        desk.get_by_role("button", name="结束活动").click()
        ended = time.monotonic()
        desk.get_by_role("button", name="停止推流").click()
        while True:
            answer = client.get(f"/api/events/{event_id}/playback").json()
            if answer["state"] == "vod" and answer["hls_url"]:
                break
            assert time.monotonic() - ended < 15, answer
            time.sleep(0.5)
        assert answer["duration_s"] and answer["duration_s"] >= video_time

        # The phone's page comes back as the archive by itself, the comment at its time.
        phone.wait_for_selector(".player[data-state=vod]", timeout=30000)
        clock = f"{int(video_time) // 60}:{int(video_time) % 60:02d}"
        jump = phone.get_by_role("button", name=f"跳到 {clock}")
        jump.wait_for(timeout=10000)
        jump.click()
        phone.wait_for_function(
            f"() => Math.abs(document.querySelector('video.player-video').currentTime"
            f" - {video_time}) < 1.5", timeout=10000)
        phone.evaluate("() => { const v = document.querySelector('video.player-video');"
                       " v.muted = true; v.play(); }")
        _plays(phone, "video.player-video", video_time + 0.8, 20)
        item = phone.locator(".live-list .live-item", has_text="画面清楚，声音正常")
        assert item.get_attribute("aria-current") == "true"
        screenshot(phone, "golive-phone-archive")
        assert phone.evaluate(CSP_BLOCKED) == [] and desk.evaluate(CSP_BLOCKED) == []
    finally:
        phone_context.close()
        console.close()
