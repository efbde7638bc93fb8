"""The live room: every online or hybrid session has one, at /events/{id}/live (the page
comes with the streaming half; until then it counts down and says what will be there)."""

from __future__ import annotations

from events.models import Event, EventMode

ROOM_MODES = frozenset({EventMode.online, EventMode.hybrid})


def has_room(event: Event) -> bool:
    return event.mode in ROOM_MODES


def room_path(event_id: int | None) -> str:
    return f"/events/{event_id}/live"
