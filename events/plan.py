"""The year's broadcast plan (直播计划, issue 18; the plan's 二(四)): items imported or entered
by the office, each carried out by one broadcast session, with its production steps and a state.

THE INTERFACE (foundation): the plan helper implements every function below and may add more;
pages (frontend/console_plan.py, portal_plan.py) and the compliance report read only these.
Editing the plan (import, enter, delete, link) is events.plan_edit; the step files
events.plan_files; the CSV events.plan_import.

Steps of an item, in order, who does them, and when each is due (dates in Beijing). P is the
day the linked session plays: its premiere_at (a broadcast's), or else its starts_at.
- material  (the lead unit uploads its written material; staff-only files)      due P-14
- script    (the press office — a unit with press_office, or an admin — uploads the script)
                                                                                 due P-7
- recording (the linked session's recording uploaded: events.plan_media)        due P-N
- announced (the linked session published with its premiere_at, at least N =
             KAIFANG_ANNOUNCE_DAYS before the premiere; done at its published_at) due P-N
- archived  (the video on the portal, within KAIFANG_ARCHIVE_DAYS after the premiere:
             events.plan_media's on_portal_at)                                   due P+A
Without a linked session (or with a cancelled one) no step has a due date. A step is late when
done after its due date, or not done and its due date has passed.

States (`judge`), judged at `now` (utcnow() unless given), first that applies:
- no session linked (or the linked one cancelled): `missed` once the planned month and A days
  after it are over; else `at_risk` (reason `no_session`, or `session_cancelled`) from 30 days
  before the month starts (a cancelled session: at once); else `planned`.
- `missed` (reason `not_aired`): the month and A days over, the video not on the portal, and
  its own archive due date passed too.
- every step done: `done`, or `late` when a step was late (reason `<step>_late`).
- a step late: `late`, reason `<step>_late` (done late) or `<step>_missing` (overdue).
- the session plays after the planned month: `late`, reason `premiere_after_month`.
- a step not done and due within 7 days: `at_risk`, reason `<step>_due_soon`.
- otherwise `on_track`.
Reasons name the first step (in the order above) that gives them.

Reminders (`remind_due`, hourly from the worker): to the lead unit — its contact e-mail, or its
console outbox (unit:<code>), as the quota reminders — and, for the script, to the press office
too: once a step is due within 7 days (key `<step>:soon`), once it is overdue (`<step>:late`),
and once a session is wanted and none is linked (`session:soon`). Each once per item
(PlanItem.reminded) and per recipient (the outbox's dedupe key).
"""

from __future__ import annotations

import calendar
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from events import notify
from events.errors import NotFound
from events.models import Event, EventStatus, PlanFile, PlanItem, Theme, Unit
from events.plan_media import MediaFacts, media_of
from events.timeutil import local, utcnow
from server.config import Settings

STATES = ("planned", "on_track", "at_risk", "done", "late", "missed")
STEPS = ("material", "script", "recording", "announced", "archived")
# Who does each step: the lead unit, or the press office.
STEP_OWNERS = {"material": "lead_unit", "script": "press_office", "recording": "lead_unit",
               "announced": "lead_unit", "archived": "lead_unit"}
# Days before the session plays that the material and the script are due.
MATERIAL_DAYS = 14
SCRIPT_DAYS = 7
# A step not done within this many days of its due date puts the item at risk.
SOON_DAYS = 7
# A month this close (or begun) without a session puts the item at risk.
NO_SESSION_DAYS = 30
# A session is announced once it is public (its published_at is when).
ANNOUNCED = frozenset({EventStatus.published, EventStatus.live, EventStatus.ended,
                       EventStatus.archived})
REASONS = ("no_session", "session_cancelled", "not_aired", "premiere_after_month",
           *(f"{step}_{how}" for step in STEPS for how in ("due_soon", "missing", "late")))


@dataclass
class StepView:
    step: str  # one of STEPS
    owner: str  # lead_unit | press_office
    # The Beijing date it is due by; None while it cannot be known (no session linked yet).
    due: date | None
    done_at: datetime | None
    # Done after `due`, or not done and `due` has passed.
    late: bool
    files: list[PlanFile] = field(default_factory=list)  # material and script only


@dataclass
class ItemView:
    item: PlanItem
    unit: Unit
    theme: Theme | None
    event: Event | None  # the linked session, if any
    steps: list[StepView]
    state: str  # one of STATES
    # Why it is at_risk, late or missed, as a code (e.g. "no_session", "script_missing",
    # "announced_late"); "" otherwise. The API gives it as is, pages translate it.
    reason: str


@dataclass
class Adherence:
    """One unit's items of a year, by state (the compliance report's plan columns)."""

    total: int = 0
    planned: int = 0
    on_track: int = 0
    at_risk: int = 0
    done: int = 0
    late: int = 0
    missed: int = 0


class PlanCsvInvalid(Exception):
    """A plan file that cannot be imported: every bad line, nothing imported. The router
    answers 422 {error: "invalid_csv", lines: [{line, field, message}]}."""

    def __init__(self, lines: list[dict[str, object]]) -> None:
        super().__init__(f"{len(lines)} bad line(s)")
        self.lines = lines


def play_day(event: Event) -> date:
    """P: the Beijing day the session plays (its premiere, or else its start)."""
    return local(event.premiere_at or event.starts_at).date()


def month_days(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _first(times: list[datetime]) -> datetime | None:
    return min(times) if times else None


def steps_of(event: Event | None, files: list[PlanFile], media: MediaFacts,
             settings: Settings, now: datetime) -> list[StepView]:
    """The five steps of an item with `event` linked (None, or cancelled: no due dates)."""
    by_step = {step: [f for f in files if f.step == step] for step in ("material", "script")}
    done: dict[str, datetime | None] = {
        "material": _first([f.uploaded_at for f in by_step["material"]]),
        "script": _first([f.uploaded_at for f in by_step["script"]]),
        "recording": None, "announced": None, "archived": None}
    due: dict[str, date | None] = dict.fromkeys(STEPS)
    if event is not None and event.status != EventStatus.cancelled:
        played = play_day(event)
        due = {"material": played - timedelta(days=MATERIAL_DAYS),
               "script": played - timedelta(days=SCRIPT_DAYS),
               "recording": played - timedelta(days=settings.announce_days),
               "announced": played - timedelta(days=settings.announce_days),
               "archived": played + timedelta(days=settings.archive_days)}
        done["recording"] = media.uploaded_at
        if event.status in ANNOUNCED and event.premiere_at is not None:
            done["announced"] = event.published_at
        done["archived"] = media.on_portal_at
    today = local(now).date()
    views = []
    for step in STEPS:
        when, by = done[step], due[step]
        if when is not None and when > now:
            when = None  # not yet, judged at `now` (a premiere to come, a past `now`)
        late = by is not None and (local(when).date() > by if when is not None else today > by)
        views.append(StepView(step=step, owner=STEP_OWNERS[step], due=by, done_at=when,
                              late=late, files=by_step.get(step, [])))
    return views


def judge(item: PlanItem, event: Event | None, steps: list[StepView], settings: Settings,
          now: datetime) -> tuple[str, str]:
    """The item's (state, reason): the module's docstring gives the rules in this order."""
    today = local(now).date()
    first_day, last_day = month_days(item.year, item.month)
    over = today > last_day + timedelta(days=settings.archive_days)
    if event is None or event.status == EventStatus.cancelled:
        reason = "no_session" if event is None else "session_cancelled"
        if over:
            return "missed", reason
        if event is not None or today >= first_day - timedelta(days=NO_SESSION_DAYS):
            return "at_risk", reason
        return "planned", ""
    archived = steps[-1]
    if over and archived.done_at is None and archived.due is not None and today > archived.due:
        return "missed", "not_aired"
    late = [s for s in steps if s.late]
    if all(s.done_at is not None for s in steps):
        return ("late", f"{late[0].step}_late") if late else ("done", "")
    if late:
        return "late", f"{late[0].step}_{'late' if late[0].done_at else 'missing'}"
    if play_day(event) > last_day:
        return "late", "premiere_after_month"
    soon = [s for s in steps if s.done_at is None and s.due is not None
            and (s.due - today).days <= SOON_DAYS]
    if soon:
        return "at_risk", f"{soon[0].step}_due_soon"
    return "on_track", ""


def _views(db: Session, items: list[PlanItem], settings: Settings,
           now: datetime) -> list[ItemView]:
    units = {u.id: u for u in db.exec(select(Unit).where(
        col(Unit.id).in_({i.unit_id for i in items})))} if items else {}
    themes = {t.code: t for t in db.exec(select(Theme))}
    event_ids = [i.event_id for i in items if i.event_id is not None]
    events = {e.id: e for e in db.exec(select(Event).where(col(Event.id).in_(event_ids)))} \
        if event_ids else {}
    media = media_of(db, event_ids) if event_ids else {}
    files: dict[int | None, list[PlanFile]] = {i.id: [] for i in items}
    if items:
        for row in db.exec(select(PlanFile).where(col(PlanFile.item_id).in_(list(files)))
                           .order_by(col(PlanFile.uploaded_at), col(PlanFile.id))):
            files[row.item_id].append(row)
    views = []
    for item in items:
        event = events.get(item.event_id) if item.event_id is not None else None
        steps = steps_of(event, files[item.id],
                         media.get(item.event_id, MediaFacts()) if item.event_id else MediaFacts(),
                         settings, now)
        state, reason = judge(item, event, steps, settings, now)
        views.append(ItemView(item=item, unit=units[item.unit_id],
                              theme=themes.get(item.theme_code or ""), event=event,
                              steps=steps, state=state, reason=reason))
    return views


def items_of_year(db: Session, year: int, settings: Settings,
                  now: datetime | None = None, unit_id: int | None = None) -> list[ItemView]:
    """The year's items (of one unit when `unit_id`), by month then file order, judged `now`."""
    query = select(PlanItem).where(PlanItem.year == year)
    if unit_id is not None:
        query = query.where(PlanItem.unit_id == unit_id)
    items = list(db.exec(query.order_by(col(PlanItem.month), col(PlanItem.position),
                                        col(PlanItem.id))))
    return _views(db, items, settings, now or utcnow())


def item_view(db: Session, item_id: int, settings: Settings,
              now: datetime | None = None) -> ItemView:
    """One item (NotFound when there is none)."""
    item = db.get(PlanItem, item_id)
    if item is None:
        raise NotFound("not_found", f"there is no plan item {item_id}")
    return _views(db, [item], settings, now or utcnow())[0]


def adherence(db: Session, year: int, settings: Settings,
              now: datetime | None = None) -> dict[int, Adherence]:
    """Per lead unit id, its items of the year by state (units without items are absent)."""
    found: dict[int, Adherence] = {}
    for view in items_of_year(db, year, settings, now):
        counts = found.setdefault(view.item.unit_id, Adherence())
        counts.total += 1
        setattr(counts, view.state, getattr(counts, view.state) + 1)
    return found


def year_counts(views: list[ItemView]) -> dict[str, int]:
    """Items by state (every state present, 0 when none)."""
    counted = Counter(view.state for view in views)
    return {state: counted.get(state, 0) for state in STATES}


# ---- reminders -------------------------------------------------------------------------------

STEP_NAMES = {"material": "牵头单位材料", "script": "新闻办脚本", "recording": "录制视频上传",
              "announced": "首播预告发布", "archived": "视频上网归档"}
REMINDED_STATES = frozenset({"planned", "on_track", "at_risk", "late"})
# The outbox keeps a subject of at most this many characters (OutboxMessage.subject).
SUBJECT_MAX = 200


def _due_keys(view: ItemView, today: date) -> list[tuple[str, StepView | None]]:
    """The reminders the item wants now: (key, the step or None for the session)."""
    if view.reason in ("no_session", "session_cancelled"):
        return [("session:soon", None)]
    wanted: list[tuple[str, StepView | None]] = []
    for step in view.steps:
        if step.done_at is not None or step.due is None:
            continue
        if today > step.due:
            wanted.append((f"{step.step}:late", step))
        elif (step.due - today).days <= SOON_DAYS:
            wanted.append((f"{step.step}:soon", step))
    return wanted


def _subject(text: str) -> str:
    """A subject that fits the outbox (a topic may be 200 characters long by itself)."""
    return text if len(text) <= SUBJECT_MAX else text[:SUBJECT_MAX - 1] + "…"


def _text(view: ItemView, unit: Unit, step: StepView | None, today: date) -> tuple[str, str]:
    subject, body = _full_text(view, unit, step, today)
    return _subject(subject), body


def _full_text(view: ItemView, unit: Unit, step: StepView | None,
               today: date) -> tuple[str, str]:
    item = view.item
    plan = f"{notify.SIGNATURE}{unit.name}：{item.year}年直播计划“{item.topic}”"
    if step is None:
        return (f"直播计划待关联活动：{item.topic}",
                f"{plan}计划于{item.month}月播出，尚未关联直播活动。请尽快创建“政民互动直播间”"
                f"活动，并在直播计划中关联。")
    assert step.due is not None
    name, due = STEP_NAMES[step.step], f"{step.due.month}月{step.due.day}日"
    if today > step.due:
        return (f"直播计划环节已逾期：{name}（{item.topic}）",
                f"{plan}的“{name}”环节已超过截止日期（{due}），请尽快办理。")
    return (f"直播计划环节将到期：{name}（{item.topic}）",
            f"{plan}的“{name}”环节须在{due}前（含当日）完成，距截止还有"
            f"{(step.due - today).days}天，请尽快办理。")


def _send(db: Session, unit: Unit, subject: str, body: str, key: str) -> bool:
    """One reminder to a unit: its contact e-mail, or else its console outbox."""
    if unit.contact_email:
        local_part, _, domain = unit.contact_email.rpartition("@")
        channel, recipient = "email", unit.contact_email
        masked = f"{local_part[:1]}***@{domain}"
    else:
        # A unit is no person: unit:<code> needs no masking in the outbox.
        channel, recipient = "console", f"unit:{unit.code}"
        masked = recipient
    message = notify.enqueue(db, topic="plan_reminder", channel=channel, recipient=recipient,
                             unit=unit, subject=subject, body=body, dedupe_key=key)
    if message is None:
        return False
    message.recipient_masked = masked
    return True


def remind_due(db: Session, settings: Settings) -> int:
    """Reminds each lead unit of a plan item's step that is due soon or late (once per step
    and threshold); returns the reminders written."""
    now = utcnow()
    today = local(now).date()
    press = list(db.exec(select(Unit).where(col(Unit.press_office).is_(True),
                                            col(Unit.retired_at).is_(None))))
    queued = 0
    for year in (today.year - 1, today.year, today.year + 1):
        for view in items_of_year(db, year, settings, now):
            if view.state not in REMINDED_STATES or view.unit.retired_at is not None:
                continue
            sent = {key for key in view.item.reminded.split(",") if key}
            fresh = [(key, step) for key, step in _due_keys(view, today) if key not in sent]
            for key, step in fresh:
                units = [view.unit] + (press if step is not None and step.step == "script"
                                       else [])
                for unit in units:
                    subject, body = _text(view, unit, step, today)
                    if _send(db, unit, subject, body, f"plan:{view.item.id}:{key}:{unit.code}"):
                        queued += 1
                sent.add(key)
            if fresh:
                view.item.reminded = ",".join(sorted(sent))[:400]
                db.add(view.item)
    db.flush()
    return queued
