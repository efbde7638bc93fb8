"""Units: the departments and sub-districts that hold sessions. Retired units keep history."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field
from sqlmodel import Session, col, select

from events import audit, permissions
from events.errors import Conflict, Invalid, NotFound
from events.models import StaffUser, Unit, UnitCategory
from events.timeutil import utcnow

CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
# A plausible address, not RFC 5322: one @, no spaces or list separators (it becomes the
# mail's To: header), and a domain of dotted labels.
EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
                           r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                           r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
MAX_EMAIL_LENGTH = 200
# Row ids are 32-bit in both databases: a larger number names no row (and must not reach SQL).
MAX_ID = 2**31 - 1


# C0 and C1 controls and DEL, and the two noncharacters XML 1.0 cannot carry either: they would
# break the Atom feed and go raw into calendars. Tab and newline are handled apart.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff]")
_LINE_BREAK = re.compile("\r\n?")
_SINGLE_LINE_SPACES = re.compile("[\t\n\r]")
# Half of a UTF-16 pair on its own (JSON's "\ud800"): no encoding can store or send it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def encodable(value: str) -> str:
    """Refuses what no encoding can carry (a password is checked, never cleaned)."""
    if _LONE_SURROGATE.search(value):
        raise ValueError("text may not contain a lone surrogate (half of a UTF-16 pair)")
    return value


def _storable(value: str, multiline: bool = False) -> str:
    """Every stored free text passes here: refuses NUL (PostgreSQL cannot store it) and lone
    surrogates, turns tabs and line breaks into spaces (or, multi-line, keeps tab and newline),
    and drops every other control character."""
    if "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    encodable(value)
    value = _LINE_BREAK.sub("\n", value) if multiline else _SINGLE_LINE_SPACES.sub(" ", value)
    return _CONTROLS.sub("", value)


def _storable_lines(value: str) -> str:
    return _storable(value, multiline=True)


def clean_text(value: str, field: str, *, multiline: bool = False) -> str:
    """The same gate for a domain function given a plain str (a console form): 422 invalid."""
    try:
        return _storable(value, multiline)
    except ValueError as exc:
        raise Invalid("invalid", f"{field}: {exc}", field=field) from exc


# Free text from a form or a JSON body, on one line (names, titles, places).
Text = Annotated[str, AfterValidator(_storable)]
# Free text that may run over lines (summaries, reasons, minutes, questions).
MultilineText = Annotated[str, AfterValidator(_storable_lines)]


class UnitCreate(BaseModel):
    code: str = Field(min_length=2, max_length=40)
    name: Text = Field(min_length=1, max_length=100)
    name_en: Text = Field(default="", max_length=120)
    category: UnitCategory


class UnitUpdate(BaseModel):
    name: Text | None = Field(default=None, min_length=1, max_length=100)
    name_en: Text | None = Field(default=None, max_length=120)
    category: UnitCategory | None = None
    retired: bool | None = None


def seed_rows() -> list[dict[str, Any]]:
    """The units of the work plan, from events/data/units.json (loaded by the migrations)."""
    text = resources.files("events").joinpath("data/units.json").read_text(encoding="utf-8")
    return list(json.loads(text)["units"])


def unit_public(unit: Unit) -> dict[str, Any]:
    return {
        "id": unit.id,
        "code": unit.code,
        "name": unit.name,
        "name_en": unit.name_en,
        "category": unit.category.value,
        "retired": unit.retired_at is not None,
    }


def list_units(db: Session, *, include_retired: bool = False) -> list[Unit]:
    query = select(Unit).order_by(col(Unit.sort_order), col(Unit.id))
    if not include_retired:
        query = query.where(col(Unit.retired_at).is_(None))
    return list(db.exec(query))


def get_unit(db: Session, unit_id: int) -> Unit:
    unit = db.get(Unit, unit_id) if 0 < unit_id <= MAX_ID else None
    if unit is None:
        raise NotFound("unit_not_found", f"no unit with id {unit_id}")
    return unit


def get_unit_by_code(db: Session, code: str) -> Unit:
    unit = db.exec(select(Unit).where(Unit.code == code)).first()
    if unit is None:
        raise NotFound("unit_not_found", f"no unit with code {code!r}")
    return unit


def create_unit(db: Session, actor: StaffUser, data: UnitCreate) -> Unit:
    if not CODE_PATTERN.match(data.code):
        raise Invalid("invalid_code", "a unit code is 2-40 lower-case letters, digits or '-'")
    if db.exec(select(Unit).where(Unit.code == data.code)).first():
        raise Conflict("unit_exists", f"a unit with code {data.code!r} exists")
    last = db.exec(select(Unit.sort_order).order_by(col(Unit.sort_order).desc())).first() or 0
    unit = Unit(**data.model_dump(), sort_order=last + 10)
    db.add(unit)
    db.flush()
    audit.record(db, actor, "unit.create", "unit", unit.id, changes=data.model_dump())
    return unit


def update_unit(db: Session, actor: StaffUser, unit_id: int, data: UnitUpdate) -> Unit:
    unit = get_unit(db, unit_id)
    before = {"name": unit.name, "name_en": unit.name_en, "category": unit.category,
              "retired": unit.retired_at is not None}
    fields = data.model_dump(exclude_unset=True, exclude_none=True)
    retired = fields.pop("retired", None)
    for key, value in fields.items():
        setattr(unit, key, value)
    if retired is True and unit.retired_at is None:
        unit.retired_at = utcnow()
    elif retired is False:
        unit.retired_at = None
    after = {"name": unit.name, "name_en": unit.name_en, "category": unit.category,
             "retired": unit.retired_at is not None}
    db.add(unit)
    db.flush()
    audit.record(db, actor, "unit.update", "unit", unit.id, changes=audit.diff(before, after))
    return unit


def check_contact_email(value: str) -> str:
    """The address as stored: trimmed; empty means none. Raises Invalid for anything else that
    does not look like an e-mail address."""
    address = value.strip()
    if len(address) > MAX_EMAIL_LENGTH:
        raise Invalid("too_long", f"contact_email: at most {MAX_EMAIL_LENGTH} characters, "
                      f"got {len(address)}", field="contact_email", max_length=MAX_EMAIL_LENGTH)
    if address and not EMAIL_PATTERN.fullmatch(address):
        raise Invalid("invalid_email", "contact_email: expected an address like "
                      "office@xicheng.gov.cn, or nothing", field="contact_email")
    return address


def set_contact_email(db: Session, actor: StaffUser, unit_id: int, value: str) -> Unit:
    """Sets (or, with an empty value, clears) where the unit's quota reminders are e-mailed.
    Admins only; every change is audited."""
    permissions.require_admin(actor)
    unit = get_unit(db, unit_id)
    address = check_contact_email(value)
    if address == unit.contact_email:
        return unit
    before = unit.contact_email
    unit.contact_email = address
    db.add(unit)
    db.flush()
    audit.record(db, actor, "unit.update", "unit", unit.id, unit_id=unit.id,
                 changes={"contact_email": [before, address]})
    return unit
