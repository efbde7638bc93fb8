"""The host's moderation console of a session's live room: the held queue, the approved
messages, and a ban form.

With JavaScript (static/js/moderation.js) the queue is live and run from the keyboard through
the JSON API (streaming.api_live); without it the page still shows the queue and bans by form.
The rules (who may decide, one decision per message) are streaming.room's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from events import permissions, sessions
from events.models import Event, EventStatus
from frontend.console_auth import ConsoleRoute, ConsoleStaff, see_other
from frontend.console_questions import questions_panel
from frontend.i18n import N_, gettext
from frontend.templating import render
from server.deps import PostedForm, SessionDep
from streaming import room
from streaming.broker import Broker, publish_after_commit
from streaming.models import LiveMessage, LiveRoom

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)
APPROVED_SHOWN = 100
# The page links the console while the room can run: before it opens and while it is live.
LINKED_STATUSES = frozenset({EventStatus.published, EventStatus.live})

# What the script says; the keys are its own.
SCRIPT_TEXTS = {
    "approve": N_("Approve"),
    "reject": N_("Reject"),
    "pin": N_("Pin"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "pinned": N_("Approved and pinned"),
    "batch_done": N_("Approved %(n)s messages"),
    "already_handled": N_("Another host has already handled this message"),
    "failed": N_("That did not work: %(why)s"),
    "offline": N_("The queue could not be loaded: retrying"),
    "empty": N_("No message is waiting."),
    "question": N_("Question"),
    "registered": N_("Registered for the session"),
    "selected": N_("Selected"),
    "select": N_("Select"),
    "banned": N_("The viewer is banned and their messages are gone"),
    "reply": N_("Reply"),
    "reply_label": N_("Official reply to %(author)s"),
    "send_reply": N_("Send the reply"),
    "cancel": N_("Cancel"),
    "replied": N_("Replied"),
    "official": N_("Official reply"),
    "unpin": N_("Unpin"),
    "remove": N_("Take down"),
    "pinned_only": N_("Pinned to the top"),
    "unpinned": N_("Unpinned"),
    "removed": N_("Removed"),
    "live": N_("Live: changes arrive at once"),
    "polling": N_("Refreshing every 2 s"),
    "saved": N_("The room's rules are saved"),
    "open": N_("Open: the room takes messages."),
    "closed": N_("Closed: the room takes no messages."),
    "not_yet": N_("The room opens when the session goes live."),
    "close": N_("Close the room"),
    "reopen": N_("Reopen the room"),
}
SHORTCUTS = [
    ("j / ↓", N_("Next message")),
    ("k / ↑", N_("Previous message")),
    ("a", N_("Approve")),
    ("r", N_("Reject")),
    ("p", N_("Approve and pin")),
    ("c", N_("Reply as the unit (官方回复); Enter sends, Esc cancels")),
    ("x", N_("Select for batch approval")),
    ("A", N_("Approve the selected messages")),
]
SLOW_MODES = [(0, N_("Off")), (5, N_("5 s between messages")), (10, N_("10 s between messages")),
              (30, N_("30 s between messages")), (60, N_("1 min between messages")),
              (300, N_("5 min between messages"))]
DONE = {"banned": N_("The viewer is banned and their messages are gone"),
        "room": N_("The room's rules are saved")}
BAN_PROBLEMS = {
    "reason_required": N_("Say why the viewer is banned."),
    "message_not_found": N_("Choose a message of the viewer to ban."),
}


def _runner_event(db: Any, user: Any, event_id: int) -> Event:
    """The session, for those who run it: 404 for one they may not see, 403 for the rest."""
    event = sessions.get_visible_event(db, event_id, user)
    permissions.require_runner(db, user, event)
    return event


def live_page(request: Request, db: Any, event: Event, *, status_code: int = 200,
              ban_error: str = "", reason: str = "") -> Response:
    assert event.id is not None
    approved = room.backlog(db, event.id, 0, limit=APPROVED_SHOWN)
    done = DONE.get(request.query_params.get("done", ""))
    return render(request, "console/live.html", status_code=status_code, event=event,
                  held=room.held(db, event.id), approved=approved,
                  last_seq=approved[-1].seq if approved else 0,
                  shortcuts=[(keys, gettext(text)) for keys, text in SHORTCUTS],
                  done=gettext(done) if done else "", ban_error=ban_error, reason=reason,
                  rules=room.room_public(event, db.get(LiveRoom, event.id)),
                  slow_modes=[(seconds, gettext(text)) for seconds, text in SLOW_MODES],
                  texts={key: gettext(text) for key, text in SCRIPT_TEXTS.items()},
                  questions=questions_panel(db, event.id))


@router.get("/events/{event_id}/live")
def moderation_page(event_id: int, request: Request, db: SessionDep,
                    user: ConsoleStaff) -> Response:
    return live_page(request, db, _runner_event(db, user, event_id))


@router.post("/events/{event_id}/live/bans")
def ban_viewer(event_id: int, request: Request, db: SessionDep, user: ConsoleStaff,
               form: PostedForm) -> Response:
    """Bans the author of a message in this room (the queue shows messages, not viewers)."""
    event = _runner_event(db, user, event_id)
    reason = str(form.get("reason", "")).strip()[:200]
    raw_id = str(form.get("message_id", ""))
    message = db.get(LiveMessage, int(raw_id)) \
        if raw_id.isascii() and raw_id.isdigit() and 0 < int(raw_id) < 2**31 else None
    if message is None or message.event_id != event_id or message.viewer_id is None:
        return live_page(request, db, event, status_code=422, reason=reason,
                         ban_error=gettext(BAN_PROBLEMS["message_not_found"]))
    if not reason:
        return live_page(request, db, event, status_code=422,
                         ban_error=gettext(BAN_PROBLEMS["reason_required"]))
    _removed, frames = room.ban(db, user, event_id, message.viewer_id, reason)
    broker: Broker = request.app.state.broker
    publish_after_commit(db, broker, event_id, frames)
    return see_other(f"/console/events/{event_id}/live?done=banned")


@router.post("/events/{event_id}/live/room")
def set_room_rules(event_id: int, request: Request, db: SessionDep, user: ConsoleStaff,
                   form: PostedForm) -> Response:
    """The room's rules without script: moderation, slow mode, close or reopen."""
    _runner_event(db, user, event_id)
    raw_slow = str(form.get("slow_mode_s", ""))
    slow = int(raw_slow) if raw_slow.isascii() and raw_slow.isdigit() and len(raw_slow) < 4 \
        else None
    moderation = str(form.get("moderation", "")) or None
    closed = {"1": True, "0": False}.get(str(form.get("closed", "")))
    _rules, frames = room.configure(db, user, event_id, closed=closed, slow_mode_s=slow,
                                    moderation=moderation)
    broker: Broker = request.app.state.broker
    publish_after_commit(db, broker, event_id, frames)
    return see_other(f"/console/events/{event_id}/live?done=room")
