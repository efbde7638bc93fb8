"""/api/openapi.json describes every answer and every error truthfully.

Every operation documents its success answer (a JSON schema, or the media type of a feed or a
CSV file) and its errors with the error shape; real answers, successes and errors, validate
against the schema the document gives for their operation and status, with no key it does not
name.
"""

from __future__ import annotations

import copy
from datetime import date, datetime
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from events import units
from events.schemas import AnswerMismatch, EventPublic, answer
from server.deps import require_staff
from tests.conftest import door_open, event_body, publish

# The document's shape does not depend on the database; answers on PostgreSQL are checked
# against it by the fuzzing (tests/fuzz), which runs in both passes.
pytestmark = pytest.mark.sqlite_pass_only

ERROR_REF = "#/components/schemas/ErrorPublic"
FEEDS = {"/events/{event_id}.ics", "/calendar.ics", "/units/{code}.ics", "/feed.atom"}
# Keywords that say nothing about which values are valid.
ANNOTATIONS = {"title", "description", "examples", "default"}


# ---- a JSON Schema check, strict on purpose --------------------------------------------------
# It knows the keywords pydantic writes into this document and refuses any other, so a schema it
# cannot judge fails the test instead of passing unread. An object schema that does not say
# `additionalProperties` is read as closed: every key of a real answer must be documented.

def _type_ok(kind: str, value: Any) -> bool:
    return {
        "object": lambda: isinstance(value, dict),
        "array": lambda: isinstance(value, list),
        "string": lambda: isinstance(value, str),
        "integer": lambda: isinstance(value, int) and not isinstance(value, bool),
        "number": lambda: isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": lambda: isinstance(value, bool),
        "null": lambda: value is None,
    }[kind]()


def _format_ok(name: str, value: str) -> bool:
    try:
        if name == "date-time":
            return datetime.fromisoformat(value).tzinfo is not None and "T" in value
        if name == "date":
            date.fromisoformat(value)
            return len(value) == 10
    except ValueError:
        return False
    raise AssertionError(f"unknown format {name!r}")


def problems(schema: dict[str, Any], value: Any, doc: dict[str, Any], at: str = "$") -> list[str]:
    """Where `value` breaks `schema` (a part of the OpenAPI document `doc`); [] when it fits."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return problems(doc["components"]["schemas"][name], value, doc, at)
    unknown = set(schema) - ANNOTATIONS - {
        "type", "properties", "required", "additionalProperties", "items", "prefixItems",
        "minItems", "maxItems", "anyOf", "enum", "const", "format"}
    assert not unknown, f"{at}: the check does not know the keywords {sorted(unknown)}"
    if "anyOf" in schema and all(problems(option, value, doc, at)
                                 for option in schema["anyOf"]):
        return [f"{at}: {value!r:.60} fits none of {len(schema['anyOf'])} schemas"]
    found: list[str] = []
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_type_ok(kind, value) for kind in kinds):
            return [f"{at}: expected {'|'.join(kinds)}, got {value!r:.60}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{at}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        found.append(f"{at}: expected {schema['const']!r}, got {value!r}")
    if "format" in schema and isinstance(value, str) and not _format_ok(schema["format"], value):
        found.append(f"{at}: {value!r} is not a {schema['format']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        found += [f"{at}: {name!r} is missing" for name in schema.get("required", [])
                  if name not in value]
        extra = schema.get("additionalProperties", not properties)
        for name, item in value.items():
            if name in properties:
                found += problems(properties[name], item, doc, f"{at}.{name}")
            elif extra is False:
                found.append(f"{at}: {name!r} is not in the document")
            elif isinstance(extra, dict):
                found += problems(extra, item, doc, f"{at}.{name}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 1e9):
            found.append(f"{at}: {len(value)} items")
        positional = schema.get("prefixItems", [])
        for index, item in enumerate(value):
            part = positional[index] if index < len(positional) else schema.get("items")
            if part is not None:
                found += problems(part, item, doc, f"{at}[{index}]")
    return found


# ---- the document ----------------------------------------------------------------------------

@pytest.fixture
def doc(client: TestClient) -> dict[str, Any]:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, operation) for path, item in doc["paths"].items()
            for method, operation in item.items()]


def test_the_document_holds_the_api_the_feeds_and_healthz_only(doc):
    paths = set(doc["paths"])
    assert {"/api/events", "/api/events/{event_id}/registrations", "/healthz"} <= paths
    assert paths >= FEEDS
    assert [p for p in paths if not p.startswith("/api/") and p not in FEEDS | {"/healthz"}] == []
    assert len(operations(doc)) >= 44


def test_every_operation_documents_its_success_answer(doc):
    undocumented = []
    for method, path, operation in operations(doc):
        successes = {status: response for status, response in operation["responses"].items()
                     if status.startswith("2")}
        if not successes:
            undocumented.append(f"{method} {path}: no 2xx")
        for status, response in successes.items():
            content = response.get("content")
            if status == "204":
                if content:
                    undocumented.append(f"{method} {path}: 204 with a body")
                continue
            if not content:
                undocumented.append(f"{method} {path}: {status} without content")
                continue
            for media_type, described in content.items():
                schema = described.get("schema")
                if not schema:
                    undocumented.append(f"{method} {path}: {status} {media_type} has no schema")
                elif media_type == "application/json" and schema.get("type") == "string":
                    undocumented.append(f"{method} {path}: {status} JSON documented as text")
                elif media_type != "application/json" and path.startswith("/api/") \
                        and not path.endswith(".csv") and schema.get("format") != "binary":
                    undocumented.append(f"{method} {path}: {status} is {media_type}")
    assert undocumented == []


def test_feeds_and_files_are_documented_with_their_media_type(doc):
    def media(path: str) -> set[str]:
        return set(doc["paths"][path]["get"]["responses"]["200"]["content"])

    assert media("/events/{event_id}.ics") == media("/calendar.ics") == {"text/calendar"}
    assert media("/units/{code}.ics") == {"text/calendar"}
    assert media("/feed.atom") == {"application/atom+xml"}
    assert media("/api/compliance.csv") == media("/api/events/{event_id}/registrations.csv") \
        == {"text/csv"}


def test_every_error_answer_is_documented_with_the_error_shape(doc):
    wrong = []
    for method, path, operation in operations(doc):
        errors = {status: response for status, response in operation["responses"].items()
                  if status[0] in "45"}
        if not any(status.startswith("4") for status in errors):
            wrong.append(f"{method} {path}: no 4xx")
        if (operation.get("parameters") or operation.get("requestBody")) and "422" not in errors:
            wrong.append(f"{method} {path}: input, but no 422")
        if "5XX" not in errors:
            wrong.append(f"{method} {path}: no 5XX")
        for status, response in errors.items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if schema != {"$ref": ERROR_REF}:
                wrong.append(f"{method} {path}: {status} is {schema}")
    assert wrong == []
    # FastAPI's own 422 shape is not ours (server.errors rewrites it): it must not be shown.
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_staff_operations_document_401_and_403(app, doc):
    def needs_staff(dependant: Any) -> bool:
        return any(d.call is require_staff or needs_staff(d) for d in dependant.dependencies)

    staff_only = [(method.lower(), context.path)
                  for context in iter_route_contexts(app.routes)
                  if isinstance(context.original_route, APIRoute) and context.include_in_schema
                  and needs_staff(context.dependant) for method in context.methods]
    assert ("post", "/api/events") in staff_only and len(staff_only) > 20
    missing = [f"{method} {path}" for method, path in staff_only
               if not {"401", "403"} <= set(doc["paths"][path][method]["responses"])]
    assert missing == []


# ---- real answers ----------------------------------------------------------------------------

def check(doc: dict[str, Any], method: str, path: str, response: Any, status: int) -> Any:
    """The answer has `status`, which the document lists for the operation, and fits its
    schema there; returns the answer's JSON."""
    assert response.status_code == status, response.text
    listed = doc["paths"][path][method]["responses"]
    key = str(status) if str(status) in listed else f"{str(status)[0]}XX"
    assert key in listed, f"{method} {path} answered {status}; the document lists {list(listed)}"
    media_type = response.headers["content-type"].split(";")[0]
    content = listed[key]["content"]
    assert media_type in content, f"{method} {path} {status}: {media_type} not in {list(content)}"
    body = response.json()
    assert problems(content[media_type]["schema"], body, doc) == []
    return body


def test_answers_fit_the_document(client, staff, db, doc):
    editor, admin = staff("editor", "education"), staff("admin")
    created = check(doc, "post", "/api/events", editor.post(
        "/api/events", json=event_body(db, capacity=1, **door_open())), 201)
    event_id = created["id"]
    assert created["pending_revision"] is None and created["missing"] == []
    published = publish(admin, event_id)
    assert problems({"$ref": "#/components/schemas/EventForStaff"}, published, doc) == []

    public = check(doc, "get", "/api/events", client.get("/api/events"), 200)
    assert [e["id"] for e in public] == [event_id] and "review_note" not in public[0]
    check(doc, "get", "/api/events/{event_id}", client.get(f"/api/events/{event_id}"), 200)
    check(doc, "get", "/api/events/{event_id}", editor.get(f"/api/events/{event_id}"), 200)

    path = "/api/events/{event_id}/registrations"
    ticket = check(doc, "post", path, client.post(
        f"/api/events/{event_id}/registrations",
        json={"name": "王小明", "phone": "13800000001", "consent": True}), 201)
    waitlisted = check(doc, "post", path, client.post(
        f"/api/events/{event_id}/registrations",
        json={"name": "李华", "phone": "13800000002", "consent": True}), 201)
    assert (ticket["status"], waitlisted["waitlist_position"]) == ("confirmed", 1)
    twice = check(doc, "post", path, client.post(
        f"/api/events/{event_id}/registrations",
        json={"name": "王小明", "phone": "13800000001", "consent": True}), 409)
    assert twice["error"] == "already_registered"
    check(doc, "get", "/api/registrations/{token}",
          client.get(f"/api/registrations/{ticket['manage_token']}"), 200)

    checkins = f"/api/events/{event_id}/checkins"
    check(doc, "post", "/api/events/{event_id}/checkins",
          editor.post(checkins, json={"code": ticket["code"]}), 200)
    again = check(doc, "post", "/api/events/{event_id}/checkins",
                  editor.post(checkins, json={"code": ticket["code"]}), 409)
    assert again["error"] == "already_checked_in" and again["checked_in_at"]
    check(doc, "get", "/api/events/{event_id}/checkins", editor.get(checkins), 200)
    check(doc, "get", path, editor.get(f"/api/events/{event_id}/registrations"), 200)
    check(doc, "delete", "/api/registrations/{token}",
          client.delete(f"/api/registrations/{waitlisted['manage_token']}"), 200)

    # A change to a published session waits for review: 202 with the pending revision.
    held = check(doc, "patch", "/api/events/{event_id}", editor.patch(
        f"/api/events/{event_id}", json={"title": "区教委招生政策会议开放（更新）"}), 202)
    assert held["pending_revision"]["changes"]["title"][1].endswith("（更新）")
    check(doc, "get", "/api/revisions", admin.get("/api/revisions"), 200)
    check(doc, "get", "/api/events/{event_id}/audit", editor.get(f"/api/events/{event_id}/audit"),
          200)

    for path, asker in [("/api/units", client), ("/api/session", admin), ("/api/users", admin),
                        ("/api/hosts", admin), ("/api/audit", admin),
                        ("/api/compliance", client), ("/api/compliance/rules", client),
                        ("/healthz", client)]:
        check(doc, "get", path, asker.get(path), 200)


def test_error_answers_fit_the_document(client, staff, db, doc, settings):
    editor = staff("editor", "education")
    check(doc, "get", "/api/events/{event_id}", client.get("/api/events/999999"), 404)
    check(doc, "post", "/api/events", client.post("/api/events", json=event_body(db)), 401)
    no_csrf = editor.post("/api/events", json=event_body(db),
                          headers={"X-CSRF-Token": "forged"})
    assert check(doc, "post", "/api/events", no_csrf, 403)["error"] == "csrf_failed"
    # FastAPI's request validation, rewritten by server.errors: every problem in `fields`.
    invalid = check(doc, "post", "/api/events/{event_id}/registrations",
                    client.post("/api/events/1/registrations", json={"name": ""}), 422)
    assert invalid["error"] == "invalid" and len(invalid["fields"]) >= 2
    malformed = client.post("/api/session", content=b"{", headers={
        "Content-Type": "application/json"})
    assert check(doc, "post", "/api/session", malformed, 400)["error"] == "malformed_json"
    created = editor.post("/api/events", json=event_body(db)).json()
    illegal = check(doc, "post", "/api/events/{event_id}/status", editor.post(
        f"/api/events/{created['id']}/status", json={"status": "live"}), 409)
    assert (illegal["current"], illegal["target"]) == ("draft", "live")
    assert editor.patch(f"/api/events/{created['id']}", json={"venue": ""}).status_code == 200
    incomplete = check(doc, "post", "/api/events/{event_id}/status", editor.post(
        f"/api/events/{created['id']}/status", json={"status": "pending_review"}), 422)
    assert incomplete["missing"] == ["venue"]

    wrong = {"username": "nobody", "password": "guess"}
    for _ in range(settings.login_max_failures):
        check(doc, "post", "/api/session", client.post("/api/session", json=wrong), 401)
    throttled = check(doc, "post", "/api/session", client.post("/api/session", json=wrong), 429)
    assert throttled["error"] == "too_many_attempts"


def test_the_check_finds_what_the_document_does_not_say(client, staff, db, doc):
    """The check above can fail: an answer that strays from the document is caught."""
    admin = staff("admin")
    event_id = admin.post("/api/events", json=event_body(db, **door_open())).json()["id"]
    publish(admin, event_id)
    ticket = client.post(f"/api/events/{event_id}/registrations",
                         json={"name": "王小明", "phone": "13800000001", "consent": True}).json()
    schema = doc["paths"]["/api/events/{event_id}/registrations"]["post"]["responses"]["201"][
        "content"]["application/json"]["schema"]
    assert problems(schema, ticket, doc) == []

    def strayed(change: Any) -> list[str]:
        body = copy.deepcopy(ticket)
        change(body)
        return problems(schema, body, doc)

    assert strayed(lambda body: body.pop("manage_token")) == ["$: 'manage_token' is missing"]
    assert strayed(lambda body: body.update(waitlist_position="1"))
    assert strayed(lambda body: body.update(status="pending"))
    assert strayed(lambda body: body.update(created_at="yesterday"))
    assert strayed(lambda body: body.update(phone_hash="x")) == [
        "$: 'phone_hash' is not in the document"]
    assert strayed(lambda body: body.update(checked_in_at=None)) == []


def test_a_view_that_grows_a_key_its_model_lacks_fails_loudly(app, staff, db, monkeypatch):
    """Not a 422 (bad input): a 500 whose log names the key, never its value."""
    admin = staff("admin")
    created = admin.post("/api/events", json=event_body(db)).json()
    public = {name: value for name, value in created.items()
              if name in EventPublic.model_fields}
    assert answer(EventPublic, public).model_dump(mode="json") == public
    with pytest.raises(AnswerMismatch, match=r"EventPublic: secret \(extra_forbidden\)") as raised:
        answer(EventPublic, {**public, "secret": "13800000001"})
    assert "13800000001" not in str(raised.value)

    grown = units.unit_public
    monkeypatch.setattr(units, "unit_public", lambda unit: {**grown(unit), "secret": "x"})
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/units")
    assert (response.status_code, response.json()["error"]) == (500, "internal")
