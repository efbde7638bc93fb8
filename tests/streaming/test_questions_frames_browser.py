"""The room page's questions panel in Chromium: a viewer who joined the chat is not asked for a
name again to ask, and the list follows the room's frames — a question another viewer asks over
the socket, and a burst of votes — without waiting for the safety poll (30 s)."""

from __future__ import annotations

import json

from events.models import Event
from streaming import room
from tests.frontend.browser import CSP_BLOCKED
from tests.streaming.live import _frame, _join, _live_session, _socket
from tests.streaming.room_pages import join, viewer_page


def test_one_viewer_for_chat_and_questions_and_the_list_follows_the_frames(
        client, staff, db, app, live_server, browser):
    event_id = _live_session(staff, db, moderation="post")
    page = viewer_page(browser, live_server, event_id)
    try:
        join(page, "小李")
        ask_form = page.locator("#questions .questions-ask")
        assert ask_form.is_visible()
        # Joined in the chat: the questions panel asks no nickname again.
        assert page.locator("#questions .questions-join").is_hidden()
        page.get_by_label("您的问题").fill("停车位什么时候增加？")
        page.get_by_role("button", name="提交问题").click()
        page.get_by_text("您的问题已列入问题列表。").wait_for()
        assert page.locator("#questions .questions-join").is_hidden()

        # No poll from here on: only the frames can bring what follows.
        page.evaluate("() => { const top = setTimeout(() => {}, 0);"
                      " for (let i = 0; i <= top; i++) { clearInterval(i); } }")
        # Another viewer asks over the socket: the list shows it from the `question` frame.
        other = _join(client, event_id, "老王")
        with _socket(live_server, event_id, other["viewer_token"]) as ws:
            _frame(ws)
            ws.send(json.dumps({"type": "question", "text": "路灯什么时候修？",
                                "client_id": "q1"}))
            page.locator("#questions .question-text", has_text="路灯什么时候修？") \
                .wait_for(timeout=5000)
        question_id = client.get(f"/api/events/{event_id}/questions",
                                 params={"sort": "new"}).json()[0]["id"]
        # Three neighbours vote: the counts come in a `votes` frame, and the list re-sorts.
        event = db.get(Event, event_id)
        for n in range(3):
            _viewer, token = room.join(db, app.state.signer, event, f"邻{n}", f"10.9.{n}.1")
            db.commit()
            assert client.post(f"/api/questions/{question_id}/votes",
                               json={"viewer_token": token}).status_code == 201
        page.wait_for_function(
            """id => { const first = document.querySelector('#questions .question-item');
                       return first && first.dataset.id === String(id)
                         && first.querySelector('.question-votes').textContent === '3'; }""",
            arg=question_id, timeout=5000)
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        page.context.close()
