"""The room of a session, /events/{id}/live: the countdown before it, the premiere while it
runs, the recording after it (streaming.api's playback decides which). Online and hybrid
sessions have one from the start; any public session has one once its recording plays."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from events import rooms
from events.models import Event, EventKind
from events.timeutil import utcnow
from frontend.i18n import N_, gettext
from frontend.portal import _not_found, session_cards, unit_directory, visible_event
from frontend.templating import render
from server.deps import SessionDep
from streaming import jobs, tracks
from streaming.playback import playback_of
from streaming.storage import LocalStorage

router = APIRouter(include_in_schema=False)
PLAYING = frozenset({"premiere", "vod"})


def countdown_text(left: timedelta) -> str:
    """What the room says before its start when no script runs: days and hours, then minutes."""
    minutes = max(1, int(left.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return gettext("Starts in %(days)s d %(hours)s h") % {"days": days, "hours": hours}
    if hours:
        return gettext("Starts in %(hours)s h %(minutes)s min") % {"hours": hours,
                                                                    "minutes": minutes}
    return gettext("Starts in %(minutes)s min") % {"minutes": minutes}


def player_texts() -> dict[str, str]:
    return {"audio": gettext("Sound only")}


def player_context(db: SessionDep, request: Request, event: Event) -> dict[str, Any]:
    """What portal/_player.html needs: the playback answer and the recording's tracks."""
    assert event.id is not None
    storage: LocalStorage = request.app.state.media_storage
    recording = jobs.published(db, event.id)
    playback = playback_of(event, recording, storage, utcnow())
    found = tracks.of_recording(db, recording.id) if recording and recording.id else []
    return {"playback": playback, "player_texts": player_texts(),
            "tracks": [tracks.track_public(track) for track in found if track.kind != "chapters"],
            "chapters": next((tracks.chapter_list(track) for track in found
                              if track.kind == "chapters"), [])}


@router.get("/events/{event_id:int}/live")
def room_page(event_id: int, request: Request, db: SessionDep) -> Response:
    missing = N_("This session has no live room, or is not public.")
    event = visible_event(db, event_id)
    if event is None:
        return _not_found(request, missing)
    player = player_context(db, request, event)
    if not rooms.has_room(event) and player["playback"]["state"] not in PLAYING:
        return _not_found(request, missing)
    now = utcnow()
    card = session_cards(db, [event], unit_directory(db))[0]
    premiere = event.premiere_at if event.kind == EventKind.broadcast else None
    counting_to = premiere or event.starts_at
    upcoming = card["status"] == "published" and now < counting_to
    return render(request, "portal/room.html", section="", e=card, **player,
                  playing=player["playback"]["state"] in PLAYING,
                  counting_to=counting_to.isoformat(), premiere=premiere is not None,
                  countdown=countdown_text(counting_to - now) if upcoming else "",
                  server_now=now.isoformat(timespec="seconds"))
