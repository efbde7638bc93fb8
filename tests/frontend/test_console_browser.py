"""Done when: in Chromium, an editor creates a session, an admin publishes it, and a citizen on
a phone finds it on the portal."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from events.timeutil import LOCAL_TZ
from tests.conftest import event_body, make_user
from tests.frontend.browser import ARTIFACTS, sign_in

TITLE = "西长安街街道2027年老旧小区加装电梯政府开放日"


def sign_out(page: Any, base: str) -> None:
    page.get_by_role("button", name="退出").click()
    page.wait_for_url(re.compile(r".*/console/login$"))


def test_editor_creates_admin_publishes_citizen_finds_it(live_server, browser, db):
    base = live_server
    make_user(db, "xichang-editor", "editor", "xichangan")
    make_user(db, "office-admin", "admin")
    ARTIFACTS.mkdir(exist_ok=True)
    day = (datetime.now(LOCAL_TZ) + timedelta(days=9)).date()

    staff = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = staff.new_page()
    sign_in(page, base, "xichang-editor")
    page.get_by_role("link", name="新建活动").click()
    def field(name: str) -> Any:
        return page.get_by_label(name, exact=True)  # the label as seen, with its marker

    field("活动类型 必填").select_option("open_day")
    field("标题 必填").fill(TITLE)
    field("简介").fill("请居民代表实地查看加装电梯工地，听取施工和补贴政策介绍。")
    field("开始时间 必填").fill(f"{day}T09:30")
    field("结束时间 必填").fill(f"{day}T11:00")
    field("地点").fill("西长安街街道社区服务中心")
    field("地址").fill("北京市西城区府右街")
    field("限定").check()  # seats are limited: a choice, not a default
    field("名额数").fill("40")
    field("材料标题 1").fill("加装电梯补贴政策")
    field("链接 1").fill("https://www.bjxch.gov.cn/dt.html")
    page.screenshot(path=str(ARTIFACTS / "console-form.png"), full_page=True)
    page.get_by_role("button", name="保存为草稿").click()
    page.wait_for_url(re.compile(r".*/console/events/\d+\?done=created$"))
    event_id = int(re.search(r"/events/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    assert page.get_by_role("status").inner_text() == "活动已保存为草稿。"

    page.get_by_role("button", name="提交审核").click()
    page.wait_for_url(re.compile(r".*done=pending_review$"))
    assert page.locator(".event-head .badge").first.inner_text() == "待审核"
    nav = page.get_by_role("navigation", name="主导航")
    nav.get_by_role("link", name="我的活动").click()
    assert TITLE in page.locator("#group-pending_review + ul").inner_text()
    page.screenshot(path=str(ARTIFACTS / "console-home.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 812})
    page.screenshot(path=str(ARTIFACTS / "console-home-phone.png"), full_page=True)
    page.goto(f"{base}/console/events/{event_id}")
    page.screenshot(path=str(ARTIFACTS / "console-event-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_out(page, base)

    sign_in(page, base, "office-admin")
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="审核队列").click()
    item = page.locator(f"#review-{event_id}")
    assert TITLE in item.inner_text()
    page.screenshot(path=str(ARTIFACTS / "console-review.png"), full_page=True)
    item.get_by_role("button", name="发布").click()
    page.wait_for_url(re.compile(r".*/console/review\?done=published$"))
    assert page.locator(f"#review-{event_id}").count() == 0
    sign_out(page, base)
    staff.close()

    citizen = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
    phone = citizen.new_page()
    phone.goto(f"{base}/")
    phone.get_by_role("link", name=TITLE).click()
    phone.wait_for_url(f"{base}/events/{event_id}")
    assert phone.get_by_role("heading", level=1).inner_text() == TITLE
    assert citizen.cookies() == [] or all(c["name"] != "kaifang_session"
                                          for c in citizen.cookies())
    citizen.close()


def test_form_errors_on_a_phone_keep_the_typing_and_take_the_keyboard(live_server, browser, db):
    base = live_server
    make_user(db, "xichang-editor", "editor", "xichangan")
    context = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
    page = context.new_page()
    sign_in(page, base, "xichang-editor")
    page.goto(f"{base}/console/events/new")
    page.get_by_label("标题 必填", exact=True).fill(TITLE)
    page.get_by_label("开始时间 必填", exact=True).fill("2027-03-10T09:30")
    page.get_by_label("结束时间 必填", exact=True).fill("2027-03-10T08:00")
    page.get_by_label("标题 必填", exact=True).press("Enter")  # submit from the keyboard
    page.wait_for_load_state()
    summary = page.locator("#error-summary")
    assert "结束时间须晚于开始时间" in summary.inner_text()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert page.get_by_label("标题 必填", exact=True).input_value() == TITLE
    assert page.locator("#ends_at").get_attribute("aria-invalid") == "true"
    page.screenshot(path=str(ARTIFACTS / "console-form-errors-phone.png"), full_page=True)
    summary.get_by_role("link", name="结束时间").click()
    assert page.evaluate("document.activeElement.id") == "ends_at"
    context.close()


def test_the_form_shows_every_error_in_one_round(live_server, browser, db):
    """Each save used to tell one more error: the title, then the times, then the seats."""
    base = live_server
    make_user(db, "xichang-editor", "editor", "xichangan")
    for viewport in ({"width": 1280, "height": 900}, {"width": 375, "height": 812}):
        context = browser.new_context(viewport=viewport, locale="zh-CN")
        page = context.new_page()
        sign_in(page, base, "xichang-editor")
        page.goto(f"{base}/console/events/new")
        assert not page.get_by_label("不限名额", exact=True).is_checked()
        assert not page.get_by_label("限定", exact=True).is_checked()
        page.get_by_label("开始时间 必填", exact=True).fill("2027-03-10T09:30")
        page.get_by_label("结束时间 必填", exact=True).fill("2027-03-10T08:00")
        page.get_by_label("报名截止时间", exact=True).fill("2027-03-11T09:00")
        page.get_by_label("材料标题 1", exact=True).fill("加装电梯补贴政策")
        page.get_by_role("button", name="保存为草稿").click()
        page.wait_for_load_state()
        summary = page.locator("#error-summary")
        links = summary.get_by_role("link").all_inner_texts()
        assert links == ["标题", "结束时间", "名额", "报名截止时间", "相关材料 1"], links
        for field in ("title", "ends_at", "registration_closes_at"):
            assert page.locator(f"#{field}").get_attribute("aria-invalid") == "true", field
        assert page.locator("#capacity-error").inner_text() == "请选择：限定名额，或不限名额。"
        page.screenshot(path=str(ARTIFACTS / f"console-form-all-errors-{viewport['width']}.png"),
                        full_page=True)
        context.close()


def test_admin_pages_render_for_the_screenshots(live_server, browser, db, staff):
    base = live_server
    editor = staff("editor", "education")
    for day in (10, 11, 12):
        body = event_body(db, starts_at=f"2027-03-{day}T09:30:00+08:00",
                          ends_at=f"2027-03-{day}T11:30:00+08:00",
                          title=f"区教委2027年招生政策会议开放（第{day - 9}场）")
        created = editor.post("/api/events", json=body).json()
        editor.patch(f"/api/events/{created['id']}", json={"venue": "区教委报告厅"})
    make_user(db, "office-admin", "admin")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    sign_in(page, base, "office-admin")
    assert page.locator(".event-row").count() == 3
    page.screenshot(path=str(ARTIFACTS / "console-admin-home.png"), full_page=True)
    page.goto(f"{base}/console/audit")
    assert page.locator(".audit-entry").count() == 8  # 3 created, 3 edited, 2 accounts
    edited = page.locator(".audit-entry", has_text="编辑了活动").first.inner_text()
    assert "地点" in edited and "区教委三层会议室" in edited and "区教委报告厅" in edited
    page.screenshot(path=str(ARTIFACTS / "console-audit.png"), full_page=True)
    page.goto(f"{base}/console/units")
    assert page.locator(".unit-row").count() >= 42
    page.screenshot(path=str(ARTIFACTS / "console-units.png"))
    context.close()
