"""The host's moderation console of a session's live room: the held queue, the approved
messages, a ban form (a ban or a 5 or 10 minute timeout, from any message, held or approved)
and the list of the bans that run, with the time left.

With JavaScript (static/js/moderation.js, moderation_bans.js) the queue is live and run from
the keyboard through the JSON API (streaming.api_live), and a ban is posted here by fetch and
answered in JSON, so the page changes in place; without it the page still shows the queue and
bans by form. The rules (who may decide, one decision per message, what a ban needs) are
streaming.room's and streaming.bans'.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from events import permissions, sessions
from events.errors import DomainError, NotFound
from events.models import Event, EventStatus
from frontend.console_auth import ConsoleRoute, ConsoleStaff, see_other
from frontend.console_questions import questions_panel
from frontend.i18n import N_, gettext
from frontend.templating import render
from server.deps import PostedForm, SessionDep
from streaming import bans, room, texts
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
    "ban": N_("Ban…"),
    "ban_for": N_("Ban %(author)s"),
    "ban_left": N_("%(n)s min left"),
    "ban_ever": N_("Until the session ends"),
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
# The domain's refusals of a ban (streaming.bans), as the form says them.
BAN_PROBLEMS = {
    "reason_required": N_("Say why the viewer is banned."),
    "message_not_found": N_("Choose a message of the viewer to ban."),
    "invalid_duration": N_("Choose a ban or a timeout of 5 or 10 minutes."),
    "viewer_not_found": N_("Choose a message of the viewer to ban."),
}
DURATIONS = [("", N_("Ban until the session ends")),
             *((str(m), N_("Time out for %(n)s minutes")) for m in bans.TIMEOUT_MINUTES)]


def _runner_event(db: Any, user: Any, event_id: int) -> Event:
    """The session, for those who run it: 404 for one they may not see, 403 for the rest."""
    event = sessions.get_visible_event(db, event_id, user)
    permissions.require_runner(db, user, event)
    return event


def live_page(request: Request, db: Any, event: Event, *, status_code: int = 200,
              ban_error: str = "", reason: str = "") -> Response:
    assert event.id is not None
    approved = room.backlog(db, event.id, 0, limit=APPROVED_SHOWN)
    held = room.held(db, event.id)
    done = DONE.get(request.query_params.get("done", ""))
    return render(request, "console/live.html", status_code=status_code, event=event,
                  held=held, approved=approved, max_text=texts.MAX_TEXT,
                  ban_choices=[m for m in [*held, *reversed(approved)] if m.viewer_id],
                  bans=ban_rows(db, event.id),
                  durations=[(value, gettext(text) % {"n": value}) for value, text in DURATIONS],
                  last_seq=approved[-1].seq if approved else 0,
                  shortcuts=[(keys, gettext(text)) for keys, text in SHORTCUTS],
                  done=gettext(done) if done else "", ban_error=ban_error, reason=reason,
                  rules=room.room_public(event, db.get(LiveRoom, event.id)),
                  slow_modes=[(seconds, gettext(text)) for seconds, text in SLOW_MODES],
                  texts={key: gettext(text) for key, text in SCRIPT_TEXTS.items()},
                  questions=questions_panel(db, event.id))


def ban_rows(db: Any, event_id: int) -> list[dict[str, Any]]:
    """The bans that run, each with the time left as the page says it."""
    rows = bans.listed(db, event_id)
    for row in rows:
        row["left"] = gettext(SCRIPT_TEXTS["ban_ever"]) if row["left_s"] is None \
            else gettext(SCRIPT_TEXTS["ban_left"]) % {"n": max(1, -(-row["left_s"] // 60))}
    return rows


@router.get("/events/{event_id}/live")
def moderation_page(event_id: int, request: Request, db: SessionDep,
                    user: ConsoleStaff) -> Response:
    return live_page(request, db, _runner_event(db, user, event_id))


@router.post("/events/{event_id}/live/bans")
def ban_viewer(event_id: int, request: Request, db: SessionDep, user: ConsoleStaff,
               form: PostedForm) -> Response:
    """Bans the author of a message in this room (the page shows messages, not viewers), or
    times them out. Asked by the page's script (Accept: application/json): the answer is
    JSON, the bans that run, and the page changes in place."""
    event = _runner_event(db, user, event_id)
    wants_json = "application/json" in request.headers.get("accept", "")
    reason = str(form.get("reason", ""))[:400]
    raw_id, raw_minutes = str(form.get("message_id", "")), str(form.get("minutes", ""))
    message = db.get(LiveMessage, int(raw_id)) \
        if raw_id.isascii() and raw_id.isdigit() and 0 < int(raw_id) < 2**31 else None
    minutes = int(raw_minutes) if raw_minutes.isascii() and raw_minutes.isdigit() \
        and len(raw_minutes) < 4 else None if not raw_minutes else 0
    try:
        if message is None or message.event_id != event_id or message.viewer_id is None:
            raise NotFound("message_not_found", "choose a message of the viewer")
        removed, frames = bans.ban(db, user, event_id, message.viewer_id, reason,
                                   minutes=minutes)
    except DomainError as exc:
        if exc.status not in (404, 422):
            raise
        problem = gettext(BAN_PROBLEMS.get(exc.code, BAN_PROBLEMS["message_not_found"]))
        if wants_json:
            return JSONResponse({"error": exc.code, "message": problem}, status_code=422)
        return live_page(request, db, event, status_code=422, reason=reason.strip()[:200],
                         ban_error=problem)
    broker: Broker = request.app.state.broker
    publish_after_commit(db, broker, event_id, frames)
    if wants_json:
        return JSONResponse({"viewer_id": message.viewer_id, "removed": removed,
                             "message": gettext(DONE["banned"]),
                             "bans": ban_rows(db, event_id)})
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
