"""/console/plan: the year's broadcast plan for the office and the lead units (issue 18)."""

from __future__ import annotations

from fastapi import APIRouter

from frontend.console_auth import ConsoleRoute

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)
