"""Quota compliance: the yearly rules, each unit's status against them, reminders (the report's
JSON and CSV are events.compliance_report; the plan and the questions events.accountability).

Rules are data (QuotaRule rows per year; 2018 is seeded from the plan). A year without rows
carries the latest earlier year's rules forward, deadlines moved to that year. Dates are judged
in Beijing time: a session's date is its local start date, and a deadline D means held on or
before D. Only published sessions count, and only once closed out (events/evidence.py).

Co-hosted sessions count for the lead unit and for each co-host: every one of them opened
itself to the public. Evidence.role says which.

Status of a requirement, judged on `today` (Beijing):
- met: counted >= required;
- missed: not met and today is after the deadline;
- on_track: not met, but counted + sessions scheduled (published or live, not yet held, on or
  before the deadline) >= required;
- at_risk: anything else: not met and what is scheduled would not meet it. Inside 30 days of the
  deadline this is the issue's at_risk and the reminders go out (30 and 7 days before). Further
  out it is at_risk too: on_track promises sessions that are scheduled, and nothing is, so
  calling it on_track would be false comfort.
A unit's status is its worst requirement's (missed > at_risk > on_track > met); a unit whose
category has no rules (category other) is not_required, never at_risk or missed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from events import accountability, audit, notify, permissions
from events.accountability import UnitAccountability
from events.errors import Invalid
from events.evidence import Evidence, judge, sessions_of_year, year_bounds
from events.models import EventKind, QuotaRule, StaffUser, Unit, UnitCategory
from events.timeutil import local, utcnow
from server.config import Settings, get_settings

STATUSES = ("met", "on_track", "at_risk", "missed", "not_required")
# Worst first: a unit's status is the first of these that any requirement has.
SEVERITY = ("missed", "at_risk", "on_track", "met")
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100
QUOTA_CATEGORIES = (UnitCategory.livelihood, UnitCategory.subdistrict)
REMIND_DAYS = (30, 7)
MAX_RULES = 50
KIND_ORDER = {kind: position for position, kind in enumerate(EventKind)}
KIND_NAMES = {
    EventKind.open_meeting: "会议开放",
    EventKind.open_day: "政府开放日",
    EventKind.public_report: "政府向公众报告",
    EventKind.chief_dialogue: "市民对话一把手",
    EventKind.broadcast: "政民互动直播间",
}


class RuleIn(BaseModel):
    category: UnitCategory
    kind: EventKind
    required: int = Field(ge=1, le=100)
    deadline: date | None = None


@dataclass
class RequirementStatus:
    kind: str
    deadline: date | None
    required: int
    counted: int
    met: bool
    status: str
    scheduled: int
    evidence: list[Evidence]
    year: int = 0

    @property
    def due(self) -> date:
        """The deadline, or 31 December for a whole-year requirement."""
        return self.deadline or date(self.year, 12, 31)


@dataclass
class UnitCompliance:
    unit: Unit
    status: str
    requirements: list[RequirementStatus]
    # The broadcast plan and the questions (events.accountability).
    accountability: UnitAccountability = field(default_factory=UnitAccountability)


@dataclass
class ComplianceReport:
    year: int
    today: date
    units: list[UnitCompliance]


def check_year(year: int) -> int:
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise Invalid("invalid_year", f"year: expected {EARLIEST_YEAR}-{LATEST_YEAR}, got {year}",
                      field="year")
    return year


def today_local() -> date:
    return local(utcnow()).date()


# ---- rules -----------------------------------------------------------------------------------

def seed_rows() -> list[dict[str, Any]]:
    """The 2018 plan's rules, from events/data/quota_rules_2018.json (loaded by the migration)."""
    text = resources.files("events").joinpath("data/quota_rules_2018.json").read_text("utf-8")
    data = json.loads(text)
    return [{**rule, "year": data["year"],
             "deadline": date.fromisoformat(rule["deadline"]) if rule["deadline"] else None}
            for rule in data["rules"]]


def _sort_key(rule: QuotaRule) -> tuple[int, int, date]:
    return (list(UnitCategory).index(rule.category), KIND_ORDER[rule.kind],
            rule.deadline or date(rule.year, 12, 31))


def _moved(deadline: date | None, year: int) -> date | None:
    if deadline is None:
        return None
    if (deadline.month, deadline.day) == (2, 29):
        return date(year, 3, 1) - timedelta(days=1)
    return deadline.replace(year=year)


def _rows_of(db: Session, year: int) -> list[QuotaRule]:
    return list(db.exec(select(QuotaRule).where(QuotaRule.year == year)))


def carried_from(db: Session, year: int) -> int | None:
    """The year whose rules apply to `year`: itself when it has rows, else the latest before."""
    return db.exec(select(QuotaRule.year).where(col(QuotaRule.year) <= year)
                   .order_by(col(QuotaRule.year).desc())).first()


def rules_for_year(db: Session, year: int) -> list[QuotaRule]:
    """The year's rules; a year without rows gets copies (not stored) of the latest earlier
    year's, with deadlines moved to this year."""
    source = carried_from(db, year)
    if source is None:
        return []
    rows = _rows_of(db, source)
    if source != year:
        rows = [QuotaRule(year=year, category=r.category, kind=r.kind, required=r.required,
                          deadline=_moved(r.deadline, year)) for r in rows]
    return sorted(rows, key=_sort_key)


def rule_public(rule: QuotaRule) -> dict[str, Any]:
    return {"category": rule.category.value, "kind": rule.kind.value, "required": rule.required,
            "deadline": rule.deadline.isoformat() if rule.deadline else None}


def rules_public(db: Session, year: int) -> dict[str, Any]:
    source = carried_from(db, year)
    return {"year": year, "carried_from": source if source != year else None,
            "rules": [rule_public(rule) for rule in rules_for_year(db, year)]}


def set_rules(db: Session, actor: StaffUser, year: int, rules: list[RuleIn]) -> list[QuotaRule]:
    """Replaces a year's rules (admins). An empty list removes them: the year then carries the
    latest earlier year's rules forward again."""
    permissions.require_admin(actor)
    check_year(year)
    if len(rules) > MAX_RULES:
        raise Invalid("too_many_rules", f"at most {MAX_RULES} rules a year", field="rules")
    seen: set[tuple[UnitCategory, EventKind, date | None]] = set()
    for position, rule in enumerate(rules):
        field = f"rules.{position}"
        if rule.category not in QUOTA_CATEGORIES:
            raise Invalid("no_quota_category", f"{field}.category: only livelihood departments "
                          "and sub-districts have a quota", field=f"{field}.category")
        if rule.deadline is not None and rule.deadline.year != year:
            raise Invalid("deadline_outside_year", f"{field}.deadline: expected a date in {year}",
                          field=f"{field}.deadline")
        key = (rule.category, rule.kind, rule.deadline)
        if key in seen:
            raise Invalid("duplicate_rule", f"{field}: the same category, kind and deadline "
                          "appear twice", field=field)
        seen.add(key)
    before = [rule_public(rule) for rule in sorted(_rows_of(db, year), key=_sort_key)]
    for row in _rows_of(db, year):
        db.delete(row)
    # Deletes first: the new rows may repeat a (year, category, kind, deadline) key.
    db.flush()
    created = [QuotaRule(year=year, category=rule.category, kind=rule.kind,
                         required=rule.required, deadline=rule.deadline) for rule in rules]
    db.add_all(created)
    db.flush()
    after = [rule_public(rule) for rule in sorted(created, key=_sort_key)]
    if before != after:
        audit.record(db, actor, "quota.rules", "quota_rules", year,
                     changes={"year": year, "rules": [before, after]})
    return sorted(created, key=_sort_key)


# ---- status ----------------------------------------------------------------------------------

def requirement_status(counted: int, scheduled: int, required: int, due: date,
                       today: date) -> str:
    if counted >= required:
        return "met"
    if today > due:
        return "missed"
    if counted + scheduled >= required:
        return "on_track"
    return "at_risk"


def unit_status(requirements: list[RequirementStatus]) -> str:
    if not requirements:
        return "not_required"
    found = {requirement.status for requirement in requirements}
    return next(status for status in SEVERITY if status in found)


def _units(db: Session, year: int, category: str | None, unit_id: int | None,
           active_in_year: set[int]) -> list[Unit]:
    stmt = select(Unit).order_by(col(Unit.sort_order), col(Unit.id))
    if category is not None:
        stmt = stmt.where(Unit.category == UnitCategory(category))
    if unit_id is not None:
        stmt = stmt.where(Unit.id == unit_id)
    start, _ = year_bounds(year)
    # A retired unit stays in the years it was active in, or held sessions in.
    return [unit for unit in db.exec(stmt)
            if unit.retired_at is None or unit.retired_at >= start or unit.id in active_in_year]


def compute(db: Session, year: int, today: date | None = None, category: str | None = None,
            unit_id: int | None = None, settings: Settings | None = None,
            now: datetime | None = None, accountable: bool = False) -> ComplianceReport:
    """The year's quota report; `accountable` adds each unit's broadcast plan and questions,
    judged `now` (the published report has them; the reminders and the cards need not)."""
    check_year(year)
    if category is not None and category not in {c.value for c in UnitCategory}:
        raise Invalid("invalid_category", f"category: expected one of "
                      f"{', '.join(c.value for c in UnitCategory)}", field="category")
    today = today or today_local()
    rules = rules_for_year(db, year)
    held = sessions_of_year(db, year, [unit_id] if unit_id is not None else None)
    units = _units(db, year, category, unit_id, held.unit_ids())
    report = ComplianceReport(year=year, today=today, units=[])
    for unit in units:
        assert unit.id is not None
        requirements = []
        for rule in (r for r in rules if r.category == unit.category):
            due = rule.deadline or date(year, 12, 31)
            evidence = [judge(event, role, due, today, held.recordings.get(event.id or 0))
                        for event, role in held.of_unit(unit.id, rule.kind)]
            counted = sum(1 for item in evidence if item.counts)
            scheduled = sum(1 for item in evidence if item.reason == "scheduled")
            requirements.append(RequirementStatus(
                kind=rule.kind.value, deadline=rule.deadline, required=rule.required,
                counted=counted, met=counted >= rule.required,
                status=requirement_status(counted, scheduled, rule.required, due, today),
                scheduled=scheduled, evidence=evidence, year=year))
        report.units.append(UnitCompliance(unit=unit, status=unit_status(requirements),
                                           requirements=requirements))
    if accountable:
        # The year's sessions were read above: of_units keeps those the units led.
        found = accountability.of_units(db, year, [u.id for u in units if u.id is not None],
                                        settings or get_settings(), now or utcnow(),
                                        year_sessions=held.events)
        for item in report.units:
            item.accountability = found[item.unit.id or 0]
    return report


# ---- reminders -------------------------------------------------------------------------------

def _threshold(days_left: int) -> int | None:
    """30 from 30 days before the deadline, 7 from 7 days before: each is sent once, even when a
    unit falls behind late or the worker was down on the day."""
    if 7 < days_left <= 30:
        return 30
    if 0 <= days_left <= 7:
        return 7
    return None


def remind_units_at_risk(db: Session, today: date | None = None) -> int:
    """Queues a reminder (topic quota_reminder) for each at-risk requirement 30 and 7 days
    before its deadline: e-mailed to the unit's contact address, or, for a unit without one,
    left in the console's outbox (channel console, recipient unit:<code>). Returns how many
    were queued."""
    today = today or today_local()
    queued = 0
    for year in sorted({today.year, (today + timedelta(days=max(REMIND_DAYS))).year}):
        for item in compute(db, year, today=today).units:
            if item.unit.retired_at is not None:
                continue
            for requirement in item.requirements:
                due = requirement.due
                threshold = _threshold((due - today).days)
                if requirement.status != "at_risk" or threshold is None:
                    continue
                if _remind(db, item.unit, requirement, year, due, (due - today).days, threshold):
                    queued += 1
    return queued


def _remind(db: Session, unit: Unit, requirement: RequirementStatus, year: int, due: date,
            days_left: int, threshold: int) -> bool:
    kind = KIND_NAMES.get(EventKind(requirement.kind), requirement.kind)
    body = (f"{notify.SIGNATURE}{unit.name}：按{year}年政务公开工作要点，"
            f"“{kind}”须在{due.month}月{due.day}日前（含当日）至少完成{requirement.required}次，"
            f"目前已完成{requirement.counted}次，距截止还有{days_left}天。"
            f"请尽快安排活动，并在活动后登记会议纪要和参会人数完成结项。")
    if unit.contact_email:
        channel, recipient, masked = "email", unit.contact_email, _mask_email(unit.contact_email)
    else:
        # No address: the reminder is delivered by staying readable in the console's outbox.
        # A unit is no person: unit:<code> needs no masking there.
        channel, recipient = "console", f"unit:{unit.code}"
        masked = recipient
    message = notify.enqueue(
        db, topic="quota_reminder", channel=channel, recipient=recipient, unit=unit,
        subject=f"政务开放任务提醒：{kind}（{due.isoformat()}截止）", body=body,
        dedupe_key=f"quota:{year}:{unit.code}:{requirement.kind}:{due.isoformat()}:{threshold}")
    if message is None:
        return False
    message.recipient_masked = masked
    db.add(message)
    db.flush()
    return True


def _mask_email(address: str) -> str:
    """z***@xicheng.gov.cn: the outbox view shows the office, not the mailbox."""
    local_part, _, domain = address.rpartition("@")
    return f"{local_part[:1]}***@{domain}"
