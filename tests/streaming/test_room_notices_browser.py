"""What the live room tells a viewer about their own message, on a 390-pixel phone during a
premiere: "waits for a host" goes when a host approves it and becomes "not published" when a
host rejects it; a slow-mode refusal says how many seconds to wait; a message sent while the
video is paused carries no video time (the replay would put it at 0:00)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from streaming.models import LiveMessage
from tests.conftest import assign_hosts
from tests.frontend.browser import CSP_BLOCKED, screenshot
from tests.streaming.live import _recorded_session
from tests.streaming.room_pages import join, send, shows, viewer_page

HELD = "您的留言已提交，等待主持人审核"


def _message(db: Any, text: str) -> LiveMessage:
    db.expire_all()
    return db.exec(select(LiveMessage).where(LiveMessage.text == text)).one()


def test_a_viewers_notices_follow_their_message_and_say_how_long_to_wait(
        staff, db, settings, clips, live_server, browser, ticking):
    premiere = datetime.now(UTC) + timedelta(hours=1)
    event_id = _recorded_session(
        staff, db, settings, clips["long"], kind="broadcast", moderation="pre",
        starts_at=(premiere - timedelta(minutes=10)).isoformat(),
        ends_at=(premiere + timedelta(hours=1)).isoformat(),
        registration_closes_at=(premiere - timedelta(hours=1)).isoformat(),
        premiere_at=premiere.isoformat())
    ticking.set(premiere + timedelta(seconds=0.5))  # 直播中, its premiere just begun
    assert staff("admin").post(f"/api/events/{event_id}/status",
                               json={"status": "live"}).status_code == 200
    host = staff("host")
    assign_hosts(db, event_id)
    page = viewer_page(browser, live_server, event_id)
    notice = page.locator(".live-notice")
    try:
        join(page, "居民甲")
        page.wait_for_function("() => document.querySelector('video').currentTime > 0.5",
                               timeout=15000)
        send(page, "路灯什么时候修")
        page.get_by_text(HELD).wait_for()
        asked = _message(db, "路灯什么时候修")
        assert asked.video_time is not None and asked.video_time > 0.4  # sent while playing
        assert host.post(f"/api/comments/{asked.id}/moderation",
                         json={"action": "approve"}).status_code == 200
        shows(page, ["路灯什么时候修"])
        notice.wait_for(state="hidden")  # approved: the notice has nothing left to say
        # Sent while the video is paused: no time, so the replay does not put it at 0:00.
        page.evaluate("() => document.querySelector('video').pause()")
        page.wait_for_timeout(2100)  # the two seconds between any two messages
        send(page, "不该公开的话")
        page.get_by_text(HELD).wait_for()
        rejected = _message(db, "不该公开的话")
        assert rejected.video_time is None
        assert host.post(f"/api/comments/{rejected.id}/moderation",
                         json={"action": "reject"}).status_code == 200
        page.get_by_text("主持人未发布您的留言").wait_for()
        assert page.get_by_text(HELD).count() == 0
        # Slow mode: the refusal says how long to wait.
        assert host.put(f"/api/events/{event_id}/room",
                        json={"slow_mode_s": 30}).status_code == 200
        page.get_by_text("慢速模式").wait_for()
        send(page, "再问一句")
        page.get_by_text("秒后再发").wait_for()
        waited = notice.text_content() or ""
        assert any(str(s) in waited for s in range(25, 31)), waited
        screenshot(page, "room-slow-mode-phone", full_page=False)
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        page.context.close()
