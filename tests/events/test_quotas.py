"""Quota compliance on crafted years: rules, evidence, every status, reminders, attendance.

Sessions are entered through the API as the office would (staff may enter past sessions) and
closed out; the report is judged on an injected `today` (a Beijing date).
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from events import quotas, units
from events.errors import Invalid
from events.models import AuditEntry, OutboxMessage, StaffUser
from events.quotas import RuleIn
from server.config import Settings
from server.worker import JOBS
from tests.conftest import event_body, unit_id
from tests.helpers import deliver, held
from tests.smtp_sink import SmtpSink

LIVELIHOOD_AND_SUBDISTRICTS = 26


def report(db: Session, year: int, today: date, unit: str | None = None
           ) -> quotas.ComplianceReport:
    db.expire_all()  # the API committed in other sessions
    return quotas.compute(db, year, today=today,
                          unit_id=unit_id(db, unit) if unit is not None else None)


def requirements(db: Session, year: int, today: date, unit: str
                 ) -> dict[tuple[str, date | None], quotas.RequirementStatus]:
    (found,) = report(db, year, today, unit).units
    return {(r.kind, r.deadline): r for r in found.requirements}


def unit_of(db: Session, year: int, today: date, unit: str) -> quotas.UnitCompliance:
    (found,) = report(db, year, today, unit).units
    return found


JULY = ("open_meeting", date(2025, 7, 20))
MEETINGS = ("open_meeting", None)
OPEN_DAY = ("open_day", None)
REPORT = ("public_report", None)


# ---- rules ---------------------------------------------------------------------------------

def test_the_2018_plan_is_seeded_for_livelihood_departments_and_sub_districts(db):
    rules = {(r.category.value, r.kind.value, r.required, r.deadline)
             for r in quotas.rules_for_year(db, 2018)}
    expected = set()
    for category in ("livelihood", "subdistrict"):
        expected |= {(category, "open_meeting", 2, None),
                     (category, "open_meeting", 1, date(2018, 7, 20)),
                     (category, "public_report", 1, None), (category, "open_day", 1, None)}
    assert rules == expected


def test_a_year_without_rules_carries_the_latest_earlier_years_forward(db):
    carried = quotas.rules_public(db, 2031)
    assert carried["carried_from"] == 2018
    assert {(r["category"], r["kind"], r["required"], r["deadline"]) for r in carried["rules"]} \
        == {(r.category.value, r.kind.value, r.required,
             r.deadline.replace(year=2031).isoformat() if r.deadline else None)
            for r in quotas.rules_for_year(db, 2018)}
    quotas.set_rules(db, _admin(db), 2029, [RuleIn(category="subdistrict", kind="open_day",
                                              required=3, deadline=date(2029, 6, 30))])
    db.commit()
    later = quotas.rules_public(db, 2031)
    assert later["carried_from"] == 2029
    assert later["rules"] == [{"category": "subdistrict", "kind": "open_day", "required": 3,
                               "deadline": "2031-06-30"}]
    # Years before the change keep the 2018 rules.
    assert quotas.rules_public(db, 2028)["carried_from"] == 2018
    assert quotas.rules_public(db, 2017) == {"year": 2017, "carried_from": None, "rules": []}


def _admin(db: Session) -> StaffUser:
    from tests.conftest import make_user

    return make_user(db, "office", "admin")


# ---- evidence and the Beijing date -----------------------------------------------------------

def test_a_meeting_at_0730_on_21_july_beijing_misses_the_20_july_deadline(staff, db):
    admin = staff("admin")
    # 07:30 on 21 July in Beijing is still 20 July in UTC.
    late = held(admin, db, "education", "2025-07-20T23:30:00+00:00")
    found = requirements(db, 2025, date(2025, 8, 1), "education")
    assert (found[JULY].counted, found[JULY].status) == (0, "missed")
    (evidence,) = found[JULY].evidence
    assert (evidence.event.id, evidence.counts, evidence.reason) == (late, False,
                                                                      "after_deadline")
    assert evidence.held_on == date(2025, 7, 21)
    # For the whole year it counts.
    assert found[MEETINGS].counted == 1


def test_a_meeting_at_2300_on_20_july_beijing_meets_the_deadline(staff, db):
    admin = staff("admin")
    held(admin, db, "civil-affairs", "2025-07-20T23:00:00+08:00")
    found = requirements(db, 2025, date(2025, 8, 1), "civil-affairs")
    assert (found[JULY].counted, found[JULY].met, found[JULY].status) == (1, True, "met")
    assert [e.reason for e in found[JULY].evidence] == [""]


def test_cancelled_unclosed_and_unpublished_sessions_do_not_count_and_say_why(staff, db):
    admin = staff("admin")
    cancelled = held(admin, db, "education", "2025-03-10T09:30:00+08:00", cancel=True)
    unclosed = held(admin, db, "education", "2025-04-10T09:30:00+08:00", close=False)
    draft = admin.post("/api/events", json=event_body(
        db, "education", starts_at="2025-05-10T09:30:00+08:00",
        ends_at="2025-05-10T11:30:00+08:00", registration_opens_at=None,
        registration_closes_at=None)).json()["id"]
    found = requirements(db, 2025, date(2025, 6, 1), "education")
    reasons = {e.event.id: (e.counts, e.reason) for e in found[MEETINGS].evidence}
    assert reasons == {cancelled: (False, "cancelled"), unclosed: (False, "not_closed"),
                       draft: (False, "not_public")}
    assert found[MEETINGS].counted == 0
    # Closed late, it counts: evidence is judged by when the session was held.
    assert admin.post(f"/api/events/{unclosed}/close",
                      json={"minutes": "补录会议纪要"}).status_code == 200
    found = requirements(db, 2025, date(2025, 6, 1), "education")
    assert (found[JULY].counted, found[JULY].status) == (1, "met")


# ---- statuses --------------------------------------------------------------------------------

def test_every_status_of_a_requirement_and_the_unit_takes_the_worst(staff, db):
    admin = staff("admin")
    # Two meetings held and closed before the July deadline: both meeting rules are met.
    held(admin, db, "education", "2025-03-12T09:30:00+08:00")
    held(admin, db, "education", "2025-06-18T14:00:00+08:00")
    # A public report published for September: scheduled in time, not yet held.
    held(admin, db, "education", "2025-09-10T09:30:00+08:00", kind="public_report",
         close=False)
    # Nothing at all for the open day.
    today = date(2025, 7, 1)
    found = requirements(db, 2025, today, "education")
    assert {key: r.status for key, r in found.items()} == {
        JULY: "met", MEETINGS: "met", REPORT: "on_track", OPEN_DAY: "at_risk"}
    assert (found[REPORT].scheduled, found[REPORT].counted) == (1, 0)
    assert [e.reason for e in found[REPORT].evidence] == ["scheduled"]
    assert unit_of(db, 2025, today, "education").status == "at_risk"

    # After the year: the report was never closed, the open day never held.
    after = requirements(db, 2025, date(2026, 1, 5), "education")
    assert {key: r.status for key, r in after.items()} == {
        JULY: "met", MEETINGS: "met", REPORT: "missed", OPEN_DAY: "missed"}
    assert [e.reason for e in after[REPORT].evidence] == ["not_closed"]
    assert unit_of(db, 2025, date(2026, 1, 5), "education").status == "missed"


def test_not_met_with_nothing_scheduled_is_at_risk_inside_and_beyond_30_days(db):
    """on_track promises scheduled sessions; with none, at_risk is the honest status."""
    # 200 days before the deadline, 30 days before, on the day; then the day after.
    assert requirements(db, 2025, date(2025, 1, 1), "yuetan")[JULY].status == "at_risk"
    assert requirements(db, 2025, date(2025, 6, 20), "yuetan")[JULY].status == "at_risk"
    assert requirements(db, 2025, date(2025, 7, 20), "yuetan")[JULY].status == "at_risk"
    assert requirements(db, 2025, date(2025, 7, 21), "yuetan")[JULY].status == "missed"


def test_a_session_scheduled_after_the_deadline_does_not_put_it_on_track(staff, db):
    admin = staff("admin")
    held(admin, db, "yuetan", "2025-08-05T09:30:00+08:00", close=False)
    found = requirements(db, 2025, date(2025, 7, 1), "yuetan")
    assert (found[JULY].status, found[JULY].scheduled) == ("at_risk", 0)
    assert [e.reason for e in found[JULY].evidence] == ["after_deadline"]
    # For the whole year it is one of the two meetings needed: not enough to be on track.
    assert (found[MEETINGS].status, found[MEETINGS].scheduled) == ("at_risk", 1)
    held(admin, db, "yuetan", "2025-07-15T09:30:00+08:00", close=False)
    found = requirements(db, 2025, date(2025, 7, 1), "yuetan")
    assert (found[JULY].status, found[MEETINGS].status) == ("on_track", "on_track")


def test_a_department_without_quota_is_not_required_even_after_the_year(staff, db):
    admin = staff("admin")
    held(admin, db, "government-office", "2025-05-10T09:30:00+08:00")
    for today in (date(2025, 6, 1), date(2026, 3, 1)):
        found = unit_of(db, 2025, today, "government-office")
        assert (found.status, found.requirements) == ("not_required", [])
    statuses: dict[str, set[str]] = {"other": set(), "livelihood": set(), "subdistrict": set()}
    for item in report(db, 2025, date(2026, 3, 1)).units:
        statuses[item.unit.category.value].add(item.status)
    assert statuses["other"] == {"not_required"}
    assert statuses["subdistrict"] == {"missed"}


def test_a_co_hosted_session_counts_for_the_lead_and_each_co_host(staff, db):
    admin = staff("admin")
    event_id = held(admin, db, "education", "2025-05-20T09:30:00+08:00", kind="open_day",
                    cohosts=("civil-affairs", "xinjiekou"))
    for unit, role in (("education", "lead"), ("civil-affairs", "cohost"),
                       ("xinjiekou", "cohost")):
        found = requirements(db, 2025, date(2025, 6, 1), unit)[OPEN_DAY]
        assert (found.counted, found.status) == (1, "met"), unit
        assert [(e.event.id, e.role) for e in found.evidence] == [(event_id, role)]
    assert requirements(db, 2025, date(2025, 6, 1), "yuetan")[OPEN_DAY].counted == 0


def test_a_retired_unit_stays_in_the_years_it_was_active_or_held_sessions(staff, db):
    admin = staff("admin")
    held(admin, db, "environment", "2027-04-01T09:30:00+08:00", close=False)
    for code in ("environment", "housing"):
        response = admin.patch(f"/api/units/{unit_id(db, code)}", json={"retired": True})
        assert response.status_code == 200, response.text
    codes = {item.unit.code for item in report(db, 2027, date(2027, 1, 1)).units}
    assert "environment" in codes and "housing" not in codes
    assert {"environment", "housing"} <= {item.unit.code
                                          for item in report(db, 2025, date(2025, 1, 1)).units}


def test_rules_changed_for_a_year_change_its_report(db):
    admin_user = _admin(db)
    quotas.set_rules(db, admin_user, 2025, [
        RuleIn(category="livelihood", kind="open_meeting", required=1),
        RuleIn(category="livelihood", kind="chief_dialogue", required=1,
               deadline=date(2025, 10, 1))])
    db.commit()
    education = unit_of(db, 2025, date(2025, 6, 1), "education")
    assert [(r.kind, r.deadline, r.required) for r in education.requirements] == [
        ("open_meeting", None, 1), ("chief_dialogue", date(2025, 10, 1), 1)]
    # No subdistrict rules in 2025 any more: sub-districts have no quota that year.
    assert unit_of(db, 2025, date(2025, 6, 1), "yuetan").status == "not_required"
    entry = db.exec(select(AuditEntry).where(AuditEntry.action == "quota.rules")).one()
    assert (entry.entity, entry.entity_id, entry.username) == ("quota_rules", 2025, "office")


# ---- close-out attendance ----------------------------------------------------------------------

def test_attendance_defaults_to_the_check_in_count_and_a_change_needs_a_reason(staff, db):
    admin = staff("admin")
    editor = staff("editor", "education")
    # In progress: the door is open until it ends, and it may be closed out once it started.
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    event_id = held(admin, db, "education", started.isoformat(), close=False)
    for name in ("张三", "李四", "王五"):
        assert editor.post(f"/api/events/{event_id}/walk-ins",
                           json={"name": name}).status_code == 201
    closed = editor.post(f"/api/events/{event_id}/close", json={"minutes": "会议纪要"})
    assert closed.status_code == 200, closed.text
    assert closed.json()["attendee_count"] == 3

    # Once closed out, the public record is corrected only by the district office.
    refused = admin.post(f"/api/events/{event_id}/close",
                          json={"minutes": "会议纪要", "attendee_count": 5})
    assert refused.status_code == 422
    assert (refused.json()["error"], refused.json()["field"]) == ("reason_required",
                                                                  "attendance_reason")
    assert editor.get(f"/api/events/{event_id}").json()["attendee_count"] == 3
    same = admin.post(f"/api/events/{event_id}/close",
                      json={"minutes": "会议纪要", "attendee_count": 3})
    assert same.status_code == 200, same.text

    changed = admin.post(f"/api/events/{event_id}/close", json={
        "minutes": "会议纪要", "attendee_count": 5, "attendance_reason": "两位陪同家属未签到"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["attendee_count"] == 5
    trail = editor.get(f"/api/events/{event_id}/audit").json()
    assert trail[0]["action"] == "event.close"
    assert trail[0]["changes"]["attendance_reason"] == "两位陪同家属未签到"
    assert trail[0]["changes"]["attendee_count"] == [3, 5]
    assert trail[0]["changes"]["checked_in_count"] == 3


# ---- reminders ---------------------------------------------------------------------------------

def _reminders(db: Session) -> list[OutboxMessage]:
    db.expire_all()
    return list(db.exec(select(OutboxMessage).where(OutboxMessage.topic == "quota_reminder")
                        .order_by(col(OutboxMessage.id))))


def test_units_at_risk_are_reminded_30_and_7_days_before_a_deadline_once(staff, db):
    admin = staff("admin")
    held(admin, db, "education", "2025-05-10T09:30:00+08:00")  # education met July
    held(admin, db, "yuetan", "2025-07-18T09:30:00+08:00", close=False)  # scheduled: on track
    assert admin.patch(f"/api/units/{unit_id(db, 'housing')}",
                       json={"retired": True}).status_code == 200  # a retired unit is not told
    assert quotas.remind_units_at_risk(db, date(2025, 6, 19)) == 0  # 31 days before
    assert quotas.remind_units_at_risk(db, date(2025, 6, 20)) == LIVELIHOOD_AND_SUBDISTRICTS - 3
    db.commit()
    sent = _reminders(db)
    assert len(sent) == LIVELIHOOD_AND_SUBDISTRICTS - 3
    recipients = {m.recipient for m in sent}
    assert "unit:civil-affairs" in recipients
    assert not {"unit:education", "unit:yuetan", "unit:housing",
                "unit:government-office"} & recipients
    civil = next(m for m in sent if m.recipient == "unit:civil-affairs")
    assert (civil.channel, civil.dedupe_key) == (  # no contact e-mail: read in the console
        "console", "quota:2025:civil-affairs:open_meeting:2025-07-20:30")
    assert "区民政局" in civil.body and "7月20日" in civil.body and "30天" in civil.body
    # The next days send nothing new; the 7-day reminder goes out once from 13 July.
    assert quotas.remind_units_at_risk(db, date(2025, 6, 21)) == 0
    assert quotas.remind_units_at_risk(db, date(2025, 7, 13)) == LIVELIHOOD_AND_SUBDISTRICTS - 3
    assert quotas.remind_units_at_risk(db, date(2025, 7, 14)) == 0
    db.commit()
    keys = {m.dedupe_key for m in _reminders(db) if m.recipient == "unit:civil-affairs"}
    assert keys == {"quota:2025:civil-affairs:open_meeting:2025-07-20:30",
                    "quota:2025:civil-affairs:open_meeting:2025-07-20:7"}
    assert "quota_reminders" in {job.name for job in JOBS}


def test_the_reminder_body_names_what_is_due(db):
    quotas.remind_units_at_risk(db, date(2025, 12, 1))
    db.commit()
    by_key: dict[str, Any] = {m.dedupe_key: m for m in _reminders(db)}
    message = by_key["quota:2025:yuetan:open_day:2025-12-31:30"]
    assert "政府开放日" in message.body and "12月31日" in message.body
    assert message.recipient_masked == "unit:yuetan"
    assert "政府开放日" in message.subject


def _with_smtp(settings: Settings, sink: SmtpSink) -> Settings:
    return settings.model_copy(update={"smtp_url": sink.url, "mail_from": "kf@xicheng.gov.cn"})


def test_a_unit_with_a_contact_email_gets_its_reminder_by_smtp(db, settings, smtp_sink):
    sink = smtp_sink()
    units.set_contact_email(db, _admin(db), unit_id(db, "civil-affairs"), "zhang@xicheng.gov.cn")
    db.commit()
    assert quotas.remind_units_at_risk(db, date(2025, 6, 20)) == LIVELIHOOD_AND_SUBDISTRICTS
    db.commit()
    key = "quota:2025:civil-affairs:open_meeting:2025-07-20:30"
    [civil] = [m for m in _reminders(db) if m.dedupe_key == key]
    assert (civil.channel, civil.recipient, civil.recipient_masked) == (
        "email", "zhang@xicheng.gov.cn", "z***@xicheng.gov.cn")
    deliver(_with_smtp(settings, sink))
    [raw] = sink.received  # only the unit with an address gets a mail
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert mail["To"] == "zhang@xicheng.gov.cn" and mail["From"] == "kf@xicheng.gov.cn"
    assert "政务开放任务提醒" in mail["Subject"] and "区民政局" in mail.get_content()
    assert {(m.state, m.attempts, m.error) for m in _reminders(db)} == {("sent", 1, "")}


def test_a_unit_without_a_contact_email_is_reminded_in_the_console_never_failed(
        db, settings, smtp_sink):
    sink = smtp_sink()
    assert quotas.remind_units_at_risk(db, date(2025, 6, 20)) == LIVELIHOOD_AND_SUBDISTRICTS
    db.commit()
    reminders = _reminders(db)
    assert {(m.channel, m.recipient == m.recipient_masked) for m in reminders} == {
        ("console", True)}
    assert "unit:civil-affairs" in {m.recipient for m in reminders}
    configured = _with_smtp(settings, sink)
    assert deliver(configured) == LIVELIHOOD_AND_SUBDISTRICTS
    # Later rounds (past every retry's backoff) find nothing to send or to fail.
    assert deliver(configured, now=datetime.now(UTC) + timedelta(hours=1)) == 0
    assert {m.state for m in _reminders(db)} == {"sent"}
    assert sink.received == []


def test_a_cleared_contact_email_sends_later_reminders_to_the_console_again(db):
    admin, civil = _admin(db), unit_id(db, "civil-affairs")
    units.set_contact_email(db, admin, civil, "zhang@xicheng.gov.cn")
    quotas.remind_units_at_risk(db, date(2025, 6, 20))
    units.set_contact_email(db, admin, civil, "")
    quotas.remind_units_at_risk(db, date(2025, 7, 13))
    db.commit()
    sent = {m.dedupe_key: (m.channel, m.recipient) for m in _reminders(db)}
    assert sent["quota:2025:civil-affairs:open_meeting:2025-07-20:30"] == (
        "email", "zhang@xicheng.gov.cn")
    assert sent["quota:2025:civil-affairs:open_meeting:2025-07-20:7"] == (
        "console", "unit:civil-affairs")


def test_a_units_editors_read_its_reminders_in_the_console_and_no_other_units(staff, db):
    quotas.remind_units_at_risk(db, date(2025, 6, 20))
    db.commit()
    civil_editor = staff("editor", "civil-affairs")
    page = civil_editor.get("/console/outbox?topic=quota_reminder")
    assert page.status_code == 200
    assert page.text.count('<tr class="outbox-row') == 1  # one at-risk requirement, its own
    assert "unit:civil-affairs" in page.text and "unit:shichahai" not in page.text
    assert "站内消息" in page.text
    other = staff("editor", "shichahai").get("/console/outbox?topic=quota_reminder")
    assert "unit:shichahai" in other.text and "unit:civil-affairs" not in other.text


@pytest.mark.parametrize("year", [1999, 2101])
def test_a_year_out_of_range_is_refused(db, year):
    with pytest.raises(Invalid) as refused:
        quotas.compute(db, year)
    assert refused.value.code == "invalid_year"
