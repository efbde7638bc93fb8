"""JSON routes encode their answer on the event loop, never in the thread pool.

A response model makes FastAPI validate a sync endpoint's answer in the thread pool while the
request still holds its database connection; under a burst that deadlocks (see JSONRoute).
"""

from __future__ import annotations

from fastapi.routing import APIRoute


def test_no_json_route_has_a_response_model(app) -> None:
    modelled = [route.path for route in app.routes
                if isinstance(route, APIRoute) and route.response_model is not None]
    assert modelled == []
