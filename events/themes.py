"""The plan's themes (重大建设项目, 教育, 空气质量, …): how citizens look for what concerns them.

The district office keeps the list (add, rename, retire). A session carries up to MAX_THEMES
of them; a retired theme is offered no more, but stays on the sessions that have it (and a
session that has it may keep it when edited).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import ColumnElement
from sqlmodel import Session, col, func, select

from events import audit, permissions
from events.errors import Conflict, Invalid, NotFound
from events.models import Event, StaffUser
from events.models_plan import EventTheme, Theme
from events.timeutil import utcnow
from events.units import Text

CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
# A session is about a few matters, not all of them: more would make every filter match it.
MAX_THEMES = 5


def _code(value: str) -> str:
    if not CODE_PATTERN.match(value):
        raise ValueError("a theme code is 2-40 lower-case letters, digits or '-', "
                         "e.g. air-quality")
    return value


ThemeCode = Annotated[str, Field(min_length=2, max_length=40), AfterValidator(_code)]
# What a session's `themes` accepts as input: checked against the list by checked_codes().
# The length here only guards against huge bodies; the real cap is MAX_THEMES, after dedupe.
ThemeCodes = Annotated[list[Annotated[str, Field(max_length=40)]], Field(max_length=50)]


class ThemeCreate(BaseModel):
    code: ThemeCode
    name: Text = Field(min_length=1, max_length=40)
    name_en: Text = Field(default="", max_length=80)


class ThemeUpdate(BaseModel):
    name: Text | None = Field(default=None, min_length=1, max_length=40)
    name_en: Text | None = Field(default=None, max_length=80)
    retired: bool | None = None


# ---- reading ---------------------------------------------------------------------------------

def list_themes(db: Session, *, include_retired: bool = False) -> list[Theme]:
    """The themes in the plan's order; retired ones only when asked (the office's list)."""
    stmt = select(Theme).order_by(col(Theme.sort_order), col(Theme.code))
    if not include_retired:
        stmt = stmt.where(col(Theme.retired_at).is_(None))
    return list(db.exec(stmt))


def find_theme(db: Session, code: str) -> Theme | None:
    return db.get(Theme, code) if 0 < len(code) <= 40 else None


def get_theme(db: Session, code: str) -> Theme:
    theme = find_theme(db, code)
    if theme is None:
        raise NotFound("theme_not_found", f"no theme with code {code!r}")
    return theme


def require_filter(db: Session, code: str, *, field: str = "theme") -> str:
    """A theme asked for in a filter (?theme=): any known one, retired included (its old
    sessions are still found); an unknown code is 422 unknown_theme, not an empty list."""
    if find_theme(db, code) is None:
        raise Invalid("unknown_theme", f"{field}: no theme with code {code!r}", field=field)
    return code


def themes_of(db: Session, event_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each session's theme codes in the plan's order, for many sessions in one query."""
    out: dict[int, list[str]] = {event_id: [] for event_id in event_ids}
    if not out:
        return out
    rows = db.exec(select(EventTheme.event_id, EventTheme.theme_code)
                   .join(Theme, col(Theme.code) == EventTheme.theme_code)
                   .where(col(EventTheme.event_id).in_(list(out)))
                   .order_by(col(Theme.sort_order), col(Theme.code)))
    for event_id, code in rows:
        out[event_id].append(code)
    return out


def names(db: Session) -> dict[str, Theme]:
    """Every theme by code, retired ones too (an old session's chip still has a name)."""
    return {theme.code: theme for theme in db.exec(select(Theme))}


def of_theme(code: str) -> ColumnElement[bool]:
    """A WHERE clause: the session has this theme."""
    return col(Event.id).in_(select(EventTheme.event_id).where(EventTheme.theme_code == code))


# ---- a session's themes ----------------------------------------------------------------------

def checked_codes(db: Session, codes: Iterable[str], *, kept: Iterable[str] = ()) -> list[str]:
    """The codes a session asks for, duplicates dropped (first kept): each an active theme, or
    a retired one the session already has (`kept`); at most MAX_THEMES. 422 field themes."""
    wanted = list(dict.fromkeys(code.strip() for code in codes))
    if len(wanted) > MAX_THEMES:
        raise Invalid("too_many_themes", f"themes: at most {MAX_THEMES} themes, "
                      f"{len(wanted)} given", field="themes")
    known = {theme.code: theme for theme in db.exec(
        select(Theme).where(col(Theme.code).in_(wanted)))} if wanted else {}
    kept = set(kept)
    for code in wanted:
        theme = known.get(code)
        if theme is None:
            raise Invalid("unknown_theme", f"themes: no theme with code {code!r}",
                          field="themes")
        if theme.retired_at is not None and code not in kept:
            raise Invalid("retired_theme", f"themes: the theme {code!r} is retired",
                          field="themes")
    return wanted


def set_themes(db: Session, event: Event, codes: list[str]) -> None:
    """Replaces the session's themes with `codes` (already checked)."""
    assert event.id is not None
    current = {row.theme_code: row for row in db.exec(
        select(EventTheme).where(EventTheme.event_id == event.id))}
    for code, row in current.items():
        if code not in codes:
            db.delete(row)
    for code in codes:
        if code not in current:
            db.add(EventTheme(event_id=event.id, theme_code=code))
    db.flush()


# ---- the office's list -----------------------------------------------------------------------

def theme_public(theme: Theme) -> dict[str, object]:
    return {"code": theme.code, "name": theme.name, "name_en": theme.name_en,
            "retired": theme.retired_at is not None}


def create_theme(db: Session, actor: StaffUser, data: ThemeCreate) -> Theme:
    permissions.require_admin(actor)
    if db.get(Theme, data.code) is not None:
        raise Conflict("theme_exists", f"a theme with code {data.code!r} exists already",
                       field="code")
    last = db.exec(select(func.max(Theme.sort_order))).one()
    theme = Theme(code=data.code, name=data.name.strip(), name_en=data.name_en.strip(),
                  sort_order=int(last or 0) + 10)
    db.add(theme)
    db.flush()
    audit.record(db, actor, "theme.create", "theme", None,
                 changes={"code": theme.code, "name": theme.name, "name_en": theme.name_en})
    return theme


def update_theme(db: Session, actor: StaffUser, code: str, data: ThemeUpdate) -> Theme:
    """Renames, retires or brings back a theme; the code never changes (links keep working)."""
    permissions.require_admin(actor)
    theme = get_theme(db, code)
    before = {"name": theme.name, "name_en": theme.name_en,
              "retired": theme.retired_at is not None}
    if data.name is not None:
        name = data.name.strip()
        if not name:
            raise Invalid("required", "name may not be empty", field="name")
        theme.name = name
    if data.name_en is not None:
        theme.name_en = data.name_en.strip()
    if data.retired is not None and data.retired != (theme.retired_at is not None):
        theme.retired_at = utcnow() if data.retired else None
    db.add(theme)
    db.flush()
    after = {"name": theme.name, "name_en": theme.name_en,
             "retired": theme.retired_at is not None}
    changes = audit.diff(before, after)
    if changes:
        audit.record(db, actor, "theme.update", "theme", None,
                     changes={"code": theme.code, **changes})
    return theme
