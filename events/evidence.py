"""Quota evidence: which sessions of a year a unit can show for a requirement, and why not.

A session is evidence for a unit when the unit led it (role "lead") or co-hosted it (role
"cohost"): each of them opened itself to the public, so it counts for each. A co-host counts only
once it accepted (events.cohosts): an invitation is no evidence. It counts toward a
requirement when it was published, not cancelled, held on or before the deadline (its Beijing
date), and closed out with minutes (closed_at set). The archived recording is linked when one
exists, through the providers registered here (streaming/ registers one; events/ never imports
it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import or_
from sqlmodel import Session, col, select

from events.models import CohostState, Event, EventCohost, EventKind, EventStatus
from events.timeutil import LOCAL_TZ, as_utc, local

S = EventStatus
# Reasons a session does not count (Evidence.reason); "" when it counts.
REASONS = ("cancelled", "not_public", "after_deadline", "scheduled", "not_closed")
UPCOMING_STATUSES = frozenset({S.published, S.live})

# (db, event ids) -> {event id: URL of its archived recording}
RecordingLinks = Callable[[Session, list[int]], dict[int, str]]
_recording_providers: list[RecordingLinks] = []


def register_recording_links(provider: RecordingLinks) -> None:
    """Lets the streaming package link archived recordings to evidence (issue 5)."""
    if provider not in _recording_providers:
        _recording_providers.append(provider)


def recording_links(db: Session, event_ids: list[int]) -> dict[int, str]:
    links: dict[int, str] = {}
    for provider in _recording_providers:
        links.update(provider(db, event_ids))
    return links


@dataclass
class Evidence:
    """One session considered for one requirement of one unit."""

    event: Event
    counts: bool
    reason: str
    role: str  # "lead" | "cohost"
    recording_url: str | None = None

    @property
    def held_on(self) -> date:
        return held_on(self.event)


def held_on(event: Event) -> date:
    """The day a session was held, in Beijing: what a deadline is judged against."""
    return local(event.starts_at).date()


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """[1 January 00:00, next 1 January 00:00) Beijing time, in UTC."""
    start = datetime.combine(date(year, 1, 1), time.min, tzinfo=LOCAL_TZ)
    end = datetime.combine(date(year + 1, 1, 1), time.min, tzinfo=LOCAL_TZ)
    return as_utc(start), as_utc(end)


@dataclass
class YearSessions:
    """The sessions held (or planned) in a year, with who hosted each."""

    events: list[Event]
    # event id -> {unit id: "lead" | "cohost"}
    hosts: dict[int, dict[int, str]]
    recordings: dict[int, str]

    def of_unit(self, unit_id: int, kind: EventKind) -> list[tuple[Event, str]]:
        """The unit's sessions of a kind, oldest first, with the unit's role in each."""
        return [(event, self.hosts[event.id][unit_id]) for event in self.events
                if event.id is not None and event.kind == kind
                and unit_id in self.hosts[event.id]]

    def unit_ids(self, *, public_only: bool = True) -> set[int]:
        return {unit for event in self.events if event.id is not None
                and (not public_only or event.published_at is not None)
                for unit in self.hosts[event.id]}


def sessions_of_year(db: Session, year: int, unit_ids: Iterable[int] | None = None
                     ) -> YearSessions:
    """Every session starting in the Beijing year, led or co-hosted by the given units."""
    start, end = year_bounds(year)
    stmt = select(Event).where(col(Event.starts_at) >= start, col(Event.starts_at) < end)
    if unit_ids is not None:
        wanted = list(unit_ids)
        cohosted = select(EventCohost.event_id).where(col(EventCohost.unit_id).in_(wanted),
                                                      EventCohost.state == CohostState.accepted)
        stmt = stmt.where(or_(col(Event.unit_id).in_(wanted), col(Event.id).in_(cohosted)))
    events = list(db.exec(stmt.order_by(col(Event.starts_at), col(Event.id))))
    ids = [event.id for event in events if event.id is not None]
    hosts: dict[int, dict[int, str]] = {event.id: {event.unit_id: "lead"}
                                        for event in events if event.id is not None}
    if ids:
        for row in db.exec(select(EventCohost).where(col(EventCohost.event_id).in_(ids),
                                                     EventCohost.state == CohostState.accepted)):
            hosts[row.event_id].setdefault(row.unit_id, "cohost")
    return YearSessions(events=events, hosts=hosts, recordings=recording_links(db, ids))


def judge(event: Event, role: str, deadline: date, today: date,
          recording_url: str | None = None) -> Evidence:
    """Whether one session counts toward a requirement due on `deadline` (inclusive)."""
    if event.status == S.cancelled:
        reason = "cancelled"
    elif event.published_at is None or event.status in (S.draft, S.pending_review):
        reason = "not_public"
    elif held_on(event) > deadline:
        reason = "after_deadline"
    elif event.closed_at is not None:
        reason = ""
    elif event.status in UPCOMING_STATUSES and held_on(event) >= today:
        reason = "scheduled"
    else:
        reason = "not_closed"
    return Evidence(event=event, counts=reason == "", reason=reason, role=role,
                    recording_url=recording_url)
