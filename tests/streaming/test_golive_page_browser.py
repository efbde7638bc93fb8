"""The go-live page in Chromium with a fake camera, on a phone, against a hub that keeps what it
is fed: the camera shows, 开始推流 sends MediaRecorder's WebM (a stream ffprobe reads: VP8 or
H.264 video and Opus sound) in order, the page shows the bitrate and what the server received,
停止推流 from the keyboard ends it as stopped (not dropped), and the hub's refusal is said in
Chinese."""

from __future__ import annotations

import json
import subprocess
import time

from tests.conftest import make_user
from tests.frontend.browser import CSP_BLOCKED, CSP_WATCH, no_horizontal_scroll, screenshot, sign_in
from tests.streaming.camera import camera_browser  # noqa: F401 - the fixture
from tests.streaming.live import _live_session
from tests.streaming.recording_hub import RecordingHub

PHONE = {"width": 375, "height": 812}


def test_the_page_sends_the_camera_and_says_what_became_of_it(
        app, client, staff, db, live_server, camera_browser, tmp_path):  # noqa: F811
    event_id = _live_session(staff, db, live=False)
    make_user(db, "golive-editor", "editor", "education")
    app.state.live_hub = hub = RecordingHub()
    context = camera_browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.add_init_script(CSP_WATCH)
    url = f"/console/events/{event_id}/golive"
    try:
        sign_in(page, live_server, "golive-editor", then=url)
        page.get_by_role("button", name="打开摄像头").click()
        page.wait_for_function("() => document.getElementById('golive-local').videoWidth > 0")
        assert page.locator("#golive-camera-select option").count() >= 2  # the fake camera
        start = page.get_by_role("button", name="开始推流")
        assert start.is_enabled()
        start.click()
        deadline = time.monotonic() + 20
        while not hub.feeds or len(hub.feeds[0][3].chunks) < 3:
            assert time.monotonic() < deadline, "no chunks reached the hub"
            page.wait_for_timeout(200)
        page.wait_for_function(
            "() => /[1-9][0-9]* kbit\\/s/.test(document.getElementById('golive-kbps')"
            ".textContent)", timeout=5000)
        page.wait_for_function(
            "() => document.getElementById('golive-received').textContent.includes('MB')")
        assert page.locator("#golive-send-state").inner_text() == "推流中：服务器正在接收画面。"
        assert no_horizontal_scroll(page)
        screenshot(page, "golive-phone")
        stop = page.get_by_role("button", name="停止推流")
        stop.focus()
        page.keyboard.press("Enter")  # keyboard usable
        page.wait_for_function(
            "() => document.getElementById('golive-send-state').textContent === '已停止推流。'",
            timeout=10000)
        feed = hub.feeds[0][3]
        deadline = time.monotonic() + 5
        while feed.closed is None:
            assert time.monotonic() < deadline
            page.wait_for_timeout(100)
        assert feed.closed == ""  # stopped, not dropped
        webm = tmp_path / "sent.webm"
        webm.write_bytes(b"".join(feed.chunks))
        assert webm.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # the WebM header came first
        probed = json.loads(subprocess.run(
            ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(webm)],
            check=True, capture_output=True, text=True).stdout)
        codecs = {s["codec_type"]: s["codec_name"] for s in probed["streams"]}
        assert codecs.get("video") in ("vp8", "h264", "vp9") and codecs.get("audio") == "opus"

        hub.busy = True  # a second publisher is refused: the page says why, in Chinese
        page.get_by_role("button", name="开始推流").click()
        notice = page.locator("#golive-notice")
        notice.wait_for(state="visible", timeout=5000)
        assert notice.inner_text() == "服务器拒绝了推流：已有推流端在推流，请先停止它。"
        page.wait_for_function(
            "() => !document.getElementById('golive-start').hidden", timeout=5000)

        # The session's buttons act in place (the camera would go on sending): on air, then
        # an end refused before the start, said in Chinese.
        page.get_by_role("button", name="开始直播（上线）").click()
        page.wait_for_function(
            "() => document.getElementById('golive-status').textContent === '直播中'")
        assert page.url.endswith(url)
        assert client.get(f"/api/events/{event_id}").json()["status"] == "live"
        page.get_by_role("button", name="结束活动").click()
        page.wait_for_function("() => document.getElementById('golive-notice').textContent"
                               ".startsWith('未能更改活动状态：活动尚未开始')")
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        context.close()
