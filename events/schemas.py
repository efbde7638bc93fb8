"""What the API answers, as models (the XPublic pattern): the OpenAPI document shows them.

A handler builds its answer with `answer()` (validated where the handler runs, in the thread
pool for a plain `def`); server.deps.JSONRoute documents the model and encodes the instance on
the event loop. The models forbid unknown keys, so a view function that grows a key the model
lacks fails loudly in the tests instead of the document lying; the document itself leaves
objects open (`additionalProperties` unset): the contract lets the API add fields.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import SkipJsonSchema

from events.models import (
    CohostState,
    EventKind,
    EventMode,
    EventStatus,
    Moderation,
    RegistrationStatus,
    RevisionState,
    Role,
    UnitCategory,
)

M = TypeVar("M", bound=BaseModel)


def _open_object(schema: dict[str, Any]) -> None:
    schema.pop("additionalProperties", None)


class PublicModel(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_open_object)


class AnswerMismatch(Exception):
    """A view's answer does not fit its model: a bug of ours, so a 500 (a pydantic
    ValidationError would be taken for bad input and answered 422)."""


def answer(model: type[M], item: dict[str, Any]) -> M:
    """The view `item` as `model`: a key the model lacks, or a wrong type, raises here."""
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        # Where and what kind, never the values: they may be personal data.
        where = ", ".join(f"{'.'.join(map(str, e['loc']))} ({e['type']})" for e in exc.errors())
        raise AnswerMismatch(f"the answer does not fit {model.__name__}: {where}") from None


def answers(model: type[M], items: list[dict[str, Any]]) -> list[M]:
    return [answer(model, item) for item in items]


# A time as the API writes it: ISO 8601 with offset, Asia/Shanghai (events.timeutil.iso_local);
# kept as the text the view made, so the answer is byte for byte what it was.
IsoTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


def _absent_when_unset(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _extra(description: str) -> Any:
    return Field(default=None, description=description, json_schema_extra=_absent_when_unset)


# ---- errors ----------------------------------------------------------------------------------

class FieldProblem(BaseModel):
    field: str
    message: str
    # Our own checks name the problem's code; FastAPI's request validation does not.
    code: str | SkipJsonSchema[None] = _extra("the problem's error code")


class ErrorPublic(BaseModel):
    """Every 4xx and 5xx answer: `error` is the code clients act on, `message` a sentence for
    people. Some errors add fields (below); any other field may come."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_open_object)

    error: str = Field(examples=["event_not_found"])
    message: str
    field: str | SkipJsonSchema[None] = _extra("the input field at fault (422)")
    fields: list[FieldProblem] | SkipJsonSchema[None] = _extra(
        "every problem found (422 invalid, incomplete, ...)")
    missing: list[str] | SkipJsonSchema[None] = _extra(
        "what a session still lacks before review (422 incomplete)")
    current: str | SkipJsonSchema[None] = _extra("the status now (409 illegal_transition)")
    target: str | SkipJsonSchema[None] = _extra("the status asked for (409 illegal_transition)")
    starts_at: IsoTime | SkipJsonSchema[None] = _extra("the session's start (409 not_started)")
    confirmed: int | SkipJsonSchema[None] = _extra(
        "seats held (409 capacity_below_confirmed)")
    checked_in_count: int | SkipJsonSchema[None] = _extra(
        "people checked in (422 reason_required)")
    checked_in_at: IsoTime | SkipJsonSchema[None] = _extra(
        "when the ticket was used (409 already_checked_in)")
    name: str | SkipJsonSchema[None] = _extra(
        "the ticket holder, masked (409 already_checked_in)")
    opens_at: IsoTime | SkipJsonSchema[None] = _extra(
        "when check-in opens (409 checkin_not_open)")
    closes_at: IsoTime | SkipJsonSchema[None] = _extra(
        "when check-in closed (409 checkin_closed)")
    max_length: int | SkipJsonSchema[None] = _extra("the longest accepted (422 too_long)")
    offset: int | SkipJsonSchema[None] = _extra(
        "the bytes of a resumable upload the server holds (409 offset_mismatch, "
        "upload_incomplete)")
    size: int | SkipJsonSchema[None] = _extra("the upload's declared size (409 upload_incomplete)")
    max_bytes: int | SkipJsonSchema[None] = _extra("the largest upload accepted (413 too_large)")


# ---- units, staff, hosts, audit --------------------------------------------------------------

class UnitRef(PublicModel):
    id: int
    code: str
    name: str
    category: UnitCategory


class UnitPublic(PublicModel):
    id: int
    code: str
    name: str
    name_en: str
    category: UnitCategory
    retired: bool


class UserPublic(PublicModel):
    id: int
    username: str
    display_name: str
    role: Role
    unit_id: int | None
    active: bool


class StaffSessionPublic(PublicModel):
    """The signed-in staff member and the CSRF token every unsafe request carries."""

    user: UserPublic
    csrf_token: str


class HostPublic(PublicModel):
    id: int
    username: str
    display_name: str


class CohostPublic(PublicModel):
    unit_id: int
    state: CohostState
    responded_at: IsoTime | None


class AuditEntryPublic(PublicModel):
    id: int
    at: IsoTime
    username: str
    action: str
    entity: str
    entity_id: int | None
    unit_id: int | None
    changes: dict[str, Any]


# ---- sessions --------------------------------------------------------------------------------

class MaterialPublic(PublicModel):
    title: str
    url: str


class RevisionPublic(PublicModel):
    """A change to a published session waiting for (or refused by) the office's review."""

    id: int
    state: RevisionState
    fields: dict[str, Any]
    # Per field: [published value, proposed value].
    changes: dict[str, tuple[Any, Any]]
    submitted_at: IsoTime
    submitted_by: str | None
    decided_at: IsoTime | None
    reason: str


class EventPublic(PublicModel):
    """A session as the public sees it."""

    id: int
    kind: EventKind
    unit_id: int
    unit: UnitRef
    cohost_unit_ids: list[int]
    title: str
    summary: str
    starts_at: IsoTime
    ends_at: IsoTime
    mode: EventMode
    venue: str
    address: str
    capacity: int = Field(description="0: no seat limit")
    registration_opens_at: IsoTime | None
    registration_closes_at: IsoTime | None
    registration: Literal["open", "not_yet", "closed", "none"]
    moderation: Moderation
    premiere_at: IsoTime | None
    status: EventStatus
    public_notice: str
    postponed_from: IsoTime | None
    published_at: IsoTime | None
    revised_at: IsoTime | None
    registered_count: int
    waitlist_count: int
    seats_left: int | None = Field(description="null when the session has no seat limit")
    materials: list[MaterialPublic]
    closed: bool
    minutes: str
    attendee_count: int | None
    themes: list[str] = Field(description="the codes of its themes (GET /api/themes)")
    series_id: int | None = Field(description="the series it belongs to (GET /api/series/{id})")


class EventForStaff(EventPublic):
    """A session as its unit and the district office see it: review notes, the pending
    revision, co-hosts' answers, hosts."""

    review_note: str
    missing: list[str]
    created_by: int | None
    created_at: IsoTime
    updated_at: IsoTime
    pending_revision: RevisionPublic | None
    rejected_revision: RevisionPublic | None
    cohosts: list[CohostPublic]
    hosts: list[HostPublic]


def event_answer(item: dict[str, Any]) -> EventPublic | EventForStaff:
    """The staff view when the view function made one (the viewer's unit owns the session)."""
    if "review_note" in item:
        return answer(EventForStaff, item)
    return answer(EventPublic, item)


# ---- registrations and check-in --------------------------------------------------------------

class RegistrationPublic(PublicModel):
    """A ticket: the holder's name and number masked, the code in full."""

    id: int
    event_id: int
    status: RegistrationStatus
    code: str
    name: str
    phone: str
    waitlist_position: int | None
    created_at: IsoTime
    checked_in_at: IsoTime | None


class RegistrationCreated(RegistrationPublic):
    """A new registration: the ticket and the token of its manage link (keep it secret)."""

    manage_token: str


class RegistrationForStaff(RegistrationPublic):
    question: str
    source: str


class CheckinState(PublicModel):
    checked_in_count: int
    confirmed_count: int
    waitlist_count: int
    capacity: int


class CheckinPublic(PublicModel):
    """The ticket checked in (or the walk-in added) and the door's counts after it."""

    registration: RegistrationPublic
    checked_in_count: int
    confirmed_count: int
    waitlist_count: int
    capacity: int


# ---- compliance ------------------------------------------------------------------------------

class RequirementPublic(PublicModel):
    kind: EventKind
    deadline: date | None = Field(description="null for a whole-year requirement")
    required: int
    counted: int
    met: bool
    status: Literal["met", "on_track", "at_risk", "missed"]
    scheduled: int


class PlanAdherencePublic(PublicModel):
    """The unit's items of the year's broadcast plan (it leads them), by state."""

    total: int
    planned: int
    on_track: int
    at_risk: int
    done: int
    late: int
    missed: int


class UnitQuestionsPublic(PublicModel):
    """Citizens' questions to the sessions the unit led in the year."""

    received: int
    approved: int
    answered_live: int
    answered_written: int
    open: int = Field(description="approved and not answered yet")
    overdue: int = Field(description="open answer_days (KAIFANG_ANSWER_DAYS, 15) after the "
                                     "session ended")


class UnitCompliancePublic(PublicModel):
    unit: UnitRef
    status: Literal["met", "on_track", "at_risk", "missed", "not_required"]
    requirements: list[RequirementPublic]
    plan: PlanAdherencePublic
    questions: UnitQuestionsPublic


class ComplianceReportPublic(PublicModel):
    year: int
    units: list[UnitCompliancePublic]


class QuotaRulePublic(PublicModel):
    category: UnitCategory
    kind: EventKind
    required: int
    deadline: date | None


class QuotaRulesPublic(PublicModel):
    year: int
    carried_from: int | None = Field(
        description="the earlier year whose rules apply, when this year has none of its own")
    rules: list[QuotaRulePublic]
