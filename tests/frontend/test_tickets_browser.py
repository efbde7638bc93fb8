"""Registration in Chromium on a 375-pixel-wide phone: the form, the ticket and its QR code,
cancelling; no sideways scrolling on the way."""

from __future__ import annotations

import re

from sqlmodel import select

from events.models import Registration
from tests.frontend.browser import (
    ARTIFACTS,
    FOCUS_PROBE,
    PHONE,
    SMALL_TARGETS,
    no_horizontal_scroll,
    screenshot,
)
from tests.helpers import open_session


def test_a_citizen_registers_on_a_phone_sees_the_ticket_and_cancels(
    live_server, browser, staff, db
):
    event_id = open_session(staff, db, capacity=40, venue="区教委三层会议室",
                            address="北京市西城区西直门南小街国英一号")
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/events/{event_id}")
        form = page.locator("form#register-form")
        assert form.is_visible()
        assert page.get_by_text("剩余 40 个名额").is_visible()
        assert no_horizontal_scroll(page)
        assert page.evaluate(SMALL_TARGETS) == []

        # A slip of the thumb first: the page says what is wrong and keeps the name.
        page.get_by_label("姓名").fill("王小明")
        page.get_by_label("手机号").fill("1380000")
        page.get_by_label("我已阅读并同意").check()
        page.get_by_role("button", name="提交报名").click()
        page.wait_for_load_state()
        error = page.locator("#reg-phone-error")
        assert error.is_visible() and "11 位" in error.inner_text()
        assert page.get_by_label("姓名").input_value() == "王小明"
        # The first field to fix has the focus; the page has scrolled to the form.
        assert page.evaluate("document.activeElement.id") == "reg-phone"
        assert no_horizontal_scroll(page)
        screenshot(page, "tickets-form-error")

        page.get_by_label("手机号").fill("138 0000 1234")
        page.get_by_label("想向主持方提的问题").fill("孩子跨区入学需要哪些材料？")
        page.get_by_role("button", name="提交报名").click()
        page.wait_for_url(re.compile(r".*/tickets/[^/]+#ticket$"))

        status = page.locator(".status-big")
        assert status.inner_text() == "已确认"
        qr = page.locator(".ticket-qr svg")
        assert qr.is_visible()
        box = qr.bounding_box()
        assert box and box["width"] >= 180 and box["width"] <= 375
        db.rollback()
        code = db.exec(select(Registration.code)).one()
        assert page.locator(".ticket-code").inner_text() == code
        assert page.get_by_text("138****1234").is_visible()
        assert page.get_by_role("button", name="打印入场凭证").is_visible()
        assert page.get_by_role("link", name="添加到日历").is_visible()
        assert no_horizontal_scroll(page)
        assert page.evaluate(SMALL_TARGETS) == []
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, "tickets-ticket")
        page.emulate_media(media="print")
        screenshot(page, "tickets-ticket-print")
        assert page.locator(".ticket-keep").is_hidden()
        page.emulate_media(media="screen")

        page.get_by_role("link", name="取消报名").click()
        page.wait_for_url(re.compile(r".*/cancel$"))
        assert page.get_by_role("heading", name="确定取消报名吗？").is_visible()
        screenshot(page, "tickets-confirm-cancel")
        page.get_by_role("button", name="确定取消报名").click()
        page.wait_for_url(re.compile(r".*\?done=released$"))
        assert status.inner_text() == "已取消"
        assert page.get_by_text("报名已取消，您的名额已释放。").is_visible()
        assert page.locator(".ticket-qr").count() == 0
        assert no_horizontal_scroll(page)
        screenshot(page, "tickets-cancelled")
    finally:
        context.close()


def test_a_full_session_on_a_phone_offers_the_waitlist(live_server, browser, staff, db):
    event_id = open_session(staff, db, capacity=1)
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/events/{event_id}")
        page.get_by_label("姓名").fill("李雷")
        page.get_by_label("手机号").fill("13900000001")
        page.get_by_label("我已阅读并同意").check()
        page.locator(".reg-submit").click()
        page.wait_for_url(re.compile(r".*/tickets/"))

        # The keyboard alone: type, Tab from field to field, Space ticks, Enter sends.
        page.goto(f"{live_server}/events/{event_id}")
        page.get_by_label("姓名").focus()
        page.keyboard.type("韩梅梅")
        page.keyboard.press("Tab")
        page.keyboard.type("13900000002")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "reg-question"
        page.keyboard.press("Tab")
        page.keyboard.press("Space")
        assert page.get_by_label("我已阅读并同意").is_checked()
        page.keyboard.press("Tab")  # the privacy notice link
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_PROBE)
        assert focused["tag"] == "BUTTON" and focused["outline"] != "none"
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*/tickets/"))
        assert page.locator(".status-big").inner_text() == "候补第 1 位"
        assert page.locator(".ticket-qr").count() == 0  # a waitlist place is no ticket
        screenshot(page, "tickets-waitlisted")
        page.goto(f"{live_server}/events/{event_id}")
        assert page.get_by_text("名额已满，报名将进入候补").is_visible()
        assert page.get_by_role("button", name="加入候补").is_visible()
        page.locator("#registration").screenshot(path=str(ARTIFACTS / "tickets-full-form.png"))
    finally:
        context.close()
