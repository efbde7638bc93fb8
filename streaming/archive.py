"""The public archive: sessions whose recording plays on demand, newest first.

A session is in the archive exactly when its playback (streaming.playback.playback_of) is `vod`: it
is public and not cancelled, it has a published recording (the newest, as jobs.published
picks it), and it was held (ended or archived) or, for a broadcast with a premiere, that
premiere has played to its end. A premiere under way is not in the archive yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import ColumnElement, and_, func, not_, or_
from sqlalchemy.sql import Subquery
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from events import themes
from events.models import CohostState, Event, EventCohost, EventKind, EventStatus, Unit
from events.sessions import PUBLIC_STATUSES
from events.timeutil import LOCAL_TZ, as_utc, local
from streaming import phase
from streaming.models import Recording

HELD = (EventStatus.ended, EventStatus.archived)
MAX_WORDS = 8


@dataclass(frozen=True)
class ArchiveQuery:
    """What a visitor asks the archive for; every filter optional."""

    kind: EventKind | None = None
    unit: str | None = None  # a unit code: sessions it organised or co-hosted (accepted)
    year: int | None = None  # the Beijing year the session started in
    q: str | None = None  # words, each found in the title, the summary or the minutes
    theme: str | None = None  # a theme's code (events.themes)
    limit: int = 24
    offset: int = 0


@dataclass(frozen=True)
class ArchiveEntry:
    event: Event
    recording: Recording


def _latest_recordings() -> Subquery:
    """Each session's recording that plays: the newest published (as jobs.published)."""
    rank = func.row_number().over(
        partition_by=col(Recording.event_id),
        order_by=(col(Recording.published_at).desc(), col(Recording.id).desc())).label("rank")
    ranked = (select(col(Recording.id).label("recording_id"),
                     col(Recording.event_id).label("event_id"), rank)
              .where(col(Recording.published_at).is_not(None), col(Recording.media_key) != "")
              .subquery())
    return (select(ranked.c.recording_id, ranked.c.event_id)
            .where(ranked.c.rank == 1).subquery("latest_recording"))


def _premieres_on_air(db: Session, latest: Subquery, now: datetime) -> list[int]:
    """Broadcasts whose premiere has started and not yet played to its end."""
    longest = db.exec(select(func.max(Recording.duration_s))
                      .where(col(Recording.published_at).is_not(None))).one()
    if not longest:
        return []
    rows = db.exec(
        select(Event.id, Event.premiere_at, Recording.duration_s)
        .join(latest, latest.c.event_id == Event.id)
        .join(Recording, col(Recording.id) == latest.c.recording_id)
        .where(Event.kind == EventKind.broadcast, col(Event.premiere_at) <= now,
               col(Event.premiere_at) > now - timedelta(seconds=float(longest))))
    return [event_id for event_id, premiere_at, duration in rows
            if event_id is not None and premiere_at is not None
            and premiere_at + timedelta(seconds=duration) > now]


def _archived(db: Session, now: datetime) -> Select[Event, Recording]:
    """Every session in the archive with the recording it plays, unordered and unfiltered."""
    latest = _latest_recordings()
    premiered = and_(col(Event.kind) == EventKind.broadcast, col(Event.premiere_at).is_not(None))
    premiere_over = and_(premiered, col(Event.premiere_at) <= now)
    on_air = _premieres_on_air(db, latest, now)
    if on_air:
        premiere_over = and_(premiere_over, col(Event.id).not_in(on_air))
    held = and_(not_(premiered), col(Event.status).in_(HELD))
    return (select(Event, Recording)
            .join(latest, latest.c.event_id == Event.id)
            .join(Recording, col(Recording.id) == latest.c.recording_id)
            .where(col(Event.status).in_(PUBLIC_STATUSES), col(Event.published_at).is_not(None),
                   Event.status != EventStatus.cancelled, or_(held, premiere_over)))


def _of_unit(code: str) -> ColumnElement[bool]:
    """Organised by the unit, or co-hosted by it (accepted), as the portal's unit filter."""
    unit_ids = select(Unit.id).where(Unit.code == code)
    cohosted = select(EventCohost.event_id).where(col(EventCohost.unit_id).in_(unit_ids),
                                                  EventCohost.state == CohostState.accepted)
    return or_(col(Event.unit_id).in_(unit_ids), col(Event.id).in_(cohosted))


def _year_bounds(year: int) -> tuple[datetime, datetime]:
    def start(y: int) -> datetime:
        return as_utc(datetime.combine(date(y, 1, 1), time.min, tzinfo=LOCAL_TZ))

    return start(year), start(year + 1)


def search_words(q: str | None) -> list[str]:
    return (q or "").split()[:MAX_WORDS]


def _matches(word: str) -> ColumnElement[bool]:
    # autoescape: a '%' or '_' typed by a citizen is text, not a wildcard. Minutes are public
    # once the session is closed out (events.sessions.events_public), so only then searched.
    return or_(col(Event.title).icontains(word, autoescape=True),
               col(Event.summary).icontains(word, autoescape=True),
               and_(col(Event.closed_at).is_not(None),
                    col(Event.minutes).icontains(word, autoescape=True)))


def _filtered(db: Session, query: ArchiveQuery, now: datetime) -> Select[Event, Recording]:
    stmt = _archived(db, now)
    if query.kind is not None:
        stmt = stmt.where(col(Event.kind) == query.kind)
    if query.unit:
        stmt = stmt.where(_of_unit(query.unit))
    if query.year is not None:
        first, after = _year_bounds(query.year)
        stmt = stmt.where(col(Event.starts_at) >= first, col(Event.starts_at) < after)
    if query.theme:
        stmt = stmt.where(themes.of_theme(query.theme))
    for word in search_words(query.q):
        stmt = stmt.where(_matches(word))
    return stmt


def entries(db: Session, query: ArchiveQuery, now: datetime) -> list[ArchiveEntry]:
    """The archive, newest session first (by its start), one page of it."""
    stmt = (_filtered(db, query, now)
            .order_by(col(Event.starts_at).desc(), col(Event.id).desc())
            .offset(query.offset).limit(query.limit))
    return [ArchiveEntry(event=event, recording=recording) for event, recording in db.exec(stmt)]


def _may_be_archived(event: Event, now: datetime) -> bool:
    """The part of the rule the row alone decides: held, or a premiere that has begun."""
    premiere = phase.premiere_of(event)
    if premiere is not None:
        return premiere <= now
    return event.status in HELD


def entry_of(db: Session, event: Event, now: datetime) -> ArchiveEntry | None:
    """The session's archive entry, if it is in the archive."""
    if event.id is None or not _may_be_archived(event, now):
        return None  # most session pages: a session to come costs no query
    found = db.exec(_archived(db, now).where(col(Event.id) == event.id)).first()
    return ArchiveEntry(event=found[0], recording=found[1]) if found else None


def years(db: Session, now: datetime, unit: str | None = None) -> list[int]:
    """The Beijing years the archive has sessions in, newest first (the year filter's list)."""
    archived = _archived(db, now)
    if unit:
        archived = archived.where(_of_unit(unit))
    inner = archived.subquery()
    first, last = db.exec(select(func.min(inner.c.starts_at), func.max(inner.c.starts_at))).one()
    if first is None or last is None:
        return []
    return list(range(local(last).year, local(first).year - 1, -1))


def has_entries(db: Session, unit: str, now: datetime) -> bool:
    return bool(db.exec(_filtered(db, ArchiveQuery(unit=unit), now).limit(1)).first())


def duration_text(seconds: float) -> str:
    """0:42 → '00:42', 754 s → '12:34', 3754 s → '1:02:34'."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def duration_iso(seconds: float) -> str:
    """An HTML duration string for <time datetime>: PT1H2M34S."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + \
        f"{secs}S"
