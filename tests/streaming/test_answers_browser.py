"""The session page's 问题与回复 in Chromium on a 375-pixel phone: the 不予采纳 reason reads as
text, and the link 在录像中观看回答 opens the room's player at the moment of the answer
(static/js/player.js's ?t=, through hls.js)."""

from __future__ import annotations

from tests.frontend.browser import CSP_BLOCKED, CSP_WATCH, screenshot
from tests.streaming.answering import add_question
from tests.streaming.live import _recorded_session

PHONE = {"width": 375, "height": 812}
REASON = "该路口已列入明年改造计划，<b>届时</b>统一设置。"


def test_the_answer_link_starts_the_recording_at_its_moment_on_a_phone(
        staff, db, settings, clips, live_server, browser):
    event_id = _recorded_session(staff, db, settings, clips["long"])  # 12 s
    admin = staff("admin")
    closed = admin.post(f"/api/events/{event_id}/close", json={"minutes": "纪要"})
    assert closed.status_code == 200, closed.text  # its recording plays on demand now
    question_id = add_question(db, event_id, "建议在学校路口加装红绿灯", author="李老师")
    answered = admin.put(f"/api/questions/{question_id}/answer",
                                  json={"at_s": 8, "outcome": "not_adopted", "reason": REASON})
    assert answered.status_code == 200, answered.text
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.add_init_script(CSP_WATCH)
    try:
        page.goto(f"{live_server}/events/{event_id}")
        item = page.locator(f'#answers .answer-item[data-id="{question_id}"]')
        assert item.locator(".answer-outcome").inner_text() == "不予采纳"
        assert item.locator(".answer-reason").inner_text() == REASON
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(page, "answers-phone", full_page=True)
        link = item.locator("a.answer-moment")
        assert link.inner_text() == "在录像中观看回答 (0:08)"
        link.click()
        page.wait_for_url(f"**/events/{event_id}/live?t=8#player")
        page.wait_for_function("() => window.Hls && document.querySelector('video').src"
                               ".startsWith('blob:')")  # Media Source: hls.js
        page.wait_for_function("() => Math.abs(document.querySelector('video').currentTime - 8)"
                               " <= 1.5 && document.querySelector('video').readyState >= 1",
                               timeout=15000)
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        context.close()
