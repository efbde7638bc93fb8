"""The player in Chromium on a 375-pixel phone: hls.js plays the recording, captions show, and
a premiere puts every viewer at the server's moment and keeps them from running ahead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streaming.transcode import run_one
from tests.conftest import event_body
from tests.frontend.browser import CSP_BLOCKED, CSP_WATCH
from tests.streaming.live import _recorded_session

PHONE = {"width": 375, "height": 812}

CAPTIONS = "WEBVTT\n\n00:00:00.000 --> 00:00:11.000\n欢迎收看政民互动直播间\n"


def test_a_recording_plays_through_hlsjs_with_captions_on_a_phone(
        staff, db, settings, clips, live_server, browser):
    event_id = _recorded_session(staff, db, settings, clips["long"])
    admin = staff("admin")
    assert admin.post(f"/api/events/{event_id}/close",
                      json={"minutes": "纪要"}).status_code == 200
    attached = admin.post(f"/api/events/{event_id}/tracks",
                          files={"file": ("zh.vtt", CAPTIONS.encode(), "text/vtt")},
                          data={"kind": "captions", "language": "zh", "label": "中文"})
    assert attached.status_code == 201, attached.text
    page = browser.new_page(viewport=PHONE)
    page.add_init_script(CSP_WATCH)
    try:
        page.goto(f"{live_server}/events/{event_id}/live")
        video = page.locator("video.player-video")
        assert video.is_visible()
        page.wait_for_function("() => window.Hls && document.querySelector('video').src"
                               ".startsWith('blob:')")  # Media Source: hls.js, not native
        page.evaluate("() => { const v = document.querySelector('video'); v.muted = true;"
                      " return v.play(); }")
        page.wait_for_function("() => document.querySelector('video').currentTime > 1.5",
                               timeout=15000)
        cue = page.wait_for_function(
            "() => { const t = document.querySelector('video').textTracks[0];"
            " return t && t.mode === 'showing' && t.activeCues && t.activeCues.length"
            " && t.activeCues[0].text; }", timeout=10000)
        assert cue.json_value() == "欢迎收看政民互动直播间"
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        page.close()


def test_a_premiere_starts_everyone_at_the_servers_moment(
        staff, db, settings, clips, live_server, browser):
    premiere = datetime.now(UTC) + timedelta(seconds=1)
    event_id = _recorded_session(
        staff, db, settings, clips["long"], kind="broadcast",
        starts_at=(premiere - timedelta(minutes=1)).isoformat(),
        ends_at=(premiere + timedelta(hours=1)).isoformat(),
        registration_closes_at=(premiere - timedelta(minutes=2)).isoformat(),
        premiere_at=premiere.isoformat())
    page = browser.new_page(viewport=PHONE)
    page.add_init_script(CSP_WATCH)
    try:
        wait = (premiere - datetime.now(UTC)).total_seconds() + 2.5
        page.wait_for_timeout(max(0, wait) * 1000)  # the premiere has run 2.5 s
        page.goto(f"{live_server}/events/{event_id}/live")
        assert page.locator(".player-premiere").is_visible()
        page.evaluate("() => { document.querySelector('video').muted = true; }")
        page.locator(".player-join-button").click()
        page.wait_for_function("() => document.querySelector('video').currentTime > 0.5",
                               timeout=15000)
        expected = (datetime.now(UTC) - premiere).total_seconds()
        shown = page.evaluate("() => document.querySelector('video').currentTime")
        assert abs(shown - expected) < 1.5, (shown, expected)
        # Running ahead is taken back to the premiere's moment.
        page.evaluate("() => { const v = document.querySelector('video');"
                      " v.currentTime = v.currentTime + 6; }")
        page.wait_for_timeout(1500)
        expected = (datetime.now(UTC) - premiere).total_seconds()
        shown = page.evaluate("() => document.querySelector('video').currentTime")
        assert shown < expected + 1, (shown, expected)
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        page.close()


def test_an_editor_uploads_with_progress_and_sees_the_job_finish(
        staff, db, settings, clips, live_server, browser):
    """The console's panel: chunked upload with its bar, then the transcode's progress, then the
    recording ready to play, on a phone-sized page."""
    import threading

    from tests.conftest import make_user
    from tests.frontend.browser import sign_in

    make_user(db, "uploader", "editor", "education")
    now = datetime.now(UTC)
    editor = staff("editor", "education")
    body = event_body(db, starts_at=(now - timedelta(hours=2)).isoformat(),
                      ends_at=(now - timedelta(hours=1)).isoformat(),
                      registration_opens_at=(now - timedelta(days=2)).isoformat(),
                      registration_closes_at=(now - timedelta(hours=3)).isoformat())
    event_id = editor.post("/api/events", json=body).json()["id"]
    stop = threading.Event()

    def worker() -> None:  # what `kaifang serve` runs beside the pages
        while not stop.is_set():
            if not run_one(settings):
                stop.wait(0.2)

    thread = threading.Thread(target=worker, daemon=True)
    page = browser.new_page(viewport=PHONE)
    page.add_init_script(CSP_WATCH)
    try:
        sign_in(page, live_server, "uploader", then=f"/console/events/{event_id}")
        page.get_by_label("视频或音频文件").set_input_files(str(clips["video"]))
        page.get_by_role("button", name="上传", exact=True).click()
        page.wait_for_function("() => document.querySelector('#recording-upload-bar')"
                               ".value === 100")
        page.get_by_text("文件检查通过，等待转码……").wait_for()
        thread.start()
        page.get_by_text("已就绪").wait_for(timeout=30000)  # the page reloads when done
        assert page.get_by_text("正在向公众播放").is_visible()
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        stop.set()
        page.close()
