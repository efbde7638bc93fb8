"""Themed series of sessions (plan 二(三): open days grown into series such as 重大建设项目 or
公共文化服务; a run of broadcasts): a unit's title and summary, with its own public page,
calendar and Atom feed (frontend.portal_series).

Who may do what:
- an editor creates and edits their own unit's series, and puts their unit's sessions in them;
  the district office (admin) edits and deletes any series, and may put any *published*
  session in any series (an open day held across units). A session joins another unit's
  series no other way (422 series_of_another_unit, field series_id).
- the public sees a series once it holds a public session, and only its public sessions:
  a draft in a series stays invisible, and a series' text is not on the portal before the
  office has published one of its sessions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, and_, func, or_
from sqlmodel import Session, col, select

from events import audit, permissions, sessions, themes
from events.errors import Invalid, NotFound
from events.models import Event, Role, StaffUser, Unit
from events.models_plan import EventTheme, Series
from events.timeutil import iso_local, utcnow
from events.units import MAX_ID, MultilineText, Text


class SeriesCreate(BaseModel):
    title: Text = Field(min_length=1, max_length=200)
    unit_id: int = Field(ge=1, le=MAX_ID)
    summary: MultilineText = Field(default="", max_length=20_000)


class SeriesUpdate(BaseModel):
    title: Text | None = Field(default=None, min_length=1, max_length=200)
    summary: MultilineText | None = Field(default=None, max_length=20_000)


def _public_event() -> ColumnElement[bool]:
    return and_(col(Event.status).in_(sessions.PUBLIC_STATUSES),
                col(Event.published_at).is_not(None))


def _has_public_session() -> ColumnElement[bool]:
    return col(Series.id).in_(select(Event.series_id).where(
        col(Event.series_id).is_not(None), _public_event()))


# ---- reading ---------------------------------------------------------------------------------

def get_series(db: Session, series_id: int) -> Series:
    series = db.get(Series, series_id) if 0 < series_id <= MAX_ID else None
    if series is None:
        raise NotFound("series_not_found", f"no series with id {series_id}")
    return series


def may_manage(viewer: StaffUser | None, series: Series) -> bool:
    """The series' unit (its editors) and the office."""
    return viewer is not None and (permissions.is_admin(viewer) or (
        viewer.role == Role.editor and viewer.unit_id == series.unit_id))


def is_visible(db: Session, series: Series) -> bool:
    """On the portal: it holds at least one public session."""
    return db.exec(select(Event.id).where(Event.series_id == series.id, _public_event())
                   .limit(1)).first() is not None


def get_visible_series(db: Session, series_id: int, viewer: StaffUser | None) -> Series:
    """The series as this viewer may see it; anything else is as if it did not exist."""
    series = get_series(db, series_id)
    if not may_manage(viewer, series) and not is_visible(db, series):
        raise NotFound("series_not_found", f"no series with id {series_id}")
    return series


def list_series(db: Session, viewer: StaffUser | None, *, unit_id: int | None = None
                ) -> list[Series]:
    """The public: series with a public session. An editor also their unit's (empty ones too),
    the office every one. Newest first."""
    stmt = select(Series)
    if viewer is None or not permissions.is_admin(viewer):
        readable = [_has_public_session()]
        if viewer is not None and viewer.role == Role.editor and viewer.unit_id is not None:
            readable.append(col(Series.unit_id) == viewer.unit_id)
        stmt = stmt.where(or_(*readable))
    if unit_id is not None:
        stmt = stmt.where(Series.unit_id == unit_id)
    return list(db.exec(stmt.order_by(col(Series.created_at).desc(), col(Series.id).desc())))


def series_of_theme(db: Session, code: str) -> list[Series]:
    """The series holding a public session of this theme, newest first (a theme's page)."""
    members = select(Event.series_id).where(col(Event.series_id).is_not(None), _public_event(),
                                            themes.of_theme(code))
    return list(db.exec(select(Series).where(col(Series.id).in_(members))
                        .order_by(col(Series.created_at).desc(), col(Series.id).desc())))


def upcoming_by_theme(db: Session, now: datetime) -> dict[str, int]:
    """How many public sessions not yet over each theme has (the themes' index page)."""
    rows = db.exec(select(EventTheme.theme_code, func.count())
                   .join(Event, col(Event.id) == EventTheme.event_id)
                   .where(_public_event(), col(Event.ends_at) >= now)
                   .group_by(col(EventTheme.theme_code)))
    return {code: int(count) for code, count in rows}


def public_sessions(db: Session, series_id: int) -> list[Event]:
    """The series' public sessions, by start: what its page, calendar and feed list."""
    return list(db.exec(select(Event).where(Event.series_id == series_id, _public_event())
                        .order_by(col(Event.starts_at), col(Event.id))))


def public_counts(db: Session, series_ids: list[int]) -> dict[int, int]:
    counts = dict.fromkeys(series_ids, 0)
    if series_ids:
        rows = db.exec(select(Event.series_id, func.count()).where(
            col(Event.series_id).in_(series_ids), _public_event())
            .group_by(col(Event.series_id)))
        for series_id, count in rows:
            if series_id is not None:
                counts[series_id] = int(count)
    return counts


def series_public(db: Session, items: list[Series]) -> list[dict[str, Any]]:
    ids = [s.id for s in items if s.id is not None]
    counts = public_counts(db, ids)
    unit_ids = {s.unit_id for s in items}
    units = {u.id: u for u in db.exec(select(Unit).where(col(Unit.id).in_(unit_ids)))}
    out = []
    for series in items:
        assert series.id is not None
        unit = units[series.unit_id]
        out.append({
            "id": series.id, "title": series.title, "summary": series.summary,
            "unit_id": series.unit_id,
            "unit": {"id": unit.id, "code": unit.code, "name": unit.name,
                     "category": unit.category.value},
            "session_count": counts[series.id],
            "page_url": f"/series/{series.id}",
            "created_at": iso_local(series.created_at),
            "updated_at": iso_local(series.updated_at),
        })
    return out


# ---- a session's place in a series -----------------------------------------------------------

def check_placement(db: Session, actor: StaffUser, series_id: int, *, unit_id: int,
                    public: bool) -> Series:
    """May `actor` put a session of `unit_id` (public or not) into this series? 422 field
    series_id: an unknown series, or one of another unit (the office alone puts a published
    session into another unit's series)."""
    series = db.get(Series, series_id) if 0 < series_id <= MAX_ID else None
    if series is None:
        raise Invalid("unknown_series", f"series_id: no series with id {series_id}",
                      field="series_id")
    if series.unit_id == unit_id:
        return series
    if permissions.is_admin(actor) and public:
        return series
    why = "only a published session, and only by the district office" \
        if permissions.is_admin(actor) else "only the district office may do that"
    raise Invalid("series_of_another_unit", f"series_id: the series belongs to another unit "
                  f"({why})", field="series_id")


def placement_of(db: Session, actor: StaffUser, event: Event | None, series_id: int | None,
                 *, unit_id: int) -> int | None:
    """The series_id a create or edit asks for, checked when it changes (a session already in
    a series may keep it whoever edits it)."""
    if series_id is None or (event is not None and event.series_id == series_id):
        return series_id
    check_placement(db, actor, series_id, unit_id=unit_id,
                    public=event is not None and sessions.is_public(event))
    return series_id


# ---- writing ---------------------------------------------------------------------------------

def _check_unit(db: Session, unit_id: int) -> Unit:
    unit = db.get(Unit, unit_id) if 0 < unit_id <= MAX_ID else None
    if unit is None or unit.retired_at is not None:
        raise Invalid("unknown_unit", f"unit_id: no active unit with id {unit_id}",
                      field="unit_id")
    return unit


def create_series(db: Session, actor: StaffUser, data: SeriesCreate) -> Series:
    _check_unit(db, data.unit_id)
    permissions.require_unit_editor(actor, data.unit_id)  # another unit's: 403
    series = Series(title=data.title.strip(), unit_id=data.unit_id, summary=data.summary.strip(),
                    created_by=actor.id)
    if not series.title:
        raise Invalid("required", "title may not be empty", field="title")
    db.add(series)
    db.flush()
    audit.record(db, actor, "series.create", "series", series.id, unit_id=series.unit_id,
                 changes={"title": series.title})
    return series


def update_series(db: Session, actor: StaffUser, series_id: int, data: SeriesUpdate) -> Series:
    series = get_visible_series(db, series_id, actor)
    permissions.require_unit_editor(actor, series.unit_id)
    before = {"title": series.title, "summary": series.summary}
    if data.title is not None:
        if not data.title.strip():
            raise Invalid("required", "title may not be empty", field="title")
        series.title = data.title.strip()
    if data.summary is not None:
        series.summary = data.summary.strip()
    changes = audit.diff(before, {"title": series.title, "summary": series.summary})
    if changes:
        series.updated_at = utcnow()
        db.add(series)
        db.flush()
        audit.record(db, actor, "series.update", "series", series.id, unit_id=series.unit_id,
                     changes=changes)
    return series


def delete_series(db: Session, actor: StaffUser, series_id: int) -> None:
    """The office removes a series; its sessions stay, in no series (Event.series_id has no
    ON DELETE, so it is cleared first)."""
    permissions.require_admin(actor)
    series = get_series(db, series_id)
    members = list(db.exec(select(Event).where(Event.series_id == series_id)))
    for event in members:
        event.series_id = None
        db.add(event)
    db.flush()
    audit.record(db, actor, "series.delete", "series", series_id, unit_id=series.unit_id,
                 changes={"title": series.title, "sessions": sorted(e.id or 0 for e in members)})
    db.delete(series)
    db.flush()
