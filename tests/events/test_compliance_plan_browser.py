"""In Chromium at a phone's width (375 px): the office reads the plan's adherence on the
dashboard, a unit's editor reads its sessions' questions with the overdue one flagged; neither
page scrolls sideways (the wide tables scroll inside their box)."""

from __future__ import annotations

from events.question_stats import QuestionStats
from tests.conftest import make_user
from tests.events import test_compliance_plan as data
from tests.frontend.browser import ARTIFACTS, PHONE, no_horizontal_scroll, screenshot, sign_in
from tests.helpers import held

YEAR = data.YEAR
planned_year = data.planned_year
stats = data.stats


def test_the_plan_and_the_overdue_questions_read_on_a_phone(live_server, browser, db,
                                                            planned_year, stats):
    event_id = held(planned_year, db, "education", "2027-03-12T09:30:00+08:00")
    stats[event_id] = QuestionStats(received=12, approved=10, answered_live=6,
                                    answered_written=3, open=1, overdue=1, median_days=2.5)
    make_user(db, "office-admin", "admin")
    make_user(db, "edu-editor", "editor", "education")
    ARTIFACTS.mkdir(exist_ok=True)

    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    sign_in(page, live_server, "office-admin", f"/console/compliance?year={YEAR}")
    section = page.locator("section.plan-adherence")
    section.scroll_into_view_if_needed()
    assert section.get_by_role("heading", name="直播计划执行与群众提问答复").is_visible()
    assert section.locator("svg#chart-plan").is_visible()
    row = section.locator("tr", has=page.get_by_role("link", name="区教委", exact=True))
    assert "逾期未答复 1 条" in row.inner_text()
    assert no_horizontal_scroll(page), page.evaluate("document.documentElement.scrollWidth")
    screenshot(page, "compliance-plan-dashboard-phone")
    section.screenshot(path=str(ARTIFACTS / "compliance-plan-dashboard-section-phone.png"))
    context.close()

    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    sign_in(page, live_server, "edu-editor", f"/console/compliance/units/education?year={YEAR}")
    questions = page.locator("section.unit-questions")
    questions.scroll_into_view_if_needed()
    assert "超过15天未答复：1 条" in questions.inner_text()
    flagged = questions.locator("tr.has-overdue")
    assert flagged.count() == 1 and "逾期未答复 1 条" in flagged.inner_text()
    assert page.locator("section.unit-plan").get_by_text("未按计划实施").first.is_visible()
    assert no_horizontal_scroll(page), page.evaluate("document.documentElement.scrollWidth")
    screenshot(page, "compliance-plan-unit-phone")
    questions.get_by_role("link", name="去答复").click()
    page.wait_for_url(f"{live_server}/console/answers?unit=education")
    context.close()
