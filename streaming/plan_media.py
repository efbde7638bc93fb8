"""The broadcast plan's view of a session's video (events.plan_media's provider)."""

from __future__ import annotations

from events import plan_media  # noqa: F401  (its provider registers below)
