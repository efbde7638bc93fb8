"""The live room as its users meet it, in Chromium: a viewer's page at a phone's size and a host's
console at a desk, side by side. The viewer posts; the host, from the keyboard, approves it and
answers another (官方回复), pins and unpins; both viewers see it all, in order, once; a reload of
the viewer's page misses nothing, not even what was approved while it reloaded; the host closes
the room and the viewer's page says so. And a comment sent during a premiere comes back over the
recording afterwards at the moment of the video it was sent at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from events.models import Event
from tests.conftest import assign_hosts, make_user
from tests.frontend.browser import CSP_BLOCKED, CSP_WATCH, screenshot, sign_in
from tests.helpers import registered
from tests.streaming.live import _live_session, _recorded_session
from tests.streaming.room_pages import connected, join, queue_is, send, shows, viewer_page

DESK = {"width": 1280, "height": 900}


def _post(page: Any, words: str) -> None:
    """Sends a message in a pre-moderated room: the page says it waits for a host."""
    send(page, words)
    page.get_by_text("您的留言已提交，等待主持人审核").wait_for()


def test_a_viewer_and_a_host_side_by_side(client, staff, db, live_server, browser):
    event_id = _live_session(staff, db, moderation="pre", live=False)
    ticket = registered(client, event_id, phone="13700000003", name="李小红")
    assert staff("admin").post(f"/api/events/{event_id}/status",
                               json={"status": "live"}).status_code == 200
    make_user(db, "room-host", "host")
    assign_hosts(db, event_id)
    viewer = viewer_page(browser, live_server, event_id)
    # The second viewer comes from their ticket's page: they show as registered.
    other = viewer_page(browser, live_server, event_id, ticket["manage_token"])
    host = browser.new_context(viewport=DESK, locale="zh-CN").new_page()
    host.add_init_script(CSP_WATCH)
    try:
        sign_in(host, live_server, "room-host", f"/console/events/{event_id}/live")
        host.wait_for_selector("#socket-state[data-live='1']")
        # From here the console hears the queue over its socket only: no polling.
        host.evaluate("() => { const top = setTimeout(() => {}, 0);"
                      " for (let i = 0; i <= top; i++) { clearInterval(i); } }")
        join(viewer, "老王")
        join(other, "小李")
        host.wait_for_function("() => document.getElementById('viewer-count').textContent"
                               " === '2'")

        _post(viewer, "<b>电梯</b>什么时候装？")
        queue_is(host, ["<b>电梯</b>什么时候装？"])
        host.keyboard.press("a")
        queue_is(host, [])
        for page in (viewer, other):
            shows(page, ["<b>电梯</b>什么时候装？"])
            assert page.locator(".live-list b").count() == 0

        # A question answered from the keyboard: c, type, Enter.
        _post(other, "停车难怎么解决？")
        queue_is(host, ["停车难怎么解决？"])
        host.keyboard.press("c")
        host.keyboard.type("下月新增车位 <i>200</i> 个")
        host.keyboard.press("Enter")
        queue_is(host, [])
        host.wait_for_selector("#approved li.is-reply")
        answer = ["<b>电梯</b>什么时候装？", "停车难怎么解决？", "下月新增车位 <i>200</i> 个"]
        for page in (viewer, other):
            shows(page, answer)
            asker = page.locator(".live-list .live-item", has_text="停车难怎么解决？")
            assert asker.locator(".live-registered").text_content() == "已报名"
            assert page.locator(".live-list .live-registered").count() == 1
            reply = page.locator(".live-list .live-reply")
            assert reply.locator(".live-official").text_content() == "官方回复"
            assert reply.locator(".live-quote").text_content() == "回复 小李：停车难怎么解决？"
            assert page.locator(".live-list i").count() == 0

        # Pin, then unpin, the first message: the phones show it on top, then not.
        host.locator("#approved li[data-seq='1'] [data-action='pin-approved']").click()
        for page in (viewer, other):
            page.locator(".live-pin-bar").wait_for()
            assert "<b>电梯</b>什么时候装？" in page.locator(".live-pin-bar").text_content()
        screenshot(viewer, "live-room-viewer-phone")
        screenshot(host, "live-room-host-desk")
        host.locator("#approved li[data-seq='1'] [data-action='unpin']").click()
        for page in (viewer, other):
            page.locator(".live-pin-bar").wait_for(state="hidden")

        # A reload misses nothing: what a host approves while the page reloads comes too.
        viewer.wait_for_timeout(2000)  # one message per 2 s per viewer
        _post(viewer, "公交线路能调整吗？")
        queue_is(host, ["公交线路能调整吗？"])
        viewer.goto("about:blank")
        host.keyboard.press("a")
        queue_is(host, [])
        viewer.goto(f"{live_server}/events/{event_id}/live")
        connected(viewer)
        shows(viewer, answer + ["公交线路能调整吗？"])
        assert viewer.locator(".live-nickname").text_content() == "老王"  # the cookie kept it

        # The host closes the room: the phones stop taking messages and say why.
        host.get_by_role("button", name="关闭直播间").click()
        host.get_by_text("已关闭：直播间不再接收留言。").wait_for()
        for page in (viewer, other):
            page.get_by_text("主持人已暂停留言。").wait_for()
            assert not page.locator(".live-send").is_visible()
        for page in (viewer, other, host):
            assert page.evaluate(CSP_BLOCKED) == []
    finally:
        for page in (viewer, other, host):
            page.context.close()


def test_a_comment_sent_during_a_premiere_replays_at_its_video_time(
        client, staff, db, settings, clips, live_server, browser):
    premiere = datetime.now(UTC) + timedelta(seconds=2)
    event_id = _recorded_session(
        staff, db, settings, clips["long"], kind="broadcast", moderation="pre",
        starts_at=(premiere - timedelta(minutes=1)).isoformat(),
        ends_at=(premiere + timedelta(hours=1)).isoformat(),
        registration_closes_at=(premiere - timedelta(minutes=2)).isoformat(),
        premiere_at=premiere.isoformat())
    make_user(db, "premiere-host", "host")
    assign_hosts(db, event_id)
    host = browser.new_context(viewport=DESK, locale="zh-CN").new_page()
    host.add_init_script(CSP_WATCH)
    viewer = other = None
    try:
        sign_in(host, live_server, "premiere-host", f"/console/events/{event_id}/live")
        host.wait_for_selector("#socket-state[data-live='1']")
        host.wait_for_timeout(max(0, (premiere - datetime.now(UTC)).total_seconds() + 0.3) * 1000)
        viewer = viewer_page(browser, live_server, event_id)
        other = viewer_page(browser, live_server, event_id)
        viewer.evaluate("() => { document.querySelector('video').muted = true; }")
        # It starts by itself (muted) at the premiere's moment: no 加入首映 to press.
        viewer.wait_for_function("() => document.querySelector('video').currentTime > 2",
                                 timeout=15000)
        join(viewer, "首映观众")
        join(other, "另一位")
        _post(viewer, "这一段讲得清楚")
        queue_is(host, ["这一段讲得清楚"])
        host.keyboard.press("a")
        for page in (viewer, other):
            shows(page, ["这一段讲得清楚"])
        said = client.get(f"/api/events/{event_id}/comments").json()
        moment = said[0]["video_time"]
        assert 2 <= moment < 12, said

        # The premiere is over: the page replays the room over the recording.
        event = db.get(Event, event_id)  # (as if the premiere had started a minute ago)
        event.premiere_at = datetime.now(UTC) - timedelta(minutes=1)
        event.ends_at = datetime.now(UTC) - timedelta(seconds=1)
        db.add(event)
        db.commit()
        viewer.reload()
        viewer.locator('#live[data-replay-ready="1"]').wait_for()
        viewer.wait_for_function("() => document.querySelector('video').readyState >= 2",
                                 timeout=15000)
        clock = f"0:{int(moment):02d}"
        assert viewer.get_by_role("button", name=f"跳到 {clock}").is_visible()
        viewer.evaluate("""() => { window.__flown = [];
          const video = document.querySelector('video');
          new MutationObserver(records => records.forEach(r => r.addedNodes.forEach(node => {
            if (node.isConnected && node.classList.contains('is-shown'))
              window.__flown.push({text: node.textContent, at: video.currentTime}); })))
            .observe(document.querySelector('.player-danmaku'), {childList: true}); }""")
        viewer.evaluate("s => new Promise(done => { const v = document.querySelector('video');"
                        " v.addEventListener('seeked', () => setTimeout(done, 100), {once: true});"
                        " v.currentTime = s; })", max(0.0, moment - 1.5))
        viewer.evaluate("() => { const v = document.querySelector('video'); v.muted = true;"
                        " return v.play(); }")
        viewer.wait_for_function("() => window.__flown.length > 0", timeout=10000)
        flown = viewer.evaluate("() => window.__flown")
        assert flown[0]["text"] == "这一段讲得清楚"
        assert moment - 0.05 <= flown[0]["at"] <= moment + 1, (flown, moment)
        assert viewer.evaluate(CSP_BLOCKED) == []
    finally:
        for page in (viewer, other, host):
            if page is not None:
                page.context.close()
