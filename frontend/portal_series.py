"""/series/{id} (page, .ics, .atom) and the themes' pages and feeds (issue 18): what a citizen
follows. Only public sessions are listed anywhere here (events.series, events.sessions)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from events import calendars, rooms, series, sessions, themes
from events.errors import NotFound
from events.models import Event
from events.models_plan import Series, Theme
from events.timeutil import utcnow
from frontend import theme_views
from frontend.i18n import N_
from frontend.portal import _not_found, session_cards, unit_directory
from frontend.portal_archive import archive_items
from frontend.templating import render
from server.deps import OptionalStaffDep, SessionDep, public_url
from streaming import archive

router = APIRouter(include_in_schema=False)

ICS_TYPE = "text/calendar; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
# As the district's calendar and feed (events.api_feeds): apps poll them.
CACHE_CONTROL = "public, max-age=300"
PAST_SHOWN = 30
THEME_UPCOMING = 50
THEME_RECORDINGS = 6
MAX_ID = 2**31 - 1


def _split(db: Session, events: list[Event], now: datetime
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Cards of the sessions to come (soonest first) and of those over (latest first, with
    the recording's link when the session is in the archive)."""
    directory = unit_directory(db)
    coming = [e for e in events if not sessions.is_over(e, now)]
    over = [e for e in reversed(events) if sessions.is_over(e, now)][:PAST_SHOWN]
    past = session_cards(db, over, directory)
    for event, card in zip(over, past, strict=True):
        card["watch_url"] = rooms.room_path(event.id) \
            if archive.entry_of(db, event, now) is not None else None
    return session_cards(db, coming, directory), past


def _calendar(body: bytes, filename: str) -> Response:
    return Response(body, media_type=ICS_TYPE, headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": CACHE_CONTROL})


def _atom(body: bytes) -> Response:
    return Response(body, media_type=ATOM_TYPE, headers={"Cache-Control": CACHE_CONTROL})


# ---- series ----------------------------------------------------------------------------------

def _public_series(db: Session, series_id: int) -> Series:
    """The series if the public sees it (404 series_not_found otherwise)."""
    if not 0 < series_id <= MAX_ID:
        raise NotFound("series_not_found", f"no series with id {series_id}")
    return series.get_visible_series(db, series_id, None)


@router.get("/series/{series_id:int}")
def series_page(series_id: int, request: Request, db: SessionDep,
                viewer: OptionalStaffDep) -> Response:
    # Its unit and the office may look at a series before it is public (a preview).
    try:
        found = series.get_visible_series(db, series_id, viewer) \
            if 0 < series_id <= MAX_ID else None
    except NotFound:
        found = None
    if found is None or found.id is None:
        return _not_found(request, N_("This series does not exist or is not public yet."))
    now = utcnow()
    events = series.public_sessions(db, found.id)
    upcoming, past = _split(db, events, now)
    directory = theme_views.theme_directory(db)
    codes = themes.themes_of(db, [e.id for e in events if e.id is not None])
    seen = {code for event_codes in codes.values() for code in event_codes}
    return render(
        request, "portal/series.html", section="", series=found,
        unit=unit_directory(db)[found.unit_id], upcoming=upcoming, past=past,
        theme_chips=[view for code, view in directory.items() if code in seen],
        preview=not events)


@router.get("/series/{series_id:int}.ics", response_class=Response)
def series_calendar(series_id: int, request: Request, db: SessionDep) -> Response:
    found = _public_series(db, series_id)
    assert found.id is not None
    entries = calendars.calendar_entries(db, series.public_sessions(db, found.id),
                                         public_url(request))
    name = f"{found.title} · {unit_directory(db)[found.unit_id].name}"
    return _calendar(calendars.build_calendar(entries, name, utcnow()),
                     f"kaifang-series-{found.id}.ics")


@router.get("/series/{series_id:int}.atom", response_class=Response)
def series_feed(series_id: int, request: Request, db: SessionDep) -> Response:
    """Every public session of the series, the latest start first."""
    found = _public_series(db, series_id)
    assert found.id is not None
    base = public_url(request)
    events = series.public_sessions(db, found.id)[::-1][:calendars.FEED_LIMIT]
    entries = calendars.calendar_entries(db, events, base)
    body = calendars.build_feed(
        entries, self_url=f"{base}/series/{found.id}.atom", portal_url=f"{base}/series/{found.id}",
        now=utcnow(), feed_id=f"series/{found.id}", title=f"{found.title} · 西城区政务开放",
        subtitle=found.summary.strip() or unit_directory(db)[found.unit_id].name)
    return _atom(body)


# ---- themes ----------------------------------------------------------------------------------

def _theme(db: Session, code: str) -> Theme:
    found = themes.find_theme(db, code)
    if found is None:
        raise NotFound("theme_not_found", f"no theme with code {code!r}")
    return found


@router.get("/themes")
def themes_index(request: Request, db: SessionDep) -> Response:
    """Every theme offered, with how many sessions to come each has: where a citizen starts
    looking for what concerns them."""
    directory = theme_views.theme_directory(db)
    offered = theme_views.theme_choices(directory)
    counts = series.upcoming_by_theme(db, utcnow())
    return render(request, "portal/themes.html", section="",
                  themes=[(view, counts.get(view.code, 0)) for view in offered],
                  series_list=series.series_public(db, series.list_series(db, None)))


@router.get("/themes/{code:unit_code}")
def theme_page(code: str, request: Request, db: SessionDep) -> Response:
    theme = themes.find_theme(db, code)
    if theme is None:
        return _not_found(request, N_("There is no theme at this address."))
    now = utcnow()
    upcoming = sessions.list_events(db, sessions.EventQuery(
        theme=code, start=now, limit=THEME_UPCOMING), viewer=None)
    recorded = archive.entries(db, archive.ArchiveQuery(theme=code, limit=THEME_RECORDINGS + 1),
                               now)
    found_series = series.series_of_theme(db, code)
    return render(
        request, "portal/theme.html", section="", theme=theme_views.theme_view(theme),
        upcoming=session_cards(db, upcoming, unit_directory(db)),
        recordings=archive_items(request, db, recorded[:THEME_RECORDINGS]),
        more_recordings=len(recorded) > THEME_RECORDINGS,
        series_list=series.series_public(db, found_series))


@router.get("/themes/{code:unit_code}.ics", response_class=Response)
def theme_calendar(code: str, request: Request, db: SessionDep) -> Response:
    """The theme's public sessions from 90 days back on, as the district's calendar."""
    theme = _theme(db, code)
    now = utcnow()
    events = sessions.list_events(db, sessions.EventQuery(
        theme=code, start=now - calendars.CALENDAR_PAST, limit=calendars.CALENDAR_LIMIT), None)
    entries = calendars.calendar_entries(db, events, public_url(request))
    name = f"{theme.name} · {calendars.DISTRICT_CALENDAR_NAME}"
    return _calendar(calendars.build_calendar(entries, name, now), f"kaifang-theme-{code}.ics")


@router.get("/themes/{code:unit_code}.atom", response_class=Response)
def theme_feed(code: str, request: Request, db: SessionDep) -> Response:
    """The theme's upcoming public sessions (from a day ago on), as /feed.atom."""
    theme = _theme(db, code)
    now = utcnow()
    since = now - calendars.FEED_PAST
    events = [e for e in sessions.list_events(db, sessions.EventQuery(
        theme=code, start=since, limit=calendars.CALENDAR_LIMIT), None) if e.starts_at >= since]
    base = public_url(request)
    entries = calendars.calendar_entries(db, events[:calendars.FEED_LIMIT], base)
    body = calendars.build_feed(
        entries, self_url=f"{base}/themes/{code}.atom", portal_url=f"{base}/themes/{code}",
        now=now, feed_id=f"theme/{code}", title=f"{theme.name} · 西城区政务开放 · 近期活动",
        subtitle=f"与“{theme.name}”有关的会议开放、政府开放日、政府向公众报告、市民对话一把手与直播")
    return _atom(body)
