"""The archive on the portal: recordings of sessions held, for the district and per unit, their
Atom feed, and the embeddable player page for the district portal.

Which sessions are in the archive is streaming.archive's rule; these handlers read and render.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from events import rooms, units
from events.errors import NotFound
from events.models import EventKind, EventStatus, Unit
from events.timeutil import utcnow
from frontend import theme_views
from frontend.i18n import N_
from frontend.portal import (
    _not_found,
    _page_number,
    kind_choices,
    session_cards,
    unit_directory,
    unit_groups,
    visible_event,
)
from frontend.portal_room import PLAYING, player_context
from frontend.templating import render
from server.deps import SessionDep, public_url
from streaming import archive, jobs
from streaming.archive_feed import FeedContext, build_archive_feed
from streaming.storage import LocalStorage

PAGE_SIZE = 24
FEED_LIMIT = 100
# As /feed.atom (events.api_feeds): the portal polls; a few minutes of caching spare the database.
ATOM_TYPE = "application/atom+xml; charset=utf-8"
CACHE_CONTROL = "public, max-age=300"
YEAR = re.compile(r"^(\d{4})$")

router = APIRouter(include_in_schema=False)


def _storage(request: Request) -> LocalStorage:
    storage: LocalStorage = request.app.state.media_storage
    return storage


def parse_year(text: str | None) -> int | None:
    found = YEAR.match(text or "")
    return int(found[1]) if found and 2000 <= int(found[1]) <= 2100 else None


@dataclass(frozen=True)
class ArchiveFilters:
    kind: str = ""
    unit: str = ""
    year: str = ""
    q: str = ""
    theme: str = ""  # a theme's code, checked against the list by the page

    @classmethod
    def from_request(cls, request: Request) -> ArchiveFilters:
        params = request.query_params
        kind = params.get("kind", "")
        year = params.get("year", "")
        return cls(kind=kind if kind in {k.value for k in EventKind} else "",
                   unit=params.get("unit", "").strip()[:40],
                   year=year if parse_year(year) else "",
                   q=" ".join(params.get("q", "").split())[:100],
                   theme=params.get("theme", "").strip()[:40])

    @property
    def active(self) -> bool:
        return any((self.kind, self.unit, self.year, self.q, self.theme))

    def query(self, unit: str | None, page: int) -> archive.ArchiveQuery:
        return archive.ArchiveQuery(
            kind=EventKind(self.kind) if self.kind else None, unit=unit or self.unit or None,
            year=parse_year(self.year), q=self.q or None, theme=self.theme or None,
            limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)

    def link(self, path: str, **changes: str | int) -> str:
        values: dict[str, str | int] = {"kind": self.kind, "unit": self.unit,
                                        "year": self.year, "q": self.q,
                                        "theme": self.theme, **changes}
        query = urlencode({key: value for key, value in values.items() if value})
        return f"{path}?{query}" if query else path


def archive_items(request: Request, db: Session, found: list[archive.ArchiveEntry]
                  ) -> list[dict[str, Any]]:
    """Session cards with what an archive entry shows beside them: poster, duration, links."""
    storage = _storage(request)
    cards = session_cards(db, [entry.event for entry in found], unit_directory(db))
    for entry, card in zip(found, cards, strict=True):
        recording = entry.recording
        card["poster_url"] = storage.url(recording.media_key, "poster.jpg")
        card["duration"] = archive.duration_text(recording.duration_s)
        card["duration_iso"] = archive.duration_iso(recording.duration_s)
        card["watch_url"] = rooms.room_path(card["id"])
    return cards


def _archive_page(request: Request, db: Session, unit: Unit | None) -> Response:
    filters = ArchiveFilters.from_request(request)
    theme_directory = theme_views.theme_directory(db)
    filters = replace(filters, theme=theme_views.known_theme(theme_directory, filters.theme))
    if unit is not None:
        filters = replace(filters, unit="")
    page = _page_number(request.query_params.get("page"))
    now = utcnow()
    code = unit.code if unit is not None else None
    found = archive.entries(db, filters.query(code, page), now)
    path = f"/units/{code}/archive" if code else "/archive"
    directory = unit_directory(db)
    years = archive.years(db, now, unit=code)
    if filters.year and int(filters.year) not in years:
        years = sorted({*years, int(filters.year)}, reverse=True)
    return render(
        request, "portal/archive.html", section="archive", filters=filters,
        items=archive_items(request, db, found[:PAGE_SIZE]), page=page, path=path,
        unit=directory[unit.id] if unit is not None and unit.id is not None else None,
        kinds=kind_choices(), unit_groups=unit_groups(directory), years=years,
        themes=theme_views.theme_choices(theme_directory, filters.theme),
        previous_link=filters.link(path, page=page - 1 if page > 2 else "") if page > 1 else None,
        next_link=filters.link(path, page=page + 1) if len(found) > PAGE_SIZE else None,
        first_page_link=filters.link(path),
    )


@router.get("/archive")
def archive_index(request: Request, db: SessionDep) -> Response:
    return _archive_page(request, db, None)


@router.get("/units/{code:unit_code}/archive")
def unit_archive(code: str, request: Request, db: SessionDep) -> Response:
    try:
        unit = units.get_unit_by_code(db, code)
    except NotFound:
        return _not_found(request, N_("There is no unit at this address."))
    return _archive_page(request, db, unit)


@router.get("/archive.atom")
def archive_feed(request: Request, db: SessionDep) -> Response:
    """The newest FEED_LIMIT entries of the archive; addresses from KAIFANG_PUBLIC_URL."""
    now = utcnow()
    base = public_url(request)
    found = archive.entries(db, archive.ArchiveQuery(limit=FEED_LIMIT), now)
    names = {u.id: u.name for u in units.list_units(db, include_retired=True)
             if u.id is not None}
    body = build_archive_feed(found, FeedContext(base, _storage(request), names, now),
                              self_url=f"{base}/archive.atom", portal_url=f"{base}/archive")
    return Response(body, media_type=ATOM_TYPE, headers={"Cache-Control": CACHE_CONTROL})


@router.get("/embed/{event_id:int}")
def embed(event_id: int, request: Request, db: SessionDep) -> Response:
    """The player alone, for the district portal's pages (framing rules: the edge's CSP)."""
    missing = N_("This session has no recording to show, or is not public.")
    event = visible_event(db, event_id)
    if event is None or event.status == EventStatus.cancelled \
            or jobs.published(db, event_id) is None:
        return _not_found(request, missing)
    card = session_cards(db, [event], unit_directory(db))[0]
    player = player_context(db, request, event)
    return render(request, "portal/embed.html", e=card, **player,
                  playing=player["playback"]["state"] in PLAYING,
                  page_url=f"{public_url(request)}/events/{event_id}")
