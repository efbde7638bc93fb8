"""The compliance report as the API and the CLI give it: JSON in the contract's shape, the CSV
(one row per unit and requirement) and the sessions' CSV (one row per session, its questions).
The numbers come from events.quotas.compute; this module only writes them out."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from events import accountability
from events.models import EventKind, UnitCategory
from events.quotas import KIND_NAMES, ComplianceReport
from events.timeutil import local

# The words of the console's dashboard, for the CSV's readers (the JSON keeps only the codes).
CATEGORY_NAMES = {UnitCategory.livelihood: "民生部门", UnitCategory.subdistrict: "街道",
                  UnitCategory.other: "其他部门"}
STATUS_NAMES = {"met": "达标", "on_track": "进行中", "at_risk": "有风险", "missed": "未完成",
                "not_required": "无要求"}
# The codes stay where they were, for scripts; their Chinese follows in the last three columns.
# Issue 18 appended the unit's broadcast plan and its questions unanswered past answer_days
# (the same on each of the unit's rows): the earlier columns keep their places.
CSV_HEADER = ("单位代码", "单位", "类别", "要求", "截止日期", "要求次数", "已完成", "是否达标",
              "状态", "类别（中文）", "要求（中文）", "状态（中文）", "计划直播", "计划直播已完成",
              "计划直播逾期", "计划直播未实施", "逾期未答复问题")
WHOLE_YEAR = "全年"
# The per-session questions (issue 18): `GET /api/compliance/sessions.csv`.
SESSIONS_CSV_HEADER = ("单位代码", "单位", "活动编号", "活动", "类型", "日期", "收到问题",
                       "已通过", "现场答复", "书面答复", "未答复", "逾期未答复",
                       "答复用时中位数（天）")


def report_public(report: ComplianceReport) -> dict[str, Any]:
    """The contract's shape: {year, units: [{unit, status, requirements}]}, each unit with its
    `plan` and `questions` added (issue 18)."""
    return {
        "year": report.year,
        "units": [{
            "unit": {"id": item.unit.id, "code": item.unit.code, "name": item.unit.name,
                     "category": item.unit.category.value},
            "status": item.status,
            "requirements": [{
                "kind": requirement.kind,
                "deadline": requirement.deadline.isoformat() if requirement.deadline else None,
                "required": requirement.required,
                "counted": requirement.counted,
                "met": requirement.met,
                "status": requirement.status,
                "scheduled": requirement.scheduled,
            } for requirement in item.requirements],
            "plan": accountability.plan_public(item.accountability.plan),
            "questions": accountability.questions_public(item.accountability.questions),
        } for item in report.units],
    }


def report_json(report: ComplianceReport) -> str:
    """The text the API answers and `kaifang compliance --format json` prints."""
    return json.dumps(report_public(report), ensure_ascii=False, indent=2)


def spreadsheet_safe(text: str) -> str:
    """Staff-typed text (a unit's name, a session's title) that a spreadsheet would run as a
    formula is prefixed with ' (CSV injection), as the registrations' export does."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def report_csv(report: ComplianceReport) -> str:
    """One row per unit and requirement (one row for a unit without quota); no BOM: the API
    and the CLI prepend it for Excel."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for item in report.units:
        unit = [item.unit.code, spreadsheet_safe(item.unit.name), item.unit.category.value]
        category = CATEGORY_NAMES[item.unit.category]
        adherence = item.accountability.plan
        added = [adherence.total, adherence.done, adherence.late, adherence.missed,
                 item.accountability.questions.overdue]
        if not item.requirements:
            writer.writerow([*unit, "", "", "", "", "", item.status,
                             category, "", STATUS_NAMES.get(item.status, item.status), *added])
        for requirement in item.requirements:
            deadline = requirement.deadline.isoformat() if requirement.deadline else WHOLE_YEAR
            writer.writerow([*unit, requirement.kind, deadline, requirement.required,
                             requirement.counted, "是" if requirement.met else "否",
                             requirement.status, category,
                             KIND_NAMES.get(EventKind(requirement.kind), requirement.kind),
                             STATUS_NAMES.get(requirement.status, requirement.status), *added])
    return out.getvalue()


def report_sessions_csv(report: ComplianceReport) -> str:
    """The questions of each unit's sessions, one row per session (the units' order, then by
    date); no BOM, as report_csv. An empty median: nothing answered yet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(SESSIONS_CSV_HEADER)
    for item in report.units:
        for session in item.accountability.sessions:
            event, stats = session.event, session.stats
            writer.writerow([item.unit.code, spreadsheet_safe(item.unit.name), event.id,
                             spreadsheet_safe(event.title),
                             KIND_NAMES.get(event.kind, event.kind.value),
                             local(event.starts_at).date().isoformat(),
                             *(getattr(stats, name) for name in accountability.QUESTION_COUNTS),
                             accountability.median_text(stats.median_days)])
    return out.getvalue()
