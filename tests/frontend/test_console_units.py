"""A unit's contact e-mail on the console's units page: the district office sets, corrects and
clears it through a form, as a browser without JavaScript would; nobody else may."""

from __future__ import annotations

import json
from html import unescape

import pytest
from sqlmodel import Session, col, select

from events.models import AuditEntry, Unit
from tests.conftest import unit_id
from tests.frontend.console_pages import csrf_of, post_form

ADDRESS = "zhang.office@xicheng.gov.cn"


def contact_email(db: Session, code: str) -> str:
    db.expire_all()
    return db.exec(select(Unit.contact_email).where(Unit.code == code)).one()


def unit_audit(db: Session, unit: int) -> list[AuditEntry]:
    db.expire_all()
    return list(db.exec(select(AuditEntry).where(AuditEntry.entity == "unit",
                                                 AuditEntry.entity_id == unit)
                        .order_by(col(AuditEntry.id))))


def row_of(page: str, unit: int) -> str:
    return page.split(f'id="unit-{unit}"')[1].split("</li>")[0]


def set_email(client, unit: int, address: str):  # type: ignore[no-untyped-def]
    return post_form(client, "/console/units", f"/console/units/{unit}/contact-email",
                     {"contact_email": address})


def test_an_admin_sets_a_units_contact_email_which_is_shown_and_audited(console, db):
    admin = console("admin")
    civil = unit_id(db, "civil-affairs")
    before = admin.get("/console/units").text
    assert "未设联系邮箱" in row_of(before, civil)
    response = set_email(admin, civil, f"  {ADDRESS} ")
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/console/units?done=contact_saved#unit-{civil}"
    page = admin.get(response.headers["location"]).text
    assert "联系邮箱已保存" in page
    row = row_of(page, civil)
    assert f"联系邮箱：{ADDRESS}" in row and f'value="{ADDRESS}"' in row
    assert ADDRESS not in row_of(page, unit_id(db, "education"))
    assert contact_email(db, "civil-affairs") == ADDRESS
    [entry] = unit_audit(db, civil)
    assert (entry.action, entry.username, entry.unit_id) == ("unit.update", "console-admin-x-0",
                                                             civil)
    assert json.loads(entry.changes) == {"contact_email": ["", ADDRESS]}
    assert ADDRESS in admin.get("/console/audit").text
    # Staff data: the public list of units does not carry it.
    assert ADDRESS not in admin.get("/api/units").text


def test_saving_the_same_address_again_adds_no_audit_entry(console, db):
    admin = console("admin")
    civil = unit_id(db, "civil-affairs")
    assert set_email(admin, civil, ADDRESS).status_code == 303
    assert set_email(admin, civil, ADDRESS).status_code == 303
    assert len(unit_audit(db, civil)) == 1


def test_an_empty_field_clears_the_address(console, db):
    admin = console("admin")
    civil = unit_id(db, "civil-affairs")
    assert set_email(admin, civil, ADDRESS).status_code == 303
    response = set_email(admin, civil, "")
    assert response.status_code == 303
    assert response.headers["location"] == f"/console/units?done=contact_cleared#unit-{civil}"
    page = admin.get(response.headers["location"]).text
    assert "联系邮箱已清除" in page and "未设联系邮箱" in row_of(page, civil)
    assert contact_email(db, "civil-affairs") == ""
    assert json.loads(unit_audit(db, civil)[-1].changes) == {"contact_email": [ADDRESS, ""]}


@pytest.mark.parametrize(("typed", "message"), [
    ("zhang@xicheng", "请填写有效的邮箱地址"),
    ("zhang@@xicheng.gov.cn", "请填写有效的邮箱地址"),
    ("zhang li@xicheng.gov.cn", "请填写有效的邮箱地址"),
    ("zhang@xicheng.gov.cn, li@xicheng.gov.cn", "请填写有效的邮箱地址"),
    ("区民政局办公室", "请填写有效的邮箱地址"),
    ("<b>x</b>@xicheng.gov.cn", "请填写有效的邮箱地址"),
    ("z" * 190 + "@xicheng.gov.cn", "最多 200 个字符"),
])
def test_a_bad_address_is_explained_in_chinese_and_keeps_the_typing(console, db, typed,
                                                                     message):
    admin = console("admin")
    civil = unit_id(db, "civil-affairs")
    assert set_email(admin, civil, ADDRESS).status_code == 303
    response = set_email(admin, civil, typed)
    assert response.status_code == 422, response.text
    page = response.text
    assert "修改未保存" in page
    row = row_of(page, civil)
    assert message in row
    assert f'value="{typed}"' in unescape(row) and "<b>x</b>" not in row
    assert 'aria-invalid="true"' in row and f"contact_email-{civil}-error" in row
    # The rename form of the same unit still shows the stored names, not the failed typing.
    assert 'value="区民政局"' in row
    assert contact_email(db, "civil-affairs") == ADDRESS
    assert len(unit_audit(db, civil)) == 1


def test_only_admins_may_change_it(console, db):
    civil = unit_id(db, "civil-affairs")
    for role, unit in (("editor", "civil-affairs"), ("host", None)):
        client = console(role, unit)
        token = csrf_of(client.get("/console").text)
        response = client.post(f"/console/units/{civil}/contact-email",
                               data={"contact_email": ADDRESS, "csrf_token": token},
                               follow_redirects=False)
        assert response.status_code == 403, (role, response.text)
        assert "没有权限" in response.text or "无权" in response.text
    assert contact_email(db, "civil-affairs") == ""
    assert unit_audit(db, civil) == []


def test_an_unknown_unit_or_a_missing_token_is_refused_not_an_error(console, db):
    admin = console("admin")
    for missing in (999_999, 99_999_999_999):
        assert set_email(admin, missing, ADDRESS).status_code == 404
    civil = unit_id(db, "civil-affairs")
    response = admin.post(f"/console/units/{civil}/contact-email",
                          data={"contact_email": ADDRESS}, follow_redirects=False)
    assert response.status_code == 403
    assert contact_email(db, "civil-affairs") == ""
