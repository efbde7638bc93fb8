"""/series/{id} (page, .ics, .atom) and the themes' pages and feeds (issue 18)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
