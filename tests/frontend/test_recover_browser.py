"""找回我的报名 in Chromium on a 375-pixel-wide phone: from the footer link to the ticket."""

from __future__ import annotations

import re

import pytest

from server.config import Settings
from tests.frontend.browser import PHONE, SMALL_TARGETS, no_horizontal_scroll
from tests.frontend.portal_pages import register
from tests.helpers import deliver, open_session
from tests.sms_gateway import FakeSmsApi, texted_code, with_sms

NUMBER = "13800000007"


@pytest.fixture
def settings(settings: Settings, sms_api: FakeSmsApi) -> Settings:
    return with_sms(settings, sms_api)


def test_a_lost_ticket_is_found_again_on_a_phone(live_server, browser, client, staff, db,
                                                 settings, sms_api):
    event_id = open_session(staff, db, venue="区教委三层会议室")
    register(client, event_id, phone=NUMBER)
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/")
        page.get_by_role("link", name="找回我的报名").click()
        page.wait_for_url(re.compile(r".*/tickets/recover$"))
        assert no_horizontal_scroll(page) and page.evaluate(SMALL_TARGETS) == []
        page.get_by_label("手机号").fill(NUMBER)
        page.get_by_role("button", name="获取验证码").click()
        page.wait_for_load_state()
        assert page.get_by_text("验证码 10 分钟内有效").is_visible()
        deliver(settings)
        page.get_by_label("短信中的 6 位验证码").fill(texted_code(sms_api, NUMBER))
        page.get_by_role("button", name="查看我的报名").click()
        page.wait_for_load_state()
        assert no_horizontal_scroll(page) and page.evaluate(SMALL_TARGETS) == []
        page.locator(".recover-list a").first.click()
        page.wait_for_url(re.compile(r".*/tickets/[^/]+$"))
        assert page.locator(".status-big").inner_text() == "已确认"
    finally:
        context.close()
