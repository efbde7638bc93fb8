"""The staff console through its forms, as a browser without JavaScript would use it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from fastapi.testclient import TestClient
from sqlmodel import select

from events.models import AuditEntry, Event, EventStatus
from events.timeutil import LOCAL_TZ
from frontend.i18n import catalog
from tests.conftest import PASSWORD, make_user, unit_id
from tests.frontend.console_pages import (
    create_via_form,
    csrf_of,
    post_form,
    session_form,
    sign_in,
    submit,
)

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


# ---- signing in --------------------------------------------------------------------------------

def test_console_asks_for_sign_in_and_comes_back(client, db):
    make_user(db, "editor1", "editor", "education")
    response = client.get("/console/review", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/review"
    page = client.get(response.headers["location"])
    assert "工作人员登录" in page.text
    signed = client.post("/console/login", data={
        "username": "editor1", "password": PASSWORD, "csrf_token": csrf_of(page.text),
        "next": "/console/events/new"}, follow_redirects=False)
    assert signed.status_code == 303
    assert signed.headers["location"] == "/console/events/new"
    home = client.get("/console")
    assert home.status_code == 200
    assert "区教委" in home.text and "退出" in home.text and "单位编辑" in home.text


def test_wrong_password_shows_the_chinese_error_and_keeps_the_username(client, db):
    make_user(db, "editor1", "editor", "education")
    response = sign_in(client, "editor1", "not-the-password")
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text
    assert 'value="editor1"' in response.text
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_sign_in_is_throttled_with_its_own_message(app, db, settings):
    make_user(db, "editor1", "editor", "education")
    with TestClient(app) as client:
        for _ in range(settings.login_max_failures):
            assert sign_in(client, "editor1", "wrong-password").status_code == 401
        response = sign_in(client, "editor1", PASSWORD)
    assert response.status_code == 429
    assert "登录失败次数过多" in response.text


@pytest.mark.parametrize("next_path", ["https://evil.example/", "//evil.example/x",
                                       "/\\evil.example", "javascript:alert(1)"])
def test_sign_in_never_sends_you_off_site(client, db, next_path):
    make_user(db, "editor1", "editor", "education")
    page = client.get("/console/login")
    response = client.post("/console/login", data={
        "username": "editor1", "password": PASSWORD, "csrf_token": csrf_of(page.text),
        "next": next_path}, follow_redirects=False)
    assert response.headers["location"] == "/console"


def test_sign_in_form_without_its_token_is_refused(client, db):
    make_user(db, "editor1", "editor", "education")
    client.get("/console/login")
    response = client.post("/console/login", data={"username": "editor1", "password": PASSWORD},
                           follow_redirects=False)
    assert response.status_code == 403
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_sign_out_ends_the_session(console):
    editor = console("editor", "education")
    response = post_form(editor, "/console", "/console/logout", {})
    assert response.status_code == 303
    assert editor.get("/console", follow_redirects=False).status_code == 303


# ---- CSRF --------------------------------------------------------------------------------------

def test_a_post_without_the_csrf_token_is_refused(console, db):
    editor = console("editor", "education")
    form = session_form(db)
    assert editor.post("/console/events/new", data=form).status_code == 403
    assert editor.post("/console/events/new",
                       data={**form, "csrf_token": "forged"}).status_code == 403
    assert editor.post("/console/logout", data={}).status_code == 403
    assert db.exec(select(Event)).all() == []


# ---- creating and editing ----------------------------------------------------------------------

def test_editor_creates_a_session_through_the_form(console, db):
    editor = console("editor", "education")
    event_id = create_via_form(editor, db)
    page = editor.get(f"/console/events/{event_id}?done=created")
    assert "已保存为草稿" in page.text
    assert "2027年3月10日（周三）09:30" in page.text
    assert "区民政局" in page.text  # the co-host
    assert "政策解读" in page.text
    home = editor.get("/console").text
    drafts = home.split('id="group-draft"')[1].split("</section>")[0]
    assert "区教委2027年招生政策会议开放" in drafts
    db.expire_all()
    event = db.get(Event, event_id)
    assert event is not None and event.status == EventStatus.draft
    assert event.unit_id == unit_id(db, "education")
    assert event.starts_at.isoformat() == "2027-03-10T01:30:00+00:00"  # Beijing 09:30


def test_an_editor_cannot_create_for_another_unit(console, db):
    editor = console("editor", "education")
    event_id = create_via_form(editor, db, unit_id=str(unit_id(db, "civil-affairs")))
    assert db.get(Event, event_id).unit_id == unit_id(db, "education")  # type: ignore[union-attr]


def test_form_errors_keep_what_was_typed_and_say_what_to_fix(console, db):
    editor = console("editor", "education")
    response = post_form(editor, "/console/events/new", "/console/events/new", session_form(
        db, ends_at="2027-03-10T08:00", summary="我写了很久的简介<b>"))
    assert response.status_code == 422
    page = response.text
    assert "结束时间须晚于开始时间" in page
    assert 'value="区教委2027年招生政策会议开放"' in page
    assert "我写了很久的简介&lt;b&gt;" in page
    assert 'value="2027-03-10T08:00"' in page
    assert 'value="https://www.bjxch.gov.cn/zcjd.html"' in page
    assert page.count('name="material_title"') == 4  # the typed row and three blank ones
    assert re.search(rf'<option value="{unit_id(db, "civil-affairs")}"\s+selected', page)
    assert db.exec(select(Event)).all() == []


def test_each_bad_field_gets_its_own_sentence(console, db):
    editor = console("editor", "education")
    response = post_form(editor, "/console/events/new", "/console/events/new", session_form(
        db, title="", starts_at="next tuesday", capacity="-3",
        material_title=["只有标题", ""], material_url=["", ""]))
    assert response.status_code == 422
    page = unescape(response.text)
    assert 'id="title-error">此项为必填' in page
    assert 'id="starts_at-error">请输入日期和时间' in page
    assert 'id="capacity-error">请输入名额' in page
    assert 'id="material_0-error">请同时填写' in page


def test_the_form_reports_every_error_at_once(console, db):
    """A title missing and the times wrong were told one round at a time."""
    editor = console("editor", "education")
    response = post_form(editor, "/console/events/new", "/console/events/new", session_form(
        db, title="x" * 201, ends_at="2027-03-10T08:00", registration_closes_at="2027-03-11T09:00",
        capacity="", material_title=["", ""], material_url=["ftp://example.cn", ""]))
    assert response.status_code == 422
    page = unescape(response.text)
    summary = page.split('id="error-summary"')[1].split("</div>")[0]
    for field in ("title", "ends_at", "registration_closes_at", "capacity", "material_0"):
        assert f'href="#{field}' in summary, field
    assert 'id="ends_at-error">结束时间须晚于开始时间' in page
    assert 'id="capacity-error">请选择：限定名额，或不限名额' in page


def test_no_seat_limit_is_a_choice_the_form_asks_for(console, db):
    editor = console("editor", "education")
    blank = editor.get("/console/events/new").text
    assert 'name="capacity" value=""' in blank
    assert not re.search(r'name="seat_limit"[^>]*checked', blank)
    unlimited = create_via_form(editor, db, capacity="", seat_limit="none")
    assert db.get(Event, unlimited).capacity == 0  # type: ignore[union-attr]
    edit = editor.get(f"/console/events/{unlimited}/edit").text
    assert re.search(r'id="seat_limit-none" name="seat_limit" value="none" checked', edit)
    zero = post_form(editor, "/console/events/new", "/console/events/new",
                     session_form(db, capacity="0", seat_limit="limited"))
    assert zero.status_code == 422 and 'id="capacity-error">请输入名额' in unescape(zero.text)


def test_the_review_queue_shows_what_is_missing_and_publish_names_it(console, staff, db):
    editor = console("editor", "education")
    admin = console("admin")
    # Submitted before the rule: an in-person session without an address.
    event_id = create_via_form(editor, db, address="")
    event = db.get(Event, event_id)
    assert event is not None
    event.status = EventStatus.pending_review
    db.add(event)
    db.commit()
    queue = admin.get("/console/review").text
    missing = queue.split(f'id="missing-{event_id}">')[1].split("</p>")[0]
    assert "不能发布" in missing and "地址" in missing and "简介" not in missing
    assert "名额 30 个" in queue
    refused = post_form(admin, "/console/review", f"/console/events/{event_id}/status",
                        {"status": "published", "origin": "review"})
    assert refused.status_code == 422
    assert "提交审核和发布前请填写：地址。" in unescape(refused.text)
    db.expire_all()
    assert db.get(Event, event_id).status == EventStatus.pending_review  # type: ignore[union-attr]


def test_editor_edits_a_session_and_the_change_is_audited(console, db):
    editor = console("editor", "education")
    event_id = create_via_form(editor, db)
    response = post_form(editor, f"/console/events/{event_id}/edit",
                         f"/console/events/{event_id}/edit",
                         session_form(db, title="改期后的会议开放", capacity="0"))
    assert response.status_code == 303
    page = editor.get(f"/console/events/{event_id}").text
    assert "改期后的会议开放" in page
    assert "编辑了活动" in page and "不限" in page


def test_editor_cannot_open_another_units_edit_page(console, db):
    owner = console("editor", "education")
    other = console("editor", "civil-affairs")
    event_id = create_via_form(owner, db)
    assert other.get(f"/console/events/{event_id}/edit").status_code == 403
    token = csrf_of(other.get("/console").text)
    response = other.post(f"/console/events/{event_id}/edit",
                          data={**session_form(db, title="篡改"), "csrf_token": token})
    assert response.status_code == 403
    assert db.get(Event, event_id).title != "篡改"  # type: ignore[union-attr]


# ---- review ------------------------------------------------------------------------------------

def test_admin_publishes_from_the_review_queue(console, db, client):
    editor = console("editor", "education")
    admin = console("admin")
    event_id = create_via_form(editor, db)
    assert "区教委2027年招生政策会议开放" not in admin.get("/console/review").text
    submit(editor, event_id)
    queue = admin.get("/console/review").text
    assert "区教委2027年招生政策会议开放" in queue
    response = post_form(admin, "/console/review", f"/console/events/{event_id}/status",
                         {"status": "published", "origin": "review"})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/review?done=published"
    assert "区教委2027年招生政策会议开放" not in admin.get("/console/review").text
    assert client.get(f"/api/events/{event_id}").json()["status"] == "published"
    published = editor.get("/console").text.split('id="group-published"')[1]
    assert "区教委2027年招生政策会议开放" in published


def test_only_the_admin_sees_the_review_queue(console):
    editor = console("editor", "education")
    assert editor.get("/console/review").status_code == 403
    assert "审核队列" not in editor.get("/console").text


def test_send_back_needs_a_reason_and_the_editor_sees_it(console, db):
    editor = console("editor", "education")
    admin = console("admin")
    event_id = create_via_form(editor, db)
    submit(editor, event_id)
    refused = post_form(admin, "/console/review", f"/console/events/{event_id}/status",
                        {"status": "draft", "origin": "review", "reason": "  "})
    assert refused.status_code == 422
    # The reason goes to the unit, not the public: the page says so, and nothing else.
    error = refused.text.split(f'id="reason-{event_id}-error">')[1].split("</p>")[0]
    assert error == "请说明需要单位修改的内容：仅本单位和区政务公开办可见。"
    assert "仅本单位和区政务公开办可见，不向公众公开" in admin.get("/console/review").text
    db.expire_all()
    assert db.get(Event, event_id).status == EventStatus.pending_review  # type: ignore[union-attr]
    sent = post_form(admin, "/console/review", f"/console/events/{event_id}/status",
                     {"status": "draft", "origin": "review", "reason": "请补充会议地址和议程"})
    assert sent.status_code == 303
    home = editor.get("/console").text
    sent_back = home.split('id="group-sent_back"')[1].split("</section>")[0]
    assert "请补充会议地址和议程" in sent_back
    assert "请补充会议地址和议程" in editor.get(f"/console/events/{event_id}").text


def test_cancel_of_a_published_session_needs_a_reason_and_keeps_the_typing(console, db):
    editor = console("editor", "education")
    admin = console("admin")
    event_id = create_via_form(editor, db)
    submit(editor, event_id)
    post_form(admin, "/console/review", f"/console/events/{event_id}/status",
              {"status": "published", "origin": "review"})
    page = f"/console/events/{event_id}"
    refused = post_form(editor, page, f"{page}/status", {"status": "cancelled", "reason": ""})
    assert refused.status_code == 422
    assert "请填写原因" in refused.text
    postponed = post_form(editor, page, f"{page}/postpone", {
        "starts_at": "2027-03-20T09:30", "ends_at": "2027-03-20T09:00", "reason": "会场检修"})
    assert postponed.status_code == 422
    assert "结束时间须晚于开始时间" in postponed.text and "会场检修" in postponed.text
    ok = post_form(editor, page, f"{page}/postpone", {
        "starts_at": "2027-03-20T09:30", "ends_at": "2027-03-20T11:30", "reason": "会场检修"})
    assert ok.status_code == 303
    assert "2027年3月20日（周六）09:30" in editor.get(page).text


# ---- audit, units, escaping ----------------------------------------------------------------------

def test_audit_page_lists_the_changes(console, db):
    editor = console("editor", "education")
    admin = console("admin")
    event_id = create_via_form(editor, db)
    post_form(editor, f"/console/events/{event_id}/edit", f"/console/events/{event_id}/edit",
              session_form(db, venue="区政府礼堂"))
    submit(editor, event_id)
    page = admin.get("/console/audit").text
    assert "创建了活动" in page and "编辑了活动" in page and "提交审核" in page
    assert "区教委三层会议室" in page and "区政府礼堂" in page  # old → new
    assert page.index("提交审核") < page.index("创建了活动")  # newest first
    other_unit = admin.get(f"/console/audit?unit={unit_id(db, 'civil-affairs')}").text
    assert "创建了活动" not in other_unit
    assert editor.get("/console/audit").status_code == 403


def test_audit_is_paginated(console, db):
    admin = console("admin")
    for number in range(55):
        db.add(AuditEntry(username="admin-x-0", action="event.update", entity="event",
                          entity_id=number + 1000, changes='{"title": ["a", "b"]}'))
    db.commit()
    first = admin.get("/console/audit").text
    assert "#1054" in first and "#1004" not in first and "page=2" in first
    second = admin.get("/console/audit?page=2").text
    assert "#1004" in second and "#1054" not in second


def test_admin_adds_renames_retires_and_restores_a_unit(console, db):
    admin = console("admin")
    response = post_form(admin, "/console/units", "/console/units", {
        "code": "xc-data", "name": "区数据局", "name_en": "", "category": "other"})
    assert response.status_code == 303
    bad = post_form(admin, "/console/units", "/console/units", {
        "code": "Bad Code", "name": "某局", "name_en": "", "category": "other"})
    assert bad.status_code == 422 and "某局" in bad.text and "小写字母" in bad.text
    new_id = db.exec(select(AuditEntry).where(AuditEntry.action == "unit.create")).one().entity_id
    assert post_form(admin, "/console/units", f"/console/units/{new_id}",
                     {"action": "rename", "name": "区政务服务和数据管理局",
                      "name_en": ""}).status_code == 303
    assert post_form(admin, "/console/units", f"/console/units/{new_id}",
                     {"action": "retire"}).status_code == 303
    page = admin.get("/console/units").text
    row = page.split(f'id="unit-{new_id}"')[1].split("</li>")[0]
    assert "区政务服务和数据管理局" in row and "已停用" in row and "恢复" in row
    editor = console("editor", "education")
    assert editor.get("/console/units").status_code == 403


def test_markup_in_a_title_is_shown_as_text(console, db):
    editor = console("editor", "education")
    admin = console("admin")
    event_id = create_via_form(editor, db, title="<script>alert(1)</script>会议")
    submit(editor, event_id)
    pages = [editor.get("/console").text, editor.get(f"/console/events/{event_id}").text,
             admin.get("/console/review").text, admin.get("/console/audit").text,
             editor.get(f"/console/events/{event_id}/edit").text]
    for page in pages:
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;会议" in page


def test_host_sees_sessions_to_run_and_may_go_live(console, db):
    editor = console("editor", "education")
    admin = console("admin")
    host = console("host")
    soon = datetime.now(LOCAL_TZ) + timedelta(minutes=20)
    event_id = create_via_form(editor, db, starts_at=soon.strftime("%Y-%m-%dT%H:%M"),
                               ends_at=(soon + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
                               registration_opens_at="", registration_closes_at="")
    assert "区教委2027年招生政策会议开放" not in host.get("/console").text
    submit(editor, event_id)
    post_form(admin, "/console/review", f"/console/events/{event_id}/status",
              {"status": "published", "origin": "review"})
    # Published, but not yet assigned to this host: not theirs to run.
    assert "区教委2027年招生政策会议开放" not in host.get("/console").text
    assert host.get(f"/console/events/{event_id}/checkin").status_code == 403
    page = editor.get(f"/console/events/{event_id}").text
    host_id = re.search(r'<option value="(\d+)">[^<]*\(console-host-x-2\)</option>', page)
    assert host_id, "the unit's page offers the host accounts"
    assigned = post_form(editor, f"/console/events/{event_id}",
                         f"/console/events/{event_id}/hosts", {"user_id": host_id.group(1)})
    assert assigned.status_code == 303
    assert "已为该活动分派主持人。" in editor.get(assigned.headers["location"]).text
    assert "区教委2027年招生政策会议开放" in host.get("/console").text
    page = host.get(f"/console/events/{event_id}").text
    # An in-person meeting is started, not broadcast.
    assert "开始活动" in page and "开始直播" not in page
    assert "编辑</a>" not in page and "结束活动" not in page
    assert host.get("/console/events/new").status_code == 403
    went = post_form(host, f"/console/events/{event_id}", f"/console/events/{event_id}/status",
                     {"status": "live"})
    assert went.status_code == 303
    live = host.get(f"/console/events/{event_id}").text
    assert "直播中" in live and "结束活动" not in live  # it has not started yet
    early = post_form(host, f"/console/events/{event_id}", f"/console/events/{event_id}/status",
                      {"status": "ended"})
    assert early.status_code == 409 and "活动尚未开始" in early.text


def test_console_pages_are_never_cached(console):
    editor = console("editor", "education")
    assert editor.get("/console").headers["cache-control"] == "private, no-store"


# ---- every string translated -------------------------------------------------------------------

def _console_msgids() -> set[str]:
    found: set[str] = set()
    keywords = {"_": None, "gettext": None, "N_": None}
    for path in sorted((FRONTEND / "templates" / "console").glob("*.html")):
        for _line, message, _c, _ctx in extract_from_file(
                "jinja2.ext:babel_extract", str(path), keywords=keywords,
                options={"extensions": "jinja2.ext.i18n", "trimmed": "true"}):
            found.add(message if isinstance(message, str) else message[0])
    for path in sorted(FRONTEND.glob("console*.py")):
        for _line, message, _c, _ctx in extract_from_file("python", str(path),
                                                           keywords=keywords):
            found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_console_string_has_a_chinese_translation():
    msgids = _console_msgids()
    assert len(msgids) > 100
    missing = sorted(m for m in msgids if m not in catalog("zh_CN"))
    assert missing == []


def test_the_console_speaks_english_when_asked(console, db):
    editor = console("editor", "education")
    editor.get("/console?lang=en")
    page = editor.get("/console/events/new").text
    assert "New session" in page and "Organising unit" in page and "新建活动" not in page
    response = post_form(editor, "/console/events/new", "/console/events/new",
                         session_form(db, ends_at="2027-03-10T08:00"))
    assert "The end must be after the start." in response.text
