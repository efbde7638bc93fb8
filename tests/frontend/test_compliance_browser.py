"""Done when (issue 4): in Chromium, the district office opens the quota dashboard and drills
down to a unit; the printed report renders."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session

from tests.conftest import make_user
from tests.frontend.browser import ARTIFACTS, sign_in
from tests.frontend.console_pages import YEAR, crafted_year, session

# More of the year, so the charts and the table look like a district's: unit, kind, date.
BUSY = (
    ("housing", "open_meeting", "01-16 09:30"), ("housing", "open_meeting", "06-18 14:00"),
    ("housing", "public_report", "08-27 09:30"), ("housing", "open_day", "10-22 09:00"),
    ("health", "open_meeting", "02-26 09:30"), ("health", "open_day", "05-12 09:00"),
    ("health", "open_meeting", "11-19 14:30"),
    ("culture", "open_day", "04-23 09:00"), ("culture", "public_report", "12-09 14:00"),
    ("xinjiekou", "open_meeting", "03-19 09:30"), ("xinjiekou", "open_meeting", "07-16 14:00"),
    ("xinjiekou", "public_report", "06-25 09:30"), ("xinjiekou", "open_day", "09-13 09:00"),
    ("yuetan", "open_meeting", "05-21 09:30"), ("yuetan", "open_day", "10-11 09:00"),
    ("desheng", "open_meeting", "04-10 09:30"), ("desheng", "open_meeting", "08-14 09:30"),
    ("desheng", "public_report", "12-18 14:00"),
    ("shichahai", "open_meeting", "07-08 09:30"), ("shichahai", "open_meeting", "11-06 09:30"),
    ("shichahai", "public_report", "09-25 14:00"), ("shichahai", "open_day", "06-07 09:00"),
    ("tianqiao", "open_day", "05-31 09:00"), ("niujie", "open_meeting", "08-06 09:30"),
)
TITLES = {"open_meeting": "会议开放", "public_report": "向公众报告", "open_day": "政府开放日"}


def busy_year(admin: Any, db: Session, names: dict[str, str]) -> None:
    crafted_year(admin, db)
    for index, (unit, kind, when) in enumerate(BUSY):
        session(admin, db, unit, kind, f"{YEAR}-{when}",
                f"{names[unit]}{YEAR}年第{index + 1}期{TITLES[kind]}", attendees=18 + index)


def words(locator: Any) -> str:
    """What a reader sees, as one line."""
    return " ".join(locator.inner_text().split())


def test_office_opens_the_dashboard_drills_down_and_prints_the_report(live_server, browser, db,
                                                                       staff):
    base = live_server
    admin_api = staff("admin")
    names = {u["code"]: u["name"] for u in admin_api.get("/api/units").json()}
    busy_year(admin_api, db, names)
    make_user(db, "office-admin", "admin")
    ARTIFACTS.mkdir(exist_ok=True)

    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    sign_in(page, base, "office-admin", f"/console/compliance?year={YEAR}")
    assert page.get_by_role("heading", level=1).inner_text() == f"{YEAR} 年考核统计"
    table = page.locator("#group-livelihood + .table-scroll table")
    education = table.locator("tr", has=page.get_by_role("link", name="区教委", exact=True))
    assert "✓ 达标" in words(education)
    assert "✗ 未完成" in words(table.locator("tr", has_text="区民政局"))
    assert page.locator("svg#chart-months").is_visible()
    page.screenshot(path=str(ARTIFACTS / "compliance-dashboard.png"), full_page=True)

    page.get_by_label("单位", exact=True).select_option("subdistrict")
    page.get_by_role("button", name="查看").click()
    page.wait_for_url(f"{base}/console/compliance?year={YEAR}&category=subdistrict")
    assert page.locator("#group-livelihood").count() == 0
    page.get_by_role("link", name="什刹海街道", exact=True).click()
    page.wait_for_url(f"{base}/console/compliance/units/shichahai?year={YEAR}")
    assert page.get_by_role("heading", level=1).inner_text() == "什刹海街道"
    counting = page.locator("tr.counts")
    assert counting.count() == 5  # two meetings for the year, one by July, a report, a day
    assert "什刹海街道2025年第19期会议开放" in counting.first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "compliance-unit.png"), full_page=True)

    page.goto(f"{base}/console/compliance/units/civil-affairs?year={YEAR}")
    assert "已取消" in page.locator("tr.not-counted", has_text="低保审核").first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "compliance-unit-missed.png"), full_page=True)

    page.goto(f"{base}/console/compliance/report?year={YEAR}")
    assert page.get_by_role("heading", level=1).inner_text() == f"西城区 {YEAR} 年政务开放考核情况"
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()  # the print stylesheet applies
    page.screenshot(path=str(ARTIFACTS / "compliance-report-print.png"), full_page=True)
    pdf = page.pdf(format="A4", print_background=True)
    pages = len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))
    assert pdf.startswith(b"%PDF") and pages >= 4, pages  # a page per section at least
    (ARTIFACTS / "compliance-report.pdf").write_bytes(pdf)
    page.emulate_media(media="screen")

    phone = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN",
                                is_mobile=True, has_touch=True)
    citizen = phone.new_page()
    citizen.goto(f"{base}/results?year={YEAR}")
    assert citizen.get_by_role("heading", level=1).inner_text() == f"{YEAR} 年政务开放成果"
    wide = citizen.evaluate("document.documentElement.scrollWidth")
    assert wide <= 375, f"the results page scrolls sideways on a phone ({wide}px)"
    citizen.screenshot(path=str(ARTIFACTS / "compliance-results-phone.png"), full_page=True)
    phone.close()
    context.close()
