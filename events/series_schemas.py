"""What the themes' and series' API answers (events.api_series), as models for the OpenAPI
document; the view dicts come from events.themes.theme_public and events.series.series_public."""

from __future__ import annotations

from pydantic import Field

from events.schemas import EventPublic, IsoTime, PublicModel, UnitRef


class ThemePublic(PublicModel):
    code: str = Field(examples=["air-quality"])
    name: str = Field(examples=["空气质量"])
    name_en: str
    retired: bool = Field(description="offered no more; still shown on the sessions that have it")


class SeriesPublic(PublicModel):
    id: int
    title: str
    summary: str
    unit_id: int
    unit: UnitRef
    session_count: int = Field(description="its public sessions")
    page_url: str = Field(description="the public page (a path); .ics and .atom beside it")
    created_at: IsoTime
    updated_at: IsoTime


class SeriesDetail(SeriesPublic):
    """A series with its public sessions, by start (never a draft)."""

    events: list[EventPublic]
