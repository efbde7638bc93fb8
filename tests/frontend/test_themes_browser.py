"""Themes and series in Chromium on a 375-pixel phone: a citizen filters the upcoming sessions
by theme, follows a theme chip to the theme's page, from there a series, and from the series a
session. Each page fits the phone and axe finds no serious violation on it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from sqlmodel import Session

from tests.conftest import event_body, publish, unit_id
from tests.frontend.browser import PHONE, no_horizontal_scroll
from tests.frontend.test_accessibility_browser import blocking_violations


def _session(admin: Any, db: Session, title: str, days: int, **over: Any) -> int:
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    response = admin.post("/api/events", json=event_body(
        db, title=title, starts_at=starts.isoformat(),
        ends_at=(starts + timedelta(hours=2)).isoformat(), registration_opens_at=None,
        registration_closes_at=None, **over))
    assert response.status_code == 201, response.text
    event_id = int(response.json()["id"])
    publish(admin, event_id)
    return event_id


def test_a_citizen_follows_a_theme_to_a_series_and_a_session_on_a_phone(
        live_server: str, browser: Any, staff: Any, db: Session) -> None:
    admin = staff("admin")
    series_id = admin.post("/api/series", json={
        "title": "走进校园开放日", "unit_id": unit_id(db, "education"),
        "summary": "每学期一次，走进一所学校，看招生、看课堂。"}).json()["id"]
    school = _session(admin, db, "春季校园开放日：走进西城实验小学", 5,
                      themes=["education"], series_id=series_id)
    _session(admin, db, "空气质量改善情况通报会", 6, themes=["air-quality"])

    axe = Axe()
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    problems: dict[str, list[str]] = {}

    def check(name: str) -> None:
        assert no_horizontal_scroll(page), (name, page.evaluate(
            "document.documentElement.scrollWidth"))
        problems[name] = blocking_violations(axe, page)

    try:
        page.goto(f"{live_server}/")
        page.get_by_text("筛选活动", exact=True).click()
        page.get_by_label("主题").select_option("education")
        page.locator("form.filters button[type=submit]").click()
        page.wait_for_url(re.compile(r"theme=education"))
        cards = page.locator("article.session-card")
        assert cards.count() == 1
        assert "春季校园开放日" in cards.first.inner_text()
        check("/?theme=education")

        cards.first.locator("a.theme-chip", has_text="教育").click()
        page.wait_for_url(f"{live_server}/themes/education")
        assert page.get_by_role("heading", level=1).inner_text() == "教育"
        check("/themes/education")

        page.locator("ul.series-list a", has_text="走进校园开放日").click()
        page.wait_for_url(f"{live_server}/series/{series_id}")
        assert page.get_by_role("heading", level=1).inner_text() == "走进校园开放日"
        assert page.get_by_role("link", name="订阅该系列的日历").count() == 1
        check(f"/series/{series_id}")

        page.locator("article.session-card .card-title a").first.click()
        page.wait_for_url(f"{live_server}/events/{school}")
        assert page.locator("a.theme-chip", has_text="教育").count() == 1
        assert page.get_by_role("link", name="走进校园开放日").count() == 1
        check(f"/events/{school}")
    finally:
        context.close()
    assert {name: found for name, found in problems.items() if found} == {}
