"""On a 390-pixel-wide phone: the compliance dashboard fits the screen, the home page shows
sessions on the first screen, and a session page tells what it is about before the form."""

from __future__ import annotations

from typing import Any

from tests.conftest import PASSWORD, make_user
from tests.frontend.console_pages import YEAR, crafted_year
from tests.frontend.portal_pages import create, future
from tests.helpers import open_session

PHONE = {"width": 390, "height": 844}


def fits(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= 390"))


def test_the_compliance_dashboard_fits_a_phone(live_server, browser, staff, db):
    crafted_year(staff("admin"), db)
    make_user(db, "phone-admin", "admin")
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/console/login?next=/console/compliance?year={YEAR}")
        page.get_by_label("用户名").fill("phone-admin")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(f"{live_server}/console/compliance?year={YEAR}")
        assert fits(page), page.evaluate("document.documentElement.scrollWidth")
        page.goto(f"{live_server}/console/compliance/units/education?year={YEAR}")
        assert fits(page), page.evaluate("document.documentElement.scrollWidth")
    finally:
        context.close()


def test_the_home_page_shows_sessions_on_the_first_screen(live_server, browser, staff, db):
    admin = staff("admin")
    create(admin, db, starts=future(6), title="区教委2027年义务教育入学政策会议开放")
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/")
        card = page.locator("article.session-card").first.bounding_box()
        assert card["y"] + card["height"] <= PHONE["height"], card
        # The filters are one tap away, and work as before.
        assert not page.get_by_label("活动类型").is_visible()
        page.get_by_text("筛选活动", exact=True).click()
        page.get_by_label("活动类型").select_option("open_meeting")
        page.get_by_role("button", name="查看活动").click()
        page.wait_for_url("**/?kind=open_meeting*")
        assert page.locator("article.session-card").count() == 1
        assert fits(page)
    finally:
        context.close()

    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    try:  # a desktop has the room: the filters stay open
        page.goto(f"{live_server}/")
        assert page.get_by_label("活动类型").is_visible()
    finally:
        context.close()


def test_a_session_page_on_a_phone_describes_before_it_asks(live_server, browser, staff, db):
    event_id = open_session(staff, db, capacity=40, venue="区教委三层会议室")
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/events/{event_id}")
        about = page.get_by_role("heading", name="活动介绍").bounding_box()
        form = page.locator("form#register-form").bounding_box()
        assert about["y"] < form["y"]
        assert fits(page)
    finally:
        context.close()
