"""The questions still waiting for an answer, per unit, flagged in the console (issue 18)."""

from __future__ import annotations

from fastapi import APIRouter

from frontend.console_auth import ConsoleRoute

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)
