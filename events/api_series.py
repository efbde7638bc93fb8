"""Themes and series over HTTP (issue 18): GET /api/themes (and the office's edits), POST
/api/series and the series' reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from events import series, sessions, themes
from events.models_plan import Series
from events.schemas import answer, answers
from events.series_schemas import SeriesDetail, SeriesPublic, ThemePublic
from server.deps import JSONRoute, OptionalStaffDep, SessionDep, StaffDep

router = APIRouter(prefix="/api", route_class=JSONRoute)


# ---- themes ----------------------------------------------------------------------------------

@router.get("/themes")
def list_themes(db: SessionDep, include_retired: bool = False) -> list[ThemePublic]:
    """The plan's themes in its order: those offered, or with include_retired=true every one."""
    return answers(ThemePublic, [themes.theme_public(t) for t in
                                 themes.list_themes(db, include_retired=include_retired)])


@router.post("/themes", status_code=201,
             responses={409: {"description": "`theme_exists`"}})
def create_theme(body: themes.ThemeCreate, db: SessionDep, user: StaffDep) -> ThemePublic:
    """The district office (admin) adds a theme."""
    return answer(ThemePublic, themes.theme_public(themes.create_theme(db, user, body)))


@router.patch("/themes/{code}")
def update_theme(code: str, body: themes.ThemeUpdate, db: SessionDep,
                 user: StaffDep) -> ThemePublic:
    """The district office (admin) renames a theme, retires it or brings it back."""
    return answer(ThemePublic, themes.theme_public(themes.update_theme(db, user, code, body)))


# ---- series ----------------------------------------------------------------------------------

@router.get("/series")
def list_series(db: SessionDep, viewer: OptionalStaffDep,
                unit_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None
                ) -> list[SeriesPublic]:
    """The public: series holding a public session; an editor also their unit's, the office
    every one. Newest first."""
    found = series.list_series(db, viewer, unit_id=unit_id)
    return answers(SeriesPublic, series.series_public(db, found))


@router.post("/series", status_code=201)
def create_series(body: series.SeriesCreate, db: SessionDep, user: StaffDep) -> SeriesPublic:
    """A unit's editor (for their own unit: 403 otherwise) or the office."""
    created = series.create_series(db, user, body)
    return answer(SeriesPublic, series.series_public(db, [created])[0])


def _detail(db: SessionDep, found: Series) -> SeriesDetail:
    assert found.id is not None
    view = series.series_public(db, [found])[0]
    view["events"] = sessions.events_public(db, series.public_sessions(db, found.id))
    return answer(SeriesDetail, view)


@router.get("/series/{series_id}")
def get_series(series_id: int, db: SessionDep, viewer: OptionalStaffDep) -> SeriesDetail:
    return _detail(db, series.get_visible_series(db, series_id, viewer))


@router.patch("/series/{series_id}")
def update_series(series_id: int, body: series.SeriesUpdate, db: SessionDep,
                  user: StaffDep) -> SeriesDetail:
    """The series' unit (its editors) or the office: title, summary."""
    return _detail(db, series.update_series(db, user, series_id, body))


@router.delete("/series/{series_id}", status_code=204)
def delete_series(series_id: int, db: SessionDep, user: StaffDep) -> Response:
    """The office (admin); its sessions stay, in no series."""
    series.delete_series(db, user, series_id)
    return Response(status_code=204)
