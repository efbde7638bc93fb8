"""Issue 9 (3, 4, 5, 7) in Chromium, at a 390-pixel phone and at a desk: a waitlist place
is no ticket until promoted, a past session says it is over, the live room counts down (with
and without script), the 404 page keeps the menu."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.frontend.browser import screenshot
from tests.frontend.portal_pages import HTML, create, future, register
from tests.helpers import open_session

SIZES = {"phone": {"width": 390, "height": 844}, "desk": {"width": 1280, "height": 900}}


def fits(page: Any, size: dict[str, int]) -> bool:
    """No sideways scrolling at this width."""
    return bool(page.evaluate(f"document.documentElement.scrollWidth <= {size['width']}"))


@pytest.mark.parametrize("size", SIZES)
def test_a_waitlist_place_is_no_ticket_until_a_seat_frees(live_server, browser, client, staff,
                                                          db, size):
    event_id = open_session(staff, db, capacity=1)
    first = register(client, event_id, phone="13800000001")
    context = browser.new_context(viewport=SIZES[size], device_scale_factor=2, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/events/{event_id}")
        page.get_by_label("姓名").fill("韩梅梅")
        page.get_by_label("手机号").fill("13900000002")
        page.get_by_label("我已阅读并同意").check()
        page.get_by_role("button", name="加入候补").click()
        page.wait_for_url(re.compile(r".*/tickets/[^/]+#ticket$"))
        assert page.locator(".status-big").inner_text() == "候补第 1 位"
        assert page.get_by_text("候补名额不是入场凭证").is_visible()
        assert page.locator(".ticket-qr").count() == 0
        assert page.locator(".ticket-code").count() == 0
        assert page.get_by_role("button", name="打印入场凭证").count() == 0
        assert fits(page, SIZES[size])
        screenshot(page, f"promises-waitlisted-{size}")

        # A seat frees: the same page, reloaded, is now the ticket.
        assert client.post(f"/tickets/{first}/cancel", headers=HTML,
                           follow_redirects=False).status_code == 303
        page.reload()
        assert page.locator(".status-big").inner_text() == "已确认"
        assert page.locator(".ticket-qr svg").is_visible()
        assert page.locator(".ticket-code").is_visible()
        assert page.get_by_role("button", name="打印入场凭证").is_visible()
        assert fits(page, SIZES[size])
    finally:
        context.close()


@pytest.mark.parametrize("size", SIZES)
def test_a_past_session_says_it_is_over(live_server, browser, staff, db, size):
    admin = staff("admin")
    held = create(admin, db, starts=future(-20), title="三周前的政府开放日", capacity=150,
                  registration_opens_at=future(-40).isoformat(),
                  registration_closes_at=future(-21).isoformat())
    assert admin.post(f"/api/events/{held['id']}/close",
                      json={"minutes": "听取了居民意见，形成三项整改措施。", "attendee_count": 108,
                            "attendance_reason": "按纸质签到表统计"}).status_code == 200
    context = browser.new_context(viewport=SIZES[size], device_scale_factor=2, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/events/{held['id']}")
        assert page.locator(".card-badges").get_by_text("已结束").is_visible()
        assert page.get_by_text("本场活动已于").is_visible()
        assert page.get_by_text("共有 108 位市民参加").is_visible()
        assert page.get_by_text("形成三项整改措施").is_visible()
        assert page.locator("form#register-form").count() == 0
        assert page.get_by_role("link", name="添加到日历").count() == 0
        assert page.get_by_text("剩余").count() == 0
        assert fits(page, SIZES[size])
        screenshot(page, f"promises-past-{size}")
    finally:
        context.close()


@pytest.mark.parametrize("size", SIZES)
def test_an_online_session_leads_to_its_room_which_counts_down(live_server, browser, staff, db,
                                                               size):
    admin = staff("admin")
    online = create(admin, db, starts=future(2), mode="online", venue="",
                    title="政民互动直播间：老旧小区加装电梯怎么办")
    context = browser.new_context(viewport=SIZES[size], device_scale_factor=2, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/events/{online['id']}")
        page.get_by_role("link", name="进入直播间").first.click()
        page.wait_for_url(f"**/events/{online['id']}/live")
        assert page.get_by_role("heading", level=1).inner_text() == online["title"]
        countdown = page.locator(".room-countdown")
        assert countdown.is_visible()
        first = countdown.inner_text()
        assert re.fullmatch(r"\d+ 天 \d+ 小时 \d+ 分 \d+ 秒", first), first
        page.wait_for_function("t => document.querySelector('.room-countdown').textContent !== t",
                               arg=first, timeout=3000)
        assert page.get_by_text("直播和回放将在此播放").is_visible()
        assert page.get_by_text("为他人的问题投票").is_visible()
        assert fits(page, SIZES[size])
        screenshot(page, f"promises-room-{size}")
    finally:
        context.close()

    # Without script, the server's own words.
    quiet = browser.new_context(viewport=SIZES[size], locale="zh-CN", java_script_enabled=False)
    page = quiet.new_page()
    try:
        page.goto(f"{live_server}/events/{online['id']}/live")
        assert page.locator(".room-countdown").inner_text().startswith("距开始还有 ")
    finally:
        quiet.close()


def test_the_404_page_keeps_the_menu_on_a_phone(live_server, browser):
    context = browser.new_context(viewport=SIZES["phone"], device_scale_factor=2,
                                  locale="zh-CN")
    page = context.new_page()
    try:
        response = page.goto(f"{live_server}/no-such-page")
        assert response is not None and response.status == 404
        assert page.get_by_role("heading", name="页面不存在").is_visible()
        assert page.get_by_text("您要找的页面不存在").is_visible()
        nav = page.get_by_role("navigation", name="主导航")
        for name in ("近期活动", "活动日历", "单位", "年度公开成果"):
            assert nav.get_by_role("link", name=name, exact=True).is_visible()
        assert fits(page, SIZES["phone"])
        icon = page.request.get(f"{live_server}/favicon.ico")
        assert icon.ok and icon.headers["content-type"] == "image/x-icon"
    finally:
        context.close()
