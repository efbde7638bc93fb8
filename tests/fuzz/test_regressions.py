"""What the fuzzer (tests/fuzz/test_api.py) found, each pinned by the request that found it;
and the fuzzer's own checks, shown to fail on answers that stray from the document."""

from __future__ import annotations

from typing import Any

import pytest
from schemathesis.core.failures import FailureGroup
from schemathesis.python.asgi import ASGIClient, shutdown_lifespans

from events import api_staff
from events.errors import Conflict
from events.locking import busy
from tests.fuzz.test_api import CHECKS, SCHEMA


def _verdict(app: Any, path: str, method: str = "GET") -> list[str]:
    """The names of the fuzzer's checks that fail on the app's answer to `method path`."""
    case = SCHEMA[path][method].Case()
    try:
        with ASGIClient(app) as client:
            response = case.call(session=client)
        case.validate_response(response, checks=CHECKS)
    except FailureGroup as failures:
        return sorted({type(failure).__name__ for failure in failures.exceptions})
    finally:
        shutdown_lifespans()
    return []


def test_the_checks_fail_on_answers_the_document_does_not_describe(app, monkeypatch):
    assert _verdict(app, "/api/units") == []

    def undocumented_status(*args: Any, **kwargs: Any) -> Any:
        raise Conflict("unit_locked", "locked")  # GET /api/units documents no 409

    with monkeypatch.context() as patch:
        patch.setattr(api_staff.units, "list_units", undocumented_status)
        assert _verdict(app, "/api/units") == ["UndefinedStatusCode"]

    with monkeypatch.context() as patch:  # a code that is not a string, unchecked on its way
        patch.setattr(api_staff, "answers", lambda model, items: [
            {**item, "code": 7} for item in items])
        assert _verdict(app, "/api/units") == ["JsonSchemaError"]

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise busy()

    with monkeypatch.context() as patch:  # a documented 5XX is still a failure
        patch.setattr(api_staff.units, "list_units", failing)
        assert _verdict(app, "/api/units") == ["ServerError"]
    with monkeypatch.context() as patch:  # an unexpected exception fails the test with its own
        patch.setattr(api_staff.units, "list_units", lambda *args, **kwargs: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            _verdict(app, "/api/units")
