"""The files of a plan item's production steps: the lead unit's written material and the press
office's script. Staff only, never served publicly.

Who: the material by the lead unit's editors or an admin; the script by the press office's
editors (a unit with press_office) or an admin. Reading (the list, a download): the lead unit's
staff, the press office's staff, admins; to anyone else a file does not exist (404). Deleting:
an editor of the unit of the staff member who uploaded it, or an admin.

A file: at most MAX_FILE_BYTES, of an allowed type by its extension and its first bytes (PDF,
Word/Excel/PowerPoint old and new, OpenDocument, plain text), its name cleaned (no folders,
no control characters, no characters Windows refuses). Stored under the data dir,
plan/<item id>/<random key>: the name given is never a path.
"""

from __future__ import annotations

import contextlib
import io
import re
import secrets
import zipfile
from pathlib import Path

from sqlalchemy import func
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from events import audit, permissions
from events.errors import DomainError, Forbidden, Invalid, NotFound
from events.locking import busy, is_lock_timeout, write_lock
from events.models import PlanFile, PlanItem, Role, StaffUser, Unit
from events.plan_import import INVISIBLE
from events.timeutil import utcnow
from server.config import Settings

MAX_FILE_BYTES = 20 * 1024 * 1024
# Files a step keeps at most: enough drafts for any broadcast, and a bound on the disk one
# staff member can fill (an old draft is deleted to make room).
MAX_STEP_FILES = 20
FILE_STEPS = ("material", "script")
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old Office formats (.doc, .xls, .ppt)
ZIP = b"PK\x03\x04"
# extension -> (content type, the container its bytes must be)
TYPES = {
    "pdf": ("application/pdf", "pdf"),
    "doc": ("application/msword", "ole"),
    "xls": ("application/vnd.ms-excel", "ole"),
    "ppt": ("application/vnd.ms-powerpoint", "ole"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "ooxml"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "ooxml"),
    "pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation",
             "ooxml"),
    "odt": ("application/vnd.oasis.opendocument.text", "odf"),
    "txt": ("text/plain; charset=utf-8", "text"),
}
# Control characters, what Windows refuses in a name, and the invisible characters (a
# right-to-left override shows "报告\u202excod.pdf" as "报告fdp.docx").
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f<>:"/\\|?*\ufffe\uffff' + INVISIBLE + "]")
MAX_NAME = 200


class FileTooLarge(DomainError):
    status = 413

    def __init__(self) -> None:
        super().__init__("too_large", f"a plan file is at most {MAX_FILE_BYTES // 2**20} MiB",
                         max_bytes=MAX_FILE_BYTES)


def clean_filename(raw: str, step: str, extension: str) -> str:
    """The name as shown and downloaded: its last path part, no unsafe characters."""
    name = re.split(r"[/\\]", raw or "")[-1]
    name = " ".join(_UNSAFE.sub("", name).split()).strip(". ")
    stem = name[: -(len(extension) + 1)] if name.lower().endswith("." + extension) else name
    stem = stem[: MAX_NAME - len(extension) - 1].strip(". ") or step
    return f"{stem}.{extension}"


def _extension(raw: str) -> str:
    name = re.split(r"[/\\]", raw or "")[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _is_text(data: bytes) -> bool:
    for encoding in ("utf-8", "gb18030"):
        try:
            return "\x00" not in data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return False


def _zip_holds(data: bytes, container: str) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return False
    return "[Content_Types].xml" in names if container == "ooxml" else "mimetype" in names


def check_type(filename: str, data: bytes) -> tuple[str, str]:
    """(extension, content type) of an allowed file; 422 unsupported_type otherwise."""
    extension = _extension(filename)
    if extension not in TYPES:
        raise Invalid("unsupported_type", f"file: expected one of {', '.join(TYPES)} (by the "
                      f"name's extension), not {extension[:10] or 'no extension'!r}",
                      field="file")
    content_type, container = TYPES[extension]
    fits = {"pdf": data.startswith(b"%PDF-"), "ole": data.startswith(OLE),
            "text": _is_text(data)}.get(container)
    if fits is None:
        fits = data.startswith(ZIP) and _zip_holds(data, container)
    if not fits:
        raise Invalid("unsupported_type", f"file: the content is not a {extension} file",
                      field="file")
    return extension, content_type


def is_press_office(db: Session, user: StaffUser) -> bool:
    unit = db.get(Unit, user.unit_id) if user.unit_id is not None else None
    return unit is not None and unit.press_office


def may_read(db: Session, user: StaffUser, item: PlanItem) -> bool:
    return permissions.is_admin(user) or user.unit_id == item.unit_id \
        or is_press_office(db, user)


def may_upload(db: Session, user: StaffUser, item: PlanItem, step: str) -> bool:
    if permissions.is_admin(user):
        return True
    if user.role != Role.editor:
        return False
    return user.unit_id == item.unit_id if step == "material" else is_press_office(db, user)


def require_upload(db: Session, user: StaffUser, item: PlanItem, step: str) -> None:
    if step not in FILE_STEPS:
        raise Invalid("invalid", f"step: expected material or script, not {step[:20]!r}",
                      field="step")
    if not may_upload(db, user, item, step):
        who = "the lead unit's editors" if step == "material" else "the press office's editors"
        raise Forbidden("forbidden", f"only {who} or the office may upload the {step}")


def path_of(settings: Settings, row: PlanFile) -> Path:
    return Path(settings.data_dir) / "plan" / str(row.item_id) / row.stored_key


def files_of(db: Session, item_id: int) -> list[PlanFile]:
    return list(db.exec(select(PlanFile).where(PlanFile.item_id == item_id)
                        .order_by(col(PlanFile.uploaded_at), col(PlanFile.id))))


def lock_item(db: Session, item_id: int) -> PlanItem:
    """The item, re-read under a lock until the transaction ends (404 when there is none). Its
    files are stored and the item deleted under it, so a file uploaded while the office deletes
    the item is not left on disk without its row. SQLite: the database's write lock;
    PostgreSQL: the row, FOR UPDATE. Busy (503) past the lock timeout."""
    if db.connection().dialect.name == "sqlite":
        write_lock(db)
        item = db.get(PlanItem, item_id, populate_existing=True)
    else:
        try:
            item = db.exec(select(PlanItem).where(PlanItem.id == item_id).with_for_update()
                           .execution_options(populate_existing=True)).first()
        except OperationalError as exc:
            if is_lock_timeout(exc):
                raise busy() from exc
            raise
    if item is None:
        raise NotFound("not_found", f"there is no plan item {item_id}")
    return item


def store(db: Session, user: StaffUser, item: PlanItem, step: str, filename: str, data: bytes,
          settings: Settings) -> PlanFile:
    """Keeps a step's file (403 for who may not, 413 too large, 422 empty or not allowed)."""
    require_upload(db, user, item, step)
    if len(data) > MAX_FILE_BYTES:
        raise FileTooLarge()
    if not data:
        raise Invalid("empty_file", "file: the file is empty", field="file")
    extension, content_type = check_type(filename, data)
    assert item.id is not None
    lock_item(db, item.id)  # deleted meanwhile: 404
    kept = db.exec(select(func.count()).select_from(PlanFile).where(
        PlanFile.item_id == item.id, PlanFile.step == step)).one()
    if kept >= MAX_STEP_FILES:
        raise Invalid("too_many_files", f"file: the {step} step keeps at most {MAX_STEP_FILES} "
                      "files; delete an old one first", field="file")
    row = PlanFile(item_id=item.id, step=step,
                   filename=clean_filename(filename, step, extension),
                   stored_key=secrets.token_urlsafe(24), content_type=content_type,
                   size_bytes=len(data), uploaded_by=user.id, uploaded_at=utcnow())
    db.add(row)
    db.flush()
    target = path_of(settings, row)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    audit.record(db, user, "plan.file_upload", "plan_item", item.id, unit_id=item.unit_id,
                 changes={"file_id": row.id, "step": step, "filename": row.filename,
                          "size_bytes": row.size_bytes})
    return row


def readable(db: Session, user: StaffUser, file_id: int) -> tuple[PlanFile, PlanItem]:
    """A file this staff member may read (404 otherwise, as if there were none)."""
    row = db.get(PlanFile, file_id)
    item = db.get(PlanItem, row.item_id) if row is not None else None
    if row is None or item is None or not may_read(db, user, item):
        raise NotFound("not_found", f"there is no plan file {file_id}")
    return row, item


def _uploader_unit(db: Session, row: PlanFile) -> int | None:
    uploader = db.get(StaffUser, row.uploaded_by) if row.uploaded_by is not None else None
    return uploader.unit_id if uploader is not None else None


def delete(db: Session, user: StaffUser, file_id: int, settings: Settings) -> None:
    row, item = readable(db, user, file_id)
    if not permissions.is_admin(user) and not (
            user.role == Role.editor and user.unit_id is not None
            and user.unit_id == _uploader_unit(db, row)):
        raise Forbidden("forbidden", "only the uploader's unit or the office may delete a file")
    audit.record(db, user, "plan.file_delete", "plan_item", item.id, unit_id=item.unit_id,
                 changes={"file_id": row.id, "step": row.step, "filename": row.filename})
    db.delete(row)
    db.flush()
    path_of(settings, row).unlink(missing_ok=True)


def delete_all(db: Session, item: PlanItem, settings: Settings) -> None:
    """Every file of an item (the item is being deleted)."""
    for row in files_of(db, item.id or 0):
        db.delete(row)
        path_of(settings, row).unlink(missing_ok=True)
    db.flush()
    with contextlib.suppress(OSError):  # absent, or not empty
        (Path(settings.data_dir) / "plan" / str(item.id)).rmdir()
