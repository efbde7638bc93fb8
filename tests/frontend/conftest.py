"""Console fixtures shared by the page tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.conftest import make_user
from tests.frontend.console_pages import sign_in


@pytest.fixture
def console(app: FastAPI, db: Session) -> Iterator[Any]:
    """console("editor", "education") → a TestClient signed in through the login form."""
    made: list[TestClient] = []

    def factory(role: str, unit_code: str | None = None) -> TestClient:
        name = f"console-{role}-{unit_code or 'x'}-{len(made)}"
        make_user(db, name, role, unit_code)
        client = TestClient(app)
        client.__enter__()
        assert sign_in(client, name).status_code == 303
        made.append(client)
        return client

    yield factory
    for client in made:
        client.__exit__(None, None, None)
