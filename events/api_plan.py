"""The broadcast plan over HTTP (issue 18): import, list, link an item to its session, the
production steps' files."""

from __future__ import annotations

from fastapi import APIRouter

from server.deps import JSONRoute

router = APIRouter(route_class=JSONRoute)
