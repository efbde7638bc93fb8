"""The player in Chromium on a 390-pixel phone: hls.js plays the recording with our controls
only (a key acts once), captions show, the chapter menu follows playback, the embed fits a
16:9 frame; a premiere counts down, then starts by itself, muted, at the server's moment, keeps
every viewer from running ahead, and says it is a premiere only while it is one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from streaming.models import TranscodeJob
from streaming.transcode import run_one
from tests.conftest import event_body
from tests.frontend.browser import CSP_BLOCKED, CSP_WATCH, screenshot
from tests.streaming.live import _recorded_session

PHONE = {"width": 390, "height": 844}

CAPTIONS = "WEBVTT\n\n00:00:00.000 --> 00:00:11.000\n欢迎收看政民互动直播间\n"
CHAPTERS = ("WEBVTT\n\n00:00:00.000 --> 00:00:05.000\n开场：主持人介绍本次会议的议程和参会单位\n\n"
            "00:00:05.000 --> 00:00:12.000\n群众提问与部门现场答复\n")
# Each play and pause of the video, in order.
WATCH_VIDEO = """() => { window.__acts = [];
  const v = document.querySelector('video');
  v.addEventListener('play', () => window.__acts.push('play'));
  v.addEventListener('pause', () => window.__acts.push('pause')); }"""


def _video(page: Any, what: str) -> Any:
    return page.evaluate(f"() => document.querySelector('video').{what}")


def test_a_recording_plays_with_our_controls_captions_and_chapters_on_a_phone(
        staff, db, settings, clips, live_server, browser):
    event_id = _recorded_session(staff, db, settings, clips["long"])
    admin = staff("admin")
    assert admin.post(f"/api/events/{event_id}/close",
                      json={"minutes": "纪要"}).status_code == 200
    for kind, body, label in (("captions", CAPTIONS, "中文"), ("chapters", CHAPTERS, "章节")):
        attached = admin.post(f"/api/events/{event_id}/tracks",
                              files={"file": ("zh.vtt", body.encode(), "text/vtt")},
                              data={"kind": kind, "language": "zh", "label": label})
        assert attached.status_code == 201, attached.text
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.add_init_script(CSP_WATCH)
    try:
        page.goto(f"{live_server}/events/{event_id}/live")
        video = page.locator("video.player-video")
        assert video.is_visible()
        page.wait_for_function("() => window.Hls && document.querySelector('video').src"
                               ".startsWith('blob:')")  # Media Source: hls.js, not native
        # One bar: ours. The browser's controls would show a second one and act on keys too.
        assert _video(page, "controls") is False
        assert page.locator("input[type=range]:visible").count() == 1
        # Its length shows before it plays (the 12 s clip), not only once time moves.
        assert page.locator(".player-time").inner_text() == "0:00 / 0:12"
        page.evaluate(WATCH_VIDEO)
        video.click()  # plays, and the keys now go to the player
        page.wait_for_function("() => document.querySelector('video').currentTime > 1.5",
                               timeout=15000)
        page.keyboard.press(" ")
        page.wait_for_timeout(300)
        assert page.evaluate("() => window.__acts") == ["play", "pause"]  # once, not 3 times
        assert _video(page, "paused") is True
        assert page.get_by_role("button", name="播放", exact=True).is_visible()
        page.evaluate("() => { document.querySelector('video').volume = 0.5; }")
        page.keyboard.press("ArrowDown")
        assert abs(_video(page, "volume") - 0.4) < 0.001  # 0.1 a press, as the key list says
        page.keyboard.press("ArrowUp")
        page.keyboard.press("ArrowUp")
        assert abs(_video(page, "volume") - 0.6) < 0.001
        page.keyboard.press(" ")
        page.wait_for_function("() => !document.querySelector('video').paused")
        cue = page.wait_for_function(
            "() => { const t = document.querySelector('video').textTracks[0];"
            " return t && t.mode === 'showing' && t.activeCues && t.activeCues.length"
            " && t.activeCues[0].text; }", timeout=10000)
        assert cue.json_value() == "欢迎收看政民互动直播间"
        # The chapter menu names the chapter playing now.
        chapters = page.locator(".player-chapters")
        assert chapters.evaluate("s => s.selectedIndex") == 0
        page.evaluate("() => { document.querySelector('video').currentTime = 6; }")
        page.wait_for_function("() => document.querySelector('.player-chapters')"
                               ".selectedIndex === 1", timeout=5000)
        # 清晰度 and 章节 keep their words on one line at 390 px.
        page.evaluate("() => { document.querySelector('.player-quality-label').hidden = false; }")
        for label in (".player-quality-label", ".player-chapters-label"):
            box = page.locator(label).bounding_box()
            assert box is not None and box["height"] < 60, (label, box)
            assert box["x"] + box["width"] <= PHONE["width"], (label, box)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(page, "player-phone-vod", full_page=False)
        assert page.evaluate(CSP_BLOCKED) == []
        # The embed in a 16:9 frame on a phone: the player only, nothing spills out.
        frame = context.new_page()
        frame.set_viewport_size({"width": 358, "height": 201})
        frame.goto(f"{live_server}/embed/{event_id}")
        frame.locator("video.player-video").wait_for()
        sizes = frame.evaluate("() => ({w: document.documentElement.scrollWidth,"
                               " h: document.documentElement.scrollHeight})")
        assert sizes == {"w": 358, "h": 201}, sizes
        shown = frame.locator("video.player-video").bounding_box()
        assert shown is not None and shown["height"] >= 190, shown
        seek = frame.locator(".player-seek").bounding_box()
        assert seek is not None and seek["y"] + seek["height"] <= 201, seek
        screenshot(frame, "player-embed-358x201", full_page=False)
    finally:
        context.close()


def test_a_broadcast_live_before_its_premiere_counts_down_then_plays_muted_at_its_moment(
        staff, db, settings, clips, live_server, browser, ticking):
    premiere = datetime.now(UTC) + timedelta(hours=1)
    event_id = _recorded_session(
        staff, db, settings, clips["long"], kind="broadcast",
        starts_at=(premiere - timedelta(minutes=10)).isoformat(),
        ends_at=(premiere + timedelta(hours=1)).isoformat(),
        registration_closes_at=(premiere - timedelta(hours=1)).isoformat(),
        premiere_at=premiere.isoformat())
    ticking.set(premiere - timedelta(seconds=4))
    went = staff("admin").post(f"/api/events/{event_id}/status", json={"status": "live"})
    assert went.status_code == 200, went.text  # 直播中, four seconds before the premiere
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.add_init_script(CSP_WATCH)
    try:
        page.goto(f"{live_server}/events/{event_id}/live")
        assert page.get_by_text("距首映开始").is_visible()
        assert page.locator(".room-countdown").is_visible()
        assert page.get_by_text("活动正在进行").count() == 0
        screenshot(page, "room-live-before-premiere-phone", full_page=False)
        # The page comes back with the player when the premiere starts, by itself, and plays.
        page.locator("video.player-video").wait_for(timeout=10000)
        page.wait_for_function("() => { const v = document.querySelector('video');"
                               " return !v.paused && v.currentTime > 0.5; }", timeout=15000)
        assert _video(page, "muted") is True  # the only way a browser lets it start alone
        expected = (ticking() - premiere).total_seconds()
        assert abs(_video(page, "currentTime") - expected) < 1.5, expected
        unmute = page.get_by_role("button", name="点击取消静音")
        assert unmute.is_visible()
        assert page.locator(".player-join-button").is_hidden()
        assert _video(page, "controls") is False
        assert page.locator("input[type=range]:visible").count() == 1
        screenshot(page, "player-phone-premiere", full_page=False)
        unmute.click()
        assert _video(page, "muted") is False
        assert unmute.is_hidden()
        # Running ahead is taken back to the premiere's moment.
        page.evaluate("() => { const v = document.querySelector('video');"
                      " v.currentTime = v.currentTime + 6; }")
        page.wait_for_timeout(1500)
        expected = (ticking() - premiere).total_seconds()
        assert _video(page, "currentTime") < expected + 1, expected
        # The embed of the premiere in a phone's 16:9 frame: it starts muted too, and fits.
        frame = context.new_page()
        frame.set_viewport_size({"width": 358, "height": 201})
        frame.goto(f"{live_server}/embed/{event_id}")
        frame.get_by_role("button", name="点击取消静音").wait_for(timeout=15000)
        sizes = frame.evaluate("() => [document.documentElement.scrollWidth,"
                               " document.documentElement.scrollHeight]")
        assert sizes == [358, 201], sizes
        screenshot(frame, "player-embed-premiere-358x201", full_page=False)
        frame.close()
        # Near its end: once the premiere is over, the page no longer says 首映中.
        ticking.set(premiere + timedelta(seconds=9.5))
        page.reload()
        assert page.locator(".player-premiere").is_visible()
        page.locator(".player-premiere").wait_for(state="hidden", timeout=10000)
        assert page.locator(".player-seek").is_enabled()
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        context.close()


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
        # The bar follows the job's progress as the worker reports it, with a time left.
        job = db.exec(select(TranscodeJob).where(TranscodeJob.event_id == event_id)).one()
        for progress in (0.2, 0.5):
            job.state, job.progress = "running", progress
            db.add(job)
            db.commit()
            page.get_by_text(f"正在转码：{round(progress * 100)}%").wait_for(timeout=5000)
            page.wait_for_function(f"() => document.querySelector('#recording-upload-bar')"
                                   f".value === {round(progress * 100)}")
        page.get_by_text("预计还需约").wait_for(timeout=5000)
        screenshot(page, "console-transcode-progress", full_page=False)
        job.state, job.progress = "queued", 0.0
        db.add(job)
        db.commit()
        thread.start()
        page.get_by_text("已就绪").wait_for(timeout=30000)  # the page reloads when done
        # A draft's recording is not yet shown to anyone: the panel does not say it is.
        assert page.get_by_text("正在向公众播放").count() == 0
        assert page.get_by_text("将向公众播放（尚未公开）").is_visible()
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        stop.set()
        page.close()
