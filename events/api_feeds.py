"""HTTP for calendars and feeds: iCalendar per session, for the district and per unit; Atom."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from events import calendars, sessions, units
from events.errors import NotFound
from events.timeutil import utcnow
from server.deps import JSONRoute, SessionDep, public_url

router = APIRouter(route_class=JSONRoute)

ICS_TYPE = "text/calendar; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
# Calendar apps and the portal poll; a few minutes of caching spares the database.
CACHE_CONTROL = "public, max-age=300"
MAX_ID = 2**31 - 1


def _text(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI answer of a feed: text of its media type, not JSON."""
    return {200: {"description": description,
                  "content": {media_type: {"schema": {"type": "string"}}}}}


def _base_url(request: Request) -> str:
    return public_url(request)


def _ics(body: bytes, filename: str) -> Response:
    return Response(body, media_type=ICS_TYPE, headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": CACHE_CONTROL,
    })


@router.get("/events/{event_id}.ics", response_class=Response,
            responses=_text("text/calendar", "The session as an iCalendar file"))
def event_calendar(event_id: int, request: Request, db: SessionDep) -> Response:
    if not 0 < event_id <= MAX_ID:
        raise NotFound("event_not_found", f"no session with id {event_id}")
    event = sessions.get_visible_event(db, event_id, viewer=None)
    now = utcnow()
    entries = calendars.calendar_entries(db, [event], _base_url(request))
    body = calendars.build_calendar(entries, calendars.DISTRICT_CALENDAR_NAME, now)
    return _ics(body, f"kaifang-event-{event_id}.ics")


@router.get("/calendar.ics", response_class=Response,
            responses=_text("text/calendar", "The district's published sessions (iCalendar)"))
def district_calendar(request: Request, db: SessionDep) -> Response:
    now = utcnow()
    events = calendars.calendar_events(db, now)
    entries = calendars.calendar_entries(db, events, _base_url(request))
    body = calendars.build_calendar(entries, calendars.DISTRICT_CALENDAR_NAME, now)
    return _ics(body, "kaifang-calendar.ics")


@router.get("/units/{code}.ics", response_class=Response,
            responses=_text("text/calendar", "A unit's published sessions (iCalendar)"))
def unit_calendar(code: str, request: Request, db: SessionDep) -> Response:
    unit = units.get_unit_by_code(db, code)
    now = utcnow()
    events = calendars.calendar_events(db, now, unit_code=unit.code)
    entries = calendars.calendar_entries(db, events, _base_url(request))
    body = calendars.build_calendar(entries, calendars.unit_calendar_name(unit.name), now)
    return _ics(body, f"kaifang-{unit.code}.ics")


@router.get("/feed.atom", response_class=Response,
            responses=_text("application/atom+xml", "Upcoming sessions as an Atom feed"))
def upcoming_feed(request: Request, db: SessionDep) -> Response:
    now = utcnow()
    base = _base_url(request)
    entries = calendars.calendar_entries(db, calendars.upcoming_events(db, now), base)
    body = calendars.build_feed(entries, self_url=f"{base}/feed.atom", portal_url=f"{base}/",
                                now=now)
    return Response(body, media_type=ATOM_TYPE, headers={"Cache-Control": CACHE_CONTROL})
