"""Every failure becomes JSON {"error": CODE, "message": TEXT} with a 4xx; never a bare 500."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from python_multipart.exceptions import FormParserError
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from events.errors import DomainError
from events.locking import busy, is_lock_timeout
from server.access_log import redact_path

log = logging.getLogger("kaifang")

HTTP_CODES = {
    400: "bad_request",
    401: "login_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}

# A page renderer for browsers; the frontend installs one, the API never uses it.
HtmlErrorRenderer = Callable[[Request, int, str, str], Response]


def wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/ws/")) or path.endswith((".ics", ".atom", ".json", ".csv")):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_response(request: Request, status: int, code: str, message: str,
                   **extra: Any) -> Response:
    renderer: HtmlErrorRenderer | None = getattr(request.app.state, "html_error_renderer", None)
    if renderer is not None and wants_html(request):
        return renderer(request, status, code, message)
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


def database_unavailable(exc: Exception) -> bool:
    """The database did not answer, and may in a moment: PostgreSQL refused the connection,
    was restarted or failed over (its connections killed: AdminShutdown, "server closed the
    connection unexpectedly", a closed connection), or every pooled connection is in use.
    SQLite's OperationalError is also how it reports a wrong statement: only a connection
    SQLAlchemy found dead counts there."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError) and \
        type(exc.orig).__module__.split(".")[0] == "psycopg"


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        if exc.code == "busy" and hasattr(request.app.state, "metrics"):  # /metrics counts it
            request.app.state.metrics.busy_answers += 1
        response = error_response(request, exc.status, exc.code, exc.message, **exc.detail)
        if exc.retry_after_s is not None:
            response.headers["Retry-After"] = str(max(1, exc.retry_after_s))
        return response

    def invalid(request: Request, errors: Sequence[Any]) -> Response:
        fields = [{"field": _field_name(tuple(e.get("loc", ()))), "message": str(e.get("msg"))}
                  for e in errors]
        first = fields[0] if fields else {"field": "body", "message": "invalid"}
        return error_response(request, 422, "invalid",
                              f"{first['field']}: {first['message']}", fields=fields)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(request, 400, "malformed_json", "the body is not valid JSON")
        return invalid(request, errors)

    @app.exception_handler(ValidationError)
    async def model_error(request: Request, exc: ValidationError) -> Response:
        # A page built a domain model from query values it did not check: still bad input.
        return invalid(request, exc.errors())

    @app.exception_handler(FormParserError)
    async def malformed_form(request: Request, exc: FormParserError) -> Response:
        # A multipart body the parser gave up on (cut off, a part header past its limits).
        return error_response(request, 400, "malformed_multipart",
                              "the multipart/form-data body is malformed or cut off")

    @app.exception_handler(DataError)
    async def unstorable_value(request: Request, exc: DataError) -> Response:
        # The database refused a value (a number out of range, a NUL in text): bad input that
        # slipped past validation. The transaction was rolled back; say so rather than 500.
        log.warning("the database refused a value on %s %s: %s", request.method,
                    request.url.path, type(exc.orig).__name__)
        return error_response(request, 422, "invalid_value",
                              "a value is out of range or holds characters that cannot be stored")

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeout)
    async def database_failure(request: Request, exc: Exception) -> Response:
        # A statement that waited for a lock past its deadline (a write outside events.locking),
        # or a database that did not answer (restarted, failed over, every connection in use):
        # 503 busy with Retry-After, like a lock of our own. Anything else is unexpected.
        if isinstance(exc, OperationalError) and is_lock_timeout(exc):
            return await domain_error(request, busy())
        if database_unavailable(exc):
            orig = getattr(exc, "orig", None) or exc
            log.warning("the database did not answer on %s %s (%s): answered 503 busy",
                        request.method, redact_path(request.url.path), type(orig).__name__)
            return await domain_error(request, busy())
        return await unexpected(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code
        response = error_response(request, exc.status_code, code, message)
        response.headers.update(exc.headers or {})  # e.g. Allow on a 405
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # The type and where it was raised, not its text: that can quote a request's values or a
        # statement's parameters (a phone number). A token in the path is masked.
        frames = "".join(traceback.format_tb(exc.__traceback__))
        log.error("unhandled %s on %s %s\n%s", type(exc).__name__, request.method,
                  redact_path(request.url.path), frames.rstrip())
        return JSONResponse({"error": "internal", "message": "internal error"}, status_code=500)
