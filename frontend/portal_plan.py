"""/plan: the year's broadcast plan for the public, with what has aired (issue 18).

Each item: its topic, lead unit, month and theme, and where it stands in the public's words
(aired, coming up with its premiere, in preparation, not aired as planned), linking to its
session's page once the session is public and to its recording once that is on the portal.
Nothing of the office's: no files, no reasons, no unpublished session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from events import plan, rooms, sessions
from events.timeutil import local, utcnow
from frontend import plan_views as views
from frontend.compliance_views import month_label, parse_year, year_choices
from frontend.templating import render
from server.deps import SessionDep, SettingsDep

router = APIRouter(include_in_schema=False)


@dataclass
class PublicItem:
    topic: str
    unit_name: str
    theme_name: str
    word: str  # aired | upcoming | preparing | not_aired
    word_label: str
    premiere_at: datetime | None
    event_url: str | None
    watch_url: str | None


def public_item(view: plan.ItemView, now: datetime) -> PublicItem:
    event = view.event
    shown = event is not None and sessions.is_public(event)
    word = views.public_word(view, now, shown)
    on_portal = shown and views.on_portal(view)
    return PublicItem(
        topic=view.item.topic, unit_name=view.unit.name,
        theme_name=view.theme.name if view.theme else "", word=word,
        word_label=views.public_label(word),
        premiere_at=views.premiere_of(view) if shown else None,
        event_url=f"/events/{event.id}" if shown and event is not None else None,
        watch_url=rooms.room_path(event.id) if on_portal and event and event.id else None)


@router.get("/plan")
def plan_page(request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    year = parse_year(request.query_params.get("year"))
    now = utcnow()
    months = [(month, month_label(month), [public_item(view, now) for view in items])
              for month, items in views.by_month(plan.items_of_year(db, year, settings, now))]
    total = sum(len(items) for _, _, items in months)
    aired = sum(1 for _, _, items in months for item in items if item.word == "aired")
    this_year = local(now).year
    return render(request, "portal/plan.html", section="plan", year=year,
                  years=[y for y in year_choices(year) if y <= this_year + 1],
                  months=[m for m in months if m[2]], total=total, aired=aired)
