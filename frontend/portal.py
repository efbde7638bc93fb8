"""The public portal: upcoming sessions, the month calendar, session and unit pages."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
