"""The broadcast plan over HTTP (issue 18): import, list, link an item to its session, the
production steps' files. docs/plan.md says who may do what and every answer."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse
from python_multipart.multipart import parse_options_header
from sqlmodel import Session
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from events import permissions, plan, plan_edit, plan_files
from events.errors import DomainError, Invalid, NotFound
from events.models import StaffUser
from events.plan import PlanCsvInvalid
from events.plan_edit import PlanItemCreate
from events.plan_schemas import (
    PlanFilePublic,
    PlanImported,
    PlanItemForStaff,
    PlanLink,
    PlanPublic,
    file_public,
    item_for_staff,
    plan_public,
)
from events.schemas import answer
from events.timeutil import local, utcnow
from server.caching import keep_private
from server.config import Settings
from server.deps import (
    JSONRoute,
    OptionalStaffDep,
    SessionDep,
    SettingsDep,
    StaffDep,
    error_responses,
    in_own_session,
    require_staff,
)

router = APIRouter(prefix="/api/plan", route_class=JSONRoute)
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
Year = Annotated[int, Query(ge=plan_edit.MIN_YEAR, le=plan_edit.MAX_YEAR)]
# Excel and WPS send a CSV under any of these names.
CSV_TYPES = frozenset({"text/csv", "text/plain", "application/csv", "application/vnd.ms-excel",
                       "text/comma-separated-values"})
# The multipart envelope around a step's file: its boundaries and part headers.
ENVELOPE = 64 * 1024


async def raw_body(request: Request) -> bytes:
    return await request.body()


@router.post("/import", responses={
    422: {"description": "`invalid_csv`: `lines` lists every bad line as `{line, field, "
                         "message}` (line 0: the whole file; 1: the header); nothing was "
                         "imported. `invalid`: a year out of range"},
    413: {"description": "`too_large`: a file over 1 MB"}})
def import_plan(year: Year, request: Request, db: SessionDep, user: StaffDep,
                body: Annotated[bytes, Depends(raw_body)]) -> PlanImported:
    """The office adds a file's items to the year's plan (`text/csv`, header
    `topic,unit_code,month,theme`, UTF-8 or GB18030): all of them, or none."""
    permissions.require_admin(user)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if media_type not in CSV_TYPES:
            given = media_type[:60] or "no content type"
            raise PlanCsvInvalid([{"line": 0, "field": "file",
                                   "message": f"send the plan as text/csv, not {given}"}])
        imported = plan_edit.import_plan(db, user, year, body)
    except PlanCsvInvalid as exc:
        first = exc.lines[0]
        raise Invalid("invalid_csv", f"the plan file has {len(exc.lines)} problem(s), nothing "
                      f"was imported; line {first['line']}: {first['message']}",
                      lines=exc.lines) from None
    return answer(PlanImported, {"imported": imported})


@router.get("")
def get_plan(db: SessionDep, settings: SettingsDep, viewer: OptionalStaffDep,
             year: Year | None = None) -> PlanPublic:
    """The year's plan (this Beijing year unless `year`), by month: public."""
    year = year or local(utcnow()).year
    return plan_public(year, plan.items_of_year(db, year, settings), staff=viewer is not None)


def _staff_view(db: Session, user: StaffUser, item_id: int,
                settings: Settings) -> PlanItemForStaff:
    view = plan.item_view(db, item_id, settings)
    return item_for_staff(view, files=plan_files.may_read(db, user, view.item))


@router.post("/items", status_code=201,
             responses={409: {"description": "`duplicate_topic`"}})
def create_item(body: PlanItemCreate, db: SessionDep, user: StaffDep,
                settings: SettingsDep) -> PlanItemForStaff:
    """The office enters one item by hand."""
    item = plan_edit.create_item(db, user, body)
    assert item.id is not None
    return _staff_view(db, user, item.id, settings)


@router.get("/items/{item_id}")
def get_item(item_id: Id, db: SessionDep, user: StaffDep,
             settings: SettingsDep) -> PlanItemForStaff:
    """One item with its steps (staff); the files only to who may read them."""
    return _staff_view(db, user, item_id, settings)


@router.put("/items/{item_id}", responses={
    409: {"description": "`already_linked`, `event_cancelled`"}})
def link_item(item_id: Id, body: PlanLink, db: SessionDep, user: StaffDep,
              settings: SettingsDep) -> PlanItemForStaff:
    """Links the broadcast session that carries the item out (`event_id` null unlinks)."""
    plan_edit.link_event(db, user, item_id, body.event_id)
    return _staff_view(db, user, item_id, settings)


@router.delete("/items/{item_id}", status_code=204)
def delete_item(item_id: Id, db: SessionDep, user: StaffDep, settings: SettingsDep) -> Response:
    plan_edit.delete_item(db, user, item_id, settings)
    return Response(status_code=204)


# ---- the steps' files ------------------------------------------------------------------------

async def _bounded(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The body as it comes, refused (413) as soon as it passes `limit`: the parser spools the
    file to disk, the body is never held whole in memory."""
    length = request.headers.get("content-length", "")
    if length.isascii() and length.isdigit() and (len(length) > 18 or int(length) > limit):
        raise plan_files.FileTooLarge()
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise plan_files.FileTooLarge()
        yield chunk


async def _file_part(request: Request) -> tuple[str, bytes]:
    kind, _params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data":
        raise Invalid("file_required", "send the file as multipart/form-data with a `file` "
                      "part", field="file")
    stream = _bounded(request, plan_files.MAX_FILE_BYTES + ENVELOPE)
    try:
        form = await MultiPartParser(request.headers, stream, max_files=1,
                                     max_fields=10).parse()
    except MultiPartException as exc:
        raise DomainError("malformed_multipart", f"the multipart body is malformed: "
                          f"{str(exc)[:100]}") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid("file_required", "the form has no `file` part", field="file")
        return upload.filename or "", await upload.read()
    finally:
        await form.close()


@router.post("/items/{item_id}/files", status_code=201,
             responses=error_responses(401, 403, 413, 422))
async def upload_file(item_id: Id, step: Literal["material", "script"],
                      request: Request) -> PlanFilePublic:
    """A step's file (multipart `file`): the material by the lead unit, the script by the
    press office; at most 20 MiB of PDF, Word, Excel, PowerPoint, OpenDocument text or
    plain text."""
    settings: Settings = request.app.state.settings

    def caller(db: Session) -> StaffUser:
        return require_staff(request, db, request.app.state.signer, settings)

    def admit(db: Session) -> None:
        plan_files.require_upload(db, caller(db), plan_edit.get_item(db, item_id), step)

    await in_own_session(request, admit)
    filename, content = await _file_part(request)

    def keep(db: Session) -> dict[str, object]:
        user = caller(db)
        row = plan_files.store(db, user, plan_edit.get_item(db, item_id), step, filename,
                               content, settings)
        return file_public(row)

    return answer(PlanFilePublic, await in_own_session(request, keep))


@router.get("/files/{file_id}", response_class=FileResponse,
            responses={200: {"description": "the file, as an attachment",
                             "content": {"application/octet-stream": {
                                 "schema": {"type": "string", "format": "binary"}}}}})
def download_file(file_id: Id, request: Request, db: SessionDep, user: StaffDep,
                  settings: SettingsDep) -> FileResponse:
    """A step's file: the lead unit's staff, the press office's, admins (404 to others)."""
    keep_private(request.scope)
    row, _item = plan_files.readable(db, user, file_id)
    if not plan_files.path_of(settings, row).is_file():
        raise NotFound("not_found", f"the plan file {file_id} is missing from the store")
    return FileResponse(plan_files.path_of(settings, row), media_type=row.content_type,
                        filename=row.filename, content_disposition_type="attachment")


@router.delete("/files/{file_id}", status_code=204)
def delete_file(file_id: Id, db: SessionDep, user: StaffDep, settings: SettingsDep) -> Response:
    plan_files.delete(db, user, file_id, settings)
    return Response(status_code=204)
