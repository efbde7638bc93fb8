"""Staff accounts in the console: the district office adds, edits, deactivates and resets
accounts through forms, as a browser without JavaScript would, and once in Chromium on a phone."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from events.models import AuditEntry, StaffUser
from tests.conftest import PASSWORD, make_user, unit_id
from tests.frontend.browser import ARTIFACTS, PHONE, no_horizontal_scroll
from tests.frontend.console_pages import csrf_of, post_form, sign_in

NEW_PASSWORD = "another-horse-77"


def account(db: Session, username: str) -> StaffUser | None:
    db.expire_all()
    return db.exec(select(StaffUser).where(StaffUser.username == username)).first()


def new_account(db: Session, **over: str) -> dict[str, Any]:
    form = {"username": "wang.li", "display_name": "王丽", "role": "editor",
            "unit_id": str(unit_id(db, "education")), "password": NEW_PASSWORD}
    form.update(over)
    return form


def row_of(page: str, user_id: int | None) -> str:
    return page.split(f'id="user-{user_id}"')[1].split("</tr>")[0]


def test_an_admin_creates_an_editor_who_can_then_sign_in(console, app, db):
    admin = console("admin")
    response = post_form(admin, "/console/users", "/console/users", new_account(db))
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console/users?done=user_created"
    page = admin.get(response.headers["location"]).text
    assert "账号已创建" in page
    created = account(db, "wang.li")
    assert created is not None
    row = row_of(page, created.id)
    assert "王丽" in row and "单位编辑" in row and "区教委" in row and "启用" in row
    assert NEW_PASSWORD not in page
    with TestClient(app) as newcomer:
        assert sign_in(newcomer, "wang.li", NEW_PASSWORD).status_code == 303
        assert newcomer.get("/console").status_code == 200
    assert db.exec(select(AuditEntry).where(AuditEntry.action == "user.create")).all()


def test_a_bad_username_is_explained_in_chinese_and_keeps_the_typing(console, db):
    admin = console("admin")
    health = str(unit_id(db, "health"))
    bad = post_form(admin, "/console/users", "/console/users",
                    new_account(db, username="王 丽!", unit_id=health))
    assert bad.status_code == 422, bad.text
    page = unescape(bad.text)
    assert "账号未创建" in page and "用户名须为 2–60 个字母" in page
    assert 'value="王 丽!"' in page and 'value="王丽"' in page
    assert f'value="{NEW_PASSWORD}"' in page  # the initial password is not typed twice
    assert re.search(rf'<option value="{health}" selected>', page)
    assert 'aria-invalid="true"' in page and "username-0-error" in page
    assert account(db, "王 丽!") is None


def test_other_mistakes_are_shown_beside_their_field(console, db):
    admin = console("admin")
    make_user(db, "taken.name", "host")
    cases = [
        (new_account(db, unit_id=""), 422, "单位编辑必须属于一个单位"),
        (new_account(db, password="short"), 422, "密码至少需要 8 个字符"),
        (new_account(db, username="Taken.Name"), 409, "该用户名已被使用"),
        (new_account(db, username=""), 422, "此项为必填"),
    ]
    for form, status, message in cases:
        response = post_form(admin, "/console/users", "/console/users", form)
        assert response.status_code == status, (form, response.text)
        assert message in unescape(response.text), form
        assert 'value="王丽"' in response.text
    assert account(db, "wang.li") is None


def test_a_form_post_without_its_csrf_token_is_refused(console, db):
    admin = console("admin")
    target = make_user(db, "jiaowei.editor", "editor", "education")
    created = admin.post("/console/users", data=new_account(db), follow_redirects=False)
    assert created.status_code == 403
    assert "表单已过期" in created.text or "csrf" in created.text
    wrong = admin.post("/console/users", data={**new_account(db), "csrf_token": "forged"},
                       follow_redirects=False)
    assert wrong.status_code == 403
    changed = admin.post(f"/console/users/{target.id}", data={"action": "deactivate"},
                         follow_redirects=False)
    assert changed.status_code == 403
    assert account(db, "wang.li") is None
    assert account(db, "jiaowei.editor").active is True


def test_editors_and_hosts_may_not_manage_accounts(console, db):
    target = make_user(db, "jiaowei.editor", "editor", "education")
    for role, unit_code in (("editor", "education"), ("host", None)):
        someone = console(role, unit_code)
        assert someone.get("/console/users").status_code == 403
        token = csrf_of(someone.get("/console").text)
        created = someone.post("/console/users", data={**new_account(db), "csrf_token": token},
                               follow_redirects=False)
        assert created.status_code == 403
        promoted = someone.post(f"/console/users/{target.id}",
                                data={"action": "save", "role": "admin", "display_name": "",
                                      "unit_id": "", "password": "", "csrf_token": token},
                                follow_redirects=False)
        assert promoted.status_code == 403
        assert "账号管理" not in someone.get("/console").text
    assert account(db, "wang.li") is None
    assert account(db, "jiaowei.editor").role.value == "editor"


def test_an_admin_edits_resets_and_deactivates_an_account(console, app, db):
    admin = console("admin")
    assert "账号管理" in admin.get("/console").text
    target = make_user(db, "jiaowei.editor", "editor", "education")
    editor = TestClient(app)
    editor.__enter__()
    assert sign_in(editor, "jiaowei.editor").status_code == 303
    civil = str(unit_id(db, "civil-affairs"))
    saved = post_form(admin, "/console/users", f"/console/users/{target.id}",
                      {"action": "save", "display_name": "李明", "role": "editor",
                       "unit_id": civil, "password": NEW_PASSWORD})
    assert saved.status_code == 303, saved.text
    page = admin.get(saved.headers["location"]).text
    row = row_of(page, target.id)
    assert "账号已保存" in page and "李明" in row and "区民政局" in row
    assert editor.get("/console", follow_redirects=False).status_code == 303  # signed out
    assert sign_in(editor, "jiaowei.editor", PASSWORD).status_code == 401
    assert sign_in(editor, "jiaowei.editor", NEW_PASSWORD).status_code == 303

    off = post_form(admin, "/console/users", f"/console/users/{target.id}",
                    {"action": "deactivate"})
    assert off.status_code == 303
    assert "已停用" in row_of(admin.get("/console/users").text, target.id)
    assert editor.get("/console", follow_redirects=False).status_code == 303
    assert sign_in(editor, "jiaowei.editor", NEW_PASSWORD).status_code == 401
    editor.__exit__(None, None, None)

    audit = admin.get("/console/audit").text
    assert "修改了账号" in audit and "已更改密码" in audit and NEW_PASSWORD not in audit


def test_a_bad_edit_keeps_the_typing_on_its_row(console, db):
    admin = console("admin")
    target = make_user(db, "jiaowei.editor", "editor", "education")
    bad = post_form(admin, "/console/users", f"/console/users/{target.id}",
                    {"action": "save", "display_name": "李明", "role": "editor",
                     "unit_id": "", "password": "short"})
    assert bad.status_code == 422, bad.text
    row = row_of(unescape(bad.text), target.id)
    assert "<details open>" in row and 'value="李明"' in row
    assert "单位编辑必须属于一个单位" in row or "密码至少需要 8 个字符" in row
    assert account(db, "jiaowei.editor").display_name == ""


def test_an_admin_may_not_demote_themselves_but_keeps_their_session(console, db):
    admin = console("admin")
    me = account(db, "console-admin-x-0")
    assert me is not None
    page = admin.get("/console/users").text
    assert "停用<span" not in row_of(page, me.id)  # no button to lock yourself out
    refused = post_form(admin, "/console/users", f"/console/users/{me.id}",
                        {"action": "save", "display_name": "", "role": "host", "unit_id": "",
                         "password": ""})
    assert refused.status_code == 409
    assert "不能停用自己的账号" in row_of(refused.text, me.id)
    reset = post_form(admin, "/console/users", f"/console/users/{me.id}",
                      {"action": "save", "display_name": "", "role": "admin", "unit_id": "",
                       "password": NEW_PASSWORD})
    assert reset.status_code == 303
    assert admin.get("/console/users").status_code == 200  # still signed in, with the new cookie
    assert account(db, "console-admin-x-0").role.value == "admin"


def test_accounts_on_a_phone_by_keyboard(live_server, browser, db):
    make_user(db, "office-admin", "admin")
    make_user(db, "jiaowei.editor", "editor", "education")
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/console/login?next=/console/users")
        page.get_by_label("用户名").fill("office-admin")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url("**/console/users")
        assert page.get_by_role("heading", name="账号管理").is_visible()
        assert no_horizontal_scroll(page)
        # Open the form and fill it with the keyboard alone.
        page.locator(".add-user summary").focus()
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        page.keyboard.type("zhao.min")
        page.keyboard.press("Tab")
        page.keyboard.type("赵敏")
        page.get_by_label("单位", exact=True).first.select_option(label="区教委")
        page.get_by_label("初始密码").fill(NEW_PASSWORD)
        page.get_by_label("初始密码").press("Enter")
        page.wait_for_url("**/console/users?done=user_created")
        assert page.get_by_role("status").inner_text().startswith("账号已创建")
        row = page.locator("tr", has_text="zhao.min")
        assert row.locator("td.user-data", has_text="区教委").is_visible()
        assert no_horizontal_scroll(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "console-users-phone.png"), full_page=True)
    finally:
        context.close()
