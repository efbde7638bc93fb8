"""Staff accounts: admins, unit editors and hosts; sign-in with throttling."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import String, insert, literal, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, delete, func, select

from events import audit
from events.clients import address_bucket
from events.errors import Busy, Conflict, Invalid, NotFound, Throttled, Unauthenticated
from events.models import LoginFailure, Role, StaffUser
from events.timeutil import utcnow
from events.units import MAX_ID, Text, encodable, get_unit, get_unit_by_code
from server.db import UTCDateTime
from server.security import Signer, hash_password, verify_password

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{2,60}$")
MIN_PASSWORD_LENGTH = 8
# How long a sign-in waits for another attempt on the same account before 503 busy.
LOCK_TIMEOUT_S = 5
# A password is compared as it was typed: never cleaned, but it must be encodable.
Password = Annotated[str, AfterValidator(encodable)]


class UserCreate(BaseModel):
    username: str = Field(min_length=2, max_length=60)
    password: Password = Field(min_length=MIN_PASSWORD_LENGTH, max_length=200)
    role: Role
    unit_id: int | None = None
    display_name: Text = Field(default="", max_length=100)


class UserUpdate(BaseModel):
    """An admin's change to an account; a field left out stays as it is."""

    display_name: Text | None = Field(default=None, max_length=100)
    role: Role | None = None
    unit_id: int | None = None  # given as null: the account leaves its unit
    active: bool | None = None
    password: Password | None = Field(default=None, min_length=MIN_PASSWORD_LENGTH,
                                      max_length=200)


def user_public(user: StaffUser) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name or user.username,
        "role": user.role.value,
        "unit_id": user.unit_id,
        "active": user.active,
    }


def create_user(db: Session, actor: StaffUser | None, data: UserCreate) -> StaffUser:
    if not USERNAME_PATTERN.match(data.username):
        raise Invalid("invalid_username", "a username is 2-60 letters, digits, '_', '.' or '-'")
    if data.role == Role.editor and data.unit_id is None:
        raise Invalid("unit_required", "an editor is bound to a unit")
    if data.unit_id is not None:
        try:
            get_unit(db, data.unit_id)
        except NotFound as exc:
            raise Invalid("unknown_unit", f"unit_id: no unit with id {data.unit_id}",
                          field="unit_id") from exc
    taken = db.exec(
        select(StaffUser).where(func.lower(StaffUser.username) == data.username.lower())
    ).first()
    if taken:
        raise Conflict("username_taken", f"the username {data.username!r} is taken")
    user = StaffUser(
        username=data.username,
        display_name=data.display_name,
        password_hash=hash_password(data.password),
        role=data.role,
        unit_id=data.unit_id,
    )
    db.add(user)
    db.flush()
    audit.record(db, actor, "user.create", "user", user.id, unit_id=user.unit_id,
                 changes={"username": user.username, "role": user.role, "unit_id": user.unit_id})
    return user


def create_user_cli(
    db: Session, username: str, password: str, role: str, unit_code: str | None
) -> StaffUser:
    unit_id = get_unit_by_code(db, unit_code).id if unit_code else None
    try:
        data = UserCreate(username=username, password=password, role=Role(role), unit_id=unit_id)
    except ValueError as exc:
        raise Invalid("invalid_user", str(exc)) from exc
    return create_user(db, None, data)


def get_user(db: Session, user_id: int) -> StaffUser:
    user = db.get(StaffUser, user_id) if 0 < user_id <= MAX_ID else None
    if user is None:
        raise NotFound("user_not_found", f"no user with id {user_id}")
    return user


def _check_unit(db: Session, unit_id: int) -> None:
    try:
        get_unit(db, unit_id)
    except NotFound as exc:
        raise Invalid("unknown_unit", f"unit_id: no unit with id {unit_id}",
                      field="unit_id") from exc


def update_user(db: Session, actor: StaffUser, user_id: int, data: UserUpdate) -> StaffUser:
    """Changes an account. A new role, unit, password or deactivation signs it out everywhere."""
    user = get_user(db, user_id)
    given = data.model_fields_set
    role = data.role if data.role is not None else user.role
    unit_id = data.unit_id if "unit_id" in given else user.unit_id
    active = data.active if data.active is not None else user.active
    if user.id == actor.id and (not active or role != Role.admin):
        field = "active" if not active else "role"
        raise Conflict("cannot_change_self",
                       "you cannot deactivate your own account or give up your admin role",
                       field=field)
    if role == Role.editor and unit_id is None:
        raise Invalid("unit_required", "an editor is bound to a unit", field="unit_id")
    if unit_id is not None and unit_id != user.unit_id:
        _check_unit(db, unit_id)
    before = {"display_name": user.display_name, "role": user.role, "unit_id": user.unit_id,
              "active": user.active}
    if data.display_name is not None:
        user.display_name = data.display_name.strip()
    user.role, user.unit_id, user.active = role, unit_id, active
    after = {"display_name": user.display_name, "role": user.role, "unit_id": user.unit_id,
             "active": user.active}
    changes: dict[str, Any] = audit.diff(before, after)
    if data.password is not None:
        user.password_hash = hash_password(data.password)
        changes["password_changed"] = True  # never the password or its hash
    if changes.keys() - {"display_name"}:
        user.session_version += 1
    db.add(user)
    db.flush()
    if changes:
        audit.record(db, actor, "user.update", "user", user.id, unit_id=user.unit_id,
                     changes=changes)
    return user


def list_users(db: Session) -> list[StaffUser]:
    return list(db.exec(select(StaffUser).order_by(col(StaffUser.username))))


def end_sessions(db: Session, user: StaffUser) -> None:
    """Signs the user out everywhere: every cookie issued before stops working."""
    user.session_version += 1
    db.add(user)
    db.flush()


def _reserve_attempt(db: Session, key: str, since: datetime, max_failures: int) -> bool:
    """Counts this attempt as a failure before the password is checked, unless the window is
    full: one INSERT … SELECT … WHERE count < limit, in its own short transaction committed at
    once, so parallel attempts (threads or processes) each see the ones before. SQLite runs the
    statement under its write lock; PostgreSQL first takes an advisory lock on the key. Neither
    is held while Argon2 runs."""
    recent = (select(func.count()).select_from(LoginFailure)
              .where(col(LoginFailure.key) == key, col(LoginFailure.at) >= since)
              .scalar_subquery())
    row = select(literal(key, String()), literal(utcnow(), UTCDateTime())).where(
        recent < max_failures)
    try:
        with db.get_bind().engine.connect() as connection, connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_S}s'"))
                lock_id = int.from_bytes(bytes.fromhex(key[:16]), "big", signed=True)
                connection.execute(select(func.pg_advisory_xact_lock(lock_id)))
            reserved = connection.execute(
                insert(LoginFailure).from_select(["key", "at"], row)
                .returning(col(LoginFailure.id))).first() is not None
            connection.execute(delete(LoginFailure).where(col(LoginFailure.at) < since))
    except OperationalError as exc:  # the lock was not had in time
        raise Busy("busy", "sign-in is busy; try again in a moment", retry_after_s=1) from exc
    return reserved


def authenticate(
    db: Session, signer: Signer, username: str, password: str, address: str,
    *, max_failures: int, window_s: int,
) -> StaffUser:
    """The user for these credentials; throttled per (username, address) after failures.

    Each attempt is counted (reserved) before its password is checked, and the reservation is
    cleared when the password is right: however many arrive at once, at most max_failures are
    checked per window."""
    key = signer.keyed_hash("login-throttle",
                            f"{username.strip().lower()}|{address_bucket(address)}")
    since = utcnow() - timedelta(seconds=window_s)
    if not _reserve_attempt(db, key, since, max_failures):
        oldest = db.exec(select(func.min(LoginFailure.at))
                         .where(LoginFailure.key == key, col(LoginFailure.at) >= since)).one()
        wait_s = window_s - int((utcnow() - oldest).total_seconds()) if oldest else window_s
        raise Throttled("too_many_attempts", "too many failed sign-ins; wait a few minutes",
                        retry_after_s=max(1, wait_s))
    user = db.exec(
        select(StaffUser).where(func.lower(StaffUser.username) == username.strip().lower())
    ).first()
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active:
        raise Unauthenticated("invalid_credentials", "wrong username or password")
    db.execute(delete(LoginFailure).where(col(LoginFailure.key) == key))
    return user
