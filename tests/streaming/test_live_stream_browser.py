"""The room's stream on a phone in Chromium: a citizen who only watches (no nickname) sees the
comments and the viewer count; the list opens at the newest and, scrolled up, offers "N 条新消息"
instead of moving; a change whose frame was lost is found by the next frame's position, or by
the 15 s check, and shown."""

from __future__ import annotations

from typing import Any

from websockets.sync.client import connect

from tests.conftest import assign_hosts
from tests.frontend.browser import CSP_BLOCKED, CSP_WATCH, PHONE
from tests.streaming.live import TIMEOUT, _frame, _join, _live_session, _send, approved_backlog
from tests.streaming.room_pages import TRAP, shows, texts

AT_BOTTOM = "() => { const l = document.querySelector('.live-list');" \
    " return l.scrollHeight > l.clientHeight + 100" \
    " && l.scrollTop + l.clientHeight >= l.scrollHeight - 40; }"


def _say(client: Any, live_server: str, event_id: int, n: int) -> dict[str, Any]:
    """A comment of a viewer of its own (post-moderation: shown at once)."""
    token = _join(client, event_id, f"观众{n}")["viewer_token"]
    url = live_server.replace("http://", "ws://") + f"/ws/events/{event_id}?token={token}"
    with connect(url, open_timeout=TIMEOUT) as ws:
        _frame(ws)  # hello; the room's last page follows
        words = f"第{n}条留言：" + "长" * 60
        _send(ws, words, client_id=f"c{n}")
        while True:
            said = _frame(ws)
            assert said["type"] == "comment", said
            if said["text"] == words:
                break
        return said


def test_a_watcher_sees_the_room_from_the_newest_and_misses_nothing(
        client, staff, db, app, live_server, browser, monkeypatch):
    event_id = _live_session(staff, db, moderation="post")
    host = staff("host")
    assign_hosts(db, event_id)
    # At most 20 messages per 10 s from one address (the test's): 16, then 2 more.
    said = [_say(client, live_server, event_id, n) for n in range(1, 17)]
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.add_init_script(CSP_WATCH)
    page.add_init_script(TRAP)
    page.clock.install()
    try:
        page.goto(f"{live_server}/events/{event_id}/live")
        # Watching needs no nickname: the count comes, the join form waits for one who posts.
        page.get_by_text("1 人在线").wait_for()
        assert page.get_by_label("昵称").is_visible()
        assert page.locator(".live-send").is_hidden()
        assert len(texts(page)) == 16
        page.wait_for_function(AT_BOTTOM)  # opens at the newest
        # Scrolled up to read: a new message does not move the list, a button says so.
        page.evaluate("() => { document.querySelector('.live-list').scrollTop = 0; }")
        said.append(_say(client, live_server, event_id, 17))
        pill = page.get_by_role("button", name="1 条新消息")
        pill.wait_for()
        assert page.evaluate("() => document.querySelector('.live-list').scrollTop") == 0
        pill.click()
        page.wait_for_function(AT_BOTTOM)
        assert pill.is_hidden()
        # A take-down whose frame never reached this process (Redis delivers at most once):
        # the next frame's position shows the hole and the page re-reads from its own.
        broker = app.state.broker
        monkeypatch.setattr(broker, "publish", lambda *args, **kwargs: None)
        assert host.post(f"/api/comments/{said[4]['id']}/moderation",
                         json={"action": "reject"}).status_code == 200
        monkeypatch.undo()
        said.append(_say(client, live_server, event_id, 18))
        shows(page, [m["text"] for n, m in enumerate(said) if n != 4])
        # And with nothing after it, the 15 s check finds it.
        monkeypatch.setattr(broker, "publish", lambda *args, **kwargs: None)
        assert host.post(f"/api/comments/{said[5]['id']}/moderation",
                         json={"action": "reject"}).status_code == 200
        monkeypatch.undo()
        page.clock.run_for(16_000)
        shows(page, [m["text"] for n, m in enumerate(said) if n not in (4, 5)])
        assert page.evaluate(CSP_BLOCKED) == []
        assert page.evaluate("() => window.__ran") is False
        assert page.locator(".live-earlier").is_hidden()  # the whole room is shown
        # A long room opens with its last page; older messages come on request, on top.
        longer = _live_session(staff, db, moderation="post")
        approved_backlog(db, longer, 230)
        page.goto(f"{live_server}/events/{longer}/live")
        assert len(texts(page)) == 200 and texts(page)[0] == "旧31"
        page.get_by_text("1 人在线").wait_for()
        page.get_by_role("button", name="更早的留言").click()
        page.wait_for_function("() => document.querySelectorAll('.live-list .live-text')"
                               ".length === 230")
        assert texts(page)[:2] == ["旧1", "旧2"] and texts(page)[-1] == "旧230"
        assert page.locator(".live-earlier").is_hidden()
    finally:
        context.close()
