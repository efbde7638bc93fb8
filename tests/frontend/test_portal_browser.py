"""The portal in Chromium on a 375-pixel-wide phone: filter, open a session, use the keyboard."""

from __future__ import annotations

from datetime import datetime

from events.timeutil import LOCAL_TZ
from tests.frontend.browser import (
    ARTIFACTS,
    FOCUS_PROBE,
    PHONE,
    SMALL_TARGETS,
    no_horizontal_scroll,
)
from tests.frontend.portal_pages import create, future


def test_a_citizen_on_a_phone_finds_a_session_and_adds_it_to_a_calendar(
    live_server, browser, staff, db
):
    admin = staff("admin")
    create(admin, db, starts=future(6), title="区教委2027年义务教育入学政策会议开放")
    wanted = create(
        admin, db, "shichahai", starts=future(9), kind="open_day",
        title="什刹海街道政府开放日：走进街道综合执法队，了解背街小巷环境整治全过程",
        venue="什刹海街道办事处一层多功能厅", address="北京市西城区地安门西大街49号",
        cohost_unit_ids=[], capacity=40,
        registration_opens_at=(future(1)).isoformat(),
        registration_closes_at=(future(8)).isoformat(),
        materials=[{"title": "背街小巷环境整治方案（征求意见稿）",
                    "url": "https://example.org/plan.pdf"}])
    cancelled = create(admin, db, "housing", starts=future(7), kind="public_report",
                       title="区房管局老旧小区改造工作向公众报告")
    admin.post(f"/api/events/{cancelled['id']}/status",
               json={"status": "cancelled", "reason": "会场另有安排，改期另行通知"})

    context = browser.new_context(viewport=PHONE, device_scale_factor=2, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/")
        assert page.get_by_role("heading", name="近期活动", exact=True).is_visible()
        assert no_horizontal_scroll(page)
        assert page.evaluate(SMALL_TARGETS) == []
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "portal-phone-list.png"), full_page=True)

        # Filter by kind with the form, as a citizen would: it is folded on a phone.
        page.get_by_text("筛选活动", exact=True).click()
        page.get_by_label("活动类型").select_option("open_day")
        page.get_by_role("button", name="查看活动").click()
        page.wait_for_url("**/?kind=open_day*")
        cards = page.locator("article.session-card")
        assert cards.count() == 1
        assert "什刹海街道政府开放日" in cards.first.inner_text()
        assert no_horizontal_scroll(page)

        page.get_by_role("link", name=wanted["title"]).click()
        page.wait_for_url(f"**/events/{wanted['id']}")
        assert page.get_by_role("heading", level=1).inner_text() == wanted["title"]
        assert no_horizontal_scroll(page)
        add = page.get_by_role("link", name="添加到日历")
        assert add.get_attribute("href") == f"/events/{wanted['id']}.ics"
        assert page.get_by_role("link", name="查看地图（高德）").get_attribute("href").startswith(
            "https://uri.amap.com/search?keyword=")
        assert page.evaluate(SMALL_TARGETS) == []
        page.screenshot(path=str(ARTIFACTS / "portal-phone.png"), full_page=True)

        # The keyboard reaches the page, and the focused element is always seen.
        seen = []
        for _ in range(12):
            page.keyboard.press("Tab")
            focus = page.evaluate(FOCUS_PROBE)
            assert focus is not None, "the focus left the page"
            assert focus["outline"] != "none" and focus["width"] >= 2, focus
            assert focus["left"] >= 0 and focus["right"] <= 375, focus
            seen.append(focus["text"])
        assert seen[0] == "跳到正文"
        assert "添加到日历" in seen
    finally:
        context.close()


def test_the_calendar_becomes_a_day_by_day_list_on_a_phone(live_server, browser, staff, db):
    admin = staff("admin")
    create(admin, db, starts=datetime(2027, 3, 1, 7, 30, tzinfo=LOCAL_TZ), kind="open_day",
           title="月坛街道政府开放日", venue="月坛街道办事处")
    create(admin, db, "health", starts=datetime(2027, 3, 18, 14, 0, tzinfo=LOCAL_TZ),
           title="区卫生计生委家庭医生签约服务会议开放")

    context = browser.new_context(viewport=PHONE, device_scale_factor=2, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/calendar?month=2027-03")
        assert no_horizontal_scroll(page)
        days = page.locator(".cal-day")
        assert days.count() == 31
        shown = [d for d in days.all() if d.is_visible()]
        assert [d.locator(".cal-label").inner_text() for d in shown] == [
            "3月1日 周一", "3月18日 周四"]
        assert not page.locator(".cal-weekdays").is_visible()
        assert page.evaluate(SMALL_TARGETS) == []
        page.screenshot(path=str(ARTIFACTS / "portal-phone-calendar.png"), full_page=True)

        # On a desk the same page is a Monday-first month grid.
        page.set_viewport_size({"width": 1280, "height": 900})
        assert page.locator(".cal-weekdays").is_visible()
        assert page.locator(".cal-day").nth(2).is_visible()
        first = page.locator(".cal-day").first.bounding_box()
        monday = page.locator(".cal-weekdays span").first.bounding_box()
        assert first is not None and monday is not None
        assert abs(first["x"] - monday["x"]) < 2
        page.screenshot(path=str(ARTIFACTS / "portal-desktop-calendar.png"), full_page=True)
        page.goto(f"{live_server}/calendar?month=2027-03&kind=open_day")
        assert "家庭医生" not in page.locator(".cal-days").inner_text()
        assert "月坛街道政府开放日" in page.locator(".cal-days").inner_text()
    finally:
        context.close()
