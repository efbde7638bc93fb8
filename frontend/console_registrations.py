"""Console pages of registration: check-in at the door, the registrations list, the outbox.

They render and call the domain (events.registration, events.sessions); the domain decides who
may do what. With JavaScript the check-in page talks to the JSON API; without it, these forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import Session, select

from events import notify, permissions, registration, seats, sessions
from events.errors import DomainError
from events.models import Event, Registration, RegistrationStatus, StaffUser
from events.timeutil import local
from frontend.console_auth import ConsoleRoute, ConsoleStaff, see_other
from frontend.i18n import N_, gettext
from frontend.templating import render
from server.deps import PostedForm, SessionDep, SettingsDep, SignerDep
from server.security import Signer

R = RegistrationStatus
RESULT_PURPOSE = "console-checkin-result"
PROMOTED_PURPOSE = "console-capacity-promoted"
# The redirect after a check-in carries its result this long: enough to read it, then gone.
RESULT_MAX_AGE_S = 600
PROMOTED_SHOWN = 30
OUTBOX_PAGE_SIZE = 50
MAX_CODE = 40
MAX_PAGE = 100_000
CAPACITY_PATTERN = re.compile(r"[0-9]{1,6}")

# A check-in's outcome: icon, tone (the colour) and the words; never colour alone.
OUTCOMES: dict[str, tuple[str, str, str]] = {
    "checked_in": ("✓", "ok", N_("Checked in successfully")),
    "walk_in": ("✓", "ok", N_("Walk-in registered and checked in")),
    "already_checked_in": ("⚠", "warn", N_("Already checked in (at %(time)s)")),
    "not_confirmed": ("✗", "refused", N_("On the waitlist, not confirmed")),
    "ticket_cancelled": ("✗", "refused", N_("Cancelled ticket")),
    "ticket_not_found": ("✗", "refused", N_("No such ticket code")),
    "not_open_for_checkin": ("✗", "refused", N_("This session is not open for check-in")),
    "checkin_not_open": ("✗", "refused", N_("Check-in has not opened yet")),
    "checkin_closed": ("✗", "refused", N_("Check-in closed when the session ended")),
}
# What the walk-in form says when the domain refuses (field, sentence).
WALK_IN_PROBLEMS = {
    "invalid_name": ("name", N_("Enter a name of 1 to 50 characters.")),
    "invalid_phone": ("phone", N_("Enter an 11-digit mainland mobile number, or leave it empty.")),
    "full": ("", N_("No seats remain: walk-ins can no longer be registered.")),
    "already_registered": ("phone", N_("This number already holds a ticket for this session: "
                                       "check it in by its code.")),
    "not_open_for_checkin": ("", N_("This session is not open for check-in")),
    "checkin_not_open": ("", N_("Check-in has not opened yet")),
    "checkin_closed": ("", N_("Check-in closed when the session ended")),
}
CAPACITY_PROBLEMS = {
    "capacity_below_confirmed": N_("%(confirmed)s people hold a seat: the capacity cannot be "
                                   "lower than that."),
    "not_editable": N_("A session in this state can no longer be edited."),
}
STATUSES = {"confirmed": N_("Confirmed"), "waitlisted": N_("On the waitlist"),
            "cancelled": N_("Cancelled")}
SOURCES = {"online": N_("Registered online"), "walk_in": N_("Walk-in at the door")}
TOPICS = {
    "registration_confirmed": N_("Registration confirmed"),
    "registration_waitlisted": N_("Joined the waitlist"),
    "promoted": N_("Moved up from the waitlist"),
    "reminder": N_("Reminder the day before"),
    "event_changed": N_("Session changed"),
    "event_cancelled": N_("Session cancelled"),
    "closeout_reminder": N_("Reminder to close out"),
    "plan_reminder": N_("Broadcast plan reminder"),
    "answer_reminder": N_("Reminder to answer questions"),
    "recovery_code": N_("Code to find registrations again"),
}
STATES = {"pending": N_("Waiting to be sent"), "sending": N_("Sending"), "sent": N_("Sent"),
          "failed": N_("Failed, will retry"), "void": N_("Void"),
          "unsent": N_("Not sent (no gateway configured)")}
# Why an unsent message did not go, by its channel.
UNSENT = {"sms": N_("Not sent (no SMS gateway configured)"),
          "email": N_("Not sent (no mail server configured)")}
CHANNELS = {"sms": N_("SMS"), "email": N_("Email"), "console": N_("In the console")}
# Words the check-in script shows; translated here so the catalogue holds them all.
SCRIPT_TEXTS = {
    "no_limit": N_("No limit"),
    "ticket_code": N_("Ticket code"),
    "network": N_("No connection: the result is unknown. Try again."),
    "signed_out": N_("You are signed out. Reload the page and sign in again."),
    "forbidden": N_("You may not check people in for this session."),
    "failed": N_("Something went wrong. Try again."),
    "scanning": N_("Point the camera at the QR code on the ticket."),
    "camera_unavailable": N_("This browser cannot open the camera here (it needs an HTTPS "
                             "address). Take a photo of the QR code or type the code."),
    "camera_denied": N_("Camera access was refused. Allow it in the browser's settings, or "
                        "type the code."),
    "camera_failed": N_("The camera could not be opened. Take a photo of the QR code or type "
                        "the code."),
    "no_qr": N_("No QR code found in the photo. Hold the ticket closer and try again, or type "
                "the code."),
    "scan_stopped": N_("Scanning stopped."),
}

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)


# ---- shared --------------------------------------------------------------------------------

@dataclass
class Counts:
    confirmed: int
    waitlisted: int
    checked_in: int
    capacity: int
    cancelled: int = 0

    @property
    def seats_left(self) -> int | None:
        return None if self.capacity == 0 else max(self.capacity - self.confirmed, 0)


def counts_of(db: Session, event: Event) -> Counts:
    assert event.id is not None
    confirmed, waitlisted = seats.counts(db, [event.id])[event.id]
    return Counts(confirmed, waitlisted, registration.checked_in_count(db, event.id),
                  event.capacity)


def open_for_checkin(event: Event) -> bool:
    return event.status.value in registration.CHECKIN_STATUSES


def door_of(request: Request, event: Event) -> registration.Door:
    """When the door is open, by the service's KAIFANG_CHECKIN_OPENS_BEFORE_S."""
    return registration.door(event, request.app.state.settings.checkin_opens_before)


def hhmm(moment: datetime | None) -> str:
    return local(moment).strftime("%H:%M") if moment else ""


def normal_code(raw: str) -> str:
    return registration.normal_code(raw)[:MAX_CODE]


# ---- check-in at the door ------------------------------------------------------------------

@dataclass
class Result:
    outcome: str
    icon: str
    tone: str
    text: str
    name: str = ""
    code: str = ""


def result_token(signer: Signer, event_id: int, outcome: str, registration_id: int | None,
                 code: str = "") -> str:
    # Ids only (and a code that matched nothing): no personal data in URLs or access logs.
    return signer.dumps(RESULT_PURPOSE, {"e": event_id, "o": outcome, "r": registration_id,
                                         "c": code})


def read_result(db: Session, signer: Signer, event_id: int, token: str | None) -> Result | None:
    payload = signer.loads(RESULT_PURPOSE, token or "", max_age_s=RESULT_MAX_AGE_S)
    if not isinstance(payload, dict) or payload.get("e") != event_id \
            or payload.get("o") not in OUTCOMES:
        return None
    outcome = str(payload["o"])
    icon, tone, text = OUTCOMES[outcome]
    found = db.get(Registration, payload["r"]) if isinstance(payload.get("r"), int) else None
    if found is not None and found.event_id != event_id:
        found = None
    if outcome == "already_checked_in":
        text = gettext(text) % {"time": hhmm(found.checked_in_at if found else None)}
    else:
        text = gettext(text)
    if found is None:
        return Result(outcome, icon, tone, text, code=str(payload.get("c") or "")[:MAX_CODE])
    return Result(outcome, icon, tone, text, registration.mask_name(found.name), found.code)


def script_texts() -> dict[str, Any]:
    texts: dict[str, Any] = {key: gettext(value) for key, value in SCRIPT_TEXTS.items()}
    texts["outcomes"] = {key: {"icon": icon, "tone": tone, "text": gettext(text)}
                         for key, (icon, tone, text) in OUTCOMES.items()}
    texts["walk_in"] = {key: {"field": field, "text": gettext(text)}
                        for key, (field, text) in WALK_IN_PROBLEMS.items()}
    return texts


def checkin_page(request: Request, db: Session, signer: Signer, event: Event, *,
                 status_code: int = 200, code_error: str = "", walk_in_error: str = "",
                 walk_in_field: str = "", typed: dict[str, str] | None = None) -> Response:
    assert event.id is not None
    counts = counts_of(db, event)
    result = read_result(db, signer, event.id, request.query_params.get("result"))
    door = door_of(request, event)
    lead_minutes = int(request.app.state.settings.checkin_opens_before.total_seconds() // 60)
    return render(request, "console/checkin.html", status_code=status_code, event=event,
                  counts=counts, result=result, open=door.state == "open", door=door,
                  lead_minutes=lead_minutes,
                  seats_remain=counts.seats_left is None or counts.seats_left > 0,
                  code_error=code_error, walk_in_error=walk_in_error,
                  walk_in_field=walk_in_field, typed=typed or {}, texts=script_texts())


@router.get("/events/{event_id}/checkin")
def checkin_form(event_id: int, request: Request, db: SessionDep, signer: SignerDep,
                 user: ConsoleStaff) -> Response:
    event = sessions.get_event(db, event_id)
    permissions.require_runner(db, user, event)
    return checkin_page(request, db, signer, event)


def _ticket_id(db: Session, event_id: int, code: str) -> int | None:
    return db.exec(select(Registration.id).where(Registration.event_id == event_id,
                                                 Registration.code == normal_code(code))).first()


@router.post("/events/{event_id}/checkin")
def check_in(event_id: int, request: Request, db: SessionDep, signer: SignerDep,
             user: ConsoleStaff, form: PostedForm, settings: SettingsDep) -> Response:
    event = sessions.get_event(db, event_id)
    permissions.require_runner(db, user, event)
    code = str(form.get("code", "")).strip()[:MAX_CODE]
    if not code:
        return checkin_page(request, db, signer, event, status_code=422,
                            code_error=gettext("Type the ticket code, or scan its QR code."))
    try:
        found = registration.check_in(db, user, event_id, code,
                                      opens_before=settings.checkin_opens_before)
    except DomainError as exc:
        db.rollback()
        if exc.code not in OUTCOMES:
            raise
        ticket = _ticket_id(db, event_id, code)
        token = result_token(signer, event_id, exc.code, ticket,
                             normal_code(code) if ticket is None else "")
    else:
        token = result_token(signer, event_id, "checked_in", found.id)
    # Redirect, so a refresh shows the result again instead of checking in again.
    return see_other(f"/console/events/{event_id}/checkin?result={token}#checkin-result")


@router.post("/events/{event_id}/walk-ins")
def walk_in(event_id: int, request: Request, db: SessionDep, signer: SignerDep,
            user: ConsoleStaff, form: PostedForm, settings: SettingsDep) -> Response:
    typed = {name: str(form.get(name, "")).strip()[:200] for name in ("name", "phone")}
    try:
        created = registration.walk_in(db, signer, user, event_id, typed["name"],
                                       typed["phone"], opens_before=settings.checkin_opens_before)
    except DomainError as exc:
        db.rollback()
        if exc.code not in WALK_IN_PROBLEMS:
            raise
        field, text = WALK_IN_PROBLEMS[exc.code]
        return checkin_page(request, db, signer, sessions.get_event(db, event_id),
                            status_code=exc.status, walk_in_error=gettext(text),
                            walk_in_field=field, typed=typed)
    token = result_token(signer, event_id, "walk_in", created.id)
    return see_other(f"/console/events/{event_id}/checkin?result={token}#checkin-result")


# ---- the registrations of a session --------------------------------------------------------

@dataclass
class Row:
    id: int | None
    name: str
    phone: str
    status: str
    position: int | None
    question: str
    source: str
    created_at: datetime
    checked_in_at: datetime | None
    promoted: bool
    erased: bool


def registration_rows(db: Session, event_id: int) -> list[Row]:
    """In events.seats' staff order; personal data masked."""
    return [Row(r.id, registration.mask_name(r.name),
                registration.mask_phone(r.phone) if r.phone else "", r.status.value,
                place, r.question, r.source, r.created_at, r.checked_in_at,
                r.promoted_at is not None, r.erased_at is not None)
            for r, place in seats.staff_order(db, event_id)]


@dataclass
class Promoted:
    """Who moved up when the capacity was raised (the first few, masked) and how many."""

    ids: list[int]
    names: list[str]
    total: int

    @property
    def more(self) -> int:
        return max(self.total - len(self.names), 0)


def promoted_of(db: Session, signer: Signer, event_id: int, token: str | None) -> Promoted | None:
    payload = signer.loads(PROMOTED_PURPOSE, token or "", max_age_s=RESULT_MAX_AGE_S)
    if not isinstance(payload, dict) or payload.get("e") != event_id:
        return None
    ids, names = [], []
    for registration_id in payload.get("ids", []):
        found = db.get(Registration, registration_id) if isinstance(registration_id, int) else None
        if found is not None and found.event_id == event_id:
            ids.append(registration_id)
            names.append(registration.mask_name(found.name) or "—")
    total = payload.get("n")
    return Promoted(ids, names, total if isinstance(total, int) else len(names))


def registrations_page(request: Request, db: Session, signer: Signer, user: StaffUser,
                       event: Event, *, status_code: int = 200, capacity_error: str = "",
                       typed_capacity: str = "") -> Response:
    assert event.id is not None
    rows = registration_rows(db, event.id)
    counts = counts_of(db, event)
    counts.cancelled = sum(1 for row in rows if row.status == "cancelled")
    owner = permissions.owns(user, event)
    return render(request, "console/registrations.html", status_code=status_code, event=event,
                  rows=rows, counts=counts, owner=owner,
                  can_change_capacity=owner and event.status in sessions.EDITABLE,
                  open=open_for_checkin(event), capacity_error=capacity_error,
                  typed_capacity=typed_capacity or str(event.capacity),
                  promoted=promoted_of(db, signer, event.id, request.query_params.get("promoted")),
                  saved=request.query_params.get("done") == "capacity",
                  status_labels=STATUSES, source_labels=SOURCES)


@router.get("/events/{event_id}/registrations")
def registrations(event_id: int, request: Request, db: SessionDep, signer: SignerDep,
                  user: ConsoleStaff) -> Response:
    event = sessions.get_event(db, event_id)
    permissions.require_runner(db, user, event)
    return registrations_page(request, db, signer, user, event)


@router.post("/events/{event_id}/capacity")
def change_capacity(event_id: int, request: Request, db: SessionDep, signer: SignerDep,
                    user: ConsoleStaff, form: PostedForm) -> Response:
    event = sessions.get_event(db, event_id)
    permissions.require_owner(user, event)
    raw = str(form.get("capacity", "")).strip()[:20]
    if not CAPACITY_PATTERN.fullmatch(raw) or int(raw) > sessions.MAX_CAPACITY:
        return registrations_page(request, db, signer, user, event, status_code=422,
                                  capacity_error=gettext("Enter a whole number of seats; 0 "
                                                         "means no limit."),
                                  typed_capacity=raw)
    try:
        moved = [row.id for row in sessions.change_capacity(db, user, event_id, int(raw))]
    except DomainError as exc:
        db.rollback()
        if exc.code not in CAPACITY_PROBLEMS:
            raise
        message = gettext(CAPACITY_PROBLEMS[exc.code]) % {
            "confirmed": exc.detail.get("confirmed", "")}
        return registrations_page(request, db, signer, user, sessions.get_event(db, event_id),
                                  status_code=exc.status, capacity_error=message,
                                  typed_capacity=raw)
    token = signer.dumps(PROMOTED_PURPOSE, {"e": event_id, "ids": moved[:PROMOTED_SHOWN],
                                            "n": len(moved)})
    return see_other(f"/console/events/{event_id}/registrations?done=capacity"
                     f"&promoted={token}")


# ---- the outbox ----------------------------------------------------------------------------

@dataclass
class OutboxRow:
    created_at: datetime
    channel: str
    recipient: str  # always the masked recipient
    topic: str
    subject: str
    body: str
    state: str
    due_at: datetime
    sent_at: datetime | None
    attempts: int
    event_id: int | None
    event_title: str

    @property
    def state_label(self) -> str:
        if self.state == "unsent":
            return UNSENT.get(self.channel, STATES["unsent"])
        return STATES.get(self.state, self.state)


def _choice(request: Request, name: str, allowed: dict[str, str]) -> str:
    value = request.query_params.get(name, "")
    return value if value in allowed else ""


def _number(raw: str, default: int | None) -> int | None:
    if len(raw) > 9 or not raw.isascii() or not raw.isdigit():
        return default
    return int(raw) if 0 < int(raw) < MAX_PAGE else default


def outbox_rows(db: Session, user: StaffUser, *, topic: str, state: str, event_id: int | None,
                page: int) -> tuple[list[OutboxRow], bool]:
    """Newest first. The district office reads every message; an editor their unit's only."""
    found = notify.outbox_messages(db, user, topic=topic, state=state, event_id=event_id,
                                   offset=(page - 1) * OUTBOX_PAGE_SIZE,
                                   limit=OUTBOX_PAGE_SIZE + 1)
    rows = [OutboxRow(m.created_at, m.channel, m.recipient_masked or "—", m.topic, m.subject,
                      m.body, m.state, m.due_at, m.sent_at, m.attempts, m.event_id,
                      e.title if e else "")
            for m, e in found[:OUTBOX_PAGE_SIZE]]
    return rows, len(found) > OUTBOX_PAGE_SIZE


@router.get("/outbox")
def outbox(request: Request, db: SessionDep, user: ConsoleStaff) -> Response:
    topic = _choice(request, "topic", TOPICS)
    state = _choice(request, "state", STATES)
    event_id = _number(request.query_params.get("event", ""), None)
    page = _number(request.query_params.get("page", ""), 1) or 1
    rows, has_next = outbox_rows(db, user, topic=topic, state=state, event_id=event_id,
                                 page=page)
    event = db.get(Event, event_id) if event_id else None
    if event is not None and not permissions.owns(user, event):
        event = None
    chosen = {"topic": topic, "state": state, "event": str(event_id) if event_id else ""}
    return render(request, "console/outbox.html", rows=rows, page=page, has_next=has_next,
                  chosen=chosen, event=event, topics=TOPICS, states=STATES, channels=CHANNELS,
                  query={key: value for key, value in chosen.items() if value})
