"""Themes and series over HTTP (issue 18): GET /api/themes (and the office's edits), POST
/api/series and the series' reads."""

from __future__ import annotations

from fastapi import APIRouter

from server.deps import JSONRoute

router = APIRouter(route_class=JSONRoute)
