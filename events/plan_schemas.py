"""What the plan's API answers, as models (the OpenAPI document shows them), and the views
(events.plan.ItemView) turned into them."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from events.models import PlanFile
from events.plan import ItemView, StepView
from events.schemas import IsoTime, PublicModel, answer
from events.sessions import is_public
from events.timeutil import iso_local

PlanState = Literal["planned", "on_track", "at_risk", "done", "late", "missed"]
PlanStep = Literal["material", "script", "recording", "announced", "archived"]


class PlanUnitPublic(PublicModel):
    id: int
    code: str
    name: str


class PlanItemPublic(PublicModel):
    id: int
    topic: str
    unit: PlanUnitPublic
    month: int = Field(ge=1, le=12)
    theme: str | None = Field(description="the theme's code (GET /api/themes), or null")
    theme_name: str | None
    event_id: int | None = Field(description="the session that carries it out; the public "
                                             "sees it once that session is published")
    state: PlanState
    reason: str = Field(description="why it is at_risk, late or missed (docs/plan.md); "
                                    "empty otherwise")


class PlanPublic(PublicModel):
    year: int
    items: list[PlanItemPublic]


class PlanFilePublic(PublicModel):
    id: int
    step: Literal["material", "script"]
    filename: str
    size_bytes: int
    uploaded_at: IsoTime
    url: str = Field(description="the download (staff of the lead unit, the press office, "
                                 "admins)")


class PlanStepPublic(PublicModel):
    step: PlanStep
    owner: Literal["lead_unit", "press_office"]
    due: date | None = Field(description="the Beijing day it is due by; null without a "
                                         "session")
    done_at: IsoTime | None
    late: bool
    files: list[PlanFilePublic]


class PlanItemForStaff(PlanItemPublic):
    year: int
    event_title: str | None
    event_status: str | None
    steps: list[PlanStepPublic]
    may_read_files: bool = Field(description="whether the files are listed to this viewer")


class PlanImported(PublicModel):
    imported: int


class PlanLink(BaseModel):
    event_id: int | None = Field(ge=1, le=2**31 - 1,
                                 description="the broadcast session; null unlinks")


def file_public(row: PlanFile) -> dict[str, object]:
    return {"id": row.id, "step": row.step, "filename": row.filename,
            "size_bytes": row.size_bytes, "uploaded_at": iso_local(row.uploaded_at),
            "url": f"/api/plan/files/{row.id}"}


def item_public(view: ItemView, *, staff: bool) -> dict[str, object]:
    event = view.event
    shown = event is not None and (staff or is_public(event))
    return {"id": view.item.id, "topic": view.item.topic,
            "unit": {"id": view.unit.id, "code": view.unit.code, "name": view.unit.name},
            "month": view.item.month, "theme": view.item.theme_code,
            "theme_name": view.theme.name if view.theme else None,
            "event_id": view.item.event_id if shown else None,
            "state": view.state, "reason": view.reason}


def _step_public(step: StepView, files: bool) -> dict[str, object]:
    return {"step": step.step, "owner": step.owner, "due": step.due,
            "done_at": iso_local(step.done_at), "late": step.late,
            "files": [file_public(f) for f in step.files] if files else []}


def plan_public(year: int, views: list[ItemView], *, staff: bool) -> PlanPublic:
    return answer(PlanPublic, {"year": year,
                               "items": [item_public(v, staff=staff) for v in views]})


def item_for_staff(view: ItemView, *, files: bool) -> PlanItemForStaff:
    event = view.event
    return answer(PlanItemForStaff, {
        **item_public(view, staff=True), "year": view.item.year,
        "event_title": event.title if event else None,
        "event_status": event.status.value if event else None,
        "steps": [_step_public(s, files) for s in view.steps], "may_read_files": files})
