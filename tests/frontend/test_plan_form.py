"""The office enters one plan item by hand on /console/plan and deletes one (with its files) from
the item's page (issue 18): no script needed, refusals in Chinese, for the office only."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session, select

from events.models import PlanFile, PlanItem
from tests.conftest import Clock
from tests.frontend.test_plan_pages import NOW, PLAN, YEAR, form_post, import_form, item_id, text_of

PAGE = f"/console/plan?year={YEAR}"
ITEM = {"year": str(YEAR), "topic": "公共法律服务进社区", "unit_code": "education", "month": "5",
        "theme": "government-services"}


def topics(db: Session) -> list[str]:
    db.expire_all()
    return [item.topic for item in db.exec(select(PlanItem).where(PlanItem.year == YEAR))]


def test_the_office_adds_an_item_and_sees_it_in_the_table(staff: Any, db: Session,
                                                          clock: Clock) -> None:
    clock.now = NOW
    admin = staff("admin")
    form = admin.get(PAGE).text
    assert "添加一个计划条目" in text_of(form)
    assert 'action="/console/plan/items"' in form
    assert form.count('<option value="', form.index('id="month"')) >= 12  # 1-12 offered
    added = form_post(admin, PAGE, "/console/plan/items", ITEM)
    assert added.status_code == 303, added.text
    assert added.headers["location"].startswith(PAGE)
    page = admin.get(added.headers["location"])
    shown = text_of(page.text)
    assert "计划条目已添加。" in shown
    row = re.search(r'<tr id="item-\d+"[^>]*>(.*?)</tr>', page.text, re.S)
    assert row, "no row in the table"
    cells = text_of(row.group(1))
    assert "公共法律服务进社区" in cells and "5月" in cells
    assert topics(db) == ["公共法律服务进社区"]


def test_a_duplicate_topic_is_refused_in_chinese_and_nothing_is_added(staff: Any, db: Session,
                                                                      clock: Clock) -> None:
    clock.now = NOW
    admin = staff("admin")
    assert import_form(admin, PLAN).status_code == 303
    before = sorted(topics(db))
    # The plan compares topics without case and spaces.
    twice = form_post(admin, PAGE, "/console/plan/items",
                      {**ITEM, "topic": " 寒假校园安全 ", "month": "7"})
    assert twice.status_code == 422
    shown = text_of(twice.text)
    assert "条目未添加，请修改下列各项。" in shown
    assert "该议题已在本年度计划中：请换一个议题，或先删除原条目。" in shown
    assert 'value="寒假校园安全"' in twice.text  # what was typed is kept
    assert re.search(r'<option value="7"\s+selected>', twice.text)
    assert re.search(r'<option value="government-services"\s+selected>', twice.text)
    assert 'id="topic-error"' in twice.text and 'aria-invalid="true"' in twice.text
    assert sorted(topics(db)) == before
    # A unit that is not in the list, and no month: each field says why, nothing added.
    unknown = form_post(admin, PAGE, "/console/plan/items", {**ITEM, "unit_code": "nowhere"})
    assert unknown.status_code == 422
    assert "没有代码为 nowhere 的单位。" in text_of(unknown.text)
    assert "Please check" not in unknown.text and "no unit has" not in unknown.text
    no_month = form_post(admin, PAGE, "/console/plan/items", {**ITEM, "month": ""})
    assert no_month.status_code == 422 and "请选择月份。" in text_of(no_month.text)
    assert sorted(topics(db)) == before


def test_editors_may_neither_add_nor_delete(staff: Any, console: Any, db: Session,
                                            clock: Clock) -> None:
    clock.now = NOW
    admin = staff("admin")
    assert import_form(admin, PLAN).status_code == 303
    editor = console("editor", "education")
    page = editor.get(PAGE).text
    assert "添加一个计划条目" not in text_of(page)
    refused = form_post(editor, PAGE, "/console/plan/items", ITEM)
    assert refused.status_code == 403
    item = item_id(db, "义务教育入学政策")
    item_page = f"/console/plan/items/{item}"
    assert "删除此条目（其文件一并删除）" not in text_of(editor.get(item_page).text)
    kept = form_post(editor, item_page, f"{item_page}/delete", {"confirm": "yes"})
    assert kept.status_code == 403
    assert "公共法律服务进社区" not in topics(db) and "义务教育入学政策" in topics(db)


def test_the_office_deletes_an_item_with_its_files(staff: Any, db: Session,
                                                   clock: Clock) -> None:
    clock.now = NOW
    admin = staff("admin")
    assert import_form(admin, PLAN).status_code == 303
    item = item_id(db, "义务教育入学政策")
    page = f"/console/plan/items/{item}"
    uploaded = form_post(admin, page, f"{page}/files", {"step": "material"},
                         files={"file": ("材料.txt", "入学政策解读材料".encode(), "text/plain")})
    assert uploaded.status_code == 303, uploaded.text
    shown = text_of(admin.get(page).text)
    assert "删除此条目（其文件一并删除）" in shown
    # Without the confirmation ticked, nothing is deleted and the page says why.
    unconfirmed = form_post(admin, page, f"{page}/delete", {})
    assert unconfirmed.status_code == 422
    assert "请勾选确认框：此条目及其文件将一并删除。" in text_of(unconfirmed.text)
    assert "义务教育入学政策" in topics(db)
    deleted = form_post(admin, page, f"{page}/delete", {"confirm": "yes"})
    assert deleted.status_code == 303, deleted.text
    assert deleted.headers["location"].startswith(PAGE)
    after = admin.get(deleted.headers["location"])
    assert "计划条目已删除，其文件一并删除。" in text_of(after.text)
    assert "义务教育入学政策" not in text_of(after.text)
    assert "义务教育入学政策" not in topics(db)
    assert db.exec(select(PlanFile).where(PlanFile.item_id == item)).first() is None
    assert admin.get(page).status_code == 404
