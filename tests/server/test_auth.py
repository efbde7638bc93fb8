"""Staff sign-in: cookie and CSRF token, throttling, sign-out, the secret key, password hashes."""

from __future__ import annotations

import logging
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import update
from sqlmodel import select

from events import staff as staff_domain
from events.models import LoginFailure, StaffUser
from events.timeutil import utcnow
from server import cli
from server.app import create_app
from server.config import ConfigError, Settings, get_settings
from server.deps import SESSION_COOKIE
from tests.conftest import PASSWORD, event_body, login, make_user


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> Response:
    return client.post("/api/session", json={"username": username, "password": password})


def test_sign_in_answers_user_and_csrf_token_and_sets_the_cookie(client, db):
    make_user(db, "jiaowei.editor", "editor", "education")
    response = sign_in(client, "jiaowei.editor")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"user", "csrf_token"}
    assert body["user"]["username"] == "jiaowei.editor"
    assert (body["user"]["role"], body["user"]["active"]) == ("editor", True)
    assert len(body["csrf_token"]) >= 24
    assert PASSWORD not in response.text and "password" not in response.text
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    me = client.get("/api/session").json()
    assert (me["user"]["username"], me["csrf_token"]) == ("jiaowei.editor", body["csrf_token"])


@pytest.mark.parametrize(("username", "password", "status"), [
    ("jiaowei.editor", "wrong-password", 401), ("nobody", PASSWORD, 401),
    ("jiaowei.editor", PASSWORD.upper(), 401), ("jiaowei.editor", "", 422),
])
def test_wrong_credentials_are_refused_without_a_cookie(client, db, username, password, status):
    make_user(db, "jiaowei.editor", "editor", "education")
    response = sign_in(client, username, password)
    assert response.status_code == status, response.text
    assert "set-cookie" not in response.headers
    if status == 401:  # the same answer for a wrong password and an unknown name
        assert response.json() == {"error": "invalid_credentials",
                                   "message": "wrong username or password"}
    assert client.get("/api/session").status_code == 401


def test_the_sixth_failure_is_throttled_even_with_the_right_password(client, db, settings):
    make_user(db, "jiaowei.editor", "editor", "education")
    make_user(db, "minzheng.editor", "editor", "civil-affairs")
    for _ in range(settings.login_max_failures):
        assert sign_in(client, "jiaowei.editor", "guess").status_code == 401
    throttled = sign_in(client, "JiaoWei.Editor ", "guess")
    assert throttled.status_code == 429
    assert throttled.json()["error"] == "too_many_attempts"
    refused = sign_in(client, "jiaowei.editor")
    assert refused.status_code == 429
    assert "set-cookie" not in refused.headers
    # Another account from the same address is not locked out by this one.
    assert sign_in(TestClient(client.app), "minzheng.editor").status_code == 200
    # Once the window has passed, the right password works again.
    long_ago = utcnow() - timedelta(seconds=settings.login_window_s + 1)
    db.execute(update(LoginFailure).values(at=long_ago))
    db.commit()
    assert sign_in(client, "jiaowei.editor").status_code == 200


def test_parallel_wrong_passwords_are_checked_no_more_than_the_limit(
    live_server, db, settings, monkeypatch,
):
    make_user(db, "jiaowei.editor", "editor", "education")
    checked: list[str] = []
    real_verify = staff_domain.verify_password

    def verify_as_slowly_as_argon2(password_hash: str | None, password: str) -> bool:
        checked.append(password)
        time.sleep(0.05)  # the suite's Argon2 is cheap; the real one takes this long
        return real_verify(password_hash, password)

    monkeypatch.setattr(staff_domain, "verify_password", verify_as_slowly_as_argon2)

    def attempt(number: int) -> int:
        response = httpx.post(f"{live_server}/api/session", timeout=60, json={
            "username": "jiaowei.editor", "password": f"guess-{number}"})
        return response.status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(attempt, range(100)))
    assert statuses.count(401) + statuses.count(429) == 100, statuses
    assert statuses.count(401) == settings.login_max_failures
    assert len(checked) == settings.login_max_failures
    # The throttle holds for the right password too, and says when to try again.
    refused = httpx.post(f"{live_server}/api/session",
                         json={"username": "jiaowei.editor", "password": PASSWORD})
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= settings.login_window_s


def test_a_deactivated_account_cannot_sign_in_and_its_cookie_stops_working(staff, db):
    editor = staff("editor", "education")
    user = db.exec(select(StaffUser).where(StaffUser.role == "editor")).one()
    user.active = False
    db.add(user)
    db.commit()
    refused = editor.post("/api/events", json=event_body(db))
    assert refused.status_code == 401
    assert refused.json()["error"] == "login_required"
    again = sign_in(TestClient(editor.app), user.username)
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_credentials"


def test_sign_out_ends_the_session_on_the_server(app, db):
    make_user(db, "jiaowei.editor", "editor", "education")
    with TestClient(app) as laptop, TestClient(app) as thief, TestClient(app) as phone:
        csrf = login(laptop, "jiaowei.editor")
        login(phone, "jiaowei.editor")
        stolen = laptop.cookies[SESSION_COOKIE]
        assert laptop.post("/api/events", json=event_body(db)).status_code == 201
        signed_out = laptop.delete("/api/session")
        assert signed_out.status_code == 204
        assert SESSION_COOKIE not in laptop.cookies
        after = laptop.post("/api/events", json=event_body(db))
        assert after.status_code == 401 and after.json()["error"] == "login_required"
        thief.cookies.set(SESSION_COOKIE, stolen)
        thief.headers["X-CSRF-Token"] = csrf
        copied = thief.post("/api/events", json=event_body(db))
        assert copied.status_code == 401
        assert thief.get("/api/session").status_code == 401
        # Signing out is everywhere: the other device's cookie is spent too.
        assert phone.get("/api/session").status_code == 401
        login(laptop, "jiaowei.editor")
        assert laptop.post("/api/events", json=event_body(db)).status_code == 201
    assert len(TestClient(app).get("/api/events").json()) == 0


def test_sign_out_needs_the_csrf_token(app, db):
    make_user(db, "jiaowei.editor", "editor", "education")
    with TestClient(app) as laptop, TestClient(app) as phone:
        csrf = login(laptop, "jiaowei.editor")
        login(phone, "jiaowei.editor")
        del laptop.headers["X-CSRF-Token"]  # what a cross-site form or fetch would send
        refused = laptop.delete("/api/session")
        assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
        forged = laptop.delete("/api/session", headers={"X-CSRF-Token": "forged"})
        assert forged.status_code == 403
        assert "set-cookie" not in refused.headers
        # Nobody was signed out.
        assert laptop.get("/api/session").status_code == 200
        assert phone.get("/api/session").status_code == 200
        assert laptop.delete("/api/session",
                             headers={"X-CSRF-Token": csrf}).status_code == 204
        assert phone.get("/api/session").status_code == 401


def test_sign_out_without_a_session_is_harmless(client):
    assert client.delete("/api/session").status_code == 204
    assert client.delete("/api/session").status_code == 204


def test_the_secret_key_is_generated_once_private_and_never_printed(
    tmp_path, settings, capfd, caplog,
):
    caplog.set_level(logging.DEBUG)
    data_dir = tmp_path / "fresh"
    keyless = Settings(data_dir=data_dir, database_url=settings.sqlalchemy_url, secret_key=None)
    first = create_app(keyless)
    key_file = data_dir / "secret_key"
    key = key_file.read_text().strip()
    assert len(key) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = create_app(Settings(data_dir=data_dir, database_url=settings.sqlalchemy_url,
                                 secret_key=None))
    assert key_file.read_text().strip() == key
    assert first.state.signer.dumps("p", 1) == second.state.signer.dumps("p", 1)
    with TestClient(first) as client:
        client.get("/healthz")
        client.post("/api/session", json={"username": "x", "password": "y"})
    out, err = capfd.readouterr()
    assert key not in out + err + caplog.text
    assert key not in repr(keyless) and key not in str(keyless.model_dump_json())


def test_a_configured_secret_key_is_not_written_to_disk(tmp_path, settings):
    data_dir = tmp_path / "configured"
    create_app(Settings(data_dir=data_dir, database_url=settings.sqlalchemy_url,
                        secret_key="from-the-environment-and-32-bytes-long"))
    assert not (data_dir / "secret_key").exists()


@pytest.mark.parametrize("key", ["", "short", "x" * 31, "密钥" * 5])
def test_a_secret_key_under_32_bytes_is_refused_at_start(tmp_path, settings, key):
    configured = Settings(data_dir=tmp_path / "env", database_url=settings.sqlalchemy_url,
                          secret_key=key)
    with pytest.raises(ConfigError, match="at least 32 bytes") as refused:
        create_app(configured)
    assert "KAIFANG_SECRET_KEY" in str(refused.value)
    assert not key or key not in str(refused.value)


def test_an_empty_key_file_is_refused_at_start(tmp_path, settings):
    data_dir = tmp_path / "emptied"
    data_dir.mkdir()
    (data_dir / "secret_key").write_text("\n")
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        create_app(Settings(data_dir=data_dir, database_url=settings.sqlalchemy_url,
                            secret_key=None))


def test_kaifang_serve_refuses_a_short_key_without_a_traceback(tmp_path, monkeypatch, capsys):
    import uvicorn

    served: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: served.append(args))
    monkeypatch.setenv("KAIFANG_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KAIFANG_SECRET_KEY", "changeme")
    get_settings.cache_clear()
    try:
        assert cli.main(["serve"]) == 2
    finally:
        get_settings.cache_clear()
    out, err = capsys.readouterr()
    assert served == []
    assert "KAIFANG_SECRET_KEY" in err and "at least 32 bytes" in err
    assert "Traceback" not in out + err and "changeme" not in out + err


def test_passwords_are_stored_as_salted_argon2_hashes(db):
    make_user(db, "first.editor", "editor", "education")
    make_user(db, "second.editor", "editor", "health")
    hashes = [u.password_hash for u in db.exec(select(StaffUser))]
    assert len(hashes) == 2 and hashes[0] != hashes[1]
    for stored in hashes:
        assert stored.startswith("$argon2id$")
        assert PASSWORD not in stored
        assert PasswordHasher().verify(stored, PASSWORD)
