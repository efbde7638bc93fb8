"""What the compliance pages show, shaped from events.quotas' report: labels in the reader's
language, dates in Beijing, rows and cells of the tables, the charts' numbers.

Shared by the console (dashboard, drill-down, printable report) and the public results page.
It decides nothing about compliance: the statuses and reasons come from events.quotas.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from events import sessions
from events.models import Event, EventStatus
from events.timeutil import local, utcnow
from frontend import charts, labels
from frontend.i18n import N_, current_locale, gettext

YEAR_MIN, YEAR_MAX = 2018, 2099  # sessions are dated up to 2099 (events.sessions)
QUOTA_CATEGORIES = ("livelihood", "subdistrict")
STATUS_ORDER = ("met", "on_track", "at_risk", "missed", "not_required")
STATUS_LABELS = {
    "met": N_("Met"),
    "on_track": N_("On track"),
    "at_risk": N_("At risk"),
    "missed": N_("Missed"),
    "not_required": N_("No quota"),
}
# An icon beside the word, so the status never rests on colour alone.
STATUS_ICONS = {"met": "✓", "on_track": "◔", "at_risk": "⚠", "missed": "✗", "not_required": "—"}
STATUS_COLORS = {"met": "#1b6e3a", "on_track": "#1a4f8b", "at_risk": "#7a4f00",
                 "missed": "#8c1d18"}
REASON_LABELS = {
    "cancelled": N_("Cancelled"),
    "not_closed": N_("Not closed out"),
    "after_deadline": N_("After the deadline"),
    "scheduled": N_("Not yet held"),
    "not_public": N_("Not published"),
}
ROLE_LABELS = {"lead": N_("Organiser"), "cohost": N_("Co-host")}
CATEGORY_FILTERS = (
    ("", N_("All units")),
    ("livelihood", N_("Livelihood departments")),
    ("subdistrict", N_("Sub-districts")),
)
CATEGORY_HEADINGS = {
    "livelihood": N_("Livelihood departments"),
    "subdistrict": N_("Sub-districts"),
    "other": N_("Other departments"),
}
KIND_ORDER = tuple(labels.KINDS)
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Sessions drawn on the monthly chart: announced or held; drafts and cancellations are not.
CHARTED = frozenset({EventStatus.published, EventStatus.live, EventStatus.ended,
                     EventStatus.archived})
PAGE = 1000


# ---- what the page was asked for ------------------------------------------------------------

def this_year() -> int:
    return local(utcnow()).year


def parse_year(text: str | None) -> int:
    """'2031' -> 2031; anything else (or out of range) -> this year in Beijing."""
    if text and len(text) == 4 and text.isdecimal() and YEAR_MIN <= int(text) <= YEAR_MAX:
        return int(text)
    return this_year()


def parse_category(text: str | None) -> str:
    return text if text in QUOTA_CATEGORIES else ""


def year_choices(selected: int) -> list[int]:
    years = set(range(YEAR_MIN, this_year() + 2)) | {selected}
    return sorted(years, reverse=True)


# ---- words and dates ------------------------------------------------------------------------

def date_text(day: date, *, short: bool = False) -> str:
    """'2031年7月20日' / '7月20日' in zh_CN, '20 Jul 2031' / '20 Jul' in en."""
    if current_locale.get() == "zh_CN":
        return f"{day.month}月{day.day}日" if short else f"{day.year}年{day.month}月{day.day}日"
    text = f"{day.day} {MONTHS_EN[day.month - 1]}"
    return text if short else f"{text} {day.year}"


def month_label(month: int) -> str:
    return f"{month}月" if current_locale.get() == "zh_CN" else MONTHS_EN[month - 1]


def status_label(status: str) -> str:
    return gettext(STATUS_LABELS.get(status, status))


def kind_label(kind: str) -> str:
    return gettext(labels.KINDS.get(kind, kind))


def requirement_period(deadline: date | None) -> str:
    if deadline is None:
        return gettext("Whole year")
    return gettext("By %(date)s") % {"date": date_text(deadline, short=True)}


def _value(code: Any) -> str:
    return str(getattr(code, "value", code))


# ---- the report as rows ---------------------------------------------------------------------

@dataclass
class EvidenceView:
    id: int
    title: str
    kind: str
    status: str
    starts_at: datetime
    counts: bool
    reason: str
    reason_label: str
    role: str
    role_label: str
    public: bool
    has_minutes: bool
    attendee_count: int | None
    recording_url: str | None
    # A webcast's evidence (streaming.audience): the most watching at once, and in all.
    live_peak: int = 0
    live_total: int = 0


@dataclass
class RequirementView:
    key: str
    kind: str
    kind_label: str
    deadline: date | None
    period: str
    due: date
    due_text: str
    required: int
    counted: int
    remaining: int
    scheduled: int
    status: str
    evidence: list[EvidenceView] = field(default_factory=list)

    @property
    def counting(self) -> list[EvidenceView]:
        return [e for e in self.evidence if e.counts]

    @property
    def not_counting(self) -> list[EvidenceView]:
        return [e for e in self.evidence if not e.counts]


@dataclass
class UnitRow:
    id: int
    code: str
    name: str
    category: str
    status: str
    requirements: list[RequirementView]

    @property
    def cells(self) -> dict[str, RequirementView]:
        return {r.key: r for r in self.requirements}

    @property
    def has_quota(self) -> bool:
        return self.status != "not_required"


@dataclass(frozen=True)
class Column:
    key: str
    kind_label: str
    period: str
    required: int | None  # when every unit is asked the same number


@dataclass(frozen=True)
class Summary:
    total: int  # units with a quota
    met: int
    not_met: int
    by_status: dict[str, int]


def requirement_key(kind: str, deadline: date | None) -> str:
    return f"{kind}:{deadline.isoformat() if deadline else 'year'}"


def evidence_view(evidence: Any) -> EvidenceView:
    event: Event = evidence.event
    assert event.id is not None
    reason = evidence.reason or ""
    return EvidenceView(
        id=event.id, title=event.title, kind=_value(event.kind), status=_value(event.status),
        starts_at=event.starts_at, counts=bool(evidence.counts), reason=reason,
        reason_label=gettext(REASON_LABELS[reason]) if reason in REASON_LABELS else reason,
        role=evidence.role, role_label=gettext(ROLE_LABELS.get(evidence.role, evidence.role)),
        public=sessions.is_public(event),
        has_minutes=event.closed_at is not None and bool(event.minutes.strip()),
        attendee_count=event.attendee_count,
        recording_url=getattr(evidence, "recording_url", None))


def with_webcasts(rows: Iterable[UnitRow], found: dict[int, tuple[int, int]]) -> None:
    """Each session's live viewers (peak, total) beside its evidence, where it was webcast."""
    for row in rows:
        for requirement in row.requirements:
            for evidence in requirement.evidence:
                evidence.live_peak, evidence.live_total = found.get(evidence.id, (0, 0))


def requirement_view(requirement: Any, year: int) -> RequirementView:
    kind = _value(requirement.kind)
    due = requirement.deadline or date(year, 12, 31)
    evidence = sorted((evidence_view(e) for e in requirement.evidence),
                      key=lambda e: (not e.counts, e.starts_at, e.id))
    return RequirementView(
        key=requirement_key(kind, requirement.deadline), kind=kind, kind_label=kind_label(kind),
        deadline=requirement.deadline, period=requirement_period(requirement.deadline), due=due,
        due_text=date_text(due), required=requirement.required, counted=requirement.counted,
        remaining=max(requirement.required - requirement.counted, 0),
        scheduled=requirement.scheduled, status=requirement.status, evidence=evidence)


def _order(requirement: RequirementView) -> tuple[int, int, date]:
    kind_rank = KIND_ORDER.index(requirement.kind) if requirement.kind in KIND_ORDER else 99
    return kind_rank, requirement.deadline is not None, requirement.due


def unit_rows(report: Any) -> list[UnitRow]:
    rows = []
    for compliance in report.units:
        unit = compliance.unit
        requirements = sorted((requirement_view(r, report.year) for r in compliance.requirements),
                              key=_order)
        rows.append(UnitRow(id=unit.id, code=unit.code, name=unit.name,
                            category=_value(unit.category), status=compliance.status,
                            requirements=requirements))
    return rows


def columns(rows: Iterable[UnitRow]) -> list[Column]:
    """One column per requirement found in any unit, in kind order, whole year first."""
    found: dict[str, tuple[RequirementView, set[int]]] = {}
    for row in rows:
        for requirement in row.requirements:
            _first, asked = found.setdefault(requirement.key, (requirement, set()))
            asked.add(requirement.required)
    ordered = sorted(found.values(), key=lambda item: _order(item[0]))
    return [Column(key=r.key, kind_label=r.kind_label, period=r.period,
                   required=next(iter(asked)) if len(asked) == 1 else None)
            for r, asked in ordered]


def summary(rows: Iterable[UnitRow]) -> Summary:
    quota_rows = [row for row in rows if row.has_quota]
    by_status = {status: 0 for status in STATUS_ORDER[:-1]}
    for row in quota_rows:
        by_status[row.status] = by_status.get(row.status, 0) + 1
    met = by_status.get("met", 0)
    return Summary(total=len(quota_rows), met=met, not_met=len(quota_rows) - met,
                   by_status=by_status)


def grouped(rows: Sequence[UnitRow]) -> list[tuple[str, str, list[UnitRow]]]:
    """Rows under their category heading, quota categories first; empty groups left out."""
    out = []
    for category in (*QUOTA_CATEGORIES, "other"):
        members = [row for row in rows if row.category == category]
        if members:
            out.append((category, gettext(CATEGORY_HEADINGS[category]), members))
    return out


# ---- the charts -----------------------------------------------------------------------------

def events_of_year(db: Session, year: int, viewer: Any) -> list[Event]:
    """Every session starting in the Beijing year that the viewer may see (all, for staff)."""
    found: list[Event] = []
    while True:
        query = sessions.EventQuery(start=date(year, 1, 1), end=date(year, 12, 31), limit=PAGE,
                                    offset=len(found))
        batch = sessions.list_events(db, query, viewer)
        found.extend(batch)
        if len(batch) < PAGE:
            break
    return [e for e in found if local(e.starts_at).year == year]


def monthly_counts(events: Iterable[Event], year: int,
                   unit_ids: set[int] | None = None) -> dict[str, list[int]]:
    counts = {kind: [0] * 12 for kind in KIND_ORDER}
    for event in events:
        if event.status not in CHARTED or (unit_ids is not None and event.unit_id not in unit_ids):
            continue
        starts = local(event.starts_at)
        if starts.year == year:
            counts.setdefault(_value(event.kind), [0] * 12)[starts.month - 1] += 1
    return counts


def monthly_chart(counts: dict[str, list[int]], year: int) -> dict[str, Any]:
    series = [charts.Series(kind_label(kind), values) for kind, values in counts.items()
              if any(values)]
    total = sum(sum(values) for values in counts.values())
    title = gettext("Sessions per month by kind, %(year)s") % {"year": year}
    description = gettext("%(total)s sessions published or held in %(year)s, by month (Beijing "
                          "time) and kind; the table below gives the numbers.") % {
        "total": total, "year": year}
    months = [month_label(m) for m in range(1, 13)]
    svg = charts.stacked_columns("chart-months", title, description, months,
                                 series or [charts.Series(gettext("Sessions"), [0] * 12)])
    table = [(kind_label(kind), values, sum(values)) for kind, values in counts.items()
             if any(values)]
    return {"svg": svg, "title": title, "months": months, "table": table, "total": total}


def status_chart(rows: Sequence[UnitRow]) -> dict[str, Any]:
    categories = [c for c in QUOTA_CATEGORIES if any(r.category == c for r in rows)]
    statuses = STATUS_ORDER[:-1]
    values = {s: [sum(1 for r in rows if r.category == c and r.status == s) for c in categories]
              for s in statuses}
    series = [charts.Series(f"{STATUS_ICONS[s]} {status_label(s)}", values[s], STATUS_COLORS[s])
              for s in statuses]
    names = [gettext(CATEGORY_HEADINGS[c]) for c in categories]
    title = gettext("Units with a quota: met and not met")
    parts = [gettext("%(category)s: %(met)s of %(total)s met") % {
        "category": name, "met": values["met"][i],
        "total": sum(values[s][i] for s in statuses)} for i, name in enumerate(names)]
    description = gettext("; ").join(parts)
    svg = charts.stacked_rows("chart-status", title, description, names, series, width=440,
                             label_width=64)
    table = [(name, [values[s][i] for s in statuses]) for i, name in enumerate(names)]
    return {"svg": svg, "title": title, "statuses": statuses, "table": table}
