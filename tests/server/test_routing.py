"""JSON routes encode their answer on the event loop, never in the thread pool; endpoints that
use the database session run in the thread pool, never on the event loop.

A response model makes FastAPI validate a sync endpoint's answer in the thread pool while the
request still holds its database connection; under a burst that deadlocks (see JSONRoute).
"""

from __future__ import annotations

import inspect
import threading

from fastapi import APIRouter, Depends, FastAPI, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel, field_serializer

from server.deps import JSONRoute, StaffDep, get_db


def test_no_json_route_has_a_response_model(app) -> None:
    # app.routes holds included routers as one entry each; this walks the routes inside them.
    routes = [context.original_route for context in iter_route_contexts(app.routes)
              if isinstance(context.original_route, APIRoute)]
    assert "/api/events/{event_id}/registrations" in {route.path for route in routes}
    assert [route.path for route in routes if route.response_model is not None] == []


def _needs_database(dependant: Dependant) -> bool:
    return any(dependency.call is get_db or _needs_database(dependency)
               for dependency in dependant.dependencies)


def blocking_async_routes(app: FastAPI) -> list[str]:
    """`async def` endpoints that use the sync database session: their queries, lock waits and
    password checks would run on the event loop and stall every other request. (A JSONRoute
    wraps a plain `def` in an `async def` that runs it in the thread pool: the endpoint as
    written is what counts.)"""
    # app.routes holds included routers as one entry each; this walks the routes inside them.
    return [f"{sorted(context.methods or ())} {context.path} ({context.endpoint.__name__})"
            for context in iter_route_contexts(app.routes)
            if isinstance(context.original_route, APIRoute)
            and inspect.iscoroutinefunction(inspect.unwrap(context.endpoint))
            and _needs_database(context.dependant)]


def test_no_async_endpoint_uses_the_database_session(app) -> None:
    assert blocking_async_routes(app) == []


def test_the_guard_sees_an_included_async_endpoint_behind_a_dependency(app) -> None:
    """The session may come through another dependency (the signed-in staff member)."""

    async def blocking(user: StaffDep) -> dict[str, str]:
        return {}

    router = APIRouter()
    router.add_api_route("/blocking", blocking, methods=["POST"])
    app.include_router(router, prefix="/probe")
    assert blocking_async_routes(app) == ["['POST'] /probe/blocking (blocking)"]


def test_a_json_route_runs_a_def_in_the_thread_pool_and_encodes_its_answer_on_the_loop(app):
    """Once: no second trip to the thread pool after the endpoint (JSONRoute's docstring). The
    decorator's status and the headers the endpoint set still come with the answer."""
    seen: dict[str, int] = {}

    async def on_the_loop() -> None:
        seen["loop"] = threading.get_ident()

    class Answer(BaseModel):
        value: int

        @field_serializer("value")
        def _value(self, value: int) -> int:
            seen["encoded"] = threading.get_ident()
            return value

    router = APIRouter(route_class=JSONRoute)

    @router.post("/probe/answer", status_code=201, dependencies=[Depends(on_the_loop)])
    def probe(response: Response) -> Answer:
        seen["endpoint"] = threading.get_ident()
        response.headers["X-Probe"] = "seen"
        return Answer(value=7)

    app.include_router(router)
    with TestClient(app) as client:
        answered = client.post("/probe/answer")
    assert (answered.status_code, answered.json()) == (201, {"value": 7})
    assert answered.headers["x-probe"] == "seen"
    assert answered.headers["content-type"] == "application/json"
    assert seen["encoded"] == seen["loop"] != seen["endpoint"]
