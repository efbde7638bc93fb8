"""Tables of what ties sessions together (issue 18): the plan's themes, themed series, the
year's broadcast plan (直播计划) with its production files.

Rules live in events.themes, events.series and events.plan; this module holds data only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from events.timeutil import utcnow
from server.db import UTCDateTime


class Theme(SQLModel, table=True):
    """A theme from the plan's list (重大建设项目, 教育, 空气质量, …): how citizens look for what
    concerns them. The office edits the list; a retired theme stays on old sessions and plans
    but is offered no more. Seeded by the migration from events/data/themes.json."""

    code: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=40)
    name_en: str = Field(default="", max_length=80)
    sort_order: int = Field(default=0)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class EventTheme(SQLModel, table=True):
    """One theme of one session (a session has any number; `themes: [code]` in the API)."""

    event_id: int = Field(foreign_key="event.id", primary_key=True, ondelete="CASCADE")
    theme_code: str = Field(foreign_key="theme.code", primary_key=True, max_length=40,
                            index=True)


class Series(SQLModel, table=True):
    """A themed series of sessions (开放日系列, a run of broadcasts) of one unit, with its own
    public page, calendar and Atom feed. Sessions join through Event.series_id."""

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_by: int | None = Field(default=None, foreign_key="staffuser.id",
                                   ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PlanItem(SQLModel, table=True):
    """One line of a year's broadcast plan (the district government's table of important
    meeting topics): a topic, its lead unit, the month it is planned for, its theme, and the
    broadcast session that carries it out (`event_id`, linked later). The production steps
    done by hand (the lead unit's material, the press office's script) are PlanFile rows; the
    others (recording, announcement, archive) are read from the linked session."""

    __table_args__ = (UniqueConstraint("year", "topic"),)

    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    topic: str = Field(max_length=200)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    month: int  # 1..12
    theme_code: str | None = Field(default=None, foreign_key="theme.code", max_length=40)
    event_id: int | None = Field(default=None, foreign_key="event.id", unique=True,
                                 ondelete="SET NULL")
    # The order of the imported file, kept for the table.
    position: int = Field(default=0)
    created_by: int | None = Field(default=None, foreign_key="staffuser.id",
                                   ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Reminders already sent for this item, as keys ("material:7,script:3"): each once.
    reminded: str = Field(default="", max_length=400)


class PlanFile(SQLModel, table=True):
    """A file of one production step of a plan item: the lead unit's written material
    (`material`) or the press office's script (`script`). Staff only: never served publicly.
    Stored under the data dir (`plan/<item id>/<key>`); `stored_key` names it there."""

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="planitem.id", index=True, ondelete="CASCADE")
    step: str = Field(max_length=10)  # material | script
    filename: str = Field(max_length=200)
    stored_key: str = Field(max_length=80, unique=True)
    content_type: str = Field(default="application/octet-stream", max_length=100)
    size_bytes: int = Field(default=0)
    uploaded_by: int | None = Field(default=None, foreign_key="staffuser.id",
                                    ondelete="SET NULL")
    uploaded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
