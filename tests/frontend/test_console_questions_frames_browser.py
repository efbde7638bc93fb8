"""The console's questions panel in Chromium follows the hosts' socket: a question asked while
the panel is open, held in pre-moderation, and then its votes, show without the safety poll."""

from __future__ import annotations

from events.models import Event
from streaming import room
from tests.conftest import assign_hosts, make_user
from tests.frontend.browser import CSP_BLOCKED, CSP_WATCH, sign_in
from tests.streaming.live import _ask, _join, _live_session

DESK = {"width": 1280, "height": 900}
STOP_POLLS = ("() => { const top = setTimeout(() => {}, 0);"
              " for (let i = 0; i <= top; i++) { clearInterval(i); } }")


def test_the_console_questions_follow_the_socket(client, staff, db, app, live_server, browser):
    event_id = _live_session(staff, db, moderation="pre")
    make_user(db, "questions-host", "host")
    assign_hosts(db, event_id)
    page = browser.new_page(viewport=DESK)
    page.add_init_script(CSP_WATCH)
    try:
        sign_in(page, live_server, "questions-host", f"/console/events/{event_id}/live")
        page.wait_for_selector("#socket-state[data-live='1']")
        page.evaluate(STOP_POLLS)  # from here on only the socket can bring changes
        asked = _ask(client, event_id, _join(client, event_id, "张阿姨")["viewer_token"],
                     "小区停车难怎么办？")
        question_id = asked.json()["id"]
        item = page.locator(f"#questions-host-list li[data-id='{question_id}']")
        item.wait_for(timeout=5000)
        assert "state-held" in (item.get_attribute("class") or "")
        approved = staff("admin").post(f"/api/questions/{question_id}/moderation",
                                       json={"action": "approve"})
        assert approved.status_code == 200
        page.wait_for_selector(f"#questions-host-list li.state-approved[data-id='{question_id}']",
                               timeout=5000)
        event = db.get(Event, event_id)
        for n in range(2):
            _viewer, token = room.join(db, app.state.signer, event, f"邻{n}", f"10.8.{n}.1")
            db.commit()
            assert client.post(f"/api/questions/{question_id}/votes",
                               json={"viewer_token": token}).status_code == 201
        page.wait_for_function(
            """id => { const item = document.querySelector(
                           `#questions-host-list li[data-id="${id}"] .question-votes-count`);
                       return item && item.textContent.includes('2'); }""",
            arg=question_id, timeout=5000)
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        page.close()
