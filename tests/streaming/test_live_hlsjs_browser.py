"""hls.js in Chromium plays a webcast's public master as the hub composes it (the audio group,
the EVENT playlists, the segments as they come), near the live edge."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlmodel import Session

from tests.streaming.live import _live_session
from tests.streaming.live_publish import Publisher, wait_for

PAGE = """<!doctype html><meta charset="utf-8"><video id="v" muted playsinline></video>
<script src="/static/vendor/hlsjs/hls.min.js"></script>
<script>
  window.fatal = [];
  const video = document.getElementById("v");
  const hls = new Hls();
  window.hls = hls;
  hls.on(Hls.Events.ERROR, (_, data) => { if (data.fatal) window.fatal.push(data.details); });
  hls.on(Hls.Events.MANIFEST_PARSED, () => video.play());
  hls.loadSource(MASTER);
  hls.attachMedia(video);
</script>"""


def test_hlsjs_plays_the_webcast_live(live_server: str, staff: Any, db: Session, app: Any,
                                      browser: Any) -> None:
    event_id = _live_session(staff, db)
    publisher = Publisher(SimpleNamespace(app=app), event_id, seconds=16)
    viewer = staff("host")
    master = wait_for(lambda: viewer.get(f"/api/events/{event_id}/playback").json()["hls_url"])
    page = browser.new_page()
    try:
        page.route(f"{live_server}/hlstest", lambda route: route.fulfill(
            status=200, content_type="text/html",
            body=PAGE.replace("MASTER", f'"{live_server}{master}"')))
        page.goto(f"{live_server}/hlstest")
        page.wait_for_function("document.getElementById('v').currentTime > 3", timeout=25_000)
        played = page.evaluate("""() => ({fatal: window.fatal, levels: hls.levels.map(
            l => l.height), audio: hls.audioTracks.length, latency: hls.latency,
            time: document.getElementById('v').currentTime})""")
    finally:
        page.close()
        publisher.join()
    assert played["fatal"] == [] and played["levels"] == [180] and played["audio"] == 1
    assert played["latency"] < 8, played
    print("hls.js behind the live edge:", played["latency"])
