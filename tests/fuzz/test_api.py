"""Schemathesis against the app's own OpenAPI document, in-process, one test per operation:
each generated request is sent signed out (an operation that needs a session or a token must
refuse it) and then as the district's administrator. No answer is a 5xx, and every answer is
one the document lists for the operation, of its media type, in its schema, with its headers.

The district (tests.fuzz.district) is built once per process and laid into each test's fresh
database; path parameters name its rows as well as generated values. Bounded and
deterministic: a fixed seed, derandomized generation, a few examples per operation and phase,
fewer in the PostgreSQL + Redis pass (KAIFANG_TEST_BACKEND_ONLY=1), which repeats what reaches
the database. KAIFANG_FUZZ_EXAMPLES=N asks for more, to hunt locally."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import ASGIClient, shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlmodel import Session

from server.app import create_app
from server.config import Settings
from server.db import get_engine
from tests.conftest import PUBLIC_URL, TEST_SECRET_KEY
from tests.fuzz import district

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
SECOND_PASS = os.environ.get("KAIFANG_TEST_BACKEND_ONLY") == "1"
MAX_EXAMPLES = int(os.environ.get("KAIFANG_FUZZ_EXAMPLES", "2" if SECOND_PASS else "4"))
# What a signed-out caller may hear from an operation that needs a session or a token: refused,
# told its input is malformed (a path or a body is read before the session), or to wait (429,
# sign-in attempts); never served.
REFUSALS = {400, 401, 403, 404, 413, 422, 429}


def _document() -> dict[str, Any]:
    """The document as the app serves it (built without a database: it names no rows)."""
    folder = Path(tempfile.mkdtemp(prefix="kaifang-fuzz-"))
    app = create_app(Settings(data_dir=folder, secret_key=TEST_SECRET_KEY, public_url=PUBLIC_URL))
    return app.openapi()


CONFIG = schemathesis.Config.from_dict({
    "seed": 19,
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none",
                   "no-shrink": True},
    "phases": {"examples": {"enabled": True}, "fuzzing": {"enabled": True},
               "stateful": {"enabled": False},
               # Methods the document does not list answer 405 from the router: not ours.
               # Boundaries and missing or mistyped values, field by field: the bad input.
               "coverage": {"enabled": True, "unexpected-methods": [],
                            "generation": {"mode": "negative"}}},
    # Each failed sign-in verifies a password against an Argon2 hash at full cost (the timing
    # equaliser): the throttle's path is walked by the examples and fuzzing phases only.
    "operations": [{"include-name": "POST /api/session",
                    "phases": {"coverage": {"enabled": False}}}],
})
SCHEMA = schemathesis.openapi.from_dict(_document(), config=CONFIG)
# The district of the test running in this process (one at a time, also under pytest-xdist).
KNOWN: dict[str, list[Any]] = {}
_BUILT: list[district.District] = []


@SCHEMA.hook("flatmap_path_parameters")
def _known_values(context: schemathesis.HookContext,
                  path_parameters: Any) -> st.SearchStrategy[Any]:
    """The generated path, or the same with one parameter naming a real row of the district."""
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    variants = [{**path_parameters, name: value} for name in path_parameters
                for value in KNOWN.get(name, ())]
    return st.sampled_from([path_parameters, *variants])


@SCHEMA.hook("flatmap_body")
def _known_ids_in_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """The generated body, or the same with one field naming a real row (a unit, a session, a
    user, a viewer): a body whose ids all miss stops at 404 or 422 before the work it asks."""
    if not isinstance(body, dict):
        return st.just(body)
    variants = [{**body, name: value} for name in body for value in KNOWN.get(name, ())]
    return st.sampled_from([body, *variants])


@pytest.fixture
def admin(app: FastAPI, db: Session) -> Iterator[ASGIClient]:
    """A client signed in as the district's administrator, in a fresh database holding the
    district."""
    engine = get_engine(app.state.settings.sqlalchemy_url)
    with ASGIClient(app) as client:
        if _BUILT:
            district.restore(engine, _BUILT[0].rows)
        else:
            built = district.build(db, client)
            built.rows = district.snapshot(engine)
            _BUILT.append(built)
        client.cookies.update(_BUILT[0].cookies)
        client.headers["X-CSRF-Token"] = _BUILT[0].csrf
        KNOWN.update(_BUILT[0].known)
        yield client
    KNOWN.clear()
    shutdown_lifespans()


@SCHEMA.parametrize()
@hypothesis.settings(suppress_health_check=list(hypothesis.HealthCheck))
def test_every_answer_is_documented(case: schemathesis.Case, app: FastAPI,
                                    admin: ASGIClient) -> None:
    if "401" in case.operation.definition.raw["responses"]:
        refused = case.call(session=ASGIClient(app))
        case.validate_response(refused, checks=CHECKS)
        assert refused.status_code in REFUSALS, \
            f"{case.operation.label} answered {refused.status_code} to a signed-out caller"
    case.validate_response(case.call(session=admin), checks=CHECKS)
