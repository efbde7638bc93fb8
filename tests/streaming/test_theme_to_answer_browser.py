"""Issue 18's walk on a 375-pixel phone, from one end to the other: a citizen follows a theme
from the portal to its series, from the series to a past session's archive, reads a 不予采纳
reason there, and plays the answer from its link at the moment it was given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import event_body, publish, unit_id
from tests.frontend.browser import CSP_BLOCKED, CSP_WATCH, PHONE, no_horizontal_scroll
from tests.streaming.answering import add_question
from tests.streaming.live import _recorded_session

REASON = "该路段属市管道路，已转交市交通委研究。"


def test_a_theme_leads_to_a_series_an_archive_and_an_answer_at_its_moment(
        staff, db, settings, clips, live_server, browser):
    admin = staff("admin")
    series_id = admin.post("/api/series", json={
        "title": "校园周边交通系列", "unit_id": unit_id(db, "education"),
        "summary": "上下学时段的交通组织。"}).json()["id"]
    # A past session of the series, recorded (12 s), closed out, a suggestion not adopted.
    past = _recorded_session(staff, db, settings, clips["long"], title="校园周边交通答问会",
                             themes=["education"], series_id=series_id)
    assert admin.post(f"/api/events/{past}/close", json={"minutes": "纪要"}).status_code == 200
    question_id = add_question(db, past, "建议学校门口设潮汐车道", author="王女士")
    answered = admin.put(f"/api/questions/{question_id}/answer",
                         json={"at_s": 7, "outcome": "not_adopted", "reason": REASON})
    assert answered.status_code == 200, answered.text
    # An upcoming one of the same theme, on the portal's front page.
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=4)
    upcoming = admin.post("/api/events", json=event_body(
        db, title="校园开放日", starts_at=starts.isoformat(),
        ends_at=(starts + timedelta(hours=2)).isoformat(), registration_opens_at=None,
        registration_closes_at=None, themes=["education"], series_id=series_id))
    assert upcoming.status_code == 201, upcoming.text
    publish(admin, int(upcoming.json()["id"]))

    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.add_init_script(CSP_WATCH)
    try:
        page.goto(f"{live_server}/")
        page.locator("article.session-card a.theme-chip", has_text="教育").first.click()
        page.wait_for_url(f"{live_server}/themes/education")
        page.locator("ul.series-list a", has_text="校园周边交通系列").click()
        page.wait_for_url(f"{live_server}/series/{series_id}")
        assert no_horizontal_scroll(page)
        page.locator("ul.past-list a", has_text="校园周边交通答问会").first.click()
        page.wait_for_url(f"{live_server}/events/{past}")
        item = page.locator(f'#answers .answer-item[data-id="{question_id}"]')
        assert item.locator(".answer-outcome").inner_text() == "不予采纳"
        assert item.locator(".answer-reason").inner_text() == REASON
        assert no_horizontal_scroll(page)
        item.locator("a.answer-moment").click()
        page.wait_for_url(f"**/events/{past}/live?t=7#player")
        page.wait_for_function("() => { const v = document.querySelector('video');"
                               " return v && v.readyState >= 1"
                               " && Math.abs(v.currentTime - 7) <= 1.5; }", timeout=15000)
        assert page.evaluate(CSP_BLOCKED) == []
    finally:
        context.close()
