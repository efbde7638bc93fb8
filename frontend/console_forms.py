"""The session form: what a browser posts, turned into EventCreate / EventUpdate, and errors
turned into sentences next to the field that needs fixing. No business rule lives here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from events.errors import DomainError, Invalid
from events.models import Event, EventMaterial, Role, StaffUser
from events.sessions import EventCreate, EventUpdate, time_problems
from events.timeutil import as_utc, local
from frontend.i18n import N_, gettext

TEXT_FIELDS = ("title", "summary", "venue", "address")
CHOICE_FIELDS = ("kind", "mode", "moderation")
TIME_FIELDS = ("starts_at", "ends_at", "registration_opens_at", "registration_closes_at",
               "premiere_at")
REQUIRED = ("kind", "unit_id", "title", "starts_at", "ends_at")
MATERIAL_ROWS = 3  # empty rows offered below the session's materials

# Domain error codes, as the sentence shown beside the field.
CODE_MESSAGES = {
    "ends_before_start": N_("The end must be after the start."),
    "unknown_unit": N_("Choose an active unit."),
    "required": N_("This field is required."),
    "forbidden": N_("You may only act on sessions of your own unit."),
    "reason_required": N_("Give a reason: it is shown to the unit or the public."),
    "minutes_required": N_("The close-out needs minutes."),
    "not_editable": N_("A session in this state can no longer be edited."),
    "illegal_transition": N_("The session has moved on; this step is no longer possible."),
    "not_postponable": N_("A session in this state can no longer be postponed."),
    "not_started": N_("The session has not started yet: it goes live at most 30 minutes before "
                      "its start, and ends or is closed out only once it has started."),
    "postpone_required": N_("A published session moves to another time by postponing it, with "
                            "a reason the public sees."),
    "no_pending_revision": N_("No changes are waiting for review any more."),
    "changed_since_viewed": N_("The unit changed these changes after you read them: read them "
                               "again before approving."),
    "already_closed": N_("This session was closed out: its minutes are public, and only the "
                         "district office corrects them."),
    "cohost_declined": N_("The unit declined; invite it again by editing the session."),
    "not_a_host": N_("Choose an active host account."),
    "invalid_code": N_("A code is 2-40 lower-case letters, digits or '-', e.g. xc-new-office."),
    "unit_exists": N_("A unit with this code exists already."),
    "incomplete": N_("Needed before the session goes to review."),
    "unknown_theme": N_("Choose themes from the list."),
    "retired_theme": N_("This theme is retired: choose another."),
    "too_many_themes": N_("Choose at most 5 themes."),
    "unknown_series": N_("Choose a series from the list."),
    "series_of_another_unit": N_("Only a series of the session's own unit; the district office "
                                 "puts a published session into another unit's series."),
}
# A reason's readers, by the action that asked for it: the public, or only the unit.
REASON_MESSAGES = {
    "cancelled": N_("Give a reason: the public sees it."),
    "postpone": N_("Give a reason: the public sees it."),
    "draft": N_("Say what the unit must fix: only the unit and the district office read it."),
    "revision": N_("Say what the unit must fix: only the unit and the district office read it."),
    "close": N_("Say why the attendance differs from the check-in count: it is kept in the "
                "audit log."),
}
SEAT_CHOICE = N_("Choose: a number of seats, or no seat limit.")
SEAT_NUMBER = N_("Enter the number of seats (1 or more), or choose no seat limit.")
BAD_TIME = N_("Enter a date and time, e.g. 2027-03-10 09:30.")
MAX_COUNT = 1_000_000
REGISTRATION_ORDER = N_("Registration must close after it opens.")
REGISTRATION_BEFORE_END = N_("Registration must close before the session ends.")


# The fields as the form shows them, top to bottom: errors are listed in this order.
FORM_ORDER = ("kind", "unit_id", "title", "summary", "themes", "series_id", "starts_at",
              "ends_at", "mode", "venue", "address", "capacity", "registration_opens_at",
              "registration_closes_at", "moderation", "premiere_at", "cohost_unit_ids", "materials")


def in_form_order(errors: dict[str, str]) -> dict[str, str]:
    def place(name: str) -> tuple[int, int]:
        if name.startswith("material_") and name[9:].isdecimal():
            return len(FORM_ORDER), int(name[9:])
        return (FORM_ORDER.index(name), 0) if name in FORM_ORDER else (-1, 0)
    return dict(sorted(errors.items(), key=lambda item: place(item[0])))


class FormErrors(Exception):
    """Field name → translated sentence; raised when a form cannot be saved as typed."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(errors))
        self.errors = in_form_order(errors)


class FieldProblem(Invalid):
    """A value the console refuses before calling the domain; carries its own sentence."""

    def __init__(self, field: str, text: str) -> None:
        super().__init__("invalid", text, field=field)


def check_length(value: str, field: str, limit: int) -> None:
    if len(value) > limit:
        raise FieldProblem(field, gettext("At most %(n)s characters.") % {"n": limit})


def required_time(raw: str, field: str) -> datetime:
    if not raw.strip():
        raise FieldProblem(field, gettext("This field is required."))
    try:
        return parse_local_time(raw)
    except ValueError as exc:
        raise FieldProblem(field, gettext(BAD_TIME)) from exc


def optional_count(raw: str, field: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdecimal() or int(raw) > MAX_COUNT:
        raise FieldProblem(field, gettext("Enter a whole number, or leave it empty."))
    return int(raw)


def domain_error_message(exc: DomainError) -> str:
    if isinstance(exc, FieldProblem):
        return exc.message
    if exc.code == "registration_window":
        ends = "before the session ends" in exc.message
        return gettext(REGISTRATION_BEFORE_END if ends else REGISTRATION_ORDER)
    return gettext(CODE_MESSAGES.get(exc.code, N_("Please check this field.")))


def domain_errors(exc: DomainError) -> dict[str, str]:
    """Every problem the domain found (Invalid with `fields`), field → sentence."""
    listed = exc.detail.get("fields")
    if not isinstance(listed, list) or not listed:
        return {domain_error_field(exc): domain_error_message(exc)}
    out: dict[str, str] = {}
    for item in listed:
        problem = Invalid(str(item.get("code", "")), str(item.get("message", "")),
                          field=str(item.get("field") or ""))
        out.setdefault(domain_error_field(problem), domain_error_message(problem))
    return in_form_order(out)


def domain_error_field(exc: DomainError, default: str = "form") -> str:
    field = exc.detail.get("field")
    return field if isinstance(field, str) and field else default


def validation_messages(exc: ValidationError) -> dict[str, str]:
    """Pydantic's complaints, one sentence per field, in the reader's language."""
    out: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        field = loc[0] if loc else "form"
        if field == "materials":
            field = f"material_{loc[1]}" if len(loc) > 1 else "materials"
        kind = error.get("type", "")
        limit = (error.get("ctx") or {}).get("max_length") or (error.get("ctx") or {}).get("le")
        if kind in ("missing", "string_too_short"):
            text = gettext("This field is required.")
        elif kind == "string_too_long":
            text = gettext("At most %(n)s characters.") % {"n": limit}
        elif kind == "greater_than_equal":
            text = gettext("Enter 0 or more.")
        elif kind == "less_than_equal":
            text = gettext("At most %(n)s.") % {"n": limit}
        elif kind == "too_long":
            text = gettext("Too many entries.")
        elif kind == "enum":
            text = gettext("Choose one of the options.")
        elif kind == "value_error" and "http" in str(error.get("msg", "")):
            text = gettext("A link must start with http:// or https://.")
        else:
            text = gettext("Please check this field.")
        out.setdefault(field, text)
    return out


def parse_local_time(raw: str) -> datetime:
    """A datetime-local value ('2027-03-10T09:30'), read as Beijing time by the domain."""
    moment = datetime.fromisoformat(raw.strip().replace(" ", "T"))
    if moment.tzinfo is not None:
        raise ValueError("no offset expected")
    return moment


def typed_values(form: FormData) -> dict[str, Any]:
    """Everything the user typed, as strings, to put back into the form."""
    values: dict[str, Any] = {name: str(form.get(name, "")) for name in
                              (*TEXT_FIELDS, *CHOICE_FIELDS, *TIME_FIELDS, "unit_id", "capacity",
                               "seat_limit")}
    values["cohost_unit_ids"] = [str(v) for v in form.getlist("cohost_unit_ids")]
    values["themes"] = [str(v)[:40] for v in form.getlist("themes")][:50]
    values["series_id"] = str(form.get("series_id", ""))
    titles = [str(v) for v in form.getlist("material_title")]
    urls = [str(v) for v in form.getlist("material_url")]
    values["materials"] = [{"title": t, "url": u} for t, u in zip(titles, urls, strict=False)]
    return values


def _fields(values: dict[str, Any], actor: StaffUser
            ) -> tuple[dict[str, Any], dict[str, str], list[int]]:
    """Typed strings to domain values; also the form row of each material kept."""
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in (*TEXT_FIELDS, *CHOICE_FIELDS):
        data[name] = values[name].strip() if name in TEXT_FIELDS else values[name]
    for name in CHOICE_FIELDS:
        if not data[name]:
            data[name] = None
    if data["moderation"] is None:  # hidden for in-person meetings: keep what is stored
        del data["moderation"]
    for name in TIME_FIELDS:
        raw = values[name].strip()
        if not raw:
            data[name] = None
            continue
        try:
            data[name] = parse_local_time(raw)
        except ValueError:
            errors[name] = gettext(BAD_TIME)
    _seats(values, data, errors)
    if actor.role == Role.editor:
        data["unit_id"] = actor.unit_id  # an editor acts for their own unit only
    elif values["unit_id"].isdecimal():
        data["unit_id"] = int(values["unit_id"])
    else:
        data["unit_id"] = None
    cohosts = [v for v in values["cohost_unit_ids"] if v.isdecimal()]
    data["cohost_unit_ids"] = [int(v) for v in cohosts]
    data["themes"] = list(values.get("themes", []))
    series_id = str(values.get("series_id", ""))
    data["series_id"] = int(series_id) if series_id.isdecimal() and len(series_id) < 10 else None
    materials, rows = [], []
    for position, row in enumerate(values["materials"]):
        title, url = row["title"].strip(), row["url"].strip()
        if not title and not url:
            continue
        if not title or not url:
            errors[f"material_{position}"] = gettext("Give both a title and a link.")
            continue
        materials.append({"title": title, "url": url})
        rows.append(position)
    data["materials"] = materials
    for name in REQUIRED:
        if data.get(name) in (None, "") and name not in errors:
            errors[name] = gettext("This field is required.")
    # The domain's rules on times, checked now too: every error in one round, not one a time.
    times = [data.get(name) for name in ("starts_at", "ends_at", "registration_opens_at",
                                         "registration_closes_at")]
    problems = time_problems(*(as_utc(t) if isinstance(t, datetime) else None for t in times))
    for problem in problems:
        errors.setdefault(domain_error_field(problem), domain_error_message(problem))
    return data, errors, rows


def _seats(values: dict[str, Any], data: dict[str, Any], errors: dict[str, str]) -> None:
    """No seat limit is a choice the form asks for, never a default (0 in the domain)."""
    choice, raw = values["seat_limit"], values["capacity"].strip()
    if choice == "none":
        data["capacity"] = 0
    elif choice == "limited" or raw:  # a number typed says seats are limited
        if raw.isdecimal() and (int(raw) > 0 or choice != "limited"):
            data["capacity"] = int(raw)
        else:
            errors["capacity"] = gettext(SEAT_NUMBER)
    else:
        errors["capacity"] = gettext(SEAT_CHOICE)


def _check(model: type[EventCreate] | type[EventUpdate], data: dict[str, Any],
           errors: dict[str, str], rows: list[int]) -> Any:
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        for field, text in validation_messages(exc).items():
            if field.startswith("material_") and field[9:].isdecimal():
                field = f"material_{rows[int(field[9:])]}"  # the row as the form shows it
            errors.setdefault(field, text)
        raise FormErrors(errors) from exc
    if errors:
        raise FormErrors(errors)
    return parsed


def event_create(form: FormData, actor: StaffUser) -> EventCreate:
    data, errors, rows = _fields(typed_values(form), actor)
    result: EventCreate = _check(EventCreate, data, errors, rows)
    return result


def event_update(form: FormData, actor: StaffUser) -> EventUpdate:
    data, errors, rows = _fields(typed_values(form), actor)
    if actor.role == Role.editor:
        data.pop("unit_id")  # fixed to their unit; the form does not offer it
    result: EventUpdate = _check(EventUpdate, data, errors, rows)
    return result


def local_input(value: datetime | None) -> str:
    """A stored UTC time as the value of a datetime-local input, in Beijing time."""
    return local(value).strftime("%Y-%m-%dT%H:%M") if value else ""


def event_values(event: Event, cohosts: list[int],
                 materials: list[EventMaterial], themes: list[str] | None = None
                 ) -> dict[str, Any]:
    """A stored session as the form shows it."""
    values: dict[str, Any] = {name: getattr(event, name) or "" for name in TEXT_FIELDS}
    values.update({name: getattr(event, name).value for name in CHOICE_FIELDS})
    values.update({name: local_input(getattr(event, name)) for name in TIME_FIELDS})
    values["unit_id"] = str(event.unit_id)
    values["capacity"] = str(event.capacity) if event.capacity else ""
    values["seat_limit"] = "limited" if event.capacity else "none"
    values["cohost_unit_ids"] = [str(unit_id) for unit_id in cohosts]
    values["materials"] = [{"title": m.title, "url": m.url} for m in materials]
    values["themes"] = list(themes or [])
    values["series_id"] = str(event.series_id or "")
    return values


def revision_values(fields: dict[str, Any]) -> dict[str, Any]:
    """The changes waiting for review, as the form shows them."""
    values: dict[str, Any] = {name: fields[name] or "" for name in (*TEXT_FIELDS, *CHOICE_FIELDS)
                              if name in fields}
    if "cohost_unit_ids" in fields:
        values["cohost_unit_ids"] = [str(unit_id) for unit_id in fields["cohost_unit_ids"]]
    if "materials" in fields:
        values["materials"] = [dict(item) for item in fields["materials"]]
    return values


def blank_values(actor: StaffUser) -> dict[str, Any]:
    values: dict[str, Any] = {name: "" for name in (*TEXT_FIELDS, *TIME_FIELDS)}
    values.update(kind="open_meeting", mode="in_person", moderation="pre", capacity="",
                  seat_limit="",
                  unit_id=str(actor.unit_id or ""), cohost_unit_ids=[], materials=[],
                  themes=[], series_id="")
    return values


def with_blank_rows(values: dict[str, Any]) -> dict[str, Any]:
    rows = list(values.get("materials", []))
    while rows and not (rows[-1]["title"] or rows[-1]["url"]):
        rows.pop()  # trailing blanks only: an error names its row by position
    rows += [{"title": "", "url": ""}] * MATERIAL_ROWS
    return {**values, "materials": rows}
