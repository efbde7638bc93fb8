"""The console's compliance pages show the broadcast plan and the citizens' questions (issue
18): the dashboard's table and chart, a unit's sessions with the overdue ones flagged, the
printable report's fifth part. The data is test_compliance_plan's."""

from __future__ import annotations

import re
from html import unescape

from events.question_stats import QuestionStats
from tests.events import test_compliance_plan as data
from tests.helpers import held

YEAR = data.YEAR
# The fixtures of test_compliance_plan, used here by name.
planned_year = data.planned_year
stats = data.stats


def text_of(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _row(html: str, name: str) -> str:
    found = re.search(r'<table class="plan-adherence-table">.*?<th scope="row">(?:<a [^>]+>)?'
                      + re.escape(name) + r"(.*?)</tr>", html, re.S)
    assert found, f"no plan row for {name}"
    return text_of(found.group(1))


def test_the_dashboard_shows_each_units_plan_and_overdue_questions(staff, db, planned_year,
                                                                    stats):
    event_id = held(planned_year, db, "education", "2027-03-12T09:30:00+08:00")
    stats[event_id] = QuestionStats(received=9, approved=8, answered_live=3, answered_written=2,
                                    open=3, overdue=2)
    page = planned_year.get(f"/console/compliance?year={YEAR}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "直播计划执行与群众提问答复" in text
    assert "超过15天未答复" in text
    # Plan items, then 已按计划完成 按计划推进 尚未启动 有延误风险 逾期 未按计划实施, then the
    # questions.
    assert _row(page.text, "区教委").split() == ["5", "0", "1", "1", "1", "1", "1", "9", "3",
                                                "⚠", "逾期未答复", "2", "条"]
    assert _row(page.text, "区民政局").split() == ["1", "0", "0", "1", "0", "0", "0", "0", "0",
                                                  "0"]
    # The chart draws the units that lead items, with a description for screen readers.
    assert 'id="chart-plan"' in page.text
    assert "共6项：已按计划完成0项，逾期1项，未按计划实施1项" in text
    assert f'href="/api/compliance/sessions.csv?year={YEAR}"' in page.text
    assert f'href="/console/plan?year={YEAR}"' in page.text


def test_the_drill_down_lists_each_sessions_questions_and_flags_the_overdue(staff, db,
                                                                         planned_year, stats):
    first = held(planned_year, db, "education", "2027-03-12T09:30:00+08:00")
    second = held(planned_year, db, "education", "2027-04-20T09:30:00+08:00")
    stats[first] = QuestionStats(received=12, approved=10, answered_live=6, answered_written=3,
                                 open=1, overdue=1, median_days=2.5)
    stats[second] = QuestionStats(received=4, approved=4, answered_live=4, median_days=0.0)
    editor = staff("editor", "education")
    page = editor.get(f"/console/compliance/units/education?year={YEAR}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert f"{YEAR}年直播计划" in text and "本单位牵头事项：5 项" in text
    for state, count in (("按计划推进", 1), ("尚未启动", 1), ("有延误风险", 1), ("逾期", 1),
                         ("未按计划实施", 1)):
        assert f"{state} {count}" in text_of(page.text.split('class="plan-counts"')[1]
                                             .split("</ul>")[0])
    assert "收到提问：16 条" in text and "超过15天未答复：1 条" in text
    rows = re.findall(r"<tr( class=\"has-overdue\")?>\s*<td><a href=\"/console/events/(\d+)/live"
                      r"#questions\">.*?</tr>", page.text, re.S)
    # By date: the two meetings, then the plan's two broadcasts (June, July), none overdue.
    assert [(bool(flag), int(event_id)) for flag, event_id in rows][:2] == [
        (True, first), (False, second)]
    assert [bool(flag) for flag, _id in rows] == [True, False, False, False]
    overdue_row = page.text.split(f'/console/events/{first}/live#questions"')[1].split("</tr>")[0]
    # received, approved, live, in writing, open, overdue (flagged), median days
    assert "12 10 6 3 1 ⚠ 逾期未答复 1 条 去答复 2.5" in text_of(overdue_row)
    assert 'href="/console/answers?unit=education"' in overdue_row
    # Another unit's editor may not read it.
    other = staff("editor", "civil-affairs")
    assert other.get(f"/console/compliance/units/education?year={YEAR}").status_code == 403


def test_a_unit_without_plan_or_questions_says_so(staff, db, stats):
    admin = staff("admin")
    page = admin.get(f"/console/compliance/units/yuetan?year={YEAR}")
    text = text_of(page.text)
    assert "无直播计划事项" in text and "本单位本年度的活动尚未收到提问。" in text
    dashboard = text_of(admin.get(f"/console/compliance?year={YEAR}").text)
    assert f"{YEAR}年尚无直播计划事项，也尚无群众提问。" in dashboard


def test_the_printable_report_has_the_plan_and_the_questions(staff, db, planned_year, stats):
    event_id = held(planned_year, db, "civil-affairs", "2027-03-12T09:30:00+08:00")
    stats[event_id] = QuestionStats(received=3, approved=3, open=3, overdue=3)
    page = planned_year.get(f"/console/compliance/report?year={YEAR}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "五、直播计划执行与群众提问答复" in text
    assert f"/api/compliance/sessions.csv?year={YEAR}" in text
    # The printed table names the units without links.
    assert _row(page.text, "区民政局").split()[-4:] == ["⚠", "逾期未答复", "3", "条"]
