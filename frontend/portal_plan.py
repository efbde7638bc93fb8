"""/plan: the year's broadcast plan for the public, with what has aired (issue 18)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
