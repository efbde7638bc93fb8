"""The staff console: sign-in, the unit's sessions, forms, the review queue, the audit log."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/console", include_in_schema=False)
