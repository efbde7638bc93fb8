"""The console's ingest page: a session's stream key for OBS (or any RTMP encoder).

The key is on the page that issues it and nowhere after (the answer is not cached, and a
reload shows only that a key is set and until when): the rules are streaming.ingest's. Works
without JavaScript: forms post; the issue answers the page with the key, a revoke redirects.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from events.models import Event
from events.timeutil import iso_local
from frontend.console_auth import ConsoleRoute, ConsoleStaff, see_other
from frontend.i18n import N_, gettext
from frontend.templating import render
from server.config import Settings
from server.deps import SessionDep
from streaming import ingest

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)
DONE = {"revoked": N_("The stream key is revoked: no encoder can publish with it any more.")}


def ingest_page(request: Request, db: Any, event: Event, *, issued: str = "") -> Response:
    settings: Settings = request.app.state.settings
    stream = ingest.key_status(db, event)
    active = ingest.key_active(stream)
    done = DONE.get(request.query_params.get("done", "")) if not issued else None
    return render(request, "console/ingest.html", event=event,
                  rtmp_url=ingest.rtmp_url(settings), issued=issued,
                  active=active, closed=event.status in ingest.CLOSED,
                  expires_at=stream.key_expires_at if stream and active else None,
                  expires_iso=iso_local(stream.key_expires_at) if stream and active else "",
                  hours=settings.ingest_key_hours,
                  last_error=stream.last_error if stream else "",
                  done=gettext(done) if done else "")


@router.get("/events/{event_id}/ingest")
def ingest_state(event_id: int, request: Request, db: SessionDep,
                 user: ConsoleStaff) -> Response:
    return ingest_page(request, db, ingest.runnable_event(db, user, event_id))


@router.post("/events/{event_id}/ingest")
def issue_key(event_id: int, request: Request, db: SessionDep, user: ConsoleStaff) -> Response:
    """A new key (rotating any before it), shown on this answer only."""
    settings: Settings = request.app.state.settings
    event = ingest.runnable_event(db, user, event_id)
    _, key = ingest.issue_key(db, user, event, settings.ingest_key_hours)
    return ingest_page(request, db, event, issued=key)


@router.post("/events/{event_id}/ingest/revoke")
def revoke_key(event_id: int, db: SessionDep, user: ConsoleStaff) -> Response:
    event = ingest.runnable_event(db, user, event_id)
    ingest.revoke_key(db, user, event)
    return see_other(f"/console/events/{event_id}/ingest?done=revoked")
