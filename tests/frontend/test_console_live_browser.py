"""The host's moderation console in Chromium at a desk: viewers post over real websockets, the
host approves and rejects from the keyboard, a message another host approved leaves the queue,
and the strict CSP blocks nothing."""

from __future__ import annotations

from typing import Any

from streaming import protocol
from streaming.models import LiveMessage
from tests.conftest import assign_hosts, make_user
from tests.frontend.browser import CSP_BLOCKED, CSP_WATCH, screenshot, sign_in
from tests.streaming.live import _frame, _join, _live_session, _send, _socket
from tests.streaming.room_pages import queue_is as _queue_is

DESK = {"width": 1280, "height": 900}
def _post_held(live_server: str, client: Any, event_id: int, nickname: str, text: str) -> int:
    """A viewer joins through the API and sends a message over the websocket; it is held."""
    viewer = _join(client, event_id, nickname)
    with _socket(live_server, event_id, viewer["viewer_token"]) as ws:
        assert _frame(ws)["type"] == "hello"
        _send(ws, text)
        held = _frame(ws)
        while held["type"] == "comment":  # the backlog of approved messages comes first
            held = _frame(ws)
    assert held["type"] == "held", held
    return int(held["id"])


def test_a_host_approves_and_rejects_from_the_keyboard(client, staff, db, live_server, browser):
    event_id = _live_session(staff, db, moderation="pre")
    make_user(db, "live-host", "host")
    assign_hosts(db, event_id)
    first = _post_held(live_server, client, event_id, "老王", "<img src=x onerror=alert(1)>电梯")
    _post_held(live_server, client, event_id, "小李", "停车难怎么解决？")

    page = browser.new_page(viewport=DESK)
    page.add_init_script(CSP_WATCH)
    try:
        sign_in(page, live_server, "live-host", f"/console/events/{event_id}/live")
        _queue_is(page, ["<img src=x onerror=alert(1)>电梯", "停车难怎么解决？"])
        assert page.locator("#queue img").count() == 0  # the words are text, not markup
        assert not page.locator("#batch-approve").is_visible()  # nothing selected yet
        screenshot(page, "console-live-moderation")
        assert page.locator(".shortcuts kbd").first.is_visible()
        assert page.locator("#queue .is-current .queue-text").text_content() \
            == "<img src=x onerror=alert(1)>电梯"

        page.keyboard.press("a")
        _queue_is(page, ["停车难怎么解决？"])
        approved = client.get(f"/api/events/{event_id}/comments").json()
        assert [(m["seq"], m["id"]) for m in approved] == [(1, first)]
        page.wait_for_selector("#approved li[data-seq='1']")

        page.keyboard.press("j")
        page.keyboard.press("r")
        _queue_is(page, [])
        assert page.locator("#queue-empty").is_visible()
        assert client.get(f"/api/events/{event_id}/comments").json() == approved

        # Another host approves a new message through the API: it leaves this host's queue.
        third = _post_held(live_server, client, event_id, "张阿姨", "谢谢解答")
        _queue_is(page, ["谢谢解答"])
        other = staff("admin")
        assert other.post(f"/api/comments/{third}/moderation",
                          json={"action": "approve"}).status_code == 200
        _queue_is(page, [])
        page.wait_for_selector("#approved li[data-seq='2']")
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        page.close()


def test_a_message_another_host_decided_first_leaves_with_a_notice(
        client, staff, db, live_server, browser):
    event_id = _live_session(staff, db, moderation="pre")
    make_user(db, "live-host-2", "host")
    assign_hosts(db, event_id)
    first = _post_held(live_server, client, event_id, "老王", "第一条")
    second = _post_held(live_server, client, event_id, "小李", "第二条")
    third = _post_held(live_server, client, event_id, "老赵", "第三条")

    page = browser.new_page(viewport=DESK)
    page.add_init_script(CSP_WATCH)
    # No socket (a proxy that drops websockets): the console falls back to polling.
    page.add_init_script("window.WebSocket = undefined;")
    try:
        sign_in(page, live_server, "live-host-2", f"/console/events/{event_id}/live")
        _queue_is(page, ["第一条", "第二条", "第三条"])
        assert page.locator("#socket-state").text_content() == "每 2 秒刷新"
        # Stop the refresh, so this host still sees the message when deciding on it.
        page.evaluate("() => { const top = setTimeout(() => {}, 0);"
                      " for (let i = 0; i <= top; i++) { clearInterval(i); } }")
        assert staff("admin").post(f"/api/comments/{first}/moderation",
                                   json={"action": "reject"}).status_code == 200
        page.keyboard.press("a")
        _queue_is(page, ["第二条", "第三条"])
        notice = page.locator("#moderation-notice")
        notice.wait_for(state="visible")
        assert notice.text_content() == "另一位主持人已处理这条留言"

        # Batch approval: x on both, then A; their seq follows the queue's order.
        page.keyboard.press("x")
        page.keyboard.press("j")
        page.keyboard.press("x")
        assert page.locator("#queue .is-selected").count() == 2
        assert page.locator("#batch-approve").is_visible()
        page.keyboard.press("Shift+A")
        _queue_is(page, [])
        approved = client.get(f"/api/events/{event_id}/comments").json()
        assert [(m["seq"], m["id"]) for m in approved] == [(1, second), (2, third)]

        # p approves and pins.
        fourth = _post_held(live_server, client, event_id, "老孙", "第四条")
        page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
        _queue_is(page, ["第四条"])
        page.keyboard.press("p")
        _queue_is(page, [])
        page.wait_for_selector("#approved li.is-pinned[data-seq='3']")
        pinned = client.get(f"/api/events/{event_id}/comments", params={"after": 2}).json()
        assert [(m["id"], m["pinned"]) for m in pinned] == [(fourth, True)]
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        page.close()


def test_a_console_told_to_resync_reads_its_queue_again(
        client, staff, db, app, live_server, browser):
    """Redis was away: a message another process's host rejected never came as `decided`,
    one held there never came as `queued`. The broker's `resync` (streaming.broker) makes
    the console read its queue again, without a reload."""
    event_id = _live_session(staff, db, moderation="pre")
    make_user(db, "live-host-3", "host")
    assign_hosts(db, event_id)
    first = _post_held(live_server, client, event_id, "老王", "第一条")
    page = browser.new_page(viewport=DESK)
    try:
        sign_in(page, live_server, "live-host-3", f"/console/events/{event_id}/live")
        _queue_is(page, ["第一条"])
        page.wait_for_selector("#socket-state[data-live='1']")
        # As on the other process, without a frame reaching this one: rejected there, and a
        # new message held there.
        decided = db.get(LiveMessage, first)
        assert decided is not None
        decided.state = "rejected"
        db.add(LiveMessage(event_id=event_id, kind="comment", author="小李", text="第二条",
                           state="held"))
        db.commit()
        app.state.broker.fan_out(event_id, [protocol.encode(protocol.RESYNC)], True)
        _queue_is(page, ["第二条"])
    finally:
        page.close()
