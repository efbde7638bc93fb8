"""A premiere in Chromium: hls.js plays on through a playlist that grows with the server's clock,
while the end of the recording is not to be fetched before its time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select

from events.models import Event
from streaming import media
from streaming.media import parse_playlist
from streaming.models import Recording
from tests.frontend.browser import CSP_BLOCKED, CSP_WATCH
from tests.streaming.live import _recorded_session

PHONE = {"width": 375, "height": 812}


def test_hlsjs_plays_on_through_a_premieres_growing_playlist(
        staff, db, settings, clips, live_server, browser, monkeypatch):
    monkeypatch.setattr(media, "LEAD_SEGMENTS", 1)  # the tightest lead: one segment ahead
    premiere = datetime.now(UTC) + timedelta(minutes=10)
    event_id = _recorded_session(
        staff, db, settings, clips["long"], kind="broadcast", mode="online", venue="",
        address="", starts_at=(premiere - timedelta(minutes=1)).isoformat(),
        ends_at=(premiere + timedelta(hours=1)).isoformat(),
        registration_closes_at=(premiere - timedelta(minutes=2)).isoformat(),
        premiere_at=premiere.isoformat())
    # Transcoded: the premiere is moved to a second from now, as if the page were opened then.
    premiere = datetime.now(UTC) + timedelta(seconds=1)
    db.execute(update(Event).where(col(Event.id) == event_id).values(premiere_at=premiere))
    db.commit()
    recording = db.exec(select(Recording).where(Recording.event_id == event_id)).one()
    folder = settings.media_dir / "hls" / recording.media_key
    variant = next(line for line in (folder / "master.m3u8").read_text().splitlines()
                   if line and not line.startswith("#"))
    segments = parse_playlist((folder / variant).read_text()).segments
    assert len(segments) >= 3
    base = f"/media/hls/{recording.media_key}/{variant.rpartition('/')[0]}"
    page = browser.new_page(viewport=PHONE)
    page.add_init_script(CSP_WATCH)
    try:
        wait = (premiere - datetime.now(UTC)).total_seconds() + 1.5
        page.wait_for_timeout(max(0, wait) * 1000)
        page.goto(f"{live_server}/events/{event_id}/live")
        fetch = "async (u) => (await fetch(u)).status"
        assert page.evaluate(fetch, f"{base}/{segments[-1].uri}") == 404  # not yet
        listed = page.evaluate("async (u) => (await fetch(u)).text()",
                               f"/media/hls/{recording.media_key}/{variant}")
        assert "#EXT-X-PLAYLIST-TYPE:EVENT" in listed and "#EXT-X-ENDLIST" not in listed
        page.evaluate("() => { document.querySelector('video').muted = true; }")
        # It starts by itself (muted) at the premiere's moment: no 加入首映 to press.
        page.wait_for_function("() => document.querySelector('video').currentTime > 0.5",
                               timeout=15000)
        # The bar spans the whole recording, not the part of it listed so far.
        assert float(page.locator(".player-seek").get_attribute("max") or 0) == \
            round(recording.duration_s, 1)
        # hls.js reloads the playlist and plays into segments listed after it started.
        page.wait_for_function(
            f"() => document.querySelector('video').currentTime > {segments[-1].start + 0.5}",
            timeout=20000)
        expected = (datetime.now(UTC) - premiere).total_seconds()
        shown = page.evaluate("() => document.querySelector('video').currentTime")
        assert abs(shown - expected) < 1.5, (shown, expected)
        assert page.evaluate(fetch, f"{base}/{segments[-1].uri}") == 200
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        page.close()
