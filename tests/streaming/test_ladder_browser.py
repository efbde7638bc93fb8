"""A phone's portrait video through the whole ladder, played by hls.js in Chromium: two
renditions kept portrait, named by their class, and one shared sound that is heard (decoded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.frontend.browser import CSP_BLOCKED, CSP_WATCH
from tests.streaming.conftest import _ffmpeg
from tests.streaming.live import _recorded_session

PHONE = {"width": 375, "height": 812}


@pytest.fixture(scope="module")
def portrait(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clip = tmp_path_factory.mktemp("portrait") / "phone.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=480x854:rate=25:duration=4",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=4", "-c:v", "libx264",
            "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(clip))
    return clip


def test_a_portrait_recording_plays_portrait_with_one_shared_sound(
        staff, db, settings, portrait, live_server, browser):
    event_id = _recorded_session(staff, db, settings, portrait)
    assert staff("admin").post(f"/api/events/{event_id}/close",
                               json={"minutes": "纪要"}).status_code == 200
    page = browser.new_page(viewport=PHONE)
    page.add_init_script(CSP_WATCH)
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    try:
        page.goto(f"{live_server}/events/{event_id}/live")
        page.wait_for_function("() => window.Hls && document.querySelector('video').src"
                               ".startsWith('blob:')")
        page.evaluate("() => { const v = document.querySelector('video'); v.muted = true;"
                      " return v.play(); }")
        page.wait_for_function("() => document.querySelector('video').currentTime > 1.5",
                               timeout=15000)
        shown = page.evaluate("() => { const v = document.querySelector('video');"
                              " return [v.videoWidth, v.videoHeight,"
                              " v.webkitAudioDecodedByteCount]; }")
        assert shown[0] < shown[1], shown  # portrait stays portrait
        assert shown[2] > 0, shown  # the audio group's rendition plays with the picture
        assert any(url.endswith("/audio/seg_00000.ts") for url in fetched)
        options = page.locator(".player-quality option").all_inner_texts()
        assert options[1:] == ["360p", "480p"], options  # hls.js orders by bitrate
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        page.close()
