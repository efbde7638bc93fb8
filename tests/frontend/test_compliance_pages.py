"""The quota pages: the office's dashboard, a unit's drill-down, the printable report, the rules
form, an editor's card and the public results page, over a crafted past year."""

from __future__ import annotations

import re
from datetime import date
from html import unescape
from typing import Any

from events import quotas
from frontend import charts
from frontend import compliance_views as views
from frontend.i18n import current_locale
from frontend.templating import env
from tests.frontend.console_pages import YEAR, crafted_year, csrf_of

QUOTA_UNITS = 26  # 11 livelihood departments and 15 sub-districts


def text_of(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def row_of(html: str, name: str) -> str:
    """The text of the dashboard's table row of one unit."""
    found = re.search(r"<tr class=\"row-[a-z_]+\">\s*<th scope=\"row\"[^>]*>(?:<a [^>]+>)?"
                      + re.escape(name) + r".*?</tr>", html, re.S)
    assert found, f"no row for {name}"
    return text_of(found.group(0))


def test_dashboard_shows_each_units_status_and_filters_by_category(staff, db):
    admin = staff("admin")
    crafted_year(admin, db)
    page = admin.get(f"/console/compliance?year={YEAR}")
    assert page.status_code == 200
    assert "✓ 达标" in row_of(page.text, "区教委")
    civil = row_of(page.text, "区民政局")
    assert "✗ 未完成" in civil
    assert "1 / 2" in civil  # the open meeting of 21 July counts for the year, not for July
    assert "— 无要求" in row_of(page.text, "区政府办公室")
    assert "✗ 未完成" in row_of(page.text, "西长安街街道")  # a co-host, but a draft is all else
    summary = text_of(page.text)
    assert "应考核单位 26" in summary and "已达标 1" in summary and "未达标 25" in summary
    assert page.text.count('href="/console/compliance/units/') == 42  # every unit drills down

    streets = admin.get(f"/console/compliance?year={YEAR}&category=subdistrict").text
    assert "西长安街街道" in streets and "区教委</a>" not in streets
    assert streets.count('href="/console/compliance/units/') == 15
    departments = admin.get(f"/console/compliance?year={YEAR}&category=livelihood").text
    assert "区教委</a>" in departments and "西长安街街道</a>" not in departments
    assert departments.count('href="/console/compliance/units/') == 11


def test_dashboard_charts_are_svg_with_a_table_alternative(staff, db):
    admin = staff("admin")
    crafted_year(admin, db)
    page = admin.get(f"/console/compliance?year={YEAR}").text
    assert page.count("<svg") == 2 and 'role="img"' in page
    months = re.search(r'<svg[^>]+id="chart-months".*?</svg>', page, re.S)
    assert months and "9月" in months.group(0) and "会议开放" in months.group(0)
    # the table beside the chart: 会议开放 held in March, July (twice: 20 and 21) and November
    table = text_of(page.split('id="months-caption"')[1].split("</details>")[0])
    assert "会议开放 0 0 1 0 0 0 2 0 0 0 1 0 4" in table


def test_charts_escape_their_labels():
    svg = charts.stacked_columns("c1", "T<i>", "D&", ["<script>alert(1)</script>"],
                                 [charts.Series("a\"b<", [3])])
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "a&#34;b&lt;" in svg and "T&lt;i&gt;" in svg and "D&amp;" in svg
    assert svg.startswith("<svg") and 'aria-labelledby="c1-title c1-desc"' in svg
    rows = charts.stacked_rows("c2", "t", "d", ["<b>"], [charts.Series("x", [2]),
                                                          charts.Series("y", [1])])
    assert "<b>" not in rows and "&lt;b&gt;" in rows
    assert 'fill="url(#c2-p1)"' in rows  # the second series is a pattern, not a colour alone


def test_drill_down_lists_what_counts_and_why_not(staff, db):
    admin = staff("admin")
    ids = crafted_year(admin, db)
    page = admin.get(f"/console/compliance/units/civil-affairs?year={YEAR}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "区民政局" in text and "✗ 未完成" in text
    cancelled = re.search(rf'<tr class="not-counted">.*?/console/events/{ids["civil_cancelled"]}'
                          r".*?</tr>", page.text, re.S)
    assert cancelled and "已取消" in cancelled.group(0)
    late = re.findall(rf'<tr class="[a-z-]+">.*?/console/events/{ids["civil_late"]}".*?</tr>',
                      page.text, re.S)
    assert len(late) == 2  # the year's meetings and July's
    assert "✓ 计入" in text_of(late[0]) and "晚于截止日期" in text_of(late[1])
    assert "未结项" in text_of(page.text.split(f'/console/events/{ids["civil_unclosed"]}"')[1]
                                  .split("</tr>")[0])

    education = admin.get(f"/console/compliance/units/education?year={YEAR}").text
    assert "区教委向公众报告&lt;年度&gt;工作" in education  # a title is text, not markup
    assert "<年度>" not in education
    cohost = admin.get(f"/console/compliance/units/xichangan?year={YEAR}").text
    row = re.search(rf'<tr class="counts">.*?/console/events/{ids["edu_july"]}".*?</tr>', cohost,
                    re.S)
    assert row and "协办" in row.group(0)
    draft = cohost.split(f'/console/events/{ids["xichangan_draft"]}"')[1].split("</tr>")[0]
    assert "未发布" in draft
    assert admin.get(f"/console/compliance/units/nowhere?year={YEAR}").status_code == 404


def test_report_has_every_quota_unit_the_evidence_and_the_csv_link(staff, db):
    admin = staff("admin")
    ids = crafted_year(admin, db)
    page = admin.get(f"/console/compliance/report?year={YEAR}")
    assert page.status_code == 200
    assert f"西城区 {YEAR} 年政务开放考核情况" in page.text
    assert f'href="/api/compliance.csv?year={YEAR}"' in page.text
    evidence = page.text.split('id="r-evidence"')[1]
    report = quotas.compute(db, YEAR)
    quota_units = [u.unit.name for u in report.units if u.status != "not_required"]
    assert len(quota_units) == QUOTA_UNITS
    for name in quota_units:
        assert f">{name}" in evidence, name
    assert f"http://testserver/events/{ids['edu_march']}" in evidence  # the session's page
    assert "区政府办公室" not in evidence  # no quota, no evidence section
    assert "生成时间" in page.text and "已记录" in evidence


def test_public_results_list_held_sessions_not_drafts(client, staff, db):
    admin = staff("admin")
    ids = crafted_year(admin, db)
    page = client.get(f"/results?year={YEAR}")
    assert page.status_code == 200
    assert f'href="/events/{ids["edu_march"]}"' in page.text
    assert f'href="/events/{ids["office"]}"' in page.text  # other departments too, no status
    assert "西长安街街道开放日草稿" not in page.text
    assert "区民政局低保审核会议开放" not in page.text  # cancelled: not held
    assert "区民政局向公众报告" not in page.text  # held but not closed out
    assert f'href="/events/{ids["edu_july"]}"' in page.text.split('id="unit-xichangan"')[1] \
        .split("</article>")[0]  # listed under its co-host too
    assert "✓ 达标" in text_of(page.text) and "width=device-width" in page.text
    assert client.get("/results?year=abc").status_code == 200


def test_editor_gets_403_on_the_dashboard_but_sees_their_units_card(staff, db):
    editor = staff("editor", "education")
    denied = editor.get("/console/compliance")
    assert denied.status_code == 403
    assert editor.get("/console/compliance/report").status_code == 403
    assert editor.get("/console/compliance/rules").status_code == 403
    assert editor.get("/console/compliance/units/civil-affairs").status_code == 403
    home = editor.get("/console").text
    card = text_of(home.split('id="quota-card-heading"')[1].split("</section>")[0])
    year = views.this_year()
    assert f"{year} 年考核任务" in home
    assert "本年度已完成 0 / 2" in card and f"尚需完成 1 场，截止 {year}年7月20日" in card
    assert editor.get("/console/compliance/units/education").status_code == 200
    host = staff("host")
    assert "quota-card-heading" not in host.get("/console").text
    assert host.get("/console/compliance").status_code == 403


def test_rules_form_saves_and_explains_errors_in_chinese(staff, db):
    admin = staff("admin")
    form_page = admin.get("/console/compliance/rules?year=2030")
    assert "2018 年的规则" in text_of(form_page.text)  # carried forward
    data: dict[str, Any] = {"csrf_token": csrf_of(form_page.text), "rows": "3",
                            "category-0": "livelihood", "kind-0": "open_meeting",
                            "required-0": "3", "deadline-0": "",
                            "category-1": "subdistrict", "kind-1": "open_day",
                            "required-1": "0", "deadline-1": "2031-01-01",
                            "category-2": "", "kind-2": "", "required-2": "", "deadline-2": ""}
    bad = admin.post("/console/compliance/rules?year=2030", data=data)
    assert bad.status_code == 422
    assert "请填写活动场次，为 1 到 100 的整数。" in bad.text
    assert "请填写本年度内的日期" in bad.text
    data.update({"required-1": "2", "deadline-1": "2030-06-30"})
    saved = admin.post("/console/compliance/rules?year=2030", data=data, follow_redirects=False)
    assert saved.status_code == 303
    rules = quotas.rules_for_year(db, 2030)
    assert [(r.category.value, r.kind.value, r.required, r.deadline) for r in rules] == [
        ("livelihood", "open_meeting", 3, None),
        ("subdistrict", "open_day", 2, date(2030, 6, 30))]
    shown = admin.get("/console/compliance/rules?year=2030&done=rules_saved").text
    assert "规则已保存" in shown and 'value="2030-06-30"' in shown
    grown = admin.post("/console/compliance/rules?year=2030",
                       data={**data, "action": "add_row"})
    assert grown.text.count('name="kind-') == 4  # a row more, nothing saved yet


def test_statuses_render_with_icon_and_word_for_every_state(db):
    """on_track and at_risk need a year still running: judged on a chosen day."""
    token = current_locale.set("zh_CN")
    try:
        report = quotas.compute(db, YEAR, today=date(YEAR, 7, 1), category="livelihood")
        rows = views.unit_rows(report)
        macros = env.get_template("console/compliance_macros.html").module
        html = str(macros.compliance_table(views, rows, views.columns(rows), YEAR))  # type: ignore
        assert "⚠ 有风险" in text_of(html) and "7月20日前" in html
        for status, word in (("met", "✓ 达标"), ("on_track", "◔ 进行中"), ("at_risk", "⚠ 有风险"),
                             ("missed", "✗ 未完成"), ("not_required", "— 无要求")):
            assert word in text_of(str(macros.status_badge(views, status)))  # type: ignore
    finally:
        current_locale.reset(token)
