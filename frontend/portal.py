"""The public portal: upcoming sessions, the month calendar, session and unit pages.

Handlers read through events.sessions and events.units and render; the rules live there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from markupsafe import Markup
from sqlmodel import Session
from starlette.convertors import Convertor, register_url_convertor

from events import rooms, sessions, units
from events.errors import NotFound
from events.models import Event, EventKind, StaffUser, Unit, UnitCategory
from events.timeutil import LOCAL_TZ, local, utcnow
from frontend import labels, theme_views
from frontend.browser import remember_browser
from frontend.i18n import N_, current_locale, gettext
from frontend.portal_answers import answers_context
from frontend.templating import STATIC_DIR, WEEKDAYS_ZH, render
from server.caching import keep_private
from server.deps import OptionalStaffDep, SessionDep, public_url
from streaming import archive

PAGE_SIZE = 20
MAX_PAGE = 500
UNIT_UPCOMING_LIMIT = 50
UNIT_PAST_SHOWN = 30
MONTH_CHOICES = 12
MAX_ID = 2**31 - 1
MONTH = re.compile(r"^(\d{4})-(\d{2})$")
MAP_SEARCH = "https://uri.amap.com/search?keyword="

# One line a citizen reads under the kind badge of a session page.
KIND_EXPLANATIONS = {
    "open_meeting": N_("Citizens sit in on a real working meeting of the unit and see how a "
                       "decision is made."),
    "open_day": N_("The office opens its doors: visit, see how the work is done and talk with "
                   "the staff."),
    "public_report": N_("The unit reports on its work to the public and answers questions on "
                        "the spot."),
    "chief_dialogue": N_("Put your questions to the head of the unit: questions are collected "
                         "beforehand and the answers published afterwards."),
    "broadcast": N_("A programme recorded in advance and premiered at a set time, with live "
                    "comments; then kept in the archive."),
}
CATEGORY_HEADINGS = {
    "livelihood": N_("Livelihood departments"),
    "subdistrict": N_("Sub-districts"),
    "other": N_("Other departments"),
}
REGISTRATION_LABELS = {
    "open": N_("Registration open"),
    "not_yet": N_("Registration not open yet"),
    "closed": N_("Registration closed"),
    "none": N_("No registration needed"),
}
EVENT_STATUS_LD = {"cancelled": "EventCancelled"}
ATTENDANCE_LD = {
    "in_person": "OfflineEventAttendanceMode",
    "online": "OnlineEventAttendanceMode",
    "hybrid": "MixedEventAttendanceMode",
}
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

router = APIRouter(include_in_schema=False)


class UnitCodeConvertor(Convertor[str]):
    """A unit code has no dot, so /units/{code}.ics stays the calendar's route."""

    regex = "[a-z0-9][a-z0-9-]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("unit_code", UnitCodeConvertor())


# ---- what the pages are asked for -----------------------------------------------------------

def parse_month(text: str | None) -> date | None:
    """'2027-03' -> 1 March 2027; anything else -> None (a filter form is forgiving)."""
    found = MONTH.match(text or "")
    if not found:
        return None
    year, month = int(found[1]), int(found[2])
    if not (2000 <= year <= 2100 and 1 <= month <= 12):
        return None
    return date(year, month, 1)


def next_month(first: date) -> date:
    return (first + timedelta(days=32)).replace(day=1)


def previous_month(first: date) -> date:
    return (first - timedelta(days=1)).replace(day=1)


@dataclass(frozen=True)
class Filters:
    kind: str = ""
    unit: str = ""
    month: str = ""
    q: str = ""
    theme: str = ""  # a theme's code (checked against the list by the page: theme_views)

    @classmethod
    def from_request(cls, request: Request) -> Filters:
        params = request.query_params
        kind = params.get("kind", "")
        month = params.get("month", "")
        return cls(
            kind=kind if kind in {k.value for k in EventKind} else "",
            unit=params.get("unit", "").strip()[:40],
            month=month if parse_month(month) else "",
            q=" ".join(params.get("q", "").split())[:100],
            theme=params.get("theme", "").strip()[:40],
        )

    @property
    def active(self) -> bool:
        return any((self.kind, self.unit, self.month, self.q, self.theme))

    @property
    def event_kind(self) -> EventKind | None:
        return EventKind(self.kind) if self.kind else None

    def link(self, path: str, **changes: str | int) -> str:
        values: dict[str, str | int] = {"kind": self.kind, "unit": self.unit,
                                        "month": self.month, "q": self.q,
                                        "theme": self.theme, **changes}
        query = urlencode({key: value for key, value in values.items() if value})
        return f"{path}?{query}" if query else path


def _page_number(text: str | None) -> int:
    if text and text.isdecimal() and 1 <= int(text) <= MAX_PAGE:
        return int(text)
    return 1


# ---- what the pages show --------------------------------------------------------------------

@dataclass(frozen=True)
class UnitView:
    id: int
    code: str
    name: str
    lang: str | None  # set when the name is Chinese on an English page
    category: str
    retired: bool


def unit_view(unit: Unit) -> UnitView:
    assert unit.id is not None
    name, lang = unit.name, None
    if current_locale.get() == "en":
        name, lang = (unit.name_en, None) if unit.name_en else (unit.name, "zh-CN")
    return UnitView(id=unit.id, code=unit.code, name=name, lang=lang,
                    category=unit.category.value, retired=unit.retired_at is not None)


def unit_directory(db: Session) -> dict[int, UnitView]:
    return {view.id: view for view in map(unit_view, units.list_units(db, include_retired=True))}


def unit_groups(directory: dict[int, UnitView]) -> list[dict[str, Any]]:
    """Active units under their category: livelihood departments, sub-districts, other."""
    return [
        {"category": category.value, "heading": gettext(CATEGORY_HEADINGS[category.value]),
         "units": [u for u in directory.values()
                   if u.category == category.value and not u.retired]}
        for category in UnitCategory
    ]


def session_cards(db: Session, events: list[Event],
                  directory: dict[int, UnitView]) -> list[dict[str, Any]]:
    """The public shape of sessions, with their units named for this page's language."""
    cards = sessions.events_public(db, events)
    now = utcnow()
    for event, card in zip(events, cards, strict=True):
        card["over"] = sessions.is_over(event, now)
        card["room_url"] = rooms.room_path(event.id) if rooms.has_room(event) else None
        card["organiser"] = directory[card["unit_id"]]
        card["cohosts"] = [directory[i] for i in card["cohost_unit_ids"] if i in directory]
        card["same_day"] = card["starts_at"][:10] == card["ends_at"][:10]
        card["registration_label"] = gettext(REGISTRATION_LABELS[card["registration"]])
    theme_views.add_classification(db, cards)
    return cards


def month_title(first: date) -> str:
    if current_locale.get() == "zh_CN":
        return f"{first.year}年{first.month}月"
    return first.strftime("%B %Y")


def day_label(day: date) -> str:
    if current_locale.get() == "zh_CN":
        return f"{day.month}月{day.day}日 周{WEEKDAYS_ZH[day.weekday()]}"
    return f"{WEEKDAYS_EN[day.weekday()]} {day.day} {day:%b}"


def weekday_headers() -> list[str]:
    if current_locale.get() == "zh_CN":
        return [f"周{c}" for c in WEEKDAYS_ZH]
    return list(WEEKDAYS_EN)


def month_choices(today: date, selected: str) -> list[tuple[str, str]]:
    """This month and the next eleven (Beijing), plus a month asked for by a link."""
    first = today.replace(day=1)
    choices: list[tuple[str, str]] = []
    for _ in range(MONTH_CHOICES):
        choices.append((f"{first:%Y-%m}", month_title(first)))
        first = next_month(first)
    chosen = parse_month(selected)
    if chosen and selected not in dict(choices):
        choices.insert(0, (selected, month_title(chosen)))
    return choices


def kind_choices() -> list[tuple[str, str]]:
    return [(code, gettext(label)) for code, label in labels.KINDS.items()]


def map_link(card: dict[str, Any]) -> str | None:
    place = card["address"] or card["venue"]
    if card["mode"] == "online" or not place:
        return None
    return MAP_SEARCH + quote(place, safe="")


def _absolute(request: Request, path: str) -> str:
    return public_url(request) + path


def json_ld(request: Request, card: dict[str, Any]) -> Markup:
    """schema.org Event, escaped so no text can close the <script> it sits in."""
    url = _absolute(request, f"/events/{card['id']}")
    organiser = card["organiser"]
    status = EVENT_STATUS_LD.get(card["status"])
    if status is None:
        status = "EventRescheduled" if card["postponed_from"] else "EventScheduled"
    place = {"@type": "Place", "name": card["venue"] or card["address"] or organiser.name,
             "address": card["address"] or card["venue"] or organiser.name}
    virtual = {"@type": "VirtualLocation", "url": url}
    location: Any = {"in_person": place, "online": virtual, "hybrid": [place, virtual]}
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Event",
        "name": card["title"],
        "description": card["summary"],
        "startDate": card["starts_at"],
        "endDate": card["ends_at"],
        "eventStatus": f"https://schema.org/{status}",
        "eventAttendanceMode": f"https://schema.org/{ATTENDANCE_LD[card['mode']]}",
        "location": location[card["mode"]],
        "organizer": {"@type": "GovernmentOrganization", "name": organiser.name,
                      "url": _absolute(request, f"/units/{organiser.code}")},
        "url": url,
        "isAccessibleForFree": True,
    }
    if card["postponed_from"]:
        data["previousStartDate"] = card["postponed_from"]
    text = json.dumps(data, ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # escaped just above: no text can open or close a tag


def _not_found(request: Request, message: str) -> Response:
    # A page is for a browser whatever its Accept header says: always the HTML error page.
    renderer = request.app.state.html_error_renderer
    response: Response = renderer(request, 404, "not_found", gettext(message))
    return response


# ---- pages ----------------------------------------------------------------------------------

@router.get("/")
def upcoming(request: Request, db: SessionDep) -> Response:
    filters = Filters.from_request(request)
    theme_directory = theme_views.theme_directory(db)
    filters = replace(filters, theme=theme_views.known_theme(theme_directory, filters.theme))
    page = _page_number(request.query_params.get("page"))
    now = utcnow()
    start, end = now, None
    first = parse_month(filters.month)
    if first is not None:
        start = max(now, datetime.combine(first, time.min, tzinfo=LOCAL_TZ))
        end = next_month(first) - timedelta(days=1)
    query = sessions.EventQuery(kind=filters.event_kind, unit=filters.unit or None,
                                start=start, end=end, q=filters.q or None,
                                theme=filters.theme or None, limit=PAGE_SIZE + 1,
                                offset=(page - 1) * PAGE_SIZE)
    found = sessions.list_events(db, query, viewer=None)
    directory = unit_directory(db)
    cards = session_cards(db, found[:PAGE_SIZE], directory)
    return render(
        request, "portal/index.html", section="upcoming", filters=filters, cards=cards,
        page=page, kinds=kind_choices(), unit_groups=unit_groups(directory),
        themes=theme_views.theme_choices(theme_directory, filters.theme),
        months=month_choices(local(now).date(), filters.month),
        previous_link=filters.link("/", page=page - 1 if page > 2 else "") if page > 1 else None,
        next_link=filters.link("/", page=page + 1) if len(found) > PAGE_SIZE else None,
        first_page_link=filters.link("/"),
        calendar_link=filters.link("/calendar", q="", theme=""),
    )


@router.get("/calendar")
def calendar(request: Request, db: SessionDep) -> Response:
    filters = Filters.from_request(request)
    today = local(utcnow()).date()
    first = parse_month(filters.month) or today.replace(day=1)
    last = next_month(first) - timedelta(days=1)
    query = sessions.EventQuery(kind=filters.event_kind, unit=filters.unit or None,
                                start=first, end=last, limit=1000)
    directory = unit_directory(db)
    cards = session_cards(db, sessions.list_events(db, query, viewer=None), directory)
    by_day: dict[date, list[dict[str, Any]]] = {}
    for card in cards:
        # A session sits on the Beijing date it starts.
        by_day.setdefault(datetime.fromisoformat(card["starts_at"]).date(), []).append(card)
    days: list[dict[str, Any]] = [
        {"date": day, "number": day.day, "label": day_label(day), "today": day == today,
         "sessions": by_day.get(day, [])}
        for day in (first + timedelta(days=n) for n in range(last.day))
    ]
    here = Filters(kind=filters.kind, unit=filters.unit)
    return render(
        request, "portal/calendar.html", section="calendar", filters=here, days=days,
        month=f"{first:%Y-%m}", title=month_title(first), first_weekday=first.weekday() + 1,
        weekdays=weekday_headers(), count=sum(len(d["sessions"]) for d in days),
        kinds=kind_choices(), unit_groups=unit_groups(directory),
        previous_link=here.link("/calendar", month=f"{previous_month(first):%Y-%m}"),
        previous_title=month_title(previous_month(first)),
        next_link=here.link("/calendar", month=f"{next_month(first):%Y-%m}"),
        next_title=month_title(next_month(first)),
        this_month_link=here.link("/calendar") if first != today.replace(day=1) else None,
    )


def visible_event(db: Session, event_id: int, viewer: StaffUser | None = None) -> Event | None:
    """The session with this id if this viewer may see it (the public: published ones)."""
    if not 0 < event_id <= MAX_ID:
        return None
    try:
        return sessions.get_visible_event(db, event_id, viewer)
    except NotFound:
        return None


@router.get("/events/{event_id:int}")
def session_page(event_id: int, request: Request, db: SessionDep,
                 viewer: OptionalStaffDep) -> Response:
    # Signed-in staff may preview a session before it is public.
    event = visible_event(db, event_id, viewer)
    if event is None:
        return _not_found(request, N_("This session does not exist or is not public."))
    return render_session(request, db, event, preview=not sessions.is_public(event))


@router.get("/favicon.ico")
def favicon() -> Response:
    return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/x-icon",
                        headers={"Cache-Control": "public, max-age=86400"})


def render_session(request: Request, db: SessionDep, event: Event, *, status: int = 200,
                   preview: bool = False, **extra: Any) -> Response:
    """The session page; the registration form re-renders it with what was typed (extra)."""
    card = session_cards(db, [event], unit_directory(db))[0]
    # A session in the archive links to its recording (the watch page).
    recorded = archive.entry_of(db, event, utcnow()) is not None
    response = render(
        request, "portal/event.html", status_code=status, section="", e=card,
        watch_url=rooms.room_path(event.id) if recorded else None,
        explanation=gettext(KIND_EXPLANATIONS[card["kind"]]), map_url=map_link(card),
        json_ld=json_ld(request, card), preview=preview, answers=answers_context(db, event),
        **extra,
    )
    # The form carries a fresh nonce, bound to this browser when it posts (frontend.browser).
    keep_private(request.scope)
    remember_browser(request, response)
    return response


@router.get("/units")
def units_index(request: Request, db: SessionDep) -> Response:
    return render(request, "portal/units.html", section="units",
                  unit_groups=unit_groups(unit_directory(db)))


@router.get("/units/{code:unit_code}")
def unit_page(code: str, request: Request, db: SessionDep) -> Response:
    try:
        unit = units.get_unit_by_code(db, code)
    except NotFound:
        return _not_found(request, N_("There is no unit at this address."))
    now = utcnow()
    upcoming_events = sessions.list_events(
        db, sessions.EventQuery(unit=unit.code, start=now, limit=UNIT_UPCOMING_LIMIT), None)
    shown = {e.id for e in upcoming_events}
    past_events = [e for e in sessions.list_events(
        db, sessions.EventQuery(unit=unit.code, end=now, limit=1000), None) if e.id not in shown]
    past_events = past_events[::-1][:UNIT_PAST_SHOWN]
    directory = unit_directory(db)
    return render(
        request, "portal/unit.html", section="units", unit=directory[unit.id or 0],
        upcoming=session_cards(db, upcoming_events, directory),
        past=session_cards(db, past_events, directory),
        calendar_link=Filters(unit=unit.code).link("/calendar"),
        archive_link=f"/units/{unit.code}/archive" if archive.has_entries(db, unit.code, now)
        else None,
    )
