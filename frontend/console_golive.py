"""The console's "go live" page of a session (/console/events/{id}/golive): what the staff who
run it need to put it on the air.

- From this browser: the camera and microphone (getUserMedia), recorded in 1 s WebM chunks
  (MediaRecorder) and sent over the ingest socket (streaming.ingest_socket), with what goes
  out (the local picture), the bitrate, chunks late or dropped: static/js/golive.js.
- The private preview of what the encoder made (GET /api/events/{id}/live's preview_url, hls.js)
  with the latency behind its live edge, the webcast's state (预览 / 直播中 / 信号中断), and
  the session's own buttons (go live: on air; end): static/js/golive_preview.js.
- From OBS or another encoder: the RTMP address and a stream key (POST /api/events/{id}/ingest,
  shown once; rotate, revoke): static/js/golive_key.js.

The page only renders; the rules (who may publish, what a key is, what going live does) are the
API's and the hub's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import select

from events.models import EventStatus
from events.timeutil import utcnow
from frontend import console_forms, labels
from frontend.console_auth import ConsoleRoute, ConsoleStaff
from frontend.console_live import _runner_event
from frontend.i18n import N_, gettext
from frontend.templating import render
from server.deps import SessionDep
from streaming.models import LiveStream

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)
# The session's statuses in which it can go out live, and the page is linked.
BROADCASTS = frozenset({EventStatus.published, EventStatus.live})

# The webcast's state (streaming.models LiveStream.state), as staff read it.
STATES = {"idle": N_("No signal yet"), "preview": N_("Preview (the public does not see it)"),
          "on_air": N_("On air"), "waiting": N_("Signal interrupted"), "ended": N_("Ended")}

# What the scripts say; the keys are theirs.
SCRIPT_TEXTS = {
    "cameraNeeded": N_("Allow the camera and microphone to go live from this browser."),
    "cameraFailed": N_("The camera or microphone could not be opened: %(why)s"),
    "noRecorder": N_("This browser cannot record video for a live stream: use a current "
                     "Chrome, Edge or Firefox, or OBS below."),
    "connecting": N_("Connecting to the server…"),
    "sending": N_("Sending: the server receives the picture."),
    "stopped": N_("Sending stopped."),
    "dropped": N_("The connection dropped: reconnecting…"),
    "refused": N_("The server refused the stream: %(why)s"),
    "closed4401": N_("You were signed out: sign in again."),
    "closed4403": N_("You may not broadcast this session."),
    "closed4404": N_("This session no longer exists."),
    "closed1009": N_("A piece of the stream was too large for the server."),
    "kbps": N_("%(n)s kbit/s"),
    "megabytes": N_("%(n)s MB"),
    "seconds": N_("%(n)s s"),
    "latency": N_("%(n)s s behind the live edge"),
    "noPreview": N_("The preview shows here once the server receives a signal."),
    "hubMissing": N_("The live service does not answer: ask the district office."),
    "statusFailed": N_("The session's status could not be changed: %(why)s"),
    "keyFailed": N_("The stream key could not be made: %(why)s"),
    "keyRevoked": N_("The stream key is revoked: encoders using it are refused."),
    "keyShown": N_("Copy the key now: it is shown only once."),
    "copied": N_("Copied"),
    "copyFailed": N_("Select the text and copy it by hand."),
    "rotate": N_("Make a new key (the old one stops working)"),
    "viewers": N_("%(peak)s at most at once, %(total)s in all"),
}


def golive_texts() -> dict[str, Any]:
    texts: dict[str, Any] = {key: gettext(text) for key, text in SCRIPT_TEXTS.items()}
    texts["states"] = {state: gettext(text) for state, text in STATES.items()}
    # The API's refusals, by code, as the console says them elsewhere.
    texts["errors"] = {code: gettext(text) for code, text in console_forms.CODE_MESSAGES.items()}
    texts["statuses"] = {status.value: gettext(labels.STATUSES[status.value])
                         for status in EventStatus if status.value in labels.STATUSES}
    return texts


@router.get("/events/{event_id}/golive")
def golive_page(event_id: int, request: Request, db: SessionDep,
                user: ConsoleStaff) -> Response:
    event = _runner_event(db, user, event_id)
    stream = db.exec(select(LiveStream).where(LiveStream.event_id == event_id)).first()
    key_valid = stream is not None and bool(stream.key_hash) \
        and stream.key_expires_at is not None and stream.key_expires_at > utcnow()
    state = stream.state if stream is not None else "idle"
    return render(request, "console/golive.html", event=event, stream=stream,
                  state=state, state_label=gettext(STATES.get(state, STATES["idle"])),
                  key_valid=key_valid, key_expires_at=stream.key_expires_at if key_valid
                  and stream is not None else None,
                  broadcasts=event.status in BROADCASTS,
                  texts=golive_texts())
