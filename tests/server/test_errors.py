"""Errors are JSON {"error", "message"} on the API, whatever went wrong; /healthz answers."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import DataError

from events.sessions import EventQuery


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("accept", ["application/json", "text/html,application/xhtml+xml"])
@pytest.mark.parametrize("path", ["/api/nowhere", "/api/events/1/nowhere", "/api/"])
def test_an_unknown_api_path_is_json_404(client, method, accept, path):
    response = client.request(method, path, headers={"Accept": accept})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "not_found" and isinstance(body["message"], str)


@pytest.mark.parametrize(("method", "path"), [
    ("PUT", "/api/events"), ("DELETE", "/api/events"), ("PUT", "/api/units"),
    ("GET", "/api/events/1/status"), ("POST", "/healthz"),
])
def test_a_wrong_method_is_json_405(client, method, path):
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "method_not_allowed"
    assert response.json()["message"]
    assert "allow" in response.headers


def test_validation_errors_name_the_fields(staff):
    admin = staff("admin")
    response = admin.post("/api/events", json={"kind": "concert"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid"
    fields = {f["field"] for f in body["fields"]}
    assert {"kind", "unit_id", "title", "starts_at", "ends_at"} <= fields
    assert body["message"].split(":")[0] in fields


def test_an_unexpected_failure_is_a_json_500_that_logs_no_body(app, caplog):
    def explode(token: str, body: dict[str, str]) -> None:
        raise RuntimeError(f"boom while storing {body['phone']}")  # as a driver error might say

    app.add_api_route("/api/test-explodes/{token}", explode, methods=["POST"])
    caplog.set_level(logging.ERROR, logger="kaifang")
    token = "eyJyIjoxLCJjIjoiQUJDREVGR0gifQ.aBcDeF.sEcReTsIgNaTuRe"
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(f"/api/test-explodes/{token}", json={"phone": "13800138000"})
    assert response.status_code == 500
    assert response.json() == {"error": "internal", "message": "internal error"}
    assert "RuntimeError" in caplog.text and "/api/test-explodes/…" in caplog.text
    assert "test_errors.py" in caplog.text  # where it happened, to find the bug
    assert "13800138000" not in caplog.text and "13800138000" not in response.text
    assert token not in caplog.text


def test_a_database_error_quotes_no_values(db):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        db.execute(text("INSERT INTO no_such_table (phone) VALUES (:phone)"),
                   {"phone": "13800138000"})
    except DBAPIError as exc:
        assert "13800138000" not in str(exc)
    else:
        raise AssertionError("the statement should have failed")


def test_a_value_the_database_refuses_is_422_not_500(app):
    def unstorable() -> None:
        raise DataError("INSERT …", {}, ValueError("PostgreSQL text fields cannot contain NUL"))

    app.add_api_route("/api/test-unstorable", unstorable, methods=["POST"])
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/api/test-unstorable")
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_value"
    assert "NUL" not in response.text


def test_a_domain_model_refusing_page_input_is_422_not_500(app):
    def page(limit: int = 0) -> None:
        EventQuery(limit=limit)

    app.add_api_route("/api/test-page", page, methods=["GET"])
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/test-page")
    assert response.status_code == 422
    body = response.json()
    assert (body["error"], body["fields"][0]["field"]) == ("invalid", "limit")
